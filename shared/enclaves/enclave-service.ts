import { GENESIS_HASH } from '../audit/audit-chain.ts';
import { auditedWrite } from '../audit/audited-write.ts';
import { recordSecurityRefusal } from '../audit/security-refusals.ts';
import { actorOf } from '../contracts/contract-service.ts';
import { type LoadedContract, loadContract } from '../contracts/contract-store.ts';
import { listMeasurementSets } from '../contracts/measurement-store.ts';
import type { ContractData } from '../domain/contract.ts';
import type { Actor } from '../domain/contract-lifecycle.ts';
import {
  type EnclaveAttestation,
  type EnclaveConfiguration,
  type EnclaveData,
  type EnclaveMetrics,
  type EnclaveStatus,
  type EnclaveSummary,
  type EnclaveView,
  enclaveView,
  type LocalCreateEnclave,
  newEnclave,
  type UpdateEnclave,
} from '../domain/enclave.ts';
import { checkCompatibility, type UnmetRequirement } from '../domain/enclave-compatibility.ts';
import {
  applyEnclaveTransition,
  ENCLAVE_TRANSITIONS,
  type EnclaveAction,
  type EnclaveTransitionContext,
} from '../domain/enclave-lifecycle.ts';
import {
  ConflictError,
  DomainError,
  type FieldIssue,
  ForbiddenError,
  NotFoundError,
  PreconditionFailedError,
  PreconditionRequiredError,
  UnprocessableError,
  ValidationError,
} from '../domain/errors.ts';
import type { Identity } from '../domain/identity.ts';
import { chooseInstanceTypes } from '../domain/instance-types.ts';
import type { MeasurementSet } from '../domain/measurement-set.ts';
import { pageOf } from '../http/cursor.ts';
import type { InstanceCaller } from '../http/instance-caller.ts';
import { checkIfMatch, etagOf } from '../http/preconditions.ts';
import type { Reply } from '../http/reply.ts';
import {
  claimIdempotencyKey,
  findReplay,
  type IdempotentRequest,
  replayOrConflict,
} from '../idempotency/idempotency-store.ts';
import type { Dependencies } from '../runtime/dependencies.ts';
import { type EnclaveEventType, enclaveEvent } from './enclave-events.ts';
import {
  listEnclaveMetrics,
  recordEnclaveMetrics,
  type StoredEnclaveMetrics,
} from './enclave-metrics-store.ts';
import {
  insertEnclaveMutation,
  type LoadedEnclave,
  listEnclaves as listEnclaveRows,
  loadEnclave,
  updateEnclaveMutation,
} from './enclave-store.ts';
import { assertImageApproved } from './enclave-validation.ts';

/**
 * The enclave API's use cases, built like the contract API's:
 * - **Visibility**: only the contract's parties, admins and auditors see an enclave; anyone else gets 404,
 *   as if it did not exist. Auditors only read (the lifecycle table never lets them act: 403).
 * - **Concurrency**: every write is one version-guarded statement with its audit record and its domain
 *   event (`auditedWrite`). Without If-Match a lost race is retried from a fresh load (the rules are checked
 *   again) up to 3 times; with a stale If-Match it is 412. PUT and DELETE require If-Match (428).
 * - **Provisioning**: create and resume put the enclave in `Initializing` and publish `EnclaveCreated` /
 *   `EnclaveResumed`; an EventBridge rule starts the provisioning state machine on either, and only its
 *   Activate step (after a verified attestation) makes the enclave `Running`.
 *
 * Domain events (aggregate `enclave`), each with the payload `{ enclaveId, contractId, status, version }`
 * plus: `EnclaveCreated` (nothing more), `EnclaveUpdated` (`changed`), `EnclaveSuspended` (`reason`,
 * `instanceId`), `EnclaveResumed` (`instanceId`, and `reason` when given), `EnclaveTerminated` (`reason`,
 * `instanceId`). The workflow's own steps publish `EnclaveActivated` and `EnclaveFailed` (enclave-steps.ts).
 */

/** The platform acting on its own (contract status changes), as in enclave-steps.ts. */
const SYSTEM_ACTOR: Actor = { kind: 'system' };
/** Marks a use case run by the platform rather than an identity. */
const SYSTEM = Symbol('system');
type SystemCaller = typeof SYSTEM;

/** Attempts at a version-guarded write before a lost race becomes a 409 (as contract mutations). */
const MAX_ATTEMPTS = 3;
/** How far in the future a metrics sample's `reportedAt` may be (clock skew), before it is refused. */
const MAX_METRICS_CLOCK_SKEW_MS = 5 * 60 * 1000;
/** Page size of the platform's sweep over a contract's enclaves. */
const SWEEP_PAGE = 100;

// ---------------------------------------------------------------------------------------------------------
// Visibility

function canSee(contract: Pick<ContractData, 'providerId' | 'consumerId'>, caller: Identity): boolean {
  return (
    caller.id === contract.providerId ||
    caller.id === contract.consumerId ||
    caller.roles.includes('admin') ||
    caller.roles.includes('auditor')
  );
}

interface VisibleEnclave extends LoadedEnclave {
  readonly contract: ContractData;
}

async function contractOf(deps: Dependencies, enclave: EnclaveData): Promise<ContractData> {
  const loaded = await loadContract(deps.db, enclave.contractId);
  // The foreign key makes this impossible; a 500, never a 404 that would hide the inconsistency.
  if (!loaded) throw new Error(`enclave ${enclave.id} refers to missing contract ${enclave.contractId}`);
  return loaded.contract;
}

/** Loads an enclave `caller` may see, with its contract; anyone else learns nothing, not even that it exists. */
async function loadVisible(
  deps: Dependencies,
  caller: Identity | SystemCaller,
  id: string,
): Promise<VisibleEnclave> {
  const loaded = await loadEnclave(deps.db, id);
  if (!loaded) throw new NotFoundError(`Enclave ${id}`);
  const contract = await contractOf(deps, loaded.enclave);
  if (caller !== SYSTEM && !canSee(contract, caller)) throw new NotFoundError(`Enclave ${id}`);
  return { ...loaded, contract };
}

function contextOf(contract: ContractData): EnclaveTransitionContext {
  return {
    contract: { providerId: contract.providerId, consumerId: contract.consumerId, status: contract.status },
  };
}

// ---------------------------------------------------------------------------------------------------------
// Events

// ---------------------------------------------------------------------------------------------------------
// Provisionability: the checks the workflow's Validate step runs, run up front by create and edit

interface ProvisionabilityOptions {
  readonly localStack: boolean;
  readonly deploymentRegion: string | undefined;
  /** The instant checked against the contract's validity window. */
  readonly now: Date;
  /**
   * Leave out `contract-not-active` and `contract-outside-validity`: an edit of a suspended enclave runs
   * nothing (resume checks both), so it may be fixed while the contract is on hold.
   */
  readonly ignoreContractStatus?: boolean;
}

/** The requirements an edit leaves out (`ignoreContractStatus`): the contract's standing, not the enclave's. */
const CONTRACT_STANDING: ReadonlySet<UnmetRequirement['requirement']> = new Set([
  'contract-not-active',
  'contract-outside-validity',
]);

/**
 * Runs the contract compatibility rules, the image approval and the instance sizing, and throws one 422
 * listing every unmet requirement of all three, so a client fixes them in one round. When only one kind of
 * check fails its own problem type is kept (`enclave-incompatible`, `measurements-not-approved`,
 * `no-instance-type-fits`); when several do, the type is `enclave-not-provisionable`.
 */
function assertProvisionable(
  contract: ContractData,
  enclave: { readonly region: string; readonly configuration: EnclaveConfiguration },
  sets: readonly MeasurementSet[],
  options: ProvisionabilityOptions,
): void {
  const failures: UnprocessableError[] = [];
  const unmet: UnmetRequirement[] = checkCompatibility(contract, enclave, {
    localStack: options.localStack,
    deploymentRegion: options.deploymentRegion,
    now: options.now,
  }).filter((u) => !(options.ignoreContractStatus && CONTRACT_STANDING.has(u.requirement)));
  if (unmet.length > 0) {
    failures.push(
      new UnprocessableError(
        'enclave-incompatible',
        'Enclave does not satisfy its contract',
        `The enclave does not meet ${unmet.length} requirement(s) of its contract.`,
        unmet,
      ),
    );
  }
  for (const check of [
    () => assertImageApproved(enclave.configuration.image, sets),
    () => chooseInstanceTypes(enclave.configuration.resources),
  ]) {
    try {
      check();
    } catch (err) {
      if (!(err instanceof UnprocessableError)) throw err;
      failures.push(err);
    }
  }
  if (failures.length === 1) throw failures[0]!;
  if (failures.length > 1) {
    const issues: FieldIssue[] = failures.flatMap((f) => f.errors ?? []);
    throw new UnprocessableError(
      'enclave-not-provisionable',
      'Enclave cannot be provisioned',
      `The enclave cannot be provisioned: ${failures.map((f) => f.message).join(' ')}`,
      issues,
    );
  }
}

// ---------------------------------------------------------------------------------------------------------
// Reads

/** A visible enclave, with its ETag. */
export async function getEnclave(
  deps: Dependencies,
  caller: Identity,
  id: string,
): Promise<Reply<EnclaveView>> {
  const { enclave } = await loadVisible(deps, caller, id);
  return { status: 200, body: enclaveView(enclave), etag: etagOf(enclave.version) };
}

export interface ListEnclavesQuery {
  readonly contractId?: string | undefined;
  readonly status?: EnclaveStatus | undefined;
  readonly limit: number;
  /** Where the previous page ended (its decoded nextCursor). */
  readonly cursor?: { readonly createdAt: string; readonly id: string } | undefined;
}

/**
 * The enclaves the caller may see, newest first, keyset-paginated with an opaque cursor: a party sees the
 * enclaves of its contracts, admins and auditors every enclave. A `contractId` the caller is not party to
 * simply yields an empty page (as a filter, it reveals nothing).
 */
export async function listEnclaves(
  deps: Dependencies,
  caller: Identity,
  query: ListEnclavesQuery,
): Promise<Reply<{ items: EnclaveSummary[]; nextCursor: string | null }>> {
  const seesAll = caller.roles.includes('admin') || caller.roles.includes('auditor');
  const rows = await listEnclaveRows(deps.db, {
    partyId: seesAll ? undefined : caller.id,
    contractId: query.contractId,
    status: query.status,
    limit: query.limit + 1,
    after: query.cursor,
  });
  return {
    status: 200,
    body: pageOf(rows, query.limit, (e) => ({ createdAt: e.createdAt, id: e.id })),
  };
}

/** What `GET /enclaves/{id}/attestation` answers. */
export interface EnclaveAttestationView {
  readonly enclaveId: string;
  readonly status: EnclaveStatus;
  readonly instanceId: string | null;
  readonly attestation: EnclaveAttestation;
}

/**
 * The enclave's last attestation record (verified, refused or voided) with its status and parent instance.
 * @throws DomainError 404 `no-attestation` when the enclave has not been attested yet.
 */
export async function getEnclaveAttestation(
  deps: Dependencies,
  caller: Identity,
  id: string,
): Promise<Reply<EnclaveAttestationView>> {
  const { enclave } = await loadVisible(deps, caller, id);
  if (enclave.attestation === null) {
    throw new DomainError(
      404,
      'no-attestation',
      'No attestation yet',
      `Enclave ${id} has not been attested yet (status ${enclave.status}).`,
    );
  }
  return {
    status: 200,
    body: {
      enclaveId: enclave.id,
      status: enclave.status,
      instanceId: enclave.instanceId,
      attestation: enclave.attestation,
    },
    etag: etagOf(enclave.version),
  };
}

// ---------------------------------------------------------------------------------------------------------
// Create

function isLocalOnly(input: LocalCreateEnclave, deps: Dependencies): void {
  if (input.simulation !== undefined && deps.local === undefined) {
    throw new ValidationError('simulation is accepted by the local stack only.', [
      { field: 'body.simulation', message: 'not accepted outside the local stack' },
    ]);
  }
}

/**
 * `POST /enclaves`: a party of an Active contract (or an admin) asks for an enclave under it. Before
 * anything is stored, the checks the workflow's Validate step runs are run here, so a mismatch answers 422
 * listing every unmet requirement (compatibility, approved image, sizing). The enclave is inserted
 * `Initializing` (version 1) in one statement that also requires the contract still Active, claims the
 * Idempotency-Key, and writes the audit record (`create`) and `EnclaveCreated`, on which the provisioning
 * workflow starts.
 *
 * `simulation` (a local-stack fault to play) is refused with 400 outside the local stack; in it, the fault
 * is handed to `deps.local.recordSimulation` once the insert succeeded.
 * @throws NotFoundError when the contract does not exist or the caller cannot see it; ForbiddenError for
 *   an auditor; UnprocessableError (422) when the enclave cannot be provisioned under the contract
 *   (including `contract-not-active`); ConflictError / UnprocessableError for Idempotency-Key misuse.
 */
export async function createEnclave(
  deps: Dependencies,
  caller: Identity,
  input: LocalCreateEnclave,
  idempotency?: IdempotentRequest,
): Promise<Reply<EnclaveView>> {
  isLocalOnly(input, deps);
  const [loaded, sets] = await Promise.all([
    loadContract(deps.db, input.contractId),
    listMeasurementSets(deps.db, input.contractId),
  ]);
  if (!loaded || !canSee(loaded.contract, caller)) throw new NotFoundError(`Contract ${input.contractId}`);
  const { contract } = loaded;
  const isParty = caller.id === contract.providerId || caller.id === contract.consumerId;
  if (!isParty && !caller.roles.includes('admin')) {
    throw new ForbiddenError("Only the contract's parties or an admin may create an enclave under it.");
  }
  const localStack = deps.local !== undefined;
  const at = deps.now().toISOString();
  assertProvisionable(contract, input, sets, {
    localStack,
    deploymentRegion: deps.region,
    now: new Date(at),
  });

  const enclave = newEnclave(
    {
      id: deps.newId(),
      name: input.name,
      providerId: contract.providerId,
      contractId: contract.id,
      configuration: input.configuration,
      region: input.region,
    },
    at,
  );
  const insert = insertEnclaveMutation(enclave, {
    requireActiveContract: true,
    ...(idempotency ? { condition: 'EXISTS (SELECT 1 FROM claimed_key)' } : {}),
  });
  // The key is claimed only if the insert will apply, so a stored response always names a stored enclave.
  const claim = idempotency
    ? claimIdempotencyKey(
        caller.id,
        'createEnclave',
        idempotency,
        { status: 201, body: enclaveView(enclave) },
        at,
        "EXISTS (SELECT 1 FROM contracts WHERE id = :contract_id AND provider_id = :provider_id AND status = 'Active')",
      )
    : undefined;
  const { applied, extra } = await auditedWrite(deps.db, {
    ...(claim ? { preamble: claim.preamble, extraColumns: claim.extraColumns } : {}),
    mutation: insert.mutation,
    params: { ...insert.params, ...claim?.params },
    audit: {
      entityType: 'enclave',
      entityId: enclave.id,
      seq: 1,
      action: 'create',
      actorId: caller.id,
      occurredAt: at,
      data: {
        status: enclave.status,
        name: enclave.name,
        contractId: contract.id,
        providerId: contract.providerId,
        consumerId: contract.consumerId,
        region: enclave.region,
        image: enclave.configuration.image,
        ...(input.simulation ? { simulation: input.simulation.fault } : {}),
      },
    },
    prevHash: GENESIS_HASH,
    event: enclaveEvent(deps, 'EnclaveCreated', enclave),
  });
  if (!applied) {
    // Either the key was claimed by an earlier request (replayed, whatever happened since), or the
    // contract left Active since it was loaded.
    if (claim && idempotency && extra.key_locked !== false) {
      const replay = await findReplay<EnclaveView>(deps.db, caller.id, 'createEnclave', idempotency);
      if (replay) return { ...replay, etag: etagOf(replay.body.version) };
    }
    const now = await loadContract(deps.db, contract.id);
    if (now && now.contract.status !== 'Active') {
      assertProvisionable(now.contract, input, sets, {
        localStack,
        deploymentRegion: deps.region,
        now: new Date(at),
      });
    }
    if (!claim || !idempotency) throw new Error('enclave insert applied no row under an Active contract');
    const replay = await replayOrConflict<EnclaveView>(
      deps.db,
      caller.id,
      'createEnclave',
      idempotency,
      extra,
    );
    return { ...replay, etag: etagOf(replay.body.version) };
  }
  if (input.simulation && deps.local) deps.local.recordSimulation(enclave.id, input.simulation.fault);
  return { status: 201, body: enclaveView(enclave), etag: etagOf(enclave.version) };
}

// ---------------------------------------------------------------------------------------------------------
// Lifecycle changes

interface MutationOptions {
  readonly ifMatch?: string | undefined;
  /** PUT and DELETE must state which version they change (428 otherwise). */
  readonly requireIfMatch?: boolean;
  /** The write applies only while the contract is Active (resume must not win against a suspension). */
  readonly requireActiveContract?: boolean;
}

interface Change {
  readonly state: EnclaveData;
  readonly audit: Record<string, unknown>;
  readonly event: EnclaveEventType;
  readonly eventExtra: Record<string, unknown>;
}

/** The outcome of a platform action on one enclave: changed, or left alone because it no longer applied. */
export interface SystemOutcome {
  readonly enclave: EnclaveData;
  readonly changed: boolean;
}

/**
 * Applies one lifecycle action: load (with visibility), precondition, transition against the contract as
 * it is now, then the next state with its audit record and event in one statement guarded by the loaded
 * version. The platform (`SYSTEM`) skips enclaves whose status the action no longer applies to (so its
 * sweeps are idempotent) instead of answering 409.
 */
async function mutate(
  deps: Dependencies,
  caller: Identity | SystemCaller,
  id: string,
  action: EnclaveAction,
  options: MutationOptions,
  next: (
    e: EnclaveData,
    status: EnclaveStatus,
    at: string,
    contract: ContractData,
  ) => Promise<Change> | Change,
): Promise<SystemOutcome> {
  if (options.requireIfMatch && options.ifMatch === undefined) {
    throw new PreconditionRequiredError(
      `${action} requires an If-Match header with the enclave's current ETag.`,
    );
  }
  for (let attempt = 1; ; attempt++) {
    const { enclave, auditHead, contract } = await loadVisible(deps, caller, id);
    if (caller === SYSTEM && !ENCLAVE_TRANSITIONS[action].from.includes(enclave.status)) {
      return { enclave, changed: false };
    }
    checkIfMatch(options.ifMatch, enclave.version);
    const actor = caller === SYSTEM ? SYSTEM_ACTOR : actorOf(caller);
    const status = applyEnclaveTransition(enclave, action, actor, contextOf(contract));
    const at = deps.now().toISOString();
    const change = await next(enclave, status, at, contract);
    const { applied } = await auditedWrite(deps.db, {
      ...updateEnclaveMutation(change.state, enclave.version, {
        requireActiveContract: options.requireActiveContract ?? false,
      }),
      audit: {
        entityType: 'enclave',
        entityId: enclave.id,
        seq: change.state.version,
        action,
        actorId: caller === SYSTEM ? null : caller.id,
        occurredAt: at,
        data: { from: enclave.status, to: change.state.status, ...change.audit },
      },
      prevHash: auditHead,
      event: enclaveEvent(deps, change.event, change.state, change.eventExtra),
    });
    if (applied) return { enclave: change.state, changed: true };
    if (options.ifMatch !== undefined && options.ifMatch.trim() !== '*') {
      throw new PreconditionFailedError(
        'The enclave changed while this request was applied; fetch it again.',
      );
    }
    if (attempt >= MAX_ATTEMPTS) {
      throw new ConflictError(
        'concurrent-modification',
        'Concurrent modification',
        'The enclave is being changed concurrently; retry.',
      );
    }
  }
}

function advanced(e: EnclaveData, at: string, changes: Partial<EnclaveData>): EnclaveData {
  return { ...e, ...changes, version: e.version + 1, updatedAt: at };
}

function reply(outcome: SystemOutcome): Reply<EnclaveView> {
  return { status: 200, body: enclaveView(outcome.enclave), etag: etagOf(outcome.enclave.version) };
}

/** A verified attestation stops vouching once the enclave stops running: it is kept as `voided`. */
function voided(
  attestation: EnclaveAttestation | null,
  at: string,
  reason: string,
): EnclaveAttestation | null {
  if (attestation?.verdict === 'refused') return attestation;
  return { verdict: 'voided', voidedAt: at, reason };
}

/**
 * `PUT /enclaves/{id}` (If-Match required): a new configuration (and optionally name) for a `Suspended`
 * enclave, checked like a create (compatibility, approved image, sizing; 422 listing everything). The
 * contract's own status is not held against an edit (it is on resume), so a suspended enclave can be fixed
 * while its contract is on hold. Audited as `edit`, published as `EnclaveUpdated` with what changed.
 */
export async function updateEnclave(
  deps: Dependencies,
  caller: Identity,
  id: string,
  patch: UpdateEnclave,
  ifMatch: string | undefined,
): Promise<Reply<EnclaveView>> {
  const outcome = await mutate(
    deps,
    caller,
    id,
    'edit',
    { ifMatch, requireIfMatch: true },
    async (e, status, at, contract) => {
      const sets = await listMeasurementSets(deps.db, e.contractId);
      assertProvisionable(contract, { region: e.region, configuration: patch.configuration }, sets, {
        localStack: deps.local !== undefined,
        deploymentRegion: deps.region,
        now: new Date(at),
        ignoreContractStatus: true,
      });
      const changed = [
        ...(patch.name !== undefined && patch.name !== e.name ? ['name'] : []),
        ...(JSON.stringify(patch.configuration) !== JSON.stringify(e.configuration) ? ['configuration'] : []),
      ];
      // The stopped parent was sized and provisioned for the old resources and image: it is retired (the
      // enforcement function terminates it on EnclaveUpdated) and resume launches a new one that fits.
      const retiredInstanceId = parentNoLongerFits(e.configuration, patch.configuration)
        ? e.instanceId
        : null;
      return {
        state: advanced(e, at, {
          status,
          name: patch.name ?? e.name,
          configuration: patch.configuration,
          ...(retiredInstanceId ? { instanceId: null } : {}),
        }),
        audit: {
          changed,
          image: patch.configuration.image,
          ...(retiredInstanceId ? { retiredInstanceId } : {}),
        },
        event: 'EnclaveUpdated',
        eventExtra: { changed, ...(retiredInstanceId ? { retiredInstanceId } : {}) },
      };
    },
  );
  return reply(outcome);
}

/** A parent launched for `before` cannot host `after`: other resources (instance size, allocator) or image. */
function parentNoLongerFits(before: EnclaveConfiguration, after: EnclaveConfiguration): boolean {
  return (
    JSON.stringify(before.resources) !== JSON.stringify(after.resources) ||
    JSON.stringify(before.image) !== JSON.stringify(after.image)
  );
}

function suspendChange(e: EnclaveData, status: EnclaveStatus, at: string, reason: string): Change {
  return {
    state: advanced(e, at, { status, statusReason: reason, attestation: voided(e.attestation, at, reason) }),
    audit: { reason, instanceId: e.instanceId },
    event: 'EnclaveSuspended',
    eventExtra: { reason, instanceId: e.instanceId },
  };
}

function terminateChange(
  e: EnclaveData,
  status: EnclaveStatus,
  at: string,
  reason: string,
  audit: Record<string, unknown> = {},
): Change {
  return {
    state: advanced(e, at, { status, statusReason: reason, attestation: voided(e.attestation, at, reason) }),
    audit: { reason, instanceId: e.instanceId, ...audit },
    event: 'EnclaveTerminated',
    eventExtra: { reason, instanceId: e.instanceId },
  };
}

/**
 * `POST /enclaves/{id}/suspend`: `Running → Suspended`, the attestation voided (`{ verdict: 'voided',
 * voidedAt, reason }`); `EnclaveSuspended` (with `instanceId`) tells the platform to stop the parent.
 */
export async function suspendEnclave(
  deps: Dependencies,
  caller: Identity,
  id: string,
  reason: string,
  ifMatch: string | undefined,
): Promise<Reply<EnclaveView>> {
  return reply(
    await mutate(deps, caller, id, 'suspend', { ifMatch }, (e, status, at) =>
      suspendChange(e, status, at, reason),
    ),
  );
}

/**
 * `POST /enclaves/{id}/resume`: `Suspended → Initializing` under an Active contract, with `executionArn`
 * and `statusReason` cleared; `EnclaveResumed` starts the provisioning workflow again, which re-validates,
 * re-attests and activates. The write requires the contract still Active in the same statement.
 */
export async function resumeEnclave(
  deps: Dependencies,
  caller: Identity,
  id: string,
  reason: string | undefined,
  ifMatch: string | undefined,
): Promise<Reply<EnclaveView>> {
  const outcome = await mutate(
    deps,
    caller,
    id,
    'resume',
    { ifMatch, requireActiveContract: true },
    async (e, status, at, contract) => {
      // What provisioning will check, checked now: a resume it would refuse is a 422, not a Failed enclave.
      assertProvisionable(contract, e, await listMeasurementSets(deps.db, e.contractId), {
        localStack: deps.local !== undefined,
        deploymentRegion: deps.region,
        now: new Date(at),
      });
      return {
        state: advanced(e, at, { status, executionArn: null, statusReason: null }),
        audit: { instanceId: e.instanceId, ...(reason ? { reason } : {}) },
        event: 'EnclaveResumed',
        eventExtra: { instanceId: e.instanceId, ...(reason ? { reason } : {}) },
      };
    },
  );
  return reply(outcome);
}

/** `POST /enclaves/{id}/terminate`: from Initializing, Running or Suspended to `Terminated`, with a reason. */
export async function terminateEnclave(
  deps: Dependencies,
  caller: Identity,
  id: string,
  reason: string,
  ifMatch: string | undefined,
): Promise<Reply<EnclaveView>> {
  return reply(
    await mutate(deps, caller, id, 'terminate', { ifMatch }, (e, status, at) =>
      terminateChange(e, status, at, reason),
    ),
  );
}

/**
 * `DELETE /enclaves/{id}` (If-Match required): terminates with the reason `deleted by <caller name>` and
 * answers 200 with the terminated enclave. Enclave records are never erased (their audit trail and the
 * parties' evidence stay).
 */
export async function deleteEnclave(
  deps: Dependencies,
  caller: Identity,
  id: string,
  ifMatch: string | undefined,
): Promise<Reply<EnclaveView>> {
  const reason = `deleted by ${caller.name}`;
  return reply(
    await mutate(deps, caller, id, 'terminate', { ifMatch, requireIfMatch: true }, (e, status, at) =>
      terminateChange(e, status, at, reason, { deleted: true }),
    ),
  );
}

// ---------------------------------------------------------------------------------------------------------
// The platform's actions (no identity): contract status changes

/**
 * The platform suspends one enclave (`Running → Suspended`, attestation voided), audited with no actor and
 * published as `EnclaveSuspended`. An enclave that is not `Running` (any more) is returned unchanged.
 */
export async function suspendEnclaveAsPlatform(
  deps: Dependencies,
  enclaveId: string,
  reason: string,
): Promise<SystemOutcome> {
  return mutate(deps, SYSTEM, enclaveId, 'suspend', {}, (e, status, at) =>
    suspendChange(e, status, at, reason),
  );
}

/**
 * The platform terminates one enclave (any non-final status → `Terminated`), published as
 * `EnclaveTerminated`. An enclave already `Failed` or `Terminated` is returned unchanged.
 */
export async function terminateEnclaveAsPlatform(
  deps: Dependencies,
  enclaveId: string,
  reason: string,
): Promise<SystemOutcome> {
  return mutate(deps, SYSTEM, enclaveId, 'terminate', {}, (e, status, at) =>
    terminateChange(e, status, at, reason),
  );
}

/** Every enclave of `contractId` in one of `statuses` (all pages). */
async function enclaveIdsOf(
  deps: Dependencies,
  contractId: string,
  statuses: readonly EnclaveStatus[],
): Promise<string[]> {
  const ids: string[] = [];
  for (const status of statuses) {
    let after: { createdAt: string; id: string } | undefined;
    for (;;) {
      const page = await listEnclaveRows(deps.db, { contractId, status, limit: SWEEP_PAGE, after });
      ids.push(...page.map((e) => e.id));
      const last = page.at(-1);
      if (page.length < SWEEP_PAGE || !last) break;
      after = { createdAt: last.createdAt, id: last.id };
    }
  }
  return ids;
}

/**
 * Brings a contract's enclaves in line with the contract's CURRENT status (read now, not taken from the
 * event that triggered the call, so a late or repeated event cannot act on a stale status):
 * - `Suspended`: every `Running` enclave is suspended (reason `contract suspended`);
 * - `Terminated` / `Expired`: every non-final enclave is terminated (reason `contract terminated` /
 *   `contract expired`);
 * - any other status (or an unknown contract): nothing.
 *
 * Each enclave is its own audited write with the same events as the HTTP actions (`EnclaveSuspended`,
 * `EnclaveTerminated`). Idempotent: a second run finds nothing left to change; an enclave whose status
 * moved on meanwhile is skipped.
 * @returns the ids actually suspended and terminated by this call.
 * @example
 * // EventBridge rule on ContractSuspended | ContractTerminated | ContractExpired:
 * await applyContractStatusToEnclaves(deps, event.detail.contractId);
 */
export async function applyContractStatusToEnclaves(
  deps: Dependencies,
  contractId: string,
): Promise<{ suspended: string[]; terminated: string[] }> {
  const done = { suspended: [] as string[], terminated: [] as string[] };
  const loaded: LoadedContract | null = await loadContract(deps.db, contractId);
  if (!loaded) return done;
  const status = loaded.contract.status;
  if (status === 'Suspended') {
    for (const id of await enclaveIdsOf(deps, contractId, ['Running'])) {
      if ((await suspendEnclaveAsPlatform(deps, id, 'contract suspended')).changed) done.suspended.push(id);
    }
  } else if (status === 'Terminated' || status === 'Expired') {
    const reason = status === 'Terminated' ? 'contract terminated' : 'contract expired';
    for (const id of await enclaveIdsOf(deps, contractId, ENCLAVE_TRANSITIONS.terminate.from)) {
      if ((await terminateEnclaveAsPlatform(deps, id, reason)).changed) done.terminated.push(id);
    }
  }
  return done;
}

// ---------------------------------------------------------------------------------------------------------
// Metrics

/**
 * `POST /enclaves/{id}/metrics` (IAM-authenticated): the enclave's own parent instance reports a sample.
 * Accepted (202) only from the instance the enclave runs on, while it is `Running` with
 * `observability.metricsEnabled`. A sample is stored in the metrics history and becomes the enclave's
 * `metrics` (the latest sample) in place, without a version bump, audit record or event: metrics are
 * high-frequency and not state changes, and must not invalidate the parties' ETags. The same `reportedAt`
 * twice stores once.
 *
 * Another instance reporting for this enclave is a security-relevant refusal: 403, and a record in the
 * enclave's security-refusal chain (see security-refusals.ts).
 * @throws NotFoundError (unknown enclave); ForbiddenError (wrong instance, audited); ConflictError
 *   `enclave-not-running` / `metrics-disabled`; UnprocessableError `reported-in-future`.
 */
export async function reportEnclaveMetrics(
  deps: Dependencies,
  caller: InstanceCaller,
  id: string,
  sample: EnclaveMetrics,
): Promise<Reply<null>> {
  const loaded = await loadEnclave(deps.db, id);
  if (!loaded) throw new NotFoundError(`Enclave ${id}`);
  const { enclave } = loaded;
  if (enclave.instanceId === null || caller.instanceId !== enclave.instanceId) {
    await recordSecurityRefusal(deps, {
      entityType: 'enclave',
      entityId: enclave.id,
      action: 'report-metrics',
      callerArn: caller.callerArn,
      code: 'wrong-instance',
      detail: `instance ${caller.instanceId} reported metrics for enclave ${enclave.id}, whose parent is ${enclave.instanceId ?? 'not launched'}`,
    });
    throw new ForbiddenError("Only the enclave's own parent instance may report its metrics.");
  }
  const notRunning = () =>
    new ConflictError(
      'enclave-not-running',
      'Enclave not running',
      `Enclave ${id} is ${enclave.status}; metrics are accepted only while it is Running.`,
    );
  if (enclave.status !== 'Running') throw notRunning();
  if (!enclave.configuration.observability.metricsEnabled) {
    throw new ConflictError(
      'metrics-disabled',
      'Metrics disabled',
      `Enclave ${id} has observability.metricsEnabled false.`,
    );
  }
  const now = deps.now();
  if (Date.parse(sample.reportedAt) > now.getTime() + MAX_METRICS_CLOCK_SKEW_MS) {
    throw new UnprocessableError(
      'reported-in-future',
      'Sample from the future',
      'reportedAt is more than 5 minutes ahead of the platform clock.',
      [{ field: 'body.reportedAt', message: 'in the future' }],
    );
  }
  const outcome = await recordEnclaveMetrics(deps.db, {
    enclaveId: id,
    instanceId: caller.instanceId,
    sample,
    receivedAt: now.toISOString(),
  });
  if (outcome === 'not-running') throw notRunning();
  return { status: 202, body: null };
}

export interface MetricsQuery {
  readonly limit: number;
  /** Where the previous page ended (its decoded nextCursor). */
  readonly cursor?: { readonly reportedAt: string } | undefined;
}

/** `GET /enclaves/{id}/metrics`: recent samples, newest first (by `reportedAt`), keyset-paginated. */
export async function listMetricsOfEnclave(
  deps: Dependencies,
  caller: Identity,
  id: string,
  query: MetricsQuery,
): Promise<Reply<{ items: StoredEnclaveMetrics[]; nextCursor: string | null }>> {
  await loadVisible(deps, caller, id);
  const before = query.cursor?.reportedAt;
  const rows = await listEnclaveMetrics(deps.db, id, { limit: query.limit + 1, before });
  return { status: 200, body: pageOf(rows, query.limit, (m) => ({ reportedAt: m.reportedAt })) };
}
