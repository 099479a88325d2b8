import type { EnclaveStatus } from '../domain/enclave.ts';
import * as z from '../domain/zod.ts';
import { EVENT_SOURCE } from '../events/event-bus.ts';
import { type Dependencies, workflowPorts } from '../runtime/dependencies.ts';
import { logger } from '../runtime/logger.ts';
import { type CompensationOutcome, compensateProvisioning } from './enclave-compensation.ts';
import { applyContractStatusToEnclaves } from './enclave-service.ts';
import { failEnclave } from './enclave-steps.ts';
import { loadEnclave } from './enclave-store.ts';
import { WORKFLOW_TIMING } from './provisioning-workflow.ts';

/**
 * Keeps EC2 in line with the enclaves' statuses, driven by domain events (outbox → EventBridge):
 * - an enclave event (`EnclaveSuspended`, `EnclaveTerminated`, `EnclaveFailed`) stops or terminates the
 *   enclave's parent instances, found by the enclave tag;
 * - a contract event (`ContractSuspended`, `ContractTerminated`, `ContractExpired`) suspends or terminates
 *   the contract's enclaves through their audited writes, and at once stops or terminates their parents
 *   as their enclave events would; those events still come back here (finding nothing left to do), so a
 *   parent this first pass failed to reach is still acted on, with the enclave event's own retries.
 *
 * EventBridge delivers at least once and in no particular order, so the event only says WHICH enclave or
 * contract to look at: what is done follows from its status as loaded now. A repeated event finds nothing
 * left to do; a late `EnclaveSuspended` for an enclave resumed since does nothing; one for an enclave
 * terminated since terminates. Failures throw (transient ones carry `transient: true`), so the Lambda's
 * asynchronous retries and its dead-letter queue take over.
 *
 * It also notices parents that die out of band: EC2's own state-change event (`aws.ec2`, default bus) for
 * an instance that is stopping, stopped, shutting down or terminated fails the Running enclave whose parent
 * it is, unless EC2 says the instance runs again (a late event); the failure is audited and announced
 * (`EnclaveFailed`), whose enforcement then terminates what is left of the parent.
 *
 * It is also the provisioning workflow's safety net: an execution that times out (execution timeout) or is
 * stopped (StopExecution, the console) ends without running any Catch, so no Compensate. Step Functions'
 * own status-change event for it (`aws.states`, default bus) compensates here instead, with the same rule
 * as the Compensate step: only what that execution owns is failed and terminated.
 */

/** The detail-types that trigger enforcement: the CDK rule's pattern, and what the handler accepts. */
export const ENFORCEMENT_DETAIL_TYPES = {
  enclave: ['EnclaveSuspended', 'EnclaveTerminated', 'EnclaveFailed', 'EnclaveUpdated'],
  contract: ['ContractSuspended', 'ContractTerminated', 'ContractExpired'],
} as const;

/**
 * Step Functions' event for an execution that ended without its Catch running (default bus). The CDK rule
 * matches these statuses of the provisioning state machine only; each maps to the failure code recorded on
 * the enclave.
 */
export const EXECUTION_END_EVENT = {
  source: 'aws.states',
  detailType: 'Step Functions Execution Status Change',
  statuses: { TIMED_OUT: 'execution_timed_out', ABORTED: 'execution_aborted' },
} as const;
export type UncaughtExecutionEnd = keyof typeof EXECUTION_END_EVENT.statuses;

/**
 * EC2's event for an instance that changed state (default bus). The CDK rule matches these states, the ones
 * in which an enclave no longer runs; the handler looks the instance up among the enclaves' parents.
 */
export const INSTANCE_STATE_EVENT = {
  source: 'aws.ec2',
  detailType: 'EC2 Instance State-change Notification',
  states: ['stopping', 'stopped', 'shutting-down', 'terminated'],
} as const;
export type ParentDownState = (typeof INSTANCE_STATE_EVENT.states)[number];

/** What to look at, parsed from an event. */
export type EnforcementTrigger =
  | { readonly kind: 'enclave'; readonly enclaveId: string }
  | { readonly kind: 'contract'; readonly contractId: string }
  | {
      readonly kind: 'execution';
      readonly enclaveId: string;
      readonly executionArn: string;
      readonly status: UncaughtExecutionEnd;
    }
  | { readonly kind: 'instance'; readonly instanceId: string; readonly state: ParentDownState };

/** Enclave events' detail: `{ eventId, aggregateType, aggregateId, enclaveId, contractId, status, … }`. */
const EnclaveDetailSchema = z.object({ enclaveId: z.uuid() });
/** Contract events' detail: `{ eventId, aggregateType: 'contract', aggregateId, contractId, status, … }`. */
const ContractDetailSchema = z.object({ aggregateId: z.uuid() });

/** The execution's input: a JSON string (absent when too large to include: then the event is refused). */
const ExecutionInputSchema = z.object({ enclaveId: z.uuid() });
/** Step Functions' execution status-change detail (the fields read here). */
const ExecutionEndDetailSchema = z.object({
  executionArn: z.string().check(z.minLength(1), z.maxLength(2048)),
  status: z.string(),
  input: z.pipe(
    z.pipe(
      z.string().check(z.maxLength(262_144)),
      z.transform((text: string, ctx) => {
        try {
          return JSON.parse(text) as unknown;
        } catch {
          ctx.issues.push({ code: 'custom', message: 'the execution input is not JSON', input: text });
          return z.NEVER;
        }
      }),
    ),
    ExecutionInputSchema,
  ),
});

/** EC2's state-change detail: `{ "instance-id": "i-…", "state": "terminated" }`. */
const InstanceStateDetailSchema = z.object({
  'instance-id': z.string().check(z.regex(/^i-[0-9a-f]{8}(?:[0-9a-f]{9})?$/)),
  state: z.enum(INSTANCE_STATE_EVENT.states),
});

const ENCLAVE_TYPES: ReadonlySet<string> = new Set(ENFORCEMENT_DETAIL_TYPES.enclave);
const CONTRACT_TYPES: ReadonlySet<string> = new Set(ENFORCEMENT_DETAIL_TYPES.contract);

/**
 * The trigger an event carries, or null for a detail-type enforcement does not handle.
 * @throws ZodError when a handled event's detail lacks its id (a malformed event: retried, then dead-lettered)
 * @example
 * enforcementTriggerOf('EnclaveSuspended', { enclaveId }) // { kind: 'enclave', enclaveId }
 */
export function enforcementTriggerOf(detailType: string, detail: unknown): EnforcementTrigger | null {
  if (ENCLAVE_TYPES.has(detailType)) {
    return { kind: 'enclave', enclaveId: z.parse(EnclaveDetailSchema, detail).enclaveId };
  }
  if (CONTRACT_TYPES.has(detailType)) {
    return { kind: 'contract', contractId: z.parse(ContractDetailSchema, detail).aggregateId };
  }
  return null;
}

/**
 * The trigger of an EventBridge event by its source: the platform's domain events
 * ({@link enforcementTriggerOf}), or Step Functions' end of a provisioning execution that timed out or was
 * aborted ({@link EXECUTION_END_EVENT}); null for anything else (another status, source or detail-type).
 * @throws ZodError when a handled event lacks what it must carry (retried, then dead-lettered)
 * @example
 * triggerOfEvent('aws.states', 'Step Functions Execution Status Change',
 *   { executionArn, status: 'TIMED_OUT', input: '{"enclaveId":"…"}' })
 * // { kind: 'execution', enclaveId, executionArn, status: 'TIMED_OUT' }
 */
export function triggerOfEvent(
  source: string,
  detailType: string,
  detail: unknown,
): EnforcementTrigger | null {
  if (source === EVENT_SOURCE) return enforcementTriggerOf(detailType, detail);
  if (source === INSTANCE_STATE_EVENT.source && detailType === INSTANCE_STATE_EVENT.detailType) {
    const state = (detail as { state?: unknown } | null)?.state;
    if (!(INSTANCE_STATE_EVENT.states as readonly unknown[]).includes(state)) return null;
    const parsed = z.parse(InstanceStateDetailSchema, detail);
    return { kind: 'instance', instanceId: parsed['instance-id'], state: parsed.state };
  }
  if (source !== EXECUTION_END_EVENT.source || detailType !== EXECUTION_END_EVENT.detailType) return null;
  const status = (detail as { status?: unknown } | null)?.status;
  if (typeof status !== 'string' || !Object.hasOwn(EXECUTION_END_EVENT.statuses, status)) return null;
  const { executionArn, input } = z.parse(ExecutionEndDetailSchema, detail);
  return {
    kind: 'execution',
    enclaveId: input.enclaveId,
    executionArn,
    status: status as UncaughtExecutionEnd,
  };
}

/** What enforcing one enclave did. */
export interface EnclaveEnforcement {
  readonly enclaveId: string;
  /** The status acted on (loaded now); null when no such enclave exists (nothing is done then). */
  readonly status: EnclaveStatus | null;
  /** Instances this call asked EC2 to stop. */
  readonly stopped: string[];
  /** Instances this call asked EC2 to terminate. */
  readonly terminated: string[];
}

/** What enforcing one contract did: the enclaves it suspended and terminated, and their parents. */
export interface ContractEnforcement {
  readonly contractId: string;
  readonly suspended: string[];
  readonly terminated: string[];
  /** What enforcing those enclaves at once did, for each one it reached. */
  readonly enclaves: EnclaveEnforcement[];
  /** Enclaves whose parents could not be reached now: their own enclave events act on them. */
  readonly deferred: string[];
}

/** How many enclaves of one contract are enforced at once (EC2 calls in flight). */
const CONTRACT_ENCLAVES_AT_ONCE = 8;

/**
 * Brings the parent instances of `enclaveId` in line with the enclave's current status:
 * - `Suspended`: its parent (`instanceId`) is stopped if pending or running (resuming restarts it); any
 *   other tagged parent was retired by an edit (`EnclaveUpdated`) and is terminated;
 * - `Terminated`, `Failed`: every instance not already shutting down is terminated;
 * - `Initializing`, `Running`: nothing (the provisioning workflow owns the instances then).
 * @throws InstanceControlError (see `transient`) when EC2 fails, or when an instance is still `pending`
 *   and cannot be stopped yet (the running ones are stopped first); Error when the function has no
 *   workflow ports.
 * @example
 * const { stopped } = await enforceEnclaveStatus(deps, enclaveId);
 */
export async function enforceEnclaveStatus(
  deps: Dependencies,
  enclaveId: string,
): Promise<EnclaveEnforcement> {
  const { instances } = workflowPorts(deps);
  const loaded = await loadEnclave(deps.db, enclaveId);
  const status = loaded?.enclave.status ?? null;
  const done: EnclaveEnforcement = { enclaveId, status, stopped: [], terminated: [] };
  if (status === 'Suspended') {
    // Its parent is stopped; any other parent was retired by an edit (new resources or image: resume
    // launches one that fits) and is terminated.
    const live = await instances.listForEnclave(enclaveId);
    const current = loaded?.enclave.instanceId ?? null;
    const toStop = live
      .filter((i) => i.instanceId === current && (i.state === 'pending' || i.state === 'running'))
      .map((i) => i.instanceId);
    const retired = live
      .filter((i) => i.instanceId !== current && i.state !== 'shutting-down')
      .map((i) => i.instanceId);
    done.stopped.push(...toStop);
    done.terminated.push(...retired);
    await instances.terminate(retired);
    await instances.stop(toStop);
  } else if (status === 'Terminated' || status === 'Failed') {
    const live = await instances.listForEnclave(enclaveId);
    const toTerminate = live.filter((i) => i.state !== 'shutting-down').map((i) => i.instanceId);
    done.terminated.push(...toTerminate);
    await instances.terminate(toTerminate);
  }
  return done;
}

/**
 * Applies the contract's current status to its enclaves (`applyContractStatusToEnclaves`), then brings
 * the parents of the enclaves it changed in line at once ({@link enforceEnclaveStatus}, a few at a time):
 * waiting for their own enclave events would add a round through the outbox and the bus (about a second
 * locally, more in AWS) before a suspended contract's parents stop. Those events still follow and find
 * nothing left to do; an enclave whose parents cannot be reached now (EC2 throttling, say) is left to its
 * event, whose delivery is retried, rather than failing the contract's event, whose retry would find no
 * enclave left to change.
 */
export async function enforceContractStatus(
  deps: Dependencies,
  contractId: string,
): Promise<ContractEnforcement> {
  const { suspended, terminated } = await applyContractStatusToEnclaves(deps, contractId);
  const changed = [...suspended, ...terminated];
  const enclaves: EnclaveEnforcement[] = [];
  const deferred: string[] = [];
  for (let i = 0; i < changed.length; i += CONTRACT_ENCLAVES_AT_ONCE) {
    const batch = changed.slice(i, i + CONTRACT_ENCLAVES_AT_ONCE);
    const outcomes = await Promise.allSettled(batch.map((id) => enforceEnclaveStatus(deps, id)));
    outcomes.forEach((outcome, index) => {
      if (outcome.status === 'fulfilled') enclaves.push(outcome.value);
      else {
        deferred.push(batch[index]!);
        logger.warn('enclave enforcement deferred to its own event', {
          contractId,
          enclaveId: batch[index],
          error: outcome.reason instanceof Error ? outcome.reason.message : String(outcome.reason),
        });
      }
    });
  }
  return { contractId, suspended, terminated, enclaves, deferred };
}

/**
 * Compensates a provisioning execution that timed out or was aborted, as its Compensate step would have:
 * if it still owns its Initializing enclave, every instance tagged with it is terminated and the enclave
 * becomes `Failed` (`execution_timed_out` / `execution_aborted`); an enclave another execution owns, or
 * one already Running or Suspended, is left alone (see `compensateProvisioning`). Safe to repeat.
 */
export function compensateUncaughtExecutionEnd(
  deps: Dependencies,
  trigger: Extract<EnforcementTrigger, { kind: 'execution' }>,
): Promise<CompensationOutcome> {
  const message =
    trigger.status === 'TIMED_OUT'
      ? `The provisioning execution ran longer than ${WORKFLOW_TIMING.executionTimeoutSeconds} seconds and timed out before it could finish or compensate.`
      : 'The provisioning execution was stopped (aborted) before it could finish or compensate.';
  return compensateProvisioning(deps, {
    enclaveId: trigger.enclaveId,
    executionArn: trigger.executionArn,
    reason: { code: EXECUTION_END_EVENT.statuses[trigger.status], message },
  });
}

/** What an EC2 state-change event of a parent led to. */
export interface ParentStateEnforcement {
  readonly instanceId: string;
  /** The enclave the instance's tag names; null when EC2 knows no such instance or it has no enclave tag. */
  readonly enclaveId: string | null;
  /** The enclave's status when looked at (before any failure); null when the database was not read. */
  readonly status: EnclaveStatus | null;
  /**
   * `failed`: the enclave was Running on this parent and EC2 confirms the parent down; `stale`: EC2 says the
   * instance runs (a late event); `none`: not a Running enclave's current parent (another team's instance, a
   * stop of ours that left the enclave Suspended, a parent retired by an edit, or one being provisioned,
   * which is the workflow's: its heartbeat times out and it compensates).
   */
  readonly outcome: 'failed' | 'stale' | 'none';
}

/**
 * A parent stopped or terminated outside the platform (an operator in the console, an instance retirement, a
 * host failure): its Running enclave becomes `Failed` (`parent_stopped` or `parent_terminated`, audited, and
 * announced as `EnclaveFailed`, whose enforcement terminates the parent). The event only names the instance
 * and the rule matches every instance of the account: EC2 is asked first (its enclave tag and its state now),
 * so another instance's event or a late one never reaches the database (nor wakes a paused cluster); the
 * enclave is then loaded and must still be Running on that very instance (a tag names, it does not prove).
 */
export async function enforceParentStateChange(
  deps: Dependencies,
  trigger: Extract<EnforcementTrigger, { kind: 'instance' }>,
): Promise<ParentStateEnforcement> {
  const { instanceId } = trigger;
  const parent = await workflowPorts(deps).instances.parentOf(instanceId);
  if (parent === null || parent.enclaveId === null) {
    return { instanceId, enclaveId: null, status: null, outcome: 'none' };
  }
  const { enclaveId, state } = parent;
  if (state === 'pending' || state === 'running') {
    return { instanceId, enclaveId, status: null, outcome: 'stale' };
  }
  const loaded = await loadEnclave(deps.db, enclaveId);
  const status = loaded?.enclave.status ?? null;
  if (loaded === null || status !== 'Running' || loaded.enclave.instanceId !== instanceId) {
    return { instanceId, enclaveId, status, outcome: 'none' };
  }
  const stopped = state === 'stopping' || state === 'stopped';
  await failEnclave(deps, {
    enclaveId,
    instanceId,
    reason: {
      code: stopped ? 'parent_stopped' : 'parent_terminated',
      message: `The parent instance ${instanceId} is ${state}: it was ${stopped ? 'stopped' : 'terminated'} outside the platform (an operator, an instance retirement or a host failure), and the enclave with it.`,
    },
  });
  return { instanceId, enclaveId, status, outcome: 'failed' };
}

/** Enforces what `trigger` points at. */
export function enforce(
  deps: Dependencies,
  trigger: EnforcementTrigger,
): Promise<EnclaveEnforcement | ContractEnforcement | CompensationOutcome | ParentStateEnforcement> {
  switch (trigger.kind) {
    case 'enclave':
      return enforceEnclaveStatus(deps, trigger.enclaveId);
    case 'contract':
      return enforceContractStatus(deps, trigger.contractId);
    case 'execution':
      return compensateUncaughtExecutionEnd(deps, trigger);
    case 'instance':
      return enforceParentStateChange(deps, trigger);
  }
}
