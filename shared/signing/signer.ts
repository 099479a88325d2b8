/**
 * The platform's signing port. Signs the SHA-256 digest of a message with ECDSA P-256 (ES256), so a
 * countersignature verifies as a JWS ES256 signature over the message bytes with the published key.
 */
export interface PlatformSignature {
  readonly kid: string;
  readonly alg: 'ES256';
  /** base64url r‖s (RFC 7518 §3.4). */
  readonly signature: string;
}

/** A platform key's public half: a P-256 JWK with `kid` (its RFC 7638 thumbprint), `alg` and `use`. */
export type PlatformJwk = Readonly<Record<string, unknown>> & { readonly kid: string };

/** A platform key: the signing service's id of it (a KMS key ARN) and its public JWK. */
export interface PlatformKey {
  readonly keyId: string;
  readonly jwk: PlatformJwk;
}

/** A signature with the key that made it (the one the signing alias named when KMS signed). */
export interface PlatformSigned extends PlatformSignature {
  readonly key: PlatformKey;
}

export interface Signer {
  /**
   * Signs with the key the platform's signing alias names now. Which key that is shows only in the answer
   * (`key`): a rotation moves the alias under running functions.
   */
  sign(message: Uint8Array): Promise<PlatformSigned>;
}

/**
 * The rotation side of the platform key (KMS in AWS; the local stack's key ring): asymmetric KMS keys never
 * rotate by themselves, so a rotation creates a key and moves the alias to it.
 */
export interface PlatformKeyManager {
  /** Creates a signing key (ECC_NIST_P256, SIGN_VERIFY) that the alias does not name yet. */
  createSigningKey(): Promise<PlatformKey>;
  /** Points the signing alias at `keyId`: from then on, signatures are that key's. */
  moveAlias(keyId: string): Promise<void>;
}

/**
 * The tag every platform key of a deployment carries (its value: the stack's name). The signing functions'
 * IAM grants name the keys by it, since a rotation creates keys whose ARNs no template knows.
 */
export const PLATFORM_KEY_TAG_KEY = 'enclave-contracts:platform-key';

/** The signing service failed; `transient` when it may succeed later (throttling, a fault of its own): a 503. */
export class SignerError extends Error {
  override readonly name = 'SignerError';
  readonly transient: boolean;

  constructor(message: string, options?: { cause?: unknown; transient?: boolean }) {
    super(message, options);
    this.transient = options?.transient ?? false;
  }
}

/**
 * The published platform key `kid` that was valid at `at` (an ISO time), or why there is none: unknown, no
 * validity window published (`validFrom`, `validUntil` when retired), or `at` outside it. The one rule for
 * countersignatures and checkpoints alike, online and offline.
 */
export function platformKeyAt(
  keys: readonly Record<string, unknown>[],
  kid: string,
  at: string,
): { readonly jwk: Record<string, unknown> } | { readonly issue: string } {
  const jwk = keys.find((k) => k.kid === kid);
  if (!jwk) return { issue: `unknown platform key ${kid}` };
  const from = typeof jwk.validFrom === 'string' ? Date.parse(jwk.validFrom) : Number.NaN;
  const until = jwk.validUntil === undefined ? Number.POSITIVE_INFINITY : Date.parse(String(jwk.validUntil));
  if (Number.isNaN(from) || Number.isNaN(until))
    return { issue: `platform key ${kid} has no validity window` };
  const time = Date.parse(at);
  if (!(time >= from))
    return { issue: `signed at ${at}, before platform key ${kid} was valid (${jwk.validFrom})` };
  if (!(time <= until))
    return { issue: `signed at ${at}, after platform key ${kid} was retired (${jwk.validUntil})` };
  return { jwk };
}
