import {
  CONTRACT_STATUSES,
  PasskeyAssertionSchema,
  SecondFactorSchema,
  SIGNATURE_TYPES,
  SignatureSchema,
} from '../domain/contract.ts';
import { ContractTermsSchema } from '../domain/contract-terms.ts';
import {
  AGENT_PHASES,
  ENCLAVE_STATUSES,
  EnclaveAttestationSchema,
  EnclaveConfigurationSchema,
  EnclaveMetricsSchema,
  enclaveMetricsShape,
} from '../domain/enclave.ts';
import { IdSchema } from '../domain/identifiers.ts';
import { IDENTITY_STATUSES, KidSchema, ROLES, SIGNATURE_ALGORITHMS } from '../domain/identity.ts';
import { AdditionalPcrsSchema, MEASUREMENT_SET_STATUSES } from '../domain/measurement-set.ts';
import * as z from '../domain/zod.ts';
import { CreatedAtCursorSchema, cursorParam, NameCursorSchema, ReportedAtCursorSchema } from './cursor.ts';

/** Schemas of path parameters, query strings and replies: the request bodies live with the domain. */
export const IdPathSchema = z.strictObject({ id: IdSchema });
export const MeasurementPathSchema = z.strictObject({ id: IdSchema, mid: IdSchema });
export const KeyPathSchema = z.strictObject({ id: IdSchema, kid: KidSchema });
/** An identity's credential (a TOTP factor, a passkey), by the platform's id. */
export const CredentialPathSchema = z.strictObject({ id: IdSchema, credentialId: IdSchema });

/**
 * A count in a query string: digits only (no sign, exponent, hex prefix or space: `limit=0x10`, `1e2` and
 * `" 5"` are refused, where a numeric coercion would take them), then bounded.
 */
function countParam(min: number, max: number, fallback: number) {
  return z._default(
    z.pipe(
      z.pipe(z.string().check(z.regex(/^[0-9]{1,9}$/, 'digits only')), z.transform(Number)),
      z.int().check(z.minimum(min), z.maximum(max)),
    ),
    fallback,
  );
}

export const ListContractsQuerySchema = z.lazy(() =>
  z.strictObject({
    status: z.optional(z.enum(CONTRACT_STATUSES)),
    role: z.optional(z.enum(['provider', 'consumer'])),
    counterpartyId: z.optional(IdSchema),
    limit: countParam(1, 100, 20),
    cursor: z.optional(cursorParam(CreatedAtCursorSchema)),
  }),
);

/**
 * The most audit records one page holds: the largest record a party can make (a 1,000-character reason of
 * quotes, four bytes each as the Data API carries it) takes about 4.5 KB, so a full page stays under the Data
 * API's 1 MiB response limit (`test/e2e/response-size.test.ts` reads one through the emulator).
 */
export const MAX_AUDIT_PAGE = 200;

export const AuditQuerySchema = z.lazy(() =>
  z.strictObject({
    entityId: IdSchema,
    limit: countParam(1, MAX_AUDIT_PAGE, 100),
    afterSeq: countParam(0, 2_147_483_647, 0),
  }),
);

export const ListIdentitiesQuerySchema = z.lazy(() =>
  z.strictObject({
    role: z.optional(z.enum(ROLES)),
    limit: countParam(1, 100, 50),
    cursor: z.optional(cursorParam(NameCursorSchema)),
  }),
);

/** The contract as a party reads it (the shape also gives the summaries'). */
const contractResponseShape = () => ({
  id: z.uuid(),
  title: z.string(),
  description: z.string(),
  providerId: z.uuid(),
  consumerId: z.uuid(),
  status: z.enum(CONTRACT_STATUSES),
  terms: ContractTermsSchema,
  signatures: z.array(SignatureSchema),
  version: z.int(),
  contentVersion: z.int(),
  contentDigest: z.string(),
  signingPayload: z.string(),
  everSigned: z.boolean(),
  statusReason: z.nullable(z.string()),
  suspendedBy: z.nullable(z.uuid()),
  availableActions: z.array(z.string()),
  createdAt: z.string(),
  updatedAt: z.string(),
});

export const ContractResponseSchema = z.lazy(() => z.object(contractResponseShape()));

/** A list's item: the contract without its description and terms (`GET /contracts/{id}` has them). */
export const ContractSummaryResponseSchema = z.lazy(() =>
  z.extend(
    z.pick(z.object(contractResponseShape()), {
      id: true,
      title: true,
      providerId: true,
      consumerId: true,
      status: true,
      version: true,
      contentVersion: true,
      contentDigest: true,
      everSigned: true,
      statusReason: true,
      suspendedBy: true,
      availableActions: true,
      createdAt: true,
      updatedAt: true,
    }),
    {
      validity: z.object({ start: z.string(), end: z.string() }),
      signedBy: z.array(z.enum(['provider', 'consumer', 'platform'])).register(z.globalRegistry, {
        description: 'Who signed the current content (contentDigest at contentVersion)',
      }),
    },
  ),
);

/** A list's reply: one page of `item` and the cursor of the next page (null on the last), built on first use. */
function pageSchemaOf<T extends z.ZodMiniType>(item: () => T) {
  return z.lazy(() => z.object({ items: z.array(item()), nextCursor: z.nullable(z.string()) }));
}

export const ContractPageSchema = pageSchemaOf(() => ContractSummaryResponseSchema);

export const IdentityResponseSchema = z.lazy(() =>
  z.object({
    id: z.uuid(),
    subject: z.string(),
    name: z.string(),
    displayName: z.string(),
    email: z.nullable(z.string()),
    roles: z.array(z.enum(ROLES)),
    status: z.enum(IDENTITY_STATUSES),
    statusReason: z.nullable(z.string()),
    version: z.int(),
    createdAt: z.string(),
    updatedAt: z.string(),
  }),
);

export const IdentityPageSchema = pageSchemaOf(() => IdentityResponseSchema);

export const KeyResponseSchema = z.lazy(() =>
  z.object({
    kid: z.string(),
    identityId: z.uuid(),
    alg: z.enum(SIGNATURE_ALGORITHMS),
    jwk: z.record(z.string(), z.unknown()),
    createdAt: z.string(),
    notAfter: z.nullable(z.string()).register(z.globalRegistry, {
      description: 'When a rotation retires the key (its successor registered); null until then.',
    }),
    revokedAt: z.nullable(z.string()),
  }),
);

export const KeyRotationSchema = z.lazy(() =>
  z.object({ successor: KeyResponseSchema, retiring: KeyResponseSchema }),
);

/** A platform key as published: its P-256 JWK and its validity window. */
export const PlatformKeySchema = z.lazy(() =>
  z.looseObject({
    kty: z.literal('EC'),
    crv: z.literal('P-256'),
    x: z.string(),
    y: z.string(),
    kid: z.string(),
    alg: z.literal('ES256'),
    use: z.literal('sig'),
    validFrom: z.string(),
    validUntil: z.optional(z.string()),
  }),
);

export const PlatformKeysSchema = z.lazy(() =>
  z.object({
    keys: z.array(PlatformKeySchema),
  }),
);

export const PlatformKeyRotationSchema = z.lazy(() =>
  z.object({
    key: PlatformKeySchema,
    retired: z.array(PlatformKeySchema),
  }),
);

/** A contract's data key as the platform last applied it (`GET /contracts/{id}/key`). */
export const ContractKeySchema = z.lazy(() =>
  z.object({
    /** The key's audit chain: `GET /audit?entityId=` this. */
    id: z.uuid(),
    contractId: z.uuid(),
    keyArn: z.string(),
    alias: z.string(),
    state: z.enum(['Enabled', 'Disabled', 'PendingDeletion']),
    /** Lower-case hex SHA-256 of the key policy's text, as put in KMS. */
    policyDigest: z.string().check(z.regex(/^[0-9a-f]{64}$/)),
    /** How many policies the key has had (1: its first). */
    policyVersion: z.int().check(z.positive()),
    /** What the policy admits: the approved sets with a Running enclave, and those enclaves with their PCR4. */
    admits: z.object({
      measurementSets: z.array(z.uuid()),
      enclaves: z.array(z.object({ id: z.uuid(), instanceId: z.string(), pcr4: z.string() })),
    }),
    /** When KMS deletes the key (only once a termination scheduled it). */
    deletionDate: z.optional(z.string()),
    version: z.int().check(z.positive()),
    createdAt: z.string(),
    updatedAt: z.string(),
  }),
);

/** A data key wrapped under a contract's key (`POST /contracts/{id}/data-keys`). */
export const WrappedDataKeySchema = z.lazy(() =>
  z.object({
    contractId: z.uuid(),
    keyArn: z.string(),
    keySpec: z.literal('AES_256'),
    /** The encryption context KMS bound to the data key: every unwrap must present it. */
    encryptionContext: z.object({ contractId: z.uuid() }),
    /** KMS's CiphertextBlob, base64: store it beside the data encrypted with the key. */
    ciphertextBlob: z.string(),
  }),
);

export const CheckpointProofSchema = z.lazy(() =>
  z.object({
    signedPayload: z.string(),
    kid: z.string(),
    alg: z.literal('ES256'),
    signature: z.string(),
    leaf: z.object({ entityId: z.uuid(), seq: z.int(), hash: z.string() }),
    leafIndex: z.int(),
    proof: z.array(z.string()),
  }),
);

export const AuditRecordSchema = z.lazy(() =>
  z.object({
    entityType: z.string(),
    entityId: z.uuid(),
    seq: z.int(),
    action: z.string(),
    actorId: z.nullable(z.uuid()),
    occurredAt: z.string(),
    data: z.unknown(),
    prevHash: z.string(),
    hash: z.string(),
  }),
);

export const AuditTrailSchema = z.lazy(() =>
  z.object({
    entityId: z.uuid(),
    records: z.array(AuditRecordSchema),
    verification: z.object({
      valid: z.boolean(),
      checked: z.int(),
      head: z.nullable(z.string()),
      brokenAtSeq: z.nullable(z.int()),
      reason: z.nullable(z.string()),
      anchored: z.nullable(z.boolean()),
      anchorReason: z.nullable(z.string()),
    }),
    checkpoint: z.nullable(CheckpointProofSchema),
  }),
);

/** A contract as evidence (shared/contracts/contract-evidence.ts): what `npm run verify-evidence` checks. */
export const EvidenceBundleSchema = z.lazy(() =>
  z.object({
    format: z.literal('enclave-contracts-evidence/1'),
    contract: z.object({
      id: z.uuid(),
      status: z.enum(CONTRACT_STATUSES),
      contentVersion: z.int(),
      contentDigest: z.string(),
      content: z.object({
        contractId: z.uuid(),
        title: z.string(),
        description: z.string(),
        providerId: z.uuid(),
        consumerId: z.uuid(),
        terms: ContractTermsSchema,
      }),
    }),
    signatures: z.array(
      z.intersection(
        SignatureSchema,
        z.object({
          key: z.nullable(
            z.object({
              kid: z.string(),
              alg: z.enum([...SIGNATURE_ALGORITHMS, 'RS256']),
              jwk: z.record(z.string(), z.unknown()),
              createdAt: z.string(),
              notAfter: z.nullable(z.string()),
              revokedAt: z.nullable(z.string()),
              passkey: z.optional(z.object({ credentialId: z.string(), rpId: z.string(), cose: z.string() })),
            }),
          ),
        }),
      ),
    ),
    platformKeys: z.array(z.record(z.string(), z.unknown())),
    audit: z.object({
      records: z.array(AuditRecordSchema),
      checkpoint: z.nullable(CheckpointProofSchema),
    }),
  }),
);

const EvidenceCheckSchema = z.object({ check: z.string(), ok: z.boolean(), detail: z.string() });

export const SignatureVerificationSchema = z.lazy(() =>
  z.object({
    contractId: z.uuid(),
    contentDigest: z.string(),
    contentVersion: z.int(),
    valid: z.boolean().register(z.globalRegistry, {
      description: 'The content digest and every signature hold (the audit checks are in `checks`).',
    }),
    signatures: z.array(
      z.object({
        role: z.enum(['provider', 'consumer', 'platform']),
        identityId: z.nullable(z.uuid()),
        kid: z.string(),
        alg: z.string(),
        type: z.string(),
        signedAt: z.string(),
        contentVersion: z.int(),
        current: z.boolean(),
        valid: z.boolean(),
        reason: z.nullable(z.string()),
      }),
    ),
    checks: z.array(EvidenceCheckSchema),
  }),
);

export const ProblemSchema = z.lazy(() =>
  z.object({
    type: z.string(),
    title: z.string(),
    status: z.int(),
    detail: z.string(),
    instance: z.optional(z.string()),
    errors: z
      .optional(
        z.array(
          z.object({
            field: z.string().register(z.globalRegistry, {
              description: 'Where: `body.terms.validity.end`, `query.cursor`, `header.If-Match`, …',
            }),
            message: z.string(),
            requirement: z.optional(z.string()).register(z.globalRegistry, {
              description: '422 `enclave-incompatible`: the stable code of the unmet requirement',
            }),
          }),
        ),
      )
      .register(z.globalRegistry, {
        description: 'One entry per offending field or unmet requirement (at most 50)',
      }),
  }),
);

/** What API Gateway itself answers when its authorizer refuses a request, before any function runs. */
export const GatewayMessageSchema = z.lazy(() => z.object({ message: z.string() }));

/** The body of `GET /identities/{id}/keys`. */
export const KeyListSchema = z.lazy(() => z.object({ keys: z.array(KeyResponseSchema) }));

/** A TOTP second factor (never its seed). */
export const TotpCredentialSchema = z.lazy(() =>
  z.object({
    id: z.uuid(),
    identityId: z.uuid(),
    createdAt: z.string(),
    confirmedAt: z.nullable(z.string()).register(z.globalRegistry, {
      description: 'When its first code confirmed it: only a confirmed credential is a second factor.',
    }),
    notAfter: z.nullable(z.string()),
    revokedAt: z.nullable(z.string()),
  }),
);

export const TotpCredentialListSchema = z.lazy(() =>
  z.object({ credentials: z.array(TotpCredentialSchema) }),
);

export const TotpEnrolmentSchema = z.lazy(() =>
  z.object({
    credential: TotpCredentialSchema,
    otpauthUri: z.string().register(z.globalRegistry, {
      description:
        'The `otpauth://totp/…` URI an authenticator app enrols from. It carries the seed: shown once, never again.',
    }),
    qrSvg: z
      .string()
      .register(z.globalRegistry, { description: 'The same URI as a QR code (an SVG document).' }),
  }),
);

export const HealthSchema = z.lazy(() => z.object({ status: z.literal('ok') }));

export const MeasurementSetResponseSchema = z.lazy(() =>
  z.object({
    id: z.uuid(),
    contractId: z.uuid(),
    pcr0: z.string(),
    pcr1: z.string(),
    pcr2: z.string(),
    pcr8: z.nullable(z.string()),
    /** Further pinned PCRs, decimal index → hex; `{}` when the set pins none. */
    additionalPcrs: AdditionalPcrsSchema,
    status: z.enum(MEASUREMENT_SET_STATUSES),
    approvals: z.array(
      z.object({
        role: z.enum(['provider', 'consumer']),
        identityId: z.uuid(),
        kid: z.string(),
        alg: z.enum([...SIGNATURE_ALGORITHMS, 'RS256']),
        signature: z.string(),
        approvedAt: z.string(),
        type: z.optional(z.enum(SIGNATURE_TYPES)),
        secondFactor: z.optional(SecondFactorSchema),
        assertion: z.optional(PasskeyAssertionSchema),
      }),
    ),
    proposedBy: z.uuid(),
    version: z.int(),
    signingPayload: z.string(),
    createdAt: z.string(),
    updatedAt: z.string(),
  }),
);

export const MeasurementSetListSchema = z.lazy(() =>
  z.object({ items: z.array(MeasurementSetResponseSchema) }),
);

export const ListEnclavesQuerySchema = z.lazy(() =>
  z.strictObject({
    contractId: z.optional(IdSchema),
    status: z.optional(z.enum(ENCLAVE_STATUSES)),
    limit: countParam(1, 100, 20),
    cursor: z.optional(cursorParam(CreatedAtCursorSchema)),
  }),
);

export const EnclaveMetricsQuerySchema = z.lazy(() =>
  z.strictObject({
    limit: countParam(1, 100, 20),
    cursor: z.optional(cursorParam(ReportedAtCursorSchema)),
  }),
);

const ProvisioningIdSchema = z.lazy(() =>
  z.nullable(z.string()).register(z.globalRegistry, {
    description:
      "The provisioning workflow execution's name (find it in the Step Functions console), or null before the first",
  }),
);

export const EnclaveResponseSchema = z.lazy(() =>
  z.object({
    id: z.uuid(),
    name: z.string(),
    providerId: z.uuid(),
    contractId: z.uuid(),
    status: z.enum(ENCLAVE_STATUSES),
    attestation: z.nullable(EnclaveAttestationSchema),
    configuration: EnclaveConfigurationSchema,
    metrics: z.nullable(EnclaveMetricsSchema).register(z.globalRegistry, {
      description:
        'The latest metrics sample, updated in place (no version change); the history is GET /enclaves/{id}/metrics',
    }),
    region: z.string(),
    version: z.int(),
    instanceId: z.nullable(z.string()),
    provisioningId: ProvisioningIdSchema,
    statusReason: z.nullable(z.string()),
    createdAt: z.string(),
    updatedAt: z.string(),
  }),
);

/** A list's item: the enclave without its configuration (but its image) and metrics. */
export const EnclaveSummaryResponseSchema = z.lazy(() =>
  z.object({
    id: z.uuid(),
    name: z.string(),
    providerId: z.uuid(),
    contractId: z.uuid(),
    status: z.enum(ENCLAVE_STATUSES),
    region: z.string(),
    image: z.object({
      pcr0: z.string(),
      pcr1: z.string(),
      pcr2: z.string(),
      pcr8: z.optional(z.string()),
      name: z.optional(z.string()),
      version: z.optional(z.string()),
    }),
    attestationVerdict: z.nullable(z.enum(['verified', 'refused', 'voided'])),
    version: z.int(),
    instanceId: z.nullable(z.string()),
    provisioningId: ProvisioningIdSchema,
    statusReason: z.nullable(z.string()),
    createdAt: z.string(),
    updatedAt: z.string(),
  }),
);

export const EnclavePageSchema = pageSchemaOf(() => EnclaveSummaryResponseSchema);

export const EnclaveAttestationResponseSchema = z.lazy(() =>
  z.object({
    enclaveId: z.uuid(),
    status: z.enum(ENCLAVE_STATUSES),
    instanceId: z.nullable(z.string()),
    attestation: EnclaveAttestationSchema,
  }),
);

export const EnclaveMetricsPageSchema = pageSchemaOf(() =>
  z.strictObject({ ...enclaveMetricsShape(), receivedAt: z.string() }),
);

/** 64 KiB, base64-encoded: the size bound of an attestation document submission (4 × ⌈65536 / 3⌉). */
export const MAX_ATTESTATION_DOCUMENT_BASE64_LENGTH = 87_384;

/** `POST /enclaves/{id}/attestation`: the parent agent's attestation document (COSE_Sign1, base64). */
export const AttestationSubmissionSchema = z.lazy(() =>
  z.strictObject({
    document: z.base64().check(z.minLength(1), z.maxLength(MAX_ATTESTATION_DOCUMENT_BASE64_LENGTH)),
  }),
);

/** `POST /enclaves/{id}/attestation/heartbeat`: where the parent is on its way to the document. */
export const AttestationHeartbeatSchema = z.lazy(() =>
  z.strictObject({
    phase: z.enum(AGENT_PHASES),
  }),
);

/** `POST /enclaves/{id}/attestation` accepted: the workflow now verifies the document. */
export const AttestationAcceptedSchema = z.lazy(() =>
  z.object({
    enclaveId: z.uuid(),
    instanceId: z.string(),
    status: z.literal('verifying'),
  }),
);

export const AttestationHeartbeatResponseSchema = z.lazy(() =>
  z.object({
    enclaveId: z.string(),
    instanceId: z.string(),
    phase: z.enum(AGENT_PHASES),
    status: z.literal('waiting'),
  }),
);

/** A passkey (its public key is public; its private key never leaves the authenticator). */
export const PasskeySchema = z.lazy(() =>
  z.object({
    id: z.uuid().register(z.globalRegistry, { description: 'The platform id: the `kid` of its signatures.' }),
    identityId: z.uuid(),
    credentialId: z.string().register(z.globalRegistry, {
      description: "The authenticator's credential id (base64url), what assertions name.",
    }),
    name: z.string(),
    alg: z.enum(['ES256', 'EdDSA', 'RS256']),
    jwk: z.record(z.string(), z.unknown()),
    cose: z.string().register(z.globalRegistry, { description: 'The COSE_Key as registered (base64url).' }),
    rpId: z.string(),
    aaguid: z.string(),
    signCount: z.int().register(z.globalRegistry, {
      description:
        'The last signature counter accepted; each assertion must carry a greater one (0: none kept).',
    }),
    backupEligible: z.boolean(),
    transports: z.array(z.string()),
    createdAt: z.string(),
    lastUsedAt: z.nullable(z.string()),
    notAfter: z.nullable(z.string()),
    revokedAt: z.nullable(z.string()),
  }),
);

export const PasskeyListSchema = z.lazy(() => z.object({ credentials: z.array(PasskeySchema) }));

const CredentialDescriptorSchema = z.lazy(() =>
  z.object({ type: z.literal('public-key'), id: z.string(), transports: z.array(z.string()) }),
);

/** `PublicKeyCredentialCreationOptionsJSON` (WebAuthn Level 3 §5.4) with when its challenge expires. */
export const RegistrationOptionsSchema = z.lazy(() =>
  z.object({
    expiresAt: z.string(),
    publicKey: z.object({
      challenge: z.string(),
      rp: z.object({ id: z.string(), name: z.string() }),
      user: z.object({ id: z.string(), name: z.string(), displayName: z.string() }),
      pubKeyCredParams: z.array(z.object({ type: z.literal('public-key'), alg: z.int() })),
      timeout: z.int(),
      attestation: z.literal('none'),
      authenticatorSelection: z.object({
        residentKey: z.literal('preferred'),
        userVerification: z.literal('required'),
      }),
      excludeCredentials: z.array(CredentialDescriptorSchema),
    }),
  }),
);

/** `PublicKeyCredentialRequestOptionsJSON` (WebAuthn Level 3 §5.5) with its nonce. */
export const AuthenticationOptionsSchema = z.lazy(() =>
  z.object({
    nonce: z.string().register(z.globalRegistry, {
      description: 'Sent back with the assertion; usable once.',
    }),
    expiresAt: z.string(),
    publicKey: z.object({
      challenge: z.string(),
      rpId: z.string(),
      timeout: z.int(),
      userVerification: z.literal('required'),
      allowCredentials: z.array(CredentialDescriptorSchema),
    }),
  }),
);
