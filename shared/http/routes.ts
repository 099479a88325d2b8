import {
  CreateContractSchema,
  OptionalReasonSchema,
  ReasonSchema,
  SignContractSchema,
  UpdateContractSchema,
} from '../domain/contract.ts';
import { EnclaveMetricsSchema, LocalCreateEnclaveSchema, UpdateEnclaveSchema } from '../domain/enclave.ts';
import {
  ConfirmTotpSchema,
  CreateIdentitySchema,
  RegisterKeySchema,
  RotateKeySchema,
  SetIdentityStatusSchema,
} from '../domain/identity.ts';
import { ApproveMeasurementsSchema, ProposeMeasurementsSchema } from '../domain/measurement-set.ts';
import { AuthenticationOptionsRequestSchema, RegisterPasskeySchema } from '../domain/webauthn.ts';
import type * as z from '../domain/zod.ts';
import {
  AttestationAcceptedSchema,
  AttestationHeartbeatResponseSchema,
  AttestationHeartbeatSchema,
  AttestationSubmissionSchema,
  AuditQuerySchema,
  AuditTrailSchema,
  AuthenticationOptionsSchema,
  ContractKeySchema,
  ContractPageSchema,
  ContractResponseSchema,
  CredentialPathSchema,
  EnclaveAttestationResponseSchema,
  EnclaveMetricsPageSchema,
  EnclaveMetricsQuerySchema,
  EnclavePageSchema,
  EnclaveResponseSchema,
  EvidenceBundleSchema,
  HealthSchema,
  IdentityPageSchema,
  IdentityResponseSchema,
  IdPathSchema,
  KeyListSchema,
  KeyPathSchema,
  KeyResponseSchema,
  KeyRotationSchema,
  ListContractsQuerySchema,
  ListEnclavesQuerySchema,
  ListIdentitiesQuerySchema,
  MeasurementPathSchema,
  MeasurementSetListSchema,
  MeasurementSetResponseSchema,
  PasskeyListSchema,
  PasskeySchema,
  PlatformKeyRotationSchema,
  PlatformKeysSchema,
  RegistrationOptionsSchema,
  SignatureVerificationSchema,
  TotpCredentialListSchema,
  TotpCredentialSchema,
  TotpEnrolmentSchema,
  WrappedDataKeySchema,
} from './api-schemas.ts';

/**
 * What a route's function may touch. The CDK grants exactly these, and nothing else, to the route's
 * function (least privilege per function).
 */
export type Grant =
  | 'database'
  /** Countersign with the platform key: `kms:Sign` and `kms:GetPublicKey` on the deployment's platform keys. */
  | 'sign'
  /**
   * Rotate the platform key: create a tagged signing key, read its public key and move the signing alias
   * to it, nothing else.
   */
  | 'rotatePlatformKey'
  /**
   * Complete the provisioning workflow's WaitForAttestation task: read/write the workflow table (task
   * tokens) and `states:SendTaskSuccess` on the provisioning state machine, nothing else.
   */
  | 'taskCallback'
  /**
   * Keep the provisioning workflow's WaitForAttestation alive: read the workflow table (task tokens) and
   * `states:SendTaskHeartbeat` on the provisioning state machine, nothing else.
   */
  | 'taskHeartbeat'
  /** Seal a secret under the credential key: `kms:GenerateDataKey` on that key, nothing else. */
  | 'sealSecrets'
  /** Open a sealed secret: `kms:Decrypt` on the credential key, nothing else. */
  | 'openSecrets'
  /**
   * Wrap data keys under the contract keys: `kms:GenerateDataKeyWithoutPlaintext` on the keys tagged by
   * this deployment (each key's policy also names the function's role, for its contract's context only).
   */
  | 'wrapDataKeys';

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'DELETE';

/** The OpenAPI tags, in the order the document lists them. */
export const ROUTE_TAGS = {
  contracts: 'Contracts between a provider and a consumer: terms, signatures, lifecycle.',
  measurements: 'The enclave image measurements both parties approve for a contract.',
  enclaves: 'Nitro Enclaves provisioned and attested under an Active contract.',
  identities: 'Providers, consumers, admins and auditors, and their signing keys.',
  audit: 'The hash-chained, checkpointed audit trail.',
  platform: "Liveness, this document and the platform's countersigning keys.",
  'parent instance': "Called only by an enclave's parent EC2 instance, signed with its role (SigV4).",
} as const;
export type RouteTag = keyof typeof ROUTE_TAGS;

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
  /** One line: the OpenAPI summary. */
  readonly summary: string;
  /** Who may call it, what it does and what it refuses: the OpenAPI description. */
  readonly description: string;
  readonly tag: RouteTag;
  /**
   * The business-rule statuses the route answers beyond those its shape implies (see `errorStatusesOf`):
   * 409 (a conflicting state or a duplicate), 404 (an entity named outside the path), 410 (too late) and 422 (a rule the request breaks).
   */
  readonly errors?: readonly (404 | 409 | 410 | 422)[];
  readonly request?: {
    readonly params?: z.ZodMiniType;
    readonly query?: z.ZodMiniType;
    readonly body?: z.ZodMiniType;
    /** Headers the route reads (documented in OpenAPI). */
    readonly headers?: readonly ('If-Match' | 'Idempotency-Key')[];
  };
  readonly responses: Readonly<
    Record<number, { readonly description: string; readonly schema?: z.ZodMiniType }>
  >;
  /**
   * Where a 201's resource is read (the Location header): a path whose `{name}`s are read from the response
   * body. A key and a measurement set are read in the list that holds them.
   */
  readonly location?: string;
}

/**
 * Every route's path starts with it. The paths spell it out: esbuild cannot prove a template literal free
 * of side effects, and would keep every route's definition in every bundle.
 */
export const API_PREFIX = '/api/v1';

const contract = { description: 'The contract', schema: ContractResponseSchema };
const enclave = { description: 'The enclave', schema: EnclaveResponseSchema };

export const getHealth = {
  id: 'getHealth',
  method: 'GET',
  path: '/api/v1/health',
  handler: 'functions/api/health/get.ts',
  auth: 'none',
  grants: [],
  summary: 'Liveness check',
  tag: 'platform',
  description:
    'Answers 200 while the API serves requests. Touches no dependency, so it says nothing about the database.',
  responses: { 200: { description: 'Up', schema: HealthSchema } },
} as const satisfies RouteDefinition;

export const getOpenApi = {
  id: 'getOpenApi',
  method: 'GET',
  path: '/api/v1/openapi.json',
  handler: 'functions/api/openapi/get.ts',
  auth: 'none',
  grants: [],
  summary: 'This API as OpenAPI 3.1',
  tag: 'platform',
  description:
    'This document: OpenAPI 3.1, generated from the route table and the same schemas that validate every request.',
  responses: { 200: { description: 'The OpenAPI document' } },
} as const satisfies RouteDefinition;

export const listPlatformKeys = {
  id: 'listPlatformKeys',
  method: 'GET',
  path: '/api/v1/platform/keys',
  handler: 'functions/api/platform/keys.ts',
  auth: 'none',
  grants: ['database'],
  summary: "The platform's public signing keys (JWKS) with their validity windows",
  tag: 'platform',
  description:
    "The JWK set of every countersigning key the platform ever used (KMS, ES256), the current one first, each with its validity window: `validFrom`, and `validUntil` once a rotation retired it. A contract's `platformSignature.kid` (a checkpoint's `kid`) names the key; the signature verifies over the `signingPayload` with it and was made within its window. Retired keys stay, so every old countersignature stays verifiable.",
  responses: { 200: { description: 'JWK set', schema: PlatformKeysSchema } },
} as const satisfies RouteDefinition;

export const rotatePlatformKey = {
  id: 'rotatePlatformKey',
  method: 'POST',
  path: '/api/v1/platform/keys/rotations',
  handler: 'functions/api/platform/rotate-key.ts',
  // The new key is published in the key set (it has no address of its own).
  location: '/api/v1/platform/keys',
  auth: 'jwt',
  grants: ['database', 'rotatePlatformKey'],
  summary: "Rotate the platform's countersigning key",
  tag: 'platform',
  description:
    "An admin rotates the platform key: a new KMS signing key is created and published (valid from now) before the signing alias moves to it; the key it replaces stays valid five minutes more (KMS applies an alias change eventually), then only verifies. Audited on the platform keys' chain; one rotation at a time (409 `rotation-in-progress`).",
  errors: [409],
  responses: { 201: { description: 'Rotated', schema: PlatformKeyRotationSchema } },
} as const satisfies RouteDefinition;

export const getMyIdentity = {
  id: 'getMyIdentity',
  method: 'GET',
  path: '/api/v1/identities/me',
  handler: 'functions/api/identities/me.ts',
  auth: 'jwt',
  grants: ['database'],
  summary: "The caller's identity",
  tag: 'identities',
  description:
    "The identity registered for the bearer token's subject, with its roles. A valid token whose subject has no identity is a 403.",
  responses: { 200: { description: 'The identity', schema: IdentityResponseSchema } },
} as const satisfies RouteDefinition;

export const createIdentity = {
  id: 'createIdentity',
  method: 'POST',
  path: '/api/v1/identities',
  handler: 'functions/api/identities/create.ts',
  auth: 'jwt',
  grants: ['database'],
  summary: 'Create an identity (admin)',
  tag: 'identities',
  description:
    'Admins only. Registers an identity (a unique `name`, roles, optionally the token subject it signs in with). With an Idempotency-Key, a retry replays the first response.',
  errors: [409],
  request: { body: CreateIdentitySchema, headers: ['Idempotency-Key'] },
  location: '/api/v1/identities/{id}',
  responses: { 201: { description: 'Created', schema: IdentityResponseSchema } },
} as const satisfies RouteDefinition;

export const getIdentity = {
  id: 'getIdentity',
  method: 'GET',
  path: '/api/v1/identities/{id}',
  handler: 'functions/api/identities/get.ts',
  auth: 'jwt',
  grants: ['database'],
  summary: 'An identity (itself, admins, auditors)',
  tag: 'identities',
  description:
    'An identity with its roles, read by itself, an admin or an auditor; anyone else gets a 404, as for an identity that does not exist. Its ETag is its version.',
  request: { params: IdPathSchema },
  responses: { 200: { description: 'The identity', schema: IdentityResponseSchema } },
} as const satisfies RouteDefinition;

export const listIdentities = {
  id: 'listIdentities',
  method: 'GET',
  path: '/api/v1/identities',
  handler: 'functions/api/identities/list.ts',
  auth: 'jwt',
  grants: ['database'],
  summary: 'List identities (admin, auditor)',
  tag: 'identities',
  description:
    'Admins and auditors only. Identities by name, optionally filtered by role, a page at a time (`cursor` from `nextCursor`).',
  request: { query: ListIdentitiesQuerySchema },
  responses: { 200: { description: 'A page of identities', schema: IdentityPageSchema } },
} as const satisfies RouteDefinition;

export const registerKey = {
  id: 'registerKey',
  method: 'POST',
  path: '/api/v1/identities/{id}/keys',
  handler: 'functions/api/identities/register-key.ts',
  auth: 'jwt',
  grants: ['database'],
  summary: 'Register a public signing key (the identity itself or an admin)',
  tag: 'identities',
  description:
    'The identity itself or an admin registers a public signing key (ES256, ES384, EdDSA or PS256 JWK) with a proof of possession: the key\'s signature over the RFC 8785 JSON of `{identityId, keyThumbprint, purpose: "key-registration"}`. Weak keys are 400s; a wrong proof is a 422; a key or kid already registered is a 409; an identity holds at most 100 keys.',
  errors: [409, 422],
  request: { params: IdPathSchema, body: RegisterKeySchema },
  location: '/api/v1/identities/{identityId}/keys',
  responses: { 201: { description: 'Registered', schema: KeyResponseSchema } },
} as const satisfies RouteDefinition;

export const rotateKey = {
  id: 'rotateKey',
  method: 'POST',
  path: '/api/v1/identities/{id}/keys/{kid}/rotate',
  handler: 'functions/api/identities/rotate-key.ts',
  auth: 'jwt',
  grants: ['database'],
  summary: 'Rotate a signing key: register its successor, retire it after a grace period',
  tag: 'identities',
  description:
    'The identity itself or an admin registers the successor (as `POST /identities/{id}/keys`, with its proof of possession) and retires key `kid` after `graceSeconds` (default 86400, at most 30 days), in one audited change. Signatures the old key made before it retired stay verifiable; none is accepted after. A key revoked or rotated already is a 409 `key-not-active`.',
  errors: [409, 422],
  request: { params: KeyPathSchema, body: RotateKeySchema },
  location: '/api/v1/identities/{identityId}/keys',
  responses: { 201: { description: 'Rotated', schema: KeyRotationSchema } },
} as const satisfies RouteDefinition;

export const revokeKey = {
  id: 'revokeKey',
  method: 'DELETE',
  path: '/api/v1/identities/{id}/keys/{kid}',
  handler: 'functions/api/identities/revoke-key.ts',
  auth: 'jwt',
  grants: ['database'],
  summary: 'Revoke a signing key at once',
  tag: 'identities',
  description:
    'The identity itself or an admin revokes key `kid` now, audited. Signatures it made before stay verifiable (`GET /contracts/{id}/signatures/verification`); none is accepted after. Revoked is final: a second revocation is a 409 `key-not-active`.',
  errors: [409],
  request: { params: KeyPathSchema },
  responses: { 200: { description: 'Revoked', schema: KeyResponseSchema } },
} as const satisfies RouteDefinition;

export const setIdentityStatus = {
  id: 'setIdentityStatus',
  method: 'PUT',
  path: '/api/v1/identities/{id}/status',
  handler: 'functions/api/identities/set-status.ts',
  auth: 'jwt',
  grants: ['database'],
  summary: 'Suspend, reactivate or revoke an identity (admins)',
  tag: 'identities',
  description:
    "An admin sets another identity's `status` (`active`, `suspended`, `revoked`) with a `reason`, audited. A suspended or revoked identity acts on nothing: every request it makes is a 403 `identity-suspended` or `identity-revoked`, and a signature or approval checks the status in the database itself (other containers may serve its other requests from their 15-second caller cache). Revoked is final (409 `identity-revoked`); an admin cannot change its own status (409 `own-status`); the status it has already is a 409 `status-unchanged`.",
  errors: [409],
  request: { params: IdPathSchema, body: SetIdentityStatusSchema },
  responses: { 200: { description: 'The identity with its new status', schema: IdentityResponseSchema } },
} as const satisfies RouteDefinition;

export const enrolTotp = {
  id: 'enrolTotp',
  method: 'POST',
  path: '/api/v1/identities/{id}/totp',
  handler: 'functions/api/identities/enrol-totp.ts',
  auth: 'jwt',
  grants: ['database', 'sealSecrets'],
  summary: 'Enrol a TOTP authenticator as a second factor (pending until confirmed)',
  tag: 'identities',
  description:
    "The identity itself (no one else: the seed is its authenticator's alone) gets a new TOTP credential (RFC 6238: SHA-1, 6 digits, 30 s) as an `otpauth://` URI and a QR code, shown once. The seed is stored sealed under the credential key (envelope encryption). It is a second factor only once its first code confirms it. At most 3 pending enrolments (409 `too-many-pending`).",
  errors: [409],
  request: { params: IdPathSchema },
  location: '/api/v1/identities/{identityId}/totp',
  responses: { 201: { description: 'Enrolled, pending', schema: TotpEnrolmentSchema } },
} as const satisfies RouteDefinition;

export const confirmTotp = {
  id: 'confirmTotp',
  method: 'POST',
  path: '/api/v1/identities/{id}/totp/{credentialId}/confirmation',
  handler: 'functions/api/identities/confirm-totp.ts',
  auth: 'jwt',
  grants: ['database', 'openSecrets'],
  summary: 'Confirm a pending TOTP credential with its first code',
  tag: 'identities',
  description:
    "The identity itself sends its authenticator's current code: the credential becomes its second factor (the one it had, if any, is revoked in the same audited change), and that code is used. A wrong code is a 422 `invalid-otp`; a credential confirmed or revoked already is a 409 `credential-not-pending`.",
  errors: [409, 422],
  request: { params: CredentialPathSchema, body: ConfirmTotpSchema },
  responses: { 200: { description: 'Confirmed', schema: TotpCredentialSchema } },
} as const satisfies RouteDefinition;

export const revokeTotp = {
  id: 'revokeTotp',
  method: 'DELETE',
  path: '/api/v1/identities/{id}/totp/{credentialId}',
  handler: 'functions/api/identities/revoke-totp.ts',
  auth: 'jwt',
  grants: ['database'],
  summary: 'Revoke a TOTP credential at once',
  tag: 'identities',
  description:
    'The identity itself or an admin revokes the credential now, audited; no code of it is accepted after. Revoked is final (409 `credential-not-active`).',
  errors: [409],
  request: { params: CredentialPathSchema },
  responses: { 200: { description: 'Revoked', schema: TotpCredentialSchema } },
} as const satisfies RouteDefinition;

export const listTotpCredentials = {
  id: 'listTotpCredentials',
  method: 'GET',
  path: '/api/v1/identities/{id}/totp',
  handler: 'functions/api/identities/list-totp.ts',
  auth: 'jwt',
  grants: ['database'],
  summary: "An identity's TOTP credentials (never their seeds)",
  tag: 'identities',
  description: 'The identity itself, admins and auditors: every TOTP credential with its lifecycle.',
  request: { params: IdPathSchema },
  responses: { 200: { description: 'The credentials', schema: TotpCredentialListSchema } },
} as const satisfies RouteDefinition;

export const webauthnRegistrationOptions = {
  id: 'webauthnRegistrationOptions',
  method: 'POST',
  path: '/api/v1/identities/{id}/webauthn/registration-options',
  handler: 'functions/api/identities/webauthn-registration-options.ts',
  auth: 'jwt',
  grants: ['database'],
  summary: 'Options to register a passkey (WebAuthn), with a fresh challenge',
  tag: 'identities',
  description:
    "The identity itself gets `PublicKeyCredentialCreationOptionsJSON` for `navigator.credentials.create()` (or `@simplewebauthn/browser`'s `startRegistration`): a 256-bit challenge live for 5 minutes and usable once, user verification required (a fingerprint, face or device PIN: what makes its signatures biometric), attestation none, EdDSA, ES256 or RS256, its passkeys excluded. At most 10 unanswered challenges at once (409 `too-many-challenges`).",
  errors: [409],
  request: { params: IdPathSchema },
  responses: { 200: { description: 'The creation options', schema: RegistrationOptionsSchema } },
} as const satisfies RouteDefinition;

export const registerPasskey = {
  id: 'registerPasskey',
  method: 'POST',
  path: '/api/v1/identities/{id}/webauthn/registrations',
  handler: 'functions/api/identities/register-passkey.ts',
  auth: 'jwt',
  grants: ['database'],
  summary: 'Register a passkey with the answer to a registration challenge',
  tag: 'identities',
  description:
    'The identity itself sends `PublicKeyCredential.toJSON()` of the registration. It must answer a live registration challenge of its own (consumed with the registration: 422 `challenge-unknown`, `challenge-expired`, `challenge-replayed`), at an allowed origin (`origin-not-allowed`) of this relying party (`rp-id-mismatch`), with the user present and verified (`user-not-present`, `user-not-verified`), a key of an accepted algorithm (`unsupported-algorithm`, `malformed-cose-key`) and attestation none or packed self-attestation (`unsupported-attestation`, `invalid-attestation`). Refusals are audited. A credential registered before is a 409 `credential-registered`; at most 50 passkeys (409 `too-many-passkeys`).',
  errors: [409, 422],
  request: { params: IdPathSchema, body: RegisterPasskeySchema },
  location: '/api/v1/identities/{identityId}/webauthn/credentials',
  responses: { 201: { description: 'Registered', schema: PasskeySchema } },
} as const satisfies RouteDefinition;

export const listPasskeys = {
  id: 'listPasskeys',
  method: 'GET',
  path: '/api/v1/identities/{id}/webauthn/credentials',
  handler: 'functions/api/identities/list-passkeys.ts',
  auth: 'jwt',
  grants: ['database'],
  summary: "An identity's passkeys",
  tag: 'identities',
  description:
    'The identity itself, admins and auditors: every passkey with its public key, counter and lifecycle.',
  request: { params: IdPathSchema },
  responses: { 200: { description: 'The passkeys', schema: PasskeyListSchema } },
} as const satisfies RouteDefinition;

export const revokePasskey = {
  id: 'revokePasskey',
  method: 'DELETE',
  path: '/api/v1/identities/{id}/webauthn/credentials/{credentialId}',
  handler: 'functions/api/identities/revoke-passkey.ts',
  auth: 'jwt',
  grants: ['database'],
  summary: 'Revoke a passkey at once',
  tag: 'identities',
  description:
    'The identity itself or an admin revokes the passkey (its platform id) now, audited; biometric signatures made with it before stay verifiable, none is accepted after. Revoked is final (409 `credential-not-active`).',
  errors: [409],
  request: { params: CredentialPathSchema },
  responses: { 200: { description: 'Revoked', schema: PasskeySchema } },
} as const satisfies RouteDefinition;

export const webauthnAuthenticationOptions = {
  id: 'webauthnAuthenticationOptions',
  method: 'POST',
  path: '/api/v1/identities/{id}/webauthn/authentication-options',
  handler: 'functions/api/identities/webauthn-authentication-options.ts',
  auth: 'jwt',
  grants: ['database'],
  summary: 'Options to sign a payload with a passkey (a biometric signature)',
  tag: 'identities',
  description:
    'The identity itself sends the `signingPayload` it is about to sign (a contract\'s or a measurement set\'s) and gets a `nonce` (live for 5 minutes, usable once) and `PublicKeyCredentialRequestOptionsJSON` whose challenge is SHA-256 of the canonical JSON `{nonce, signingPayload}`, user verification required. The assertion then goes to `POST /contracts/{id}/sign` (or the approval) as `{type: "biometric", nonce, assertion}`: it signs that payload only. 422 `passkey-not-registered` without an active passkey; 409 `too-many-challenges`.',
  errors: [409, 422],
  request: { params: IdPathSchema, body: AuthenticationOptionsRequestSchema },
  responses: { 200: { description: 'The request options', schema: AuthenticationOptionsSchema } },
} as const satisfies RouteDefinition;

export const listKeys = {
  id: 'listKeys',
  method: 'GET',
  path: '/api/v1/identities/{id}/keys',
  handler: 'functions/api/identities/list-keys.ts',
  auth: 'jwt',
  grants: ['database'],
  summary: "An identity's public signing keys",
  tag: 'identities',
  description:
    "An identity's registered public keys, for verifying its signatures (any authenticated caller).",
  request: { params: IdPathSchema },
  responses: { 200: { description: 'Keys', schema: KeyListSchema } },
} as const satisfies RouteDefinition;

export const createContract = {
  id: 'createContract',
  method: 'POST',
  path: '/api/v1/contracts',
  handler: 'functions/api/contracts/create.ts',
  auth: 'jwt',
  grants: ['database'],
  summary: 'Create a draft contract (provider or admin)',
  tag: 'contracts',
  description:
    'A provider (or an admin on its behalf) creates a Draft between a provider and a consumer: title, description and terms (datasets, permitted uses, retention, security, compliance, pricing, validity window). Content is at most 40 KiB. With an Idempotency-Key, a retry replays the first response.',
  errors: [422],
  request: { body: CreateContractSchema, headers: ['Idempotency-Key'] },
  location: '/api/v1/contracts/{id}',
  responses: { 201: { description: 'Created', schema: ContractResponseSchema } },
} as const satisfies RouteDefinition;

export const listContracts = {
  id: 'listContracts',
  method: 'GET',
  path: '/api/v1/contracts',
  handler: 'functions/api/contracts/list.ts',
  auth: 'jwt',
  grants: ['database'],
  summary: "The caller's contracts, newest first",
  tag: 'contracts',
  description:
    "Summaries of the caller's contracts (all for admins and auditors), newest first, filtered by status and role; a page at a time (`cursor` from `nextCursor`).",
  request: { query: ListContractsQuerySchema },
  responses: { 200: { description: 'A page of contracts', schema: ContractPageSchema } },
} as const satisfies RouteDefinition;

export const getContract = {
  id: 'getContract',
  method: 'GET',
  path: '/api/v1/contracts/{id}',
  handler: 'functions/api/contracts/get.ts',
  auth: 'jwt',
  grants: ['database'],
  summary: 'A contract, with the payload a party signs',
  tag: 'contracts',
  description:
    'The contract with its signatures, lifecycle history and the exact `signingPayload` a party signs. Its ETag is the version to send in If-Match. Invisible contracts are 404s, as missing ones are.',
  request: { params: IdPathSchema },
  responses: { 200: contract },
} as const satisfies RouteDefinition;

export const getContractEvidence = {
  id: 'getContractEvidence',
  method: 'GET',
  path: '/api/v1/contracts/{id}/evidence',
  handler: 'functions/api/contracts/evidence.ts',
  auth: 'jwt',
  grants: ['database'],
  summary: 'The contract as evidence a third party checks offline (`npm run verify-evidence`)',
  tag: 'contracts',
  description:
    "A self-contained JSON bundle: the canonical content and its digest, every signature with its public key and that key's validity window, the platform's countersignature and keys, and the contract's audit chain with the inclusion proof of its head in the latest signed checkpoint. Pin the platform's keys from `GET /platform/keys` when checking it.",
  request: { params: IdPathSchema },
  responses: { 200: { description: 'The evidence bundle', schema: EvidenceBundleSchema } },
} as const satisfies RouteDefinition;

export const getContractKey = {
  id: 'getContractKey',
  method: 'GET',
  path: '/api/v1/contracts/{id}/key',
  handler: 'functions/api/contracts/key.ts',
  auth: 'jwt',
  grants: ['database'],
  summary: "The contract's data key: its state in KMS and what its policy admits",
  tag: 'contracts',
  description:
    "The KMS key that guards the provider's data under this contract, as the platform last applied it: its state (Enabled, Disabled while the contract is suspended, PendingDeletion after a termination that deletes the data, with KMS's deletion date), the digest and version of its key policy, and what the policy admits: the approved measurement sets with a Running enclave, and those enclaves with the PCR4 of their parent. Only an enclave it admits can obtain a data key from KMS, with an attestation document of that image on that parent. For the parties, admins and auditors; 404 before the contract first became Active. Every change is on the key's audit chain (`GET /audit?entityId=` the key's chain, listed in the contract's evidence).",
  request: { params: IdPathSchema },
  responses: { 200: { description: 'The key', schema: ContractKeySchema } },
} as const satisfies RouteDefinition;

export const createDataKey = {
  id: 'createDataKey',
  method: 'POST',
  path: '/api/v1/contracts/{id}/data-keys',
  handler: 'functions/api/contracts/data-keys.ts',
  auth: 'jwt',
  grants: ['database', 'wrapDataKeys'],
  summary: "A data key wrapped under the contract's key, for the provider's datasets",
  tag: 'contracts',
  description:
    "The contract's provider gets a new 256-bit data key wrapped under the contract's KMS key for the encryption context `{contractId}` (KMS GenerateDataKeyWithoutPlaintext: no plaintext leaves KMS, the platform never sees it). Encrypt datasets with keys only approved enclaves can unwrap: an enclave unwraps the blob with KMS Decrypt and its attestation document (see the README's enclave key release). 409 `contract-not-active` unless the contract is Active, `key-not-ready` in the seconds after its activation while its key is being set up.",
  request: { params: IdPathSchema },
  errors: [409],
  responses: {
    200: { description: 'The wrapped data key (nothing is stored)', schema: WrappedDataKeySchema },
  },
} as const satisfies RouteDefinition;

export const verifyContractSignatures = {
  id: 'verifyContractSignatures',
  method: 'GET',
  path: '/api/v1/contracts/{id}/signatures/verification',
  handler: 'functions/api/contracts/signatures-verification.ts',
  auth: 'jwt',
  grants: ['database'],
  summary: 'Every signature of the contract verified again, each with its verdict',
  tag: 'contracts',
  description:
    "Re-verifies every party signature against the stored content and the key's validity window (a key revoked after the signature still verifies it; one revoked before does not) and the platform's countersignature with the platform's keys, with the verifier `npm run verify-evidence` runs; the audit checks of the evidence are listed too.",
  request: { params: IdPathSchema },
  responses: { 200: { description: 'The verdicts', schema: SignatureVerificationSchema } },
} as const satisfies RouteDefinition;

export const updateContract = {
  id: 'updateContract',
  method: 'PUT',
  path: '/api/v1/contracts/{id}',
  handler: 'functions/api/contracts/update.ts',
  auth: 'jwt',
  grants: ['database'],
  summary: 'Edit title, description or terms (Draft or PendingSignature; discards signatures)',
  tag: 'contracts',
  description:
    'A party edits title, description or terms while the contract is Draft or PendingSignature. Any signature already given is discarded (the content digest changes). If-Match with the current ETag is required.',
  errors: [409, 422],
  request: { params: IdPathSchema, body: UpdateContractSchema, headers: ['If-Match'] },
  responses: { 200: contract },
} as const satisfies RouteDefinition;

export const deleteContract = {
  id: 'deleteContract',
  method: 'DELETE',
  path: '/api/v1/contracts/{id}',
  handler: 'functions/api/contracts/delete.ts',
  auth: 'jwt',
  grants: ['database'],
  summary: 'Delete a never-signed draft',
  tag: 'contracts',
  description:
    'Deletes a Draft that was never signed; anything ever signed is terminated instead (409). If-Match with the current ETag is required.',
  errors: [409, 422],
  request: { params: IdPathSchema, headers: ['If-Match'] },
  responses: { 204: { description: 'Deleted' } },
} as const satisfies RouteDefinition;

export const signContract = {
  id: 'signContract',
  method: 'POST',
  path: '/api/v1/contracts/{id}/sign',
  handler: 'functions/api/contracts/sign.ts',
  auth: 'jwt',
  grants: ['database', 'openSecrets'],
  summary: "Add the caller's signature over the current digest and version",
  tag: 'contracts',
  description:
    "A party signs the contract's `signingPayload` (RFC 8785 JSON of contractId, contentDigest and version) with one of its registered keys. The signature is verified against the key before it is stored; a bad signature or a key that is not the caller's is a 422. `type: \"mfa\"` adds `otp`, the current code of the caller's confirmed TOTP second factor (one 30-second step of drift either way), checked after the signature and usable once: no second factor (`mfa-not-enrolled`), a wrong code (`invalid-otp`) or a used one (`otp-replayed`) is a 422. The platform's countersignature then attests the second factor.",
  errors: [409, 422],
  request: { params: IdPathSchema, body: SignContractSchema, headers: ['If-Match'] },
  responses: { 200: contract },
} as const satisfies RouteDefinition;

export const activateContract = {
  id: 'activateContract',
  method: 'POST',
  path: '/api/v1/contracts/{id}/activate',
  handler: 'functions/api/contracts/activate.ts',
  auth: 'jwt',
  // The KMS signer reads the public key of the key that signed (its kid) once per container, and registers it.
  grants: ['database', 'sign'],
  summary: 'Activate a contract signed by both parties; the platform countersigns',
  tag: 'contracts',
  description:
    'Either party (or an admin) activates a contract both parties signed, within its validity window; the platform countersigns with its KMS key.',
  errors: [409, 422],
  request: { params: IdPathSchema, headers: ['If-Match'] },
  responses: { 200: contract },
} as const satisfies RouteDefinition;

export const suspendContract = {
  id: 'suspendContract',
  method: 'POST',
  path: '/api/v1/contracts/{id}/suspend',
  handler: 'functions/api/contracts/suspend.ts',
  auth: 'jwt',
  grants: ['database'],
  summary: 'Suspend an active contract',
  tag: 'contracts',
  description:
    'A party or an admin suspends an Active contract, with a reason. Its enclaves are suspended with it: their parents stop and their attestations are voided.',
  errors: [409],
  request: { params: IdPathSchema, body: ReasonSchema, headers: ['If-Match'] },
  responses: { 200: contract },
} as const satisfies RouteDefinition;

export const resumeContract = {
  id: 'resumeContract',
  method: 'POST',
  path: '/api/v1/contracts/{id}/resume',
  handler: 'functions/api/contracts/resume.ts',
  auth: 'jwt',
  grants: ['database'],
  summary: 'Resume a suspended contract (admin or the party that suspended)',
  tag: 'contracts',
  description:
    'An admin or the party that suspended resumes a Suspended contract within its validity window. Its enclaves stay Suspended until resumed one by one.',
  errors: [409, 422],
  request: { params: IdPathSchema, body: OptionalReasonSchema, headers: ['If-Match'] },
  responses: { 200: contract },
} as const satisfies RouteDefinition;

export const terminateContract = {
  id: 'terminateContract',
  method: 'POST',
  path: '/api/v1/contracts/{id}/terminate',
  handler: 'functions/api/contracts/terminate.ts',
  auth: 'jwt',
  grants: ['database'],
  summary: 'Terminate a contract, with a reason',
  tag: 'contracts',
  description:
    'A party or an admin terminates a contract, with a reason. Final: its enclaves are terminated with it.',
  errors: [409, 422],
  request: { params: IdPathSchema, body: ReasonSchema, headers: ['If-Match'] },
  responses: { 200: contract },
} as const satisfies RouteDefinition;

export const proposeMeasurementSet = {
  id: 'proposeMeasurementSet',
  method: 'POST',
  path: '/api/v1/contracts/{id}/measurements',
  handler: 'functions/api/contracts/measurements-propose.ts',
  auth: 'jwt',
  grants: ['database'],
  summary: 'Propose the image measurements (PCR0/1/2, optionally PCR8) an enclave may run under the contract',
  tag: 'measurements',
  description:
    'A party proposes the image measurements an enclave may run under the contract (PCR0, PCR1, PCR2, optionally PCR8 and further PCRs), signed by the proposer. A contract holds at most 50 sets.',
  errors: [409],
  request: { params: IdPathSchema, body: ProposeMeasurementsSchema },
  location: '/api/v1/contracts/{contractId}/measurements',
  responses: { 201: { description: 'Proposed', schema: MeasurementSetResponseSchema } },
} as const satisfies RouteDefinition;

export const listMeasurementSets = {
  id: 'listMeasurementSets',
  method: 'GET',
  path: '/api/v1/contracts/{id}/measurements',
  handler: 'functions/api/contracts/measurements-list.ts',
  auth: 'jwt',
  grants: ['database'],
  summary: "The contract's proposed and approved measurement sets",
  tag: 'measurements',
  description:
    "The contract's proposed and approved measurement sets, each with the `signingPayload` parties sign.",
  request: { params: IdPathSchema },
  responses: { 200: { description: 'Measurement sets', schema: MeasurementSetListSchema } },
} as const satisfies RouteDefinition;

export const approveMeasurementSet = {
  id: 'approveMeasurementSet',
  method: 'POST',
  path: '/api/v1/contracts/{id}/measurements/{mid}/approve',
  handler: 'functions/api/contracts/measurements-approve.ts',
  auth: 'jwt',
  grants: ['database', 'openSecrets'],
  summary: "Approve a measurement set with the caller's signature; Approved once both parties have",
  tag: 'measurements',
  description:
    'The other party approves a Proposed set by signing its `signingPayload`; it is Approved once both parties have signed. Only Approved sets are trusted by attestation. `type: "mfa"` adds `otp`, a fresh code of the approver\'s TOTP second factor, as for a contract signature (`mfa-not-enrolled`, `invalid-otp`, `otp-replayed`: 422). A refused attempt is recorded in the approver\'s refusal chain.',
  errors: [409, 422],
  request: { params: MeasurementPathSchema, body: ApproveMeasurementsSchema },
  responses: { 200: { description: 'Approval recorded', schema: MeasurementSetResponseSchema } },
} as const satisfies RouteDefinition;

export const createEnclave = {
  id: 'createEnclave',
  method: 'POST',
  path: '/api/v1/enclaves',
  handler: 'functions/api/enclaves/create.ts',
  auth: 'jwt',
  grants: ['database'],
  summary:
    'Ask for an enclave under an Active contract (a party or an admin); checked as provisioning would, then Initializing',
  tag: 'enclaves',
  description:
    'A party or an admin asks for an enclave under an Active contract. The configuration is checked as provisioning would (approved image, instance type, resources, network and security policies); then the enclave is Initializing and the provisioning workflow starts. With an Idempotency-Key, a retry replays the first response.',
  errors: [404, 422],
  request: { body: LocalCreateEnclaveSchema, headers: ['Idempotency-Key'] },
  location: '/api/v1/enclaves/{id}',
  responses: {
    201: { description: 'Created (Initializing; provisioning starts)', schema: EnclaveResponseSchema },
  },
} as const satisfies RouteDefinition;

export const listEnclaves = {
  id: 'listEnclaves',
  method: 'GET',
  path: '/api/v1/enclaves',
  handler: 'functions/api/enclaves/list.ts',
  auth: 'jwt',
  grants: ['database'],
  summary: "The enclaves of the caller's contracts (all for admins and auditors), newest first",
  tag: 'enclaves',
  description:
    "Summaries of the enclaves of the caller's contracts (all for admins and auditors), newest first, filtered by status or contract; a page at a time.",
  request: { query: ListEnclavesQuerySchema },
  responses: { 200: { description: 'A page of enclaves', schema: EnclavePageSchema } },
} as const satisfies RouteDefinition;

export const getEnclave = {
  id: 'getEnclave',
  method: 'GET',
  path: '/api/v1/enclaves/{id}',
  handler: 'functions/api/enclaves/get.ts',
  auth: 'jwt',
  grants: ['database'],
  summary: 'An enclave (contract parties, admins, auditors)',
  tag: 'enclaves',
  description:
    'The enclave with its configuration, status, parent instance and provisioning id. Its ETag is the version to send in If-Match.',
  request: { params: IdPathSchema },
  responses: { 200: enclave },
} as const satisfies RouteDefinition;

export const updateEnclave = {
  id: 'updateEnclave',
  method: 'PUT',
  path: '/api/v1/enclaves/{id}',
  handler: 'functions/api/enclaves/update.ts',
  auth: 'jwt',
  grants: ['database'],
  summary: 'Replace the configuration (and name) of a Suspended enclave, checked as provisioning would',
  tag: 'enclaves',
  description:
    'Replaces the configuration (and name) of a Suspended enclave, checked as provisioning would. Changing the image retires its parent. If-Match with the current ETag is required.',
  errors: [409, 422],
  request: { params: IdPathSchema, body: UpdateEnclaveSchema, headers: ['If-Match'] },
  responses: { 200: enclave },
} as const satisfies RouteDefinition;

export const deleteEnclave = {
  id: 'deleteEnclave',
  method: 'DELETE',
  path: '/api/v1/enclaves/{id}',
  handler: 'functions/api/enclaves/delete.ts',
  auth: 'jwt',
  grants: ['database'],
  summary: 'Terminate an enclave ("deleted by" the caller); the record and its audit trail stay',
  tag: 'enclaves',
  description:
    'Terminates the enclave ("deleted by" the caller): its parent is stopped; the record and its audit trail stay. If-Match with the current ETag is required.',
  errors: [409],
  request: { params: IdPathSchema, headers: ['If-Match'] },
  responses: { 200: { description: 'The terminated enclave', schema: EnclaveResponseSchema } },
} as const satisfies RouteDefinition;

export const suspendEnclave = {
  id: 'suspendEnclave',
  method: 'POST',
  path: '/api/v1/enclaves/{id}/suspend',
  handler: 'functions/api/enclaves/suspend.ts',
  auth: 'jwt',
  grants: ['database'],
  summary: 'Suspend a Running enclave; its attestation is voided',
  tag: 'enclaves',
  description: 'Suspends a Running enclave, with a reason: its parent stops and its attestation is voided.',
  errors: [409],
  request: { params: IdPathSchema, body: ReasonSchema, headers: ['If-Match'] },
  responses: { 200: enclave },
} as const satisfies RouteDefinition;

export const resumeEnclave = {
  id: 'resumeEnclave',
  method: 'POST',
  path: '/api/v1/enclaves/{id}/resume',
  handler: 'functions/api/enclaves/resume.ts',
  auth: 'jwt',
  grants: ['database'],
  summary: 'Resume a Suspended enclave: back to Initializing, it is provisioned and attested again',
  tag: 'enclaves',
  description:
    'Resumes a Suspended enclave under an Active contract: back to Initializing, it is provisioned and attested again.',
  errors: [409, 422],
  request: { params: IdPathSchema, body: OptionalReasonSchema, headers: ['If-Match'] },
  responses: { 200: enclave },
} as const satisfies RouteDefinition;

export const terminateEnclave = {
  id: 'terminateEnclave',
  method: 'POST',
  path: '/api/v1/enclaves/{id}/terminate',
  handler: 'functions/api/enclaves/terminate.ts',
  auth: 'jwt',
  grants: ['database'],
  summary: 'Terminate an enclave, with a reason',
  tag: 'enclaves',
  description: 'Terminates an enclave, with a reason. Final.',
  errors: [409],
  request: { params: IdPathSchema, body: ReasonSchema, headers: ['If-Match'] },
  responses: { 200: enclave },
} as const satisfies RouteDefinition;

export const getEnclaveAttestation = {
  id: 'getEnclaveAttestation',
  method: 'GET',
  path: '/api/v1/enclaves/{id}/attestation',
  handler: 'functions/api/enclaves/attestation-get.ts',
  auth: 'jwt',
  grants: ['database'],
  summary:
    "The enclave's last attestation record (verified, refused or voided); 404 no-attestation before one",
  tag: 'enclaves',
  description:
    "The enclave's last attestation record: verified, refused or voided, with the measurements and the parent instance. 404 `no-attestation` before the first one.",
  request: { params: IdPathSchema },
  responses: { 200: { description: 'The attestation record', schema: EnclaveAttestationResponseSchema } },
} as const satisfies RouteDefinition;

export const submitAttestation = {
  id: 'submitAttestation',
  method: 'POST',
  path: '/api/v1/enclaves/{id}/attestation',
  handler: 'functions/api/enclaves/attestation-submit.ts',
  auth: 'iam',
  grants: ['database', 'taskCallback'],
  summary:
    "The enclave's parent instance submits the attestation document the provisioning workflow waits for",
  tag: 'parent instance',
  description:
    "Called by the enclave's own parent instance (SigV4 with the parent role): submits the enclave's attestation document, which the provisioning workflow is waiting for; the workflow verifies it. A document arriving after the wait ended is a 410.",
  errors: [409, 410],
  request: { params: IdPathSchema, body: AttestationSubmissionSchema },
  responses: {
    202: { description: 'Accepted; the workflow verifies it', schema: AttestationAcceptedSchema },
  },
} as const satisfies RouteDefinition;

export const sendAttestationHeartbeat = {
  id: 'sendAttestationHeartbeat',
  method: 'POST',
  path: '/api/v1/enclaves/{id}/attestation/heartbeat',
  handler: 'functions/api/enclaves/attestation-heartbeat.ts',
  auth: 'iam',
  grants: ['database', 'taskHeartbeat'],
  summary:
    "The enclave's parent instance reports it is still on its way to the attestation document (keeps the workflow's wait alive)",
  tag: 'parent instance',
  description:
    "Called by the enclave's own parent instance while it is on its way to the attestation document (booting, fetching the image, starting the enclave, attesting): keeps the workflow's wait alive.",
  errors: [409, 410],
  request: { params: IdPathSchema, body: AttestationHeartbeatSchema },
  responses: {
    202: { description: 'Accepted; the wait goes on', schema: AttestationHeartbeatResponseSchema },
  },
} as const satisfies RouteDefinition;

export const reportEnclaveMetrics = {
  id: 'reportEnclaveMetrics',
  method: 'POST',
  path: '/api/v1/enclaves/{id}/metrics',
  handler: 'functions/api/enclaves/metrics-post.ts',
  auth: 'iam',
  grants: ['database'],
  summary: "The enclave's own parent instance reports a runtime metrics sample (Running, metrics enabled)",
  tag: 'parent instance',
  description:
    "Called by the enclave's own parent instance: one runtime metrics sample of a Running enclave whose configuration enables metrics.",
  errors: [409, 422],
  request: { params: IdPathSchema, body: EnclaveMetricsSchema },
  responses: { 202: { description: 'Accepted' } },
} as const satisfies RouteDefinition;

export const listEnclaveMetrics = {
  id: 'listEnclaveMetrics',
  method: 'GET',
  path: '/api/v1/enclaves/{id}/metrics',
  handler: 'functions/api/enclaves/metrics-get.ts',
  auth: 'jwt',
  grants: ['database'],
  summary: "The enclave's recent metrics samples, newest first",
  tag: 'enclaves',
  description: "The enclave's recent metrics samples, newest first, a page at a time.",
  request: { params: IdPathSchema, query: EnclaveMetricsQuerySchema },
  responses: { 200: { description: 'A page of samples', schema: EnclaveMetricsPageSchema } },
} as const satisfies RouteDefinition;

export const getAuditTrail = {
  id: 'getAuditTrail',
  method: 'GET',
  path: '/api/v1/audit',
  handler: 'functions/api/audit/get.ts',
  auth: 'jwt',
  // The public keys: a checkpoint's signature is verified against them (kms:GetPublicKey, once per container).
  grants: ['database'],
  summary: "An entity's hash-chained audit trail, verified",
  tag: 'audit',
  description:
    "An entity's hash-chained audit trail (a contract, an enclave, an identity), verified by the server and with the signed checkpoint proving its head; re-verifiable by anyone from the records. Parties see their own entities; admins and auditors see all.",
  errors: [404],
  request: { query: AuditQuerySchema },
  responses: { 200: { description: 'The trail and its verification', schema: AuditTrailSchema } },
} as const satisfies RouteDefinition;
/**
 * The one route table: the CDK API, the local dev server and the OpenAPI document are built from it. Each
 * route is also its own export, which its function's handler names (`defineRoute(routes.getContract, …)`):
 * a bundle then carries its own route's definition and schemas, not the table's.
 */
export const ROUTES = [
  getHealth,
  getOpenApi,
  listPlatformKeys,
  rotatePlatformKey,
  getContractKey,
  createDataKey,
  getMyIdentity,
  createIdentity,
  getIdentity,
  listIdentities,
  registerKey,
  rotateKey,
  revokeKey,
  listKeys,
  setIdentityStatus,
  enrolTotp,
  listTotpCredentials,
  webauthnRegistrationOptions,
  registerPasskey,
  listPasskeys,
  revokePasskey,
  webauthnAuthenticationOptions,
  confirmTotp,
  revokeTotp,
  createContract,
  listContracts,
  getContract,
  getContractEvidence,
  verifyContractSignatures,
  updateContract,
  deleteContract,
  signContract,
  activateContract,
  suspendContract,
  resumeContract,
  terminateContract,
  proposeMeasurementSet,
  listMeasurementSets,
  approveMeasurementSet,
  createEnclave,
  listEnclaves,
  getEnclave,
  updateEnclave,
  deleteEnclave,
  suspendEnclave,
  resumeEnclave,
  terminateEnclave,
  getEnclaveAttestation,
  submitAttestation,
  sendAttestationHeartbeat,
  reportEnclaveMetrics,
  listEnclaveMetrics,
  getAuditTrail,
] as const;

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

/**
 * Every error status the route can answer, in order: what its shape implies (400 for any malformed
 * request; 401 and 403 behind the JWT authorizer, 403 behind the IAM one; 404 with a path id; 412 with If-Match, 428 where If-Match is
 * required; 409 and 422 for an Idempotency-Key reused while in flight or with another body; 413 for a body
 * over the limit, on any route, and 415 where a body is read; 503 when it reaches a dependency that may be briefly unavailable; 500 always) and its `errors`.
 * The OpenAPI document declares exactly these, and the conformance test produces each one.
 */
export function errorStatusesOf(route: RouteDefinition): number[] {
  const statuses = new Set<number>([400, 413, 500, ...(route.errors ?? [])]);
  const headers = route.request?.headers ?? [];
  // The JWT authorizer answers 401 for a missing or bad token; the IAM authorizer answers 403 for a missing
  // or bad signature, and for a signer without execute-api:Invoke (it never answers 401).
  if (route.auth === 'jwt') statuses.add(401).add(403);
  if (route.auth === 'iam') statuses.add(403);
  if (route.request?.params) statuses.add(404);
  if (headers.includes('If-Match')) statuses.add(412);
  if (ifMatchRequired(route)) statuses.add(428);
  if (headers.includes('Idempotency-Key')) statuses.add(409).add(422);
  if (route.request?.body) statuses.add(415);
  if (route.grants.length > 0) statuses.add(503);
  return [...statuses].sort((a, b) => a - b);
}

/** PUT and DELETE change or remove what the caller last read: they require If-Match (428 without). */
export function ifMatchRequired(route: RouteDefinition): boolean {
  return (
    (route.request?.headers ?? []).includes('If-Match') &&
    (route.method === 'PUT' || route.method === 'DELETE')
  );
}
