import { text } from './text.ts';
import * as z from './zod.ts';

export const ROLES = ['provider', 'consumer', 'admin', 'auditor'] as const;
export type Role = (typeof ROLES)[number];

export interface Identity {
  readonly id: string;
  /** The token subject (`sub`) this identity is found by. */
  readonly subject: string;
  /** A stable handle, unique, e.g. `provider`. */
  readonly name: string;
  readonly displayName: string;
  readonly email: string | null;
  readonly roles: readonly Role[];
  /** `active`, or `suspended` (acts on nothing until made active again), or `revoked` (final). */
  readonly status: IdentityStatus;
  /** Why an admin last changed the status; null while it never changed. */
  readonly statusReason: string | null;
  readonly version: number;
  readonly createdAt: string;
  readonly updatedAt: string;
}

export const IDENTITY_STATUSES = ['active', 'suspended', 'revoked'] as const;
export type IdentityStatus = (typeof IDENTITY_STATUSES)[number];

export const IdentityNameSchema = z.lazy(() =>
  z
    .string()
    .check(
      z.minLength(2),
      z.maxLength(64),
      z.regex(/^[a-z0-9][a-z0-9._-]*$/, 'lower-case letters, digits and . _ - only'),
    ),
);

/**
 * A token subject (`sub`): OpenID Connect Core §2 makes it a case-sensitive string of at most 255 ASCII
 * characters; visible ASCII, inner spaces allowed, none at either end (it is matched exactly, never trimmed).
 */
export const SubjectSchema = z.lazy(() =>
  z
    .string()
    .check(
      z.minLength(1),
      z.maxLength(255),
      z.regex(
        /^[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?$/,
        'visible ASCII characters, no space at either end',
      ),
    ),
);

export const CreateIdentitySchema = z.lazy(() =>
  z.strictObject({
    name: IdentityNameSchema,
    subject: z.optional(SubjectSchema),
    displayName: text({ min: 1, max: 200 }),
    email: z.optional(z.email().check(z.maxLength(320))),
    roles: z.array(z.enum(ROLES)).check(
      z.minLength(1),
      z.maxLength(ROLES.length),
      z.refine((r) => new Set(r).size === r.length, 'roles must be unique'),
    ),
  }),
);
export type CreateIdentity = z.infer<typeof CreateIdentitySchema>;

/**
 * The most keys (revoked ones included) one identity holds: `GET /identities/{id}/keys` lists them all, and
 * 100 of the largest (RSA-4096 JWKs, 128-character kids) stay far below the Data API's 1 MiB response.
 */
export const MAX_KEYS_PER_IDENTITY = 100;

export const SIGNATURE_ALGORITHMS = ['ES256', 'ES384', 'EdDSA', 'PS256'] as const;
export type SignatureAlgorithm = (typeof SIGNATURE_ALGORITHMS)[number];

/** A public JWK: private members are refused so a private key is never stored. */
export const PublicJwkSchema = z.lazy(() =>
  z
    .looseObject({
      kty: z.enum(['EC', 'OKP', 'RSA']),
      crv: z.optional(z.string().check(z.maxLength(16))),
      x: z.optional(z.string().check(z.maxLength(1024))),
      y: z.optional(z.string().check(z.maxLength(1024))),
      n: z.optional(z.string().check(z.maxLength(2048))),
      e: z.optional(z.string().check(z.maxLength(16))),
    })
    .check(
      z.superRefine((jwk, ctx) => {
        for (const member of ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k']) {
          if (member in jwk) {
            ctx.addIssue({
              code: 'custom',
              path: [member],
              message: 'private key material must never be sent',
            });
          }
        }
        if (Object.keys(jwk).length > 12)
          ctx.addIssue({ code: 'custom', path: [], message: 'too many JWK members' });
      }),
    ),
);

/** A key id: URL-safe characters (the RFC 7638 thumbprint, the default, is one). */
export const KidSchema = z.lazy(() =>
  z
    .string()
    .check(
      z.minLength(1),
      z.maxLength(128),
      z.regex(/^[A-Za-z0-9._~-]+$/, 'URL-safe characters only (A-Z a-z 0-9 . _ ~ -)'),
    ),
);

/** A signature as parties send it: base64url without padding, encoded as in JWS (ECDSA as r‖s). */
export const SignatureValueSchema = z.lazy(() =>
  z
    .string()
    .check(z.minLength(16), z.maxLength(1400), z.regex(/^[A-Za-z0-9_-]+$/, 'base64url without padding')),
);

/** The fields of {@link RegisterKeySchema}, for the schemas that extend it. */
const registerKeyShape = () => ({
  alg: z.enum(SIGNATURE_ALGORITHMS),
  jwk: PublicJwkSchema,
  kid: z.optional(KidSchema),
  /**
   * Proof of possession: the key's own signature over `keyRegistrationStatement(identityId, thumbprint)`
   * (shared/domain/key-registration.ts).
   */
  proof: SignatureValueSchema,
});
export const RegisterKeySchema = z.lazy(() => z.strictObject(registerKeyShape()));
export type RegisterKey = z.infer<typeof RegisterKeySchema>;

/** The longest grace a rotation may give the old key (seconds): 30 days. */
export const MAX_ROTATION_GRACE_SECONDS = 30 * 24 * 3600;

/** A rotation: the successor, registered as any key, and how long the old key stays valid (default a day). */
export const RotateKeySchema = z.lazy(() =>
  z.strictObject({
    ...registerKeyShape(),
    graceSeconds: z.optional(z.int().check(z.minimum(0), z.maximum(MAX_ROTATION_GRACE_SECONDS))),
  }),
);
export type RotateKey = z.infer<typeof RotateKeySchema>;

export interface IdentityKey {
  readonly kid: string;
  readonly identityId: string;
  readonly alg: SignatureAlgorithm;
  readonly jwk: Record<string, unknown>;
  readonly createdAt: string;
  /** When a rotation retires the key (its successor registered); null while it has none. */
  readonly notAfter: string | null;
  readonly revokedAt: string | null;
}

/** A signature by one of the caller's registered keys: base64url, encoded as in JWS (ECDSA as r‖s). */
/** A TOTP code as an authenticator app shows it (RFC 6238, six digits). */
export const OtpCodeSchema = z.lazy(() =>
  z.string().check(z.regex(/^[0-9]{6}$/, { message: 'must be the six digits the authenticator shows' })),
);

/** The body of a TOTP confirmation: the first code the authenticator shows. */
export const ConfirmTotpSchema = z.lazy(() => z.strictObject({ code: OtpCodeSchema }));

export const KeySignatureSchema = z.strictObject({
  kid: KidSchema,
  signature: SignatureValueSchema,
});

/** The body of `PUT /identities/{id}/status`: the new status and why (audited). */
export const SetIdentityStatusSchema = z.lazy(() =>
  z.strictObject({ status: z.enum(IDENTITY_STATUSES), reason: text({ min: 1, max: 1000, lines: 'multi' }) }),
);
export type SetIdentityStatus = z.infer<typeof SetIdentityStatusSchema>;
