import type { z } from 'zod';
import {
  CreateContractSchema,
  OptionalReasonSchema,
  ReasonSchema,
  SignContractSchema,
  UpdateContractSchema,
} from '../domain/contract.ts';
import { EnclaveMetricsSchema, LocalCreateEnclaveSchema, UpdateEnclaveSchema } from '../domain/enclave.ts';
import { CreateIdentitySchema, RegisterKeySchema } from '../domain/identity.ts';
import { ApproveMeasurementsSchema, ProposeMeasurementsSchema } from '../domain/measurement-set.ts';
import {
  AttestationHeartbeatResponseSchema,
  AttestationHeartbeatSchema,
  AttestationSubmissionSchema,
  AuditQuerySchema,
  AuditTrailSchema,
  ContractPageSchema,
  ContractResponseSchema,
  EnclaveAttestationResponseSchema,
  EnclaveMetricsPageSchema,
  EnclaveMetricsQuerySchema,
  EnclavePageSchema,
  EnclaveResponseSchema,
  HealthSchema,
  IdentityPageSchema,
  IdentityResponseSchema,
  IdPathSchema,
  KeyResponseSchema,
  ListContractsQuerySchema,
  ListEnclavesQuerySchema,
  ListIdentitiesQuerySchema,
  MeasurementPathSchema,
  MeasurementSetListSchema,
  MeasurementSetResponseSchema,
  PlatformKeysSchema,
} from './api-schemas.ts';

/**
 * What a route's function may touch. The CDK grants exactly these, and nothing else, to the route's
 * function (least privilege per function).
 */
export type Grant =
  | 'database'
  | 'sign'
  | 'publicKeys'
  /**
   * Complete the provisioning workflow's WaitForAttestation task: read/write the workflow table (task
   * tokens) and `states:SendTaskSuccess` on the provisioning state machine, nothing else.
   */
  | 'taskCallback'
  /**
   * Keep the provisioning workflow's WaitForAttestation alive: read the workflow table (task tokens) and
   * `states:SendTaskHeartbeat` on the provisioning state machine, nothing else.
   */
  | 'taskHeartbeat';

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'DELETE';

export interface RouteDefinition {
  /** Unique; the OpenAPI operationId and the CDK construct id stem. */
  readonly id: string;
  readonly method: HttpMethod;
  /** API Gateway path syntax, e.g. `/api/v1/contracts/{id}`. */
  readonly path: string;
  /** The Lambda entry, relative to the repository root; exports `handler`. */
  readonly handler: string;
  /**
   * `jwt`: a user's bearer token (Cognito JWT authorizer). `iam`: SigV4 by the enclave parent instance's
   * role (API Gateway's IAM authorizer); the caller is the instance (see `instanceCaller`). `none`: public.
   */
  readonly auth: 'jwt' | 'iam' | 'none';
  readonly grants: readonly Grant[];
  readonly summary: string;
  readonly tag: string;
  readonly request?: {
    readonly params?: z.ZodType;
    readonly query?: z.ZodType;
    readonly body?: z.ZodType;
    /** Headers the route reads (documented in OpenAPI). */
    readonly headers?: readonly ('If-Match' | 'Idempotency-Key')[];
  };
  readonly responses: Readonly<Record<number, { readonly description: string; readonly schema?: z.ZodType }>>;
}

export const API_PREFIX = '/api/v1';

const contract = { description: 'The contract', schema: ContractResponseSchema };
const enclave = { description: 'The enclave', schema: EnclaveResponseSchema };

/** The one route table: the CDK API, the local dev server and the OpenAPI document are built from it. */
export const ROUTES = [
  {
    id: 'getHealth',
    method: 'GET',
    path: `${API_PREFIX}/health`,
    handler: 'functions/api/health/get.ts',
    auth: 'none',
    grants: [],
    summary: 'Liveness check',
    tag: 'meta',
    responses: { 200: { description: 'Up', schema: HealthSchema } },
  },
  {
    id: 'getOpenApi',
    method: 'GET',
    path: `${API_PREFIX}/openapi.json`,
    handler: 'functions/api/openapi/get.ts',
    auth: 'none',
    grants: [],
    summary: 'This API as OpenAPI 3.1',
    tag: 'meta',
    responses: { 200: { description: 'The OpenAPI document' } },
  },
  {
    id: 'listPlatformKeys',
    method: 'GET',
    path: `${API_PREFIX}/platform/keys`,
    handler: 'functions/api/platform/keys.ts',
    auth: 'none',
    grants: ['publicKeys'],
    summary: "The platform's public signing keys (JWKS) to verify countersignatures",
    tag: 'platform',
    responses: { 200: { description: 'JWK set', schema: PlatformKeysSchema } },
  },
  {
    id: 'getMyIdentity',
    method: 'GET',
    path: `${API_PREFIX}/identities/me`,
    handler: 'functions/api/identities/me.ts',
    auth: 'jwt',
    grants: ['database'],
    summary: "The caller's identity",
    tag: 'identities',
    responses: { 200: { description: 'The identity', schema: IdentityResponseSchema } },
  },
  {
    id: 'createIdentity',
    method: 'POST',
    path: `${API_PREFIX}/identities`,
    handler: 'functions/api/identities/create.ts',
    auth: 'jwt',
    grants: ['database'],
    summary: 'Create an identity (admin)',
    tag: 'identities',
    request: { body: CreateIdentitySchema, headers: ['Idempotency-Key'] },
    responses: { 201: { description: 'Created', schema: IdentityResponseSchema } },
  },
  {
    id: 'listIdentities',
    method: 'GET',
    path: `${API_PREFIX}/identities`,
    handler: 'functions/api/identities/list.ts',
    auth: 'jwt',
    grants: ['database'],
    summary: 'List identities (admin, auditor)',
    tag: 'identities',
    request: { query: ListIdentitiesQuerySchema },
    responses: { 200: { description: 'A page of identities', schema: IdentityPageSchema } },
  },
  {
    id: 'registerKey',
    method: 'POST',
    path: `${API_PREFIX}/identities/{id}/keys`,
    handler: 'functions/api/identities/register-key.ts',
    auth: 'jwt',
    grants: ['database'],
    summary: 'Register a public signing key (the identity itself or an admin)',
    tag: 'identities',
    request: { params: IdPathSchema, body: RegisterKeySchema },
    responses: { 201: { description: 'Registered', schema: KeyResponseSchema } },
  },
  {
    id: 'listKeys',
    method: 'GET',
    path: `${API_PREFIX}/identities/{id}/keys`,
    handler: 'functions/api/identities/list-keys.ts',
    auth: 'jwt',
    grants: ['database'],
    summary: "An identity's public signing keys",
    tag: 'identities',
    request: { params: IdPathSchema },
    responses: { 200: { description: 'Keys' } },
  },
  {
    id: 'createContract',
    method: 'POST',
    path: `${API_PREFIX}/contracts`,
    handler: 'functions/api/contracts/create.ts',
    auth: 'jwt',
    grants: ['database'],
    summary: 'Create a draft contract (provider or admin)',
    tag: 'contracts',
    request: { body: CreateContractSchema, headers: ['Idempotency-Key'] },
    responses: { 201: { description: 'Created', schema: ContractResponseSchema } },
  },
  {
    id: 'listContracts',
    method: 'GET',
    path: `${API_PREFIX}/contracts`,
    handler: 'functions/api/contracts/list.ts',
    auth: 'jwt',
    grants: ['database'],
    summary: "The caller's contracts, newest first",
    tag: 'contracts',
    request: { query: ListContractsQuerySchema },
    responses: { 200: { description: 'A page of contracts', schema: ContractPageSchema } },
  },
  {
    id: 'getContract',
    method: 'GET',
    path: `${API_PREFIX}/contracts/{id}`,
    handler: 'functions/api/contracts/get.ts',
    auth: 'jwt',
    grants: ['database'],
    summary: 'A contract, with the payload a party signs',
    tag: 'contracts',
    request: { params: IdPathSchema },
    responses: { 200: contract },
  },
  {
    id: 'updateContract',
    method: 'PUT',
    path: `${API_PREFIX}/contracts/{id}`,
    handler: 'functions/api/contracts/update.ts',
    auth: 'jwt',
    grants: ['database'],
    summary: 'Edit title, description or terms (Draft or PendingSignature; discards signatures)',
    tag: 'contracts',
    request: { params: IdPathSchema, body: UpdateContractSchema, headers: ['If-Match'] },
    responses: { 200: contract },
  },
  {
    id: 'deleteContract',
    method: 'DELETE',
    path: `${API_PREFIX}/contracts/{id}`,
    handler: 'functions/api/contracts/delete.ts',
    auth: 'jwt',
    grants: ['database'],
    summary: 'Delete a never-signed draft',
    tag: 'contracts',
    request: { params: IdPathSchema, headers: ['If-Match'] },
    responses: { 204: { description: 'Deleted' } },
  },
  {
    id: 'signContract',
    method: 'POST',
    path: `${API_PREFIX}/contracts/{id}/sign`,
    handler: 'functions/api/contracts/sign.ts',
    auth: 'jwt',
    grants: ['database'],
    summary: "Add the caller's signature over the current digest and version",
    tag: 'contracts',
    request: { params: IdPathSchema, body: SignContractSchema, headers: ['If-Match'] },
    responses: { 200: contract },
  },
  {
    id: 'activateContract',
    method: 'POST',
    path: `${API_PREFIX}/contracts/{id}/activate`,
    handler: 'functions/api/contracts/activate.ts',
    auth: 'jwt',
    // The KMS signer reads its public key (the kid of the countersignature) once per container.
    grants: ['database', 'sign', 'publicKeys'],
    summary: 'Activate a contract signed by both parties; the platform countersigns',
    tag: 'contracts',
    request: { params: IdPathSchema, headers: ['If-Match'] },
    responses: { 200: contract },
  },
  {
    id: 'suspendContract',
    method: 'POST',
    path: `${API_PREFIX}/contracts/{id}/suspend`,
    handler: 'functions/api/contracts/suspend.ts',
    auth: 'jwt',
    grants: ['database'],
    summary: 'Suspend an active contract',
    tag: 'contracts',
    request: { params: IdPathSchema, body: ReasonSchema, headers: ['If-Match'] },
    responses: { 200: contract },
  },
  {
    id: 'resumeContract',
    method: 'POST',
    path: `${API_PREFIX}/contracts/{id}/resume`,
    handler: 'functions/api/contracts/resume.ts',
    auth: 'jwt',
    grants: ['database'],
    summary: 'Resume a suspended contract (admin or the party that suspended)',
    tag: 'contracts',
    request: { params: IdPathSchema, body: OptionalReasonSchema, headers: ['If-Match'] },
    responses: { 200: contract },
  },
  {
    id: 'terminateContract',
    method: 'POST',
    path: `${API_PREFIX}/contracts/{id}/terminate`,
    handler: 'functions/api/contracts/terminate.ts',
    auth: 'jwt',
    grants: ['database'],
    summary: 'Terminate a contract, with a reason',
    tag: 'contracts',
    request: { params: IdPathSchema, body: ReasonSchema, headers: ['If-Match'] },
    responses: { 200: contract },
  },
  {
    id: 'proposeMeasurementSet',
    method: 'POST',
    path: `${API_PREFIX}/contracts/{id}/measurements`,
    handler: 'functions/api/contracts/measurements-propose.ts',
    auth: 'jwt',
    grants: ['database'],
    summary:
      'Propose the image measurements (PCR0/1/2, optionally PCR8) an enclave may run under the contract',
    tag: 'contracts',
    request: { params: IdPathSchema, body: ProposeMeasurementsSchema },
    responses: { 201: { description: 'Proposed', schema: MeasurementSetResponseSchema } },
  },
  {
    id: 'listMeasurementSets',
    method: 'GET',
    path: `${API_PREFIX}/contracts/{id}/measurements`,
    handler: 'functions/api/contracts/measurements-list.ts',
    auth: 'jwt',
    grants: ['database'],
    summary: "The contract's proposed and approved measurement sets",
    tag: 'contracts',
    request: { params: IdPathSchema },
    responses: { 200: { description: 'Measurement sets', schema: MeasurementSetListSchema } },
  },
  {
    id: 'approveMeasurementSet',
    method: 'POST',
    path: `${API_PREFIX}/contracts/{id}/measurements/{mid}/approve`,
    handler: 'functions/api/contracts/measurements-approve.ts',
    auth: 'jwt',
    grants: ['database'],
    summary: "Approve a measurement set with the caller's signature; Approved once both parties have",
    tag: 'contracts',
    request: { params: MeasurementPathSchema, body: ApproveMeasurementsSchema },
    responses: { 200: { description: 'Approval recorded', schema: MeasurementSetResponseSchema } },
  },
  {
    id: 'createEnclave',
    method: 'POST',
    path: `${API_PREFIX}/enclaves`,
    handler: 'functions/api/enclaves/create.ts',
    auth: 'jwt',
    grants: ['database'],
    summary:
      'Ask for an enclave under an Active contract (a party or an admin); checked as provisioning would, then Initializing',
    tag: 'enclaves',
    request: { body: LocalCreateEnclaveSchema, headers: ['Idempotency-Key'] },
    responses: {
      201: { description: 'Created (Initializing; provisioning starts)', schema: EnclaveResponseSchema },
    },
  },
  {
    id: 'listEnclaves',
    method: 'GET',
    path: `${API_PREFIX}/enclaves`,
    handler: 'functions/api/enclaves/list.ts',
    auth: 'jwt',
    grants: ['database'],
    summary: "The enclaves of the caller's contracts (all for admins and auditors), newest first",
    tag: 'enclaves',
    request: { query: ListEnclavesQuerySchema },
    responses: { 200: { description: 'A page of enclaves', schema: EnclavePageSchema } },
  },
  {
    id: 'getEnclave',
    method: 'GET',
    path: `${API_PREFIX}/enclaves/{id}`,
    handler: 'functions/api/enclaves/get.ts',
    auth: 'jwt',
    grants: ['database'],
    summary: 'An enclave (contract parties, admins, auditors)',
    tag: 'enclaves',
    request: { params: IdPathSchema },
    responses: { 200: enclave },
  },
  {
    id: 'updateEnclave',
    method: 'PUT',
    path: `${API_PREFIX}/enclaves/{id}`,
    handler: 'functions/api/enclaves/update.ts',
    auth: 'jwt',
    grants: ['database'],
    summary: 'Replace the configuration (and name) of a Suspended enclave, checked as provisioning would',
    tag: 'enclaves',
    request: { params: IdPathSchema, body: UpdateEnclaveSchema, headers: ['If-Match'] },
    responses: { 200: enclave },
  },
  {
    id: 'deleteEnclave',
    method: 'DELETE',
    path: `${API_PREFIX}/enclaves/{id}`,
    handler: 'functions/api/enclaves/delete.ts',
    auth: 'jwt',
    grants: ['database'],
    summary: 'Terminate an enclave ("deleted by" the caller); the record and its audit trail stay',
    tag: 'enclaves',
    request: { params: IdPathSchema, headers: ['If-Match'] },
    responses: { 200: { description: 'The terminated enclave', schema: EnclaveResponseSchema } },
  },
  {
    id: 'suspendEnclave',
    method: 'POST',
    path: `${API_PREFIX}/enclaves/{id}/suspend`,
    handler: 'functions/api/enclaves/suspend.ts',
    auth: 'jwt',
    grants: ['database'],
    summary: 'Suspend a Running enclave; its attestation is voided',
    tag: 'enclaves',
    request: { params: IdPathSchema, body: ReasonSchema, headers: ['If-Match'] },
    responses: { 200: enclave },
  },
  {
    id: 'resumeEnclave',
    method: 'POST',
    path: `${API_PREFIX}/enclaves/{id}/resume`,
    handler: 'functions/api/enclaves/resume.ts',
    auth: 'jwt',
    grants: ['database'],
    summary: 'Resume a Suspended enclave: back to Initializing, it is provisioned and attested again',
    tag: 'enclaves',
    request: { params: IdPathSchema, body: OptionalReasonSchema, headers: ['If-Match'] },
    responses: { 200: enclave },
  },
  {
    id: 'terminateEnclave',
    method: 'POST',
    path: `${API_PREFIX}/enclaves/{id}/terminate`,
    handler: 'functions/api/enclaves/terminate.ts',
    auth: 'jwt',
    grants: ['database'],
    summary: 'Terminate an enclave, with a reason',
    tag: 'enclaves',
    request: { params: IdPathSchema, body: ReasonSchema, headers: ['If-Match'] },
    responses: { 200: enclave },
  },
  {
    id: 'getEnclaveAttestation',
    method: 'GET',
    path: `${API_PREFIX}/enclaves/{id}/attestation`,
    handler: 'functions/api/enclaves/attestation-get.ts',
    auth: 'jwt',
    grants: ['database'],
    summary:
      "The enclave's last attestation record (verified, refused or voided); 404 no-attestation before one",
    tag: 'enclaves',
    request: { params: IdPathSchema },
    responses: { 200: { description: 'The attestation record', schema: EnclaveAttestationResponseSchema } },
  },
  {
    id: 'submitAttestation',
    method: 'POST',
    path: `${API_PREFIX}/enclaves/{id}/attestation`,
    handler: 'functions/api/enclaves/attestation-submit.ts',
    auth: 'iam',
    grants: ['database', 'taskCallback'],
    summary:
      "The enclave's parent instance submits the attestation document the provisioning workflow waits for",
    tag: 'enclaves',
    request: { params: IdPathSchema, body: AttestationSubmissionSchema },
    responses: { 202: { description: 'Accepted; the workflow verifies it' } },
  },
  {
    id: 'sendAttestationHeartbeat',
    method: 'POST',
    path: `${API_PREFIX}/enclaves/{id}/attestation/heartbeat`,
    handler: 'functions/api/enclaves/attestation-heartbeat.ts',
    auth: 'iam',
    grants: ['database', 'taskHeartbeat'],
    summary:
      "The enclave's parent instance reports it is still on its way to the attestation document (keeps the workflow's wait alive)",
    tag: 'enclaves',
    request: { params: IdPathSchema, body: AttestationHeartbeatSchema },
    responses: {
      202: { description: 'Accepted; the wait goes on', schema: AttestationHeartbeatResponseSchema },
    },
  },
  {
    id: 'reportEnclaveMetrics',
    method: 'POST',
    path: `${API_PREFIX}/enclaves/{id}/metrics`,
    handler: 'functions/api/enclaves/metrics-post.ts',
    auth: 'iam',
    grants: ['database'],
    summary: "The enclave's own parent instance reports a runtime metrics sample (Running, metrics enabled)",
    tag: 'enclaves',
    request: { params: IdPathSchema, body: EnclaveMetricsSchema },
    responses: { 202: { description: 'Accepted' } },
  },
  {
    id: 'listEnclaveMetrics',
    method: 'GET',
    path: `${API_PREFIX}/enclaves/{id}/metrics`,
    handler: 'functions/api/enclaves/metrics-get.ts',
    auth: 'jwt',
    grants: ['database'],
    summary: "The enclave's recent metrics samples, newest first",
    tag: 'enclaves',
    request: { params: IdPathSchema, query: EnclaveMetricsQuerySchema },
    responses: { 200: { description: 'A page of samples', schema: EnclaveMetricsPageSchema } },
  },
  {
    id: 'getAuditTrail',
    method: 'GET',
    path: `${API_PREFIX}/audit`,
    handler: 'functions/api/audit/get.ts',
    auth: 'jwt',
    grants: ['database'],
    summary: "An entity's hash-chained audit trail, verified",
    tag: 'audit',
    request: { query: AuditQuerySchema },
    responses: { 200: { description: 'The trail and its verification', schema: AuditTrailSchema } },
  },
] as const satisfies readonly RouteDefinition[];

export type RouteId = (typeof ROUTES)[number]['id'];

/**
 * Whether the route's function needs the provisioning workflow's configuration (its table and the parent
 * role): the `iam` routes (parent instances call them) and those that complete or heartbeat a task.
 */
export function usesWorkflow(route: RouteDefinition): boolean {
  return (
    route.auth === 'iam' ||
    (route.grants as readonly Grant[]).some((g) => g === 'taskCallback' || g === 'taskHeartbeat')
  );
}

export function routeById(id: RouteId): RouteDefinition {
  const route = ROUTES.find((r) => r.id === id);
  if (!route) throw new Error(`unknown route ${id}`);
  return route;
}
