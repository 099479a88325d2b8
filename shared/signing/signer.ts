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

export interface Signer {
  sign(message: Uint8Array): Promise<PlatformSignature>;
  /** Public keys as JWKs (with `kid`, `alg`, `use: 'sig'`), current first; old keys stay for verification. */
  publicKeys(): Promise<Record<string, unknown>[]>;
}

/** The signing service failed; `transient` when it may succeed later (throttling, a fault of its own): a 503. */
export class SignerError extends Error {
  override readonly name = 'SignerError';
  readonly transient: boolean;

  constructor(message: string, options?: { cause?: unknown; transient?: boolean }) {
    super(message, options);
    this.transient = options?.transient ?? false;
  }
}
