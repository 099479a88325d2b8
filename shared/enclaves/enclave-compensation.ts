import { isFinalEnclaveStatus } from '../domain/enclave.ts';
import { type Dependencies, workflowPorts } from '../runtime/dependencies.ts';
import { claimProvisioning, failEnclave } from './enclave-steps.ts';
import { loadEnclave } from './enclave-store.ts';

/**
 * Compensation of a provisioning execution: shared by the workflow's Compensate step and by the
 * enforcement function (executions that timed out or were stopped skip their Catch). Its own module, so
 * the enforcement bundle does not carry the attestation verifier of the workflow's steps.
 */

/** What Compensate did. */
export interface CompensationOutcome {
  readonly enclaveId: string;
  readonly status: string;
  readonly terminatedInstances: string[];
  readonly reason: string;
}

export interface CompensationInput {
  readonly enclaveId: string;
  /** The execution that failed: only the execution that owns the enclave may fail it. */
  readonly executionArn: string;
  /** The instance the execution launched or restarted, when it got that far. */
  readonly instanceId?: string | undefined;
  readonly reason: { readonly code: string; readonly message: string };
  readonly attestationRefused?: boolean;
  /**
   * The execution failed before its claim (Validate exhausted its retries): an Initializing enclave that
   * no execution claimed would otherwise stay so forever, so this execution claims it to fail it.
   */
  readonly claimIfUnclaimed?: boolean;
}

/**
 * Compensation of a provisioning execution that failed, timed out or was stopped: it acts only on what
 * that execution owns.
 * - The enclave is `Initializing` and claimed by this execution: every instance tagged with it is
 *   terminated, then it becomes `Failed` with the reason.
 * - The enclave is final (`Failed`, `Terminated`): leftover tagged instances are terminated (none may run).
 * - Anything else is another execution's (a duplicate, a superseded run, a resume's new run) or already
 *   `Running`/`Suspended`: nothing is touched.
 * Safe to repeat.
 */
export async function compensateProvisioning(
  deps: Dependencies,
  input: CompensationInput,
): Promise<CompensationOutcome> {
  const summary = `${input.reason.code}: ${input.reason.message}`;
  const loaded = await loadEnclave(deps.db, input.enclaveId);
  if (!loaded)
    return { enclaveId: input.enclaveId, status: 'unknown', terminatedInstances: [], reason: summary };
  let { enclave } = loaded;
  if (input.claimIfUnclaimed && enclave.status === 'Initializing' && enclave.executionArn === null) {
    const claim = await claimProvisioning(deps, enclave.id, input.executionArn);
    if (claim.claimed) enclave = claim.enclave;
  }
  const final = isFinalEnclaveStatus(enclave.status);
  const owned = enclave.status === 'Initializing' && enclave.executionArn === input.executionArn;
  if (!final && !owned) {
    return { enclaveId: enclave.id, status: enclave.status, terminatedInstances: [], reason: summary };
  }
  const { instances } = workflowPorts(deps);
  const live = await instances.listForEnclave(enclave.id);
  const ids = [
    ...new Set([...live.map((i) => i.instanceId), ...(input.instanceId ? [input.instanceId] : [])]),
  ];
  await instances.terminate(ids);
  if (final)
    return { enclaveId: enclave.id, status: enclave.status, terminatedInstances: ids, reason: summary };
  const failed = await failEnclave(deps, {
    enclaveId: enclave.id,
    reason: input.reason,
    instanceId: input.instanceId,
    attestationRefused: input.attestationRefused === true,
    executionArn: input.executionArn,
  });
  return { enclaveId: enclave.id, status: failed.status, terminatedInstances: ids, reason: summary };
}
