import { canonicalJson, sha256Hex, storedJsonBytes } from './canonical-json.ts';
import { type ContractTerms, ContractTermsSchema } from './contract-terms.ts';
import { ValidationError } from './errors.ts';
import { IdSchema } from './identifiers.ts';
import {
  KeySignatureSchema,
  OtpCodeSchema,
  SIGNATURE_ALGORITHMS,
  type SignatureAlgorithm,
} from './identity.ts';
import { text } from './text.ts';
import { BiometricSignatureShape } from './webauthn.ts';
import * as z from './zod.ts';

export const CONTRACT_STATUSES = [
  'Draft',
  'PendingSignature',
  'Active',
  'Suspended',
  'Terminated',
  'Expired',
] as const;
export type ContractStatus = (typeof CONTRACT_STATUSES)[number];

export const PARTY_ROLES = ['provider', 'consumer'] as const;
export type PartyRole = (typeof PARTY_ROLES)[number];

export interface ContractSignature {
  readonly role: PartyRole | 'platform';
  readonly identityId: string | null;
  /**
   * `digital`: the party's key signed. `mfa`: the party's key signed and a fresh TOTP code of its confirmed
   * second factor was verified with it (`secondFactor`), so a stolen key alone cannot sign. `biometric`: a
   * passkey of the party's signed, its authenticator having verified the user (`assertion`).
   */
  readonly type: SignatureType;
  /** The signing key's kid; for a biometric signature, the passkey's id. */
  readonly kid: string;
  readonly alg: SignatureAlgorithm | 'RS256';
  /**
   * base64url; ECDSA as r‖s (JWS, RFC 7518). A biometric signature's is the assertion's (WebAuthn: ECDSA
   * as DER) over its authenticator data and the SHA-256 of its clientDataJSON.
   */
  readonly signature: string;
  readonly contentDigest: string;
  readonly contentVersion: number;
  readonly signedAt: string;
  /** The exact bytes (UTF-8) that were signed, for the platform's countersignature. */
  readonly signedPayload?: string;
  /** `mfa` only: the second factor the platform verified with the signature. */
  readonly secondFactor?: SecondFactor;
  /** `biometric` only: what the passkey signed, to verify the signature again anywhere. */
  readonly assertion?: PasskeyAssertion;
}

export const SIGNATURE_TYPES = ['digital', 'mfa', 'biometric'] as const;
export type SignatureType = (typeof SIGNATURE_TYPES)[number];

/**
 * A biometric signature's WebAuthn assertion, less its signature (the signature's `signature`): the
 * authenticator data and clientDataJSON it signed (base64url), the credential, and the server nonce that,
 * with the signing payload, makes the challenge (`signatureChallenge`).
 */
export interface PasskeyAssertion {
  readonly credentialId: string;
  readonly authenticatorData: string;
  readonly clientDataJSON: string;
  readonly nonce: string;
  readonly signCount: number;
}

/** The fact of a verified second factor: which credential, and when its code was verified. */
export interface SecondFactor {
  readonly method: 'totp';
  readonly credentialId: string;
  readonly verifiedAt: string;
}

export interface ContractData {
  readonly id: string;
  readonly title: string;
  readonly description: string;
  readonly providerId: string;
  readonly consumerId: string;
  readonly status: ContractStatus;
  readonly terms: ContractTerms;
  readonly signatures: readonly ContractSignature[];
  /** Row version: changes with every write; the ETag. */
  readonly version: number;
  /** The version at which the signable content last changed; what parties sign with the digest. */
  readonly contentVersion: number;
  /** SHA-256 (hex) of the RFC 8785 canonical JSON of the signable content. */
  readonly contentDigest: string;
  /** True once any party signed any version: such a contract is terminated, never deleted. */
  readonly everSigned: boolean;
  readonly statusReason: string | null;
  /** Who suspended the contract (only they or an admin may resume). */
  readonly suspendedBy: string | null;
  readonly createdAt: string;
  readonly updatedAt: string;
}

const Title = z.lazy(() => text({ min: 1, max: 200 }));
const Description = z.lazy(() => text({ max: 5000, lines: 'multi' }));

export const CreateContractSchema = z.lazy(() =>
  z.strictObject({
    title: Title,
    description: z._default(Description, ''),
    consumerId: IdSchema,
    /** Only admins create on behalf of a provider; providers create as themselves. */
    providerId: z.optional(IdSchema),
    terms: ContractTermsSchema,
  }),
);
export type CreateContract = z.infer<typeof CreateContractSchema>;

export const UpdateContractSchema = z.lazy(() =>
  z
    .strictObject({
      title: z.optional(Title),
      description: z.optional(Description),
      terms: z.optional(ContractTermsSchema),
    })
    .check(
      z.refine((u) => u.title !== undefined || u.description !== undefined || u.terms !== undefined, {
        message: 'at least one of title, description, terms is required',
      }),
    ),
);
export type UpdateContract = z.infer<typeof UpdateContractSchema>;

/**
 * A party's signature: `digital` (its key's signature over the signing payload), `mfa` (the same, and
 * `otp`, the current code of its confirmed TOTP second factor) or `biometric` (a passkey's assertion over
 * the challenge of the signing payload and the `nonce` of `POST /identities/{id}/webauthn/authentication-options`).
 */
export const SignContractSchema = z.lazy(() =>
  z.discriminatedUnion('type', [
    z.extend(KeySignatureSchema, { type: z.literal('digital') }),
    z.extend(KeySignatureSchema, { type: z.literal('mfa'), otp: OtpCodeSchema }),
    z.strictObject({ type: z.literal('biometric'), ...BiometricSignatureShape() }),
  ]),
);
export type SignContract = z.infer<typeof SignContractSchema>;

const Reason = z.lazy(() => text({ min: 1, max: 1000, lines: 'multi' }));
export const ReasonSchema = z.lazy(() => z.strictObject({ reason: Reason }));
export const OptionalReasonSchema = z.lazy(() => z.strictObject({ reason: z.optional(Reason) }));

/**
 * The most a contract's title, description and terms may take together, measured as one database row
 * carries them (`storedJsonBytes`). A contract is read as one row, and the RDS Data API refuses rows over
 * 64 KB: this leaves room for the signatures (at most two parties' and the platform's, about 6 KB) and
 * the other columns, so every contract that can be stored can be read back.
 */
export const MAX_CONTRACT_CONTENT_BYTES = 40 * 1024;

/**
 * Refuses content that would not fit one readable row (400, naming the size and the limit).
 * @throws ValidationError
 */
export function assertContentFits(content: Pick<ContractData, 'title' | 'description' | 'terms'>): void {
  const bytes = storedJsonBytes({
    title: content.title,
    description: content.description,
    terms: content.terms,
  });
  if (bytes > MAX_CONTRACT_CONTENT_BYTES) {
    throw new ValidationError(
      `The contract is too large: its title, description and terms take ${bytes} bytes stored, at most ${MAX_CONTRACT_CONTENT_BYTES}.`,
      [
        {
          field: 'body',
          message: `content takes ${bytes} bytes stored; at most ${MAX_CONTRACT_CONTENT_BYTES}`,
        },
      ],
    );
  }
}

/**
 * A contract as lists show it: everything but the description, the terms (only their validity window)
 * and the signatures' bytes (only who signed the current content). A page of 100 summaries stays far below
 * the Data API's 1 MiB response and Lambda's 6 MB reply whatever the contracts hold; `GET /contracts/{id}`
 * returns the whole contract.
 */
export interface ContractSummary
  extends Pick<
    ContractData,
    | 'id'
    | 'title'
    | 'providerId'
    | 'consumerId'
    | 'status'
    | 'version'
    | 'contentVersion'
    | 'contentDigest'
    | 'everSigned'
    | 'statusReason'
    | 'suspendedBy'
    | 'createdAt'
    | 'updatedAt'
  > {
  readonly validity: ContractTerms['validity'];
  /** Who signed the current content (`contentDigest` at `contentVersion`), the platform included. */
  readonly signedBy: readonly (PartyRole | 'platform')[];
}

/** The content parties agree on: everything that gives the contract its meaning. */
export function signableContent(
  c: Pick<ContractData, 'id' | 'title' | 'description' | 'providerId' | 'consumerId' | 'terms'>,
) {
  return {
    contractId: c.id,
    title: c.title,
    description: c.description,
    providerId: c.providerId,
    consumerId: c.consumerId,
    terms: c.terms,
  };
}

export function contentDigest(c: Parameters<typeof signableContent>[0]): string {
  return sha256Hex(canonicalJson(signableContent(c)));
}

/** What a party signs: the UTF-8 bytes of this canonical JSON string. */
export function signingPayload(c: Pick<ContractData, 'id' | 'contentDigest' | 'contentVersion'>): string {
  return canonicalJson({ contractId: c.id, contentDigest: c.contentDigest, version: c.contentVersion });
}

/** What the platform countersigns on activation: the agreed content and both parties' signatures. */
export function countersignPayload(
  c: Pick<ContractData, 'id' | 'contentDigest' | 'contentVersion'>,
  parties: readonly ContractSignature[],
): string {
  return canonicalJson({
    contractId: c.id,
    contentDigest: c.contentDigest,
    version: c.contentVersion,
    signatures: parties
      .map((s) => ({
        role: s.role,
        identityId: s.identityId,
        kid: s.kid,
        alg: s.alg,
        signature: s.signature,
        // The platform attests the second factor or the assertion it verified; a digital signature's entry
        // is what it was before MFA existed, so every earlier countersignature still verifies.
        ...(s.type === 'mfa'
          ? { type: s.type, secondFactor: s.secondFactor ?? null }
          : s.type === 'biometric'
            ? { type: s.type, assertion: s.assertion ?? null }
            : {}),
      }))
      .sort((a, b) => a.role.localeCompare(b.role)),
  });
}

/**
 * What the lifecycle rules read of a contract: the whole contract, or what a summary carries of it (the
 * validity window, and who signed the current content).
 */
export interface ContractState
  extends Pick<
    ContractData,
    'status' | 'providerId' | 'consumerId' | 'everSigned' | 'suspendedBy' | 'contentDigest' | 'contentVersion'
  > {
  readonly terms: { readonly validity: ContractTerms['validity'] };
  readonly signatures: readonly SignatureMark[];
}

/** What the lifecycle needs of a signature: who signed which content. */
export type SignatureMark = Pick<ContractSignature, 'role' | 'contentDigest' | 'contentVersion'>;

/** The lifecycle's view of a summary: its signers, all over the current content. */
export function stateOfSummary(s: ContractSummary): ContractState {
  return {
    ...s,
    terms: { validity: s.validity },
    signatures: s.signedBy.map((role) => ({
      role,
      contentDigest: s.contentDigest,
      contentVersion: s.contentVersion,
    })),
  };
}

/** Current party signatures: those over the present digest and content version. */
export function currentPartySignatures<S extends SignatureMark>(
  c: Pick<ContractData, 'contentDigest' | 'contentVersion'> & { readonly signatures: readonly S[] },
): S[] {
  return c.signatures.filter(
    (s) =>
      s.role !== 'platform' && s.contentDigest === c.contentDigest && s.contentVersion === c.contentVersion,
  );
}

export function partyRoleOf(
  c: Pick<ContractData, 'providerId' | 'consumerId'>,
  identityId: string,
): PartyRole | null {
  if (c.providerId === identityId) return 'provider';
  if (c.consumerId === identityId) return 'consumer';
  return null;
}

export const SecondFactorSchema = z.lazy(() =>
  z.object({ method: z.literal('totp'), credentialId: z.uuid(), verifiedAt: z.string() }),
);

export const PasskeyAssertionSchema = z.lazy(() =>
  z.object({
    credentialId: z.string(),
    authenticatorData: z.string(),
    clientDataJSON: z.string(),
    nonce: z.string(),
    signCount: z.int(),
  }),
);

export const SignatureSchema = z.lazy(() =>
  z.object({
    role: z.enum(['provider', 'consumer', 'platform']),
    identityId: z.nullable(z.uuid()),
    type: z.enum(SIGNATURE_TYPES),
    kid: z.string(),
    alg: z.enum([...SIGNATURE_ALGORITHMS, 'RS256']),
    signature: z.string(),
    contentDigest: z.string(),
    contentVersion: z.int(),
    signedAt: z.string(),
    signedPayload: z.optional(z.string()),
    secondFactor: z.optional(SecondFactorSchema),
    assertion: z.optional(PasskeyAssertionSchema),
  }),
);
