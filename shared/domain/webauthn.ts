import { createHash } from 'node:crypto';
import { canonicalJson } from './canonical-json.ts';
import { text } from './text.ts';
import * as z from './zod.ts';

/**
 * WebAuthn passkeys as the platform uses them: the credential a biometric signature is made with
 * (registration, W3C WebAuthn Level 3 §7.1) and the assertion that is the signature (§7.2). What the API
 * accepts and shows; the verification is shared/signing/webauthn.ts.
 */

/** How long a registration or signature challenge may be answered (WebAuthn's recommended 5 minutes). */
export const WEBAUTHN_CHALLENGE_TTL_SECONDS = 300;
/** Challenges one identity may hold unanswered at once (each request for options issues one). */
export const MAX_LIVE_CHALLENGES = 10;
/** Passkeys one identity may hold, revoked ones included (the list stays one small Data API response). */
export const MAX_WEBAUTHN_CREDENTIALS = 50;
/** Bytes of every server challenge and nonce: 256 bits from a CSPRNG. */
export const CHALLENGE_BYTES = 32;

/** COSE algorithm ids the platform accepts, most preferred first (EdDSA, ES256, RS256). */
export const WEBAUTHN_COSE_ALGORITHMS = [-8, -7, -257] as const;

/** A passkey as the API shows it: its public key is public, its private key never leaves the authenticator. */
export interface WebAuthnCredential {
  /** The platform's id of the credential (a uuid): the `kid` of the signatures made with it. */
  readonly id: string;
  readonly identityId: string;
  /** The authenticator's credential id (base64url), what an assertion names. */
  readonly credentialId: string;
  readonly name: string;
  readonly alg: 'ES256' | 'EdDSA' | 'RS256';
  /** The credential public key as a JWK (converted from its COSE form, which `cose` keeps). */
  readonly jwk: Record<string, unknown>;
  /** The COSE_Key (RFC 9052) as the authenticator produced it, base64url. */
  readonly cose: string;
  /** The relying party the credential is scoped to (its SHA-256 is in every assertion). */
  readonly rpId: string;
  /** The authenticator model (AAGUID; all zeros when the authenticator does not say). */
  readonly aaguid: string;
  /** The last signature counter accepted (0: the authenticator keeps none). */
  readonly signCount: number;
  /** Whether the authenticator may sync the credential to other devices (a multi-device passkey). */
  readonly backupEligible: boolean;
  readonly transports: readonly string[];
  readonly createdAt: string;
  readonly lastUsedAt: string | null;
  readonly notAfter: string | null;
  readonly revokedAt: string | null;
}

/**
 * The challenge of a biometric signature: SHA-256 of the canonical JSON of the exact signing payload and a
 * server nonce, base64url. An assertion over it is bound to one payload (one contract, one content version,
 * or one measurement set) and, through the nonce, usable once.
 */
export function signatureChallenge(signingPayload: string, nonce: string): string {
  return createHash('sha256').update(canonicalJson({ nonce, signingPayload }), 'utf8').digest('base64url');
}

/** A base64url string (no padding) of at most `max` characters. */
function base64url(max: number) {
  return z
    .string()
    .check(z.minLength(1), z.maxLength(max), z.regex(/^[A-Za-z0-9_-]+$/, 'base64url without padding'));
}

/** A WebAuthn credential id: at most 1023 bytes (WebAuthn §5.8.3), so 1364 base64url characters. */
const CredentialIdSchema = z.lazy(() => base64url(1364));
const NonceSchema = z.lazy(() => base64url(64));

/** What the browser's `PublicKeyCredential.toJSON()` adds that the platform does not read. */
const clientOutputs = () => ({
  clientExtensionResults: z.optional(
    z
      .record(z.string(), z.unknown())
      .check(z.refine((r) => Object.keys(r).length <= 16, 'at most 16 extension results')),
  ),
  authenticatorAttachment: z.optional(z.enum(['platform', 'cross-platform'])),
});

/** `PublicKeyCredential.toJSON()` of a registration (`navigator.credentials.create`). */
export const RegistrationResponseSchema = z.lazy(() =>
  z.strictObject({
    id: CredentialIdSchema,
    rawId: CredentialIdSchema,
    type: z.literal('public-key'),
    response: z.strictObject({
      clientDataJSON: base64url(4096),
      attestationObject: base64url(16384),
      transports: z.optional(z.array(text({ min: 1, max: 32 })).check(z.maxLength(8))),
      publicKeyAlgorithm: z.optional(z.int()),
      publicKey: z.optional(base64url(2048)),
      authenticatorData: z.optional(base64url(4096)),
    }),
    ...clientOutputs(),
  }),
);
export type RegistrationResponse = z.infer<typeof RegistrationResponseSchema>;

/** `PublicKeyCredential.toJSON()` of an assertion (`navigator.credentials.get`). */
export const AuthenticationResponseSchema = z.lazy(() =>
  z.strictObject({
    id: CredentialIdSchema,
    rawId: CredentialIdSchema,
    type: z.literal('public-key'),
    response: z.strictObject({
      clientDataJSON: base64url(4096),
      authenticatorData: base64url(2048),
      signature: base64url(1400),
      userHandle: z.optional(z.nullable(base64url(88))),
    }),
    ...clientOutputs(),
  }),
);
export type AuthenticationResponse = z.infer<typeof AuthenticationResponseSchema>;

/** The body of `POST /identities/{id}/webauthn/registrations`. */
export const RegisterPasskeySchema = z.lazy(() =>
  z.strictObject({
    response: RegistrationResponseSchema,
    /** What the owner calls it ("laptop", "phone"). */
    name: z.optional(text({ min: 1, max: 100 })),
  }),
);
export type RegisterPasskey = z.infer<typeof RegisterPasskeySchema>;

/** The body of `POST /identities/{id}/webauthn/authentication-options`: what is about to be signed. */
export const AuthenticationOptionsRequestSchema = z.lazy(() =>
  z.strictObject({ signingPayload: text({ min: 1, max: 1000 }) }),
);

/** The biometric members of a signature or approval: the options' nonce and the assertion. */
export const BiometricSignatureShape = () => ({
  nonce: NonceSchema,
  assertion: AuthenticationResponseSchema,
});
