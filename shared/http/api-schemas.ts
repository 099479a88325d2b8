import { z } from 'zod';
import { CONTRACT_STATUSES, SignatureSchema } from '../domain/contract.ts';
import { ContractTermsSchema } from '../domain/contract-terms.ts';
import {
  AGENT_PHASES,
  ENCLAVE_STATUSES,
  EnclaveAttestationSchema,
  EnclaveConfigurationSchema,
  EnclaveMetricsSchema,
} from '../domain/enclave.ts';
import { IdSchema } from '../domain/identifiers.ts';
import { ROLES, SIGNATURE_ALGORITHMS } from '../domain/identity.ts';
import { AdditionalPcrsSchema, MEASUREMENT_SET_STATUSES } from '../domain/measurement-set.ts';
import { CreatedAtCursorSchema, cursorParam, NameCursorSchema, ReportedAtCursorSchema } from './cursor.ts';

/** Schemas of path parameters, query strings and replies: the request bodies live with the domain. */
export const IdPathSchema = z.strictObject({ id: IdSchema });
export const MeasurementPathSchema = z.strictObject({ id: IdSchema, mid: IdSchema });

/**
 * A count in a query string: digits only (no sign, exponent, hex prefix or space: `limit=0x10`, `1e2` and
 * `" 5"` are refused, where a numeric coercion would take them), then bounded.
 */
function countParam(min: number, max: number, fallback: number) {
  return z
    .string()
    .regex(/^[0-9]{1,9}$/, 'digits only')
    .transform(Number)
    .pipe(z.int().min(min).max(max))
    .default(fallback);
}

export const ListContractsQuerySchema = z.strictObject({
  status: z.enum(CONTRACT_STATUSES).optional(),
  role: z.enum(['provider', 'consumer']).optional(),
  counterpartyId: IdSchema.optional(),
  limit: countParam(1, 100, 20),
  cursor: cursorParam(CreatedAtCursorSchema).optional(),
});

/**
 * The most audit records one page holds: the largest record a party can make (a 1,000-character reason of
 * quotes, four bytes each as the Data API carries it) takes about 4.5 KB, so a full page stays under the Data
 * API's 1 MiB response limit (`test/e2e/response-size.test.ts` reads one through the emulator).
 */
export const MAX_AUDIT_PAGE = 200;

export const AuditQuerySchema = z.strictObject({
  entityId: IdSchema,
  limit: countParam(1, MAX_AUDIT_PAGE, 100),
  afterSeq: countParam(0, 2_147_483_647, 0),
});

export const ListIdentitiesQuerySchema = z.strictObject({
  role: z.enum(ROLES).optional(),
  limit: countParam(1, 100, 50),
  cursor: cursorParam(NameCursorSchema).optional(),
});

export const ContractResponseSchema = z.object({
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
  statusReason: z.string().nullable(),
  suspendedBy: z.uuid().nullable(),
  availableActions: z.array(z.string()),
  createdAt: z.string(),
  updatedAt: z.string(),
});

/** A list's item: the contract without its description and terms (`GET /contracts/{id}` has them). */
export const ContractSummaryResponseSchema = ContractResponseSchema.pick({
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
}).extend({
  validity: z.object({ start: z.string(), end: z.string() }),
  signedBy: z
    .array(z.enum(['provider', 'consumer', 'platform']))
    .describe('Who signed the current content (contentDigest at contentVersion)'),
});

export const ContractPageSchema = z.object({
  items: z.array(ContractSummaryResponseSchema),
  nextCursor: z.string().nullable(),
});

export const IdentityResponseSchema = z.object({
  id: z.uuid(),
  subject: z.string(),
  name: z.string(),
  displayName: z.string(),
  email: z.string().nullable(),
  roles: z.array(z.enum(ROLES)),
  version: z.int(),
  createdAt: z.string(),
  updatedAt: z.string(),
});

export const IdentityPageSchema = z.object({
  items: z.array(IdentityResponseSchema),
  nextCursor: z.string().nullable(),
});

export const KeyResponseSchema = z.object({
  kid: z.string(),
  identityId: z.uuid(),
  alg: z.enum(SIGNATURE_ALGORITHMS),
  jwk: z.record(z.string(), z.unknown()),
  createdAt: z.string(),
  revokedAt: z.string().nullable(),
});

export const PlatformKeysSchema = z.object({
  keys: z.array(z.record(z.string(), z.unknown())),
});

export const AuditRecordSchema = z.object({
  entityType: z.string(),
  entityId: z.uuid(),
  seq: z.int(),
  action: z.string(),
  actorId: z.uuid().nullable(),
  occurredAt: z.string(),
  data: z.unknown(),
  prevHash: z.string(),
  hash: z.string(),
});

export const AuditTrailSchema = z.object({
  entityId: z.uuid(),
  records: z.array(AuditRecordSchema),
  verification: z.object({
    valid: z.boolean(),
    checked: z.int(),
    head: z.string().nullable(),
    brokenAtSeq: z.int().nullable(),
    reason: z.string().nullable(),
    anchored: z.boolean().nullable(),
    anchorReason: z.string().nullable(),
  }),
  checkpoint: z
    .object({
      signedPayload: z.string(),
      kid: z.string(),
      alg: z.literal('ES256'),
      signature: z.string(),
      leaf: z.object({ entityId: z.uuid(), seq: z.int(), hash: z.string() }),
      leafIndex: z.int(),
      proof: z.array(z.string()),
    })
    .nullable(),
});

export const ProblemSchema = z.object({
  type: z.string(),
  title: z.string(),
  status: z.int(),
  detail: z.string(),
  instance: z.string().optional(),
  errors: z
    .array(
      z.object({
        field: z.string().describe('Where: `body.terms.validity.end`, `query.cursor`, `header.If-Match`, …'),
        message: z.string(),
        requirement: z
          .string()
          .optional()
          .describe('422 `enclave-incompatible`: the stable code of the unmet requirement'),
      }),
    )
    .optional()
    .describe('One entry per offending field or unmet requirement (at most 50)'),
});

/** What API Gateway itself answers when its authorizer refuses a request, before any function runs. */
export const GatewayMessageSchema = z.object({ message: z.string() });

/** The body of `GET /identities/{id}/keys`. */
export const KeyListSchema = z.object({ keys: z.array(KeyResponseSchema) });

export const HealthSchema = z.object({ status: z.literal('ok') });

export const MeasurementSetResponseSchema = z.object({
  id: z.uuid(),
  contractId: z.uuid(),
  pcr0: z.string(),
  pcr1: z.string(),
  pcr2: z.string(),
  pcr8: z.string().nullable(),
  /** Further pinned PCRs, decimal index → hex; `{}` when the set pins none. */
  additionalPcrs: AdditionalPcrsSchema,
  status: z.enum(MEASUREMENT_SET_STATUSES),
  approvals: z.array(
    z.object({
      role: z.enum(['provider', 'consumer']),
      identityId: z.uuid(),
      kid: z.string(),
      alg: z.enum(SIGNATURE_ALGORITHMS),
      signature: z.string(),
      approvedAt: z.string(),
    }),
  ),
  proposedBy: z.uuid(),
  version: z.int(),
  signingPayload: z.string(),
  createdAt: z.string(),
  updatedAt: z.string(),
});

export const MeasurementSetListSchema = z.object({ items: z.array(MeasurementSetResponseSchema) });

export const ListEnclavesQuerySchema = z.strictObject({
  contractId: IdSchema.optional(),
  status: z.enum(ENCLAVE_STATUSES).optional(),
  limit: countParam(1, 100, 20),
  cursor: cursorParam(CreatedAtCursorSchema).optional(),
});

export const EnclaveMetricsQuerySchema = z.strictObject({
  limit: countParam(1, 100, 20),
  cursor: cursorParam(ReportedAtCursorSchema).optional(),
});

const ProvisioningIdSchema = z
  .string()
  .nullable()
  .describe(
    "The provisioning workflow execution's name (find it in the Step Functions console), or null before the first",
  );

export const EnclaveResponseSchema = z.object({
  id: z.uuid(),
  name: z.string(),
  providerId: z.uuid(),
  contractId: z.uuid(),
  status: z.enum(ENCLAVE_STATUSES),
  attestation: EnclaveAttestationSchema.nullable(),
  configuration: EnclaveConfigurationSchema,
  metrics: EnclaveMetricsSchema.nullable().describe(
    'The latest metrics sample, updated in place (no version change); the history is GET /enclaves/{id}/metrics',
  ),
  region: z.string(),
  version: z.int(),
  instanceId: z.string().nullable(),
  provisioningId: ProvisioningIdSchema,
  statusReason: z.string().nullable(),
  createdAt: z.string(),
  updatedAt: z.string(),
});

/** A list's item: the enclave without its configuration (but its image) and metrics. */
export const EnclaveSummaryResponseSchema = z.object({
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
    pcr8: z.string().optional(),
    name: z.string().optional(),
    version: z.string().optional(),
  }),
  attestationVerdict: z.enum(['verified', 'refused', 'voided']).nullable(),
  version: z.int(),
  instanceId: z.string().nullable(),
  provisioningId: ProvisioningIdSchema,
  statusReason: z.string().nullable(),
  createdAt: z.string(),
  updatedAt: z.string(),
});

export const EnclavePageSchema = z.object({
  items: z.array(EnclaveSummaryResponseSchema),
  nextCursor: z.string().nullable(),
});

export const EnclaveAttestationResponseSchema = z.object({
  enclaveId: z.uuid(),
  status: z.enum(ENCLAVE_STATUSES),
  instanceId: z.string().nullable(),
  attestation: EnclaveAttestationSchema,
});

export const EnclaveMetricsPageSchema = z.object({
  items: z.array(EnclaveMetricsSchema.extend({ receivedAt: z.string() })),
  nextCursor: z.string().nullable(),
});

/** 64 KiB, base64-encoded: the size bound of an attestation document submission (4 × ⌈65536 / 3⌉). */
export const MAX_ATTESTATION_DOCUMENT_BASE64_LENGTH = 87_384;

/** `POST /enclaves/{id}/attestation`: the parent agent's attestation document (COSE_Sign1, base64). */
export const AttestationSubmissionSchema = z.strictObject({
  document: z.base64().min(1).max(MAX_ATTESTATION_DOCUMENT_BASE64_LENGTH),
});

/** `POST /enclaves/{id}/attestation/heartbeat`: where the parent is on its way to the document. */
export const AttestationHeartbeatSchema = z.strictObject({
  phase: z.enum(AGENT_PHASES),
});

/** `POST /enclaves/{id}/attestation` accepted: the workflow now verifies the document. */
export const AttestationAcceptedSchema = z.object({
  enclaveId: z.uuid(),
  instanceId: z.string(),
  status: z.literal('verifying'),
});

export const AttestationHeartbeatResponseSchema = z.object({
  enclaveId: z.string(),
  instanceId: z.string(),
  phase: z.enum(AGENT_PHASES),
  status: z.literal('waiting'),
});
