import { decodeUnverifiedAttestation } from '../attestation/index.ts';
import { recordSecurityRefusal } from '../audit/security-refusals.ts';
import type { AgentPhase } from '../domain/enclave.ts';
import {
  ConflictError,
  DomainError,
  ForbiddenError,
  NotFoundError,
  ValidationError,
} from '../domain/errors.ts';
import type { InstanceCaller } from '../http/instance-caller.ts';
import { type Dependencies, workflowPorts } from '../runtime/dependencies.ts';
import { logger } from '../runtime/logger.ts';
import type { TaskTokenTake } from '../workflow/task-token-store.ts';
import { loadEnclave } from './enclave-store.ts';
import type { AttestationSubmission } from './provisioning-workflow.ts';

/**
 * `POST /enclaves/{id}/attestation`: the parent instance's agent hands in the enclave's attestation
 * document, and the route completes the workflow's WaitForAttestation task with it. The route judges only
 * who is calling and whether a wait is open for that caller; the document itself is judged by the
 * VerifyAttestation step (so one verifier, one policy, one nonce consumption, all in the workflow).
 *
 * Fail closed, in this order: the document must be structurally an attestation document (400, nothing
 * else looked at); the enclave must exist (404) and be `Initializing` (409); an instance other
 * than the one the workflow launched is refused (403); the wait must be open: none yet (409
 * `attestation-wait-not-open`, the agent retries), already completed (409, a duplicate callback) or past its deadline (410, a late callback).
 * Security-relevant refusals (another instance, a duplicate, a late document) leave an audit record; none
 * of them changes anything else.
 */

/** Gone: the wait this submission was for has ended (a late callback). */
export class GoneError extends DomainError {
  override readonly name = 'GoneError';
  constructor(type: string, title: string, detail: string) {
    super(410, type, title, detail);
  }
}

export interface SubmitAttestationInput {
  readonly enclaveId: string;
  /** Base64 of the COSE_Sign1 document (bounded by the route's schema). */
  readonly document: string;
}

/**
 * Completes the enclave's WaitForAttestation with the submitted document.
 * @returns 202-worthy acknowledgement: the document is on its way to VerifyAttestation.
 * @throws NotFoundError, ConflictError, ForbiddenError or GoneError as described above.
 * @example
 * await submitAttestation(deps, caller, { enclaveId, document });
 */
export async function submitAttestation(
  deps: Dependencies,
  caller: InstanceCaller,
  input: SubmitAttestationInput,
): Promise<{ enclaveId: string; instanceId: string; status: 'verifying' }> {
  const { taskTokens, callbacks } = workflowPorts(deps);
  // Structure first (COSE_Sign1 with an attestation payload): garbage never uses up the wait. Nothing here
  // is trusted; VerifyAttestation verifies the chain, the signature and the policy.
  const decoded = decodeUnverifiedAttestation(input.document);
  if (!decoded.ok) {
    throw new ValidationError(
      `The document is not a Nitro Enclaves attestation document: ${decoded.message}`,
      [{ field: 'body.document', message: decoded.code }],
    );
  }
  const { enclave, refuse } = await awaitingEnclave(deps, caller, input.enclaveId, 'submit-attestation');
  const taken: TaskTokenTake = await taskTokens.take(enclave.id, { instanceId: caller.instanceId });
  switch (taken) {
    case 'none':
      // Usually the agent is faster than the workflow's WaitForAttestation: not audited, the agent retries.
      throw waitNotOpen(enclave.id);
    case 'wrong_instance':
      return refuse('wrong-instance', wrongInstance(enclave.id));
    case 'already_taken':
      return refuse('attestation-already-submitted', alreadySubmitted(enclave.id));
    case 'expired':
      return refuse('attestation-wait-expired', lateSubmission(enclave.id));
  }
  const submission: AttestationSubmission = {
    document: input.document,
    instanceId: caller.instanceId,
    receivedAt: deps.now().toISOString(),
  };
  let sent: 'sent' | 'gone';
  try {
    sent = await callbacks.succeed(taken.taskToken, submission);
  } catch (error) {
    // Step Functions throttled or failed: hand the token back so the agent's retry can complete the wait
    // (the route answers 503 with Retry-After), instead of using up the wait with nothing delivered.
    if ((error as { transient?: unknown }).transient === true) {
      await taskTokens.release(enclave.id, taken.taskToken).catch(() => undefined);
    }
    throw error;
  }
  if (sent === 'gone') return refuse('attestation-wait-expired', lateSubmission(enclave.id));
  return { enclaveId: enclave.id, instanceId: caller.instanceId, status: 'verifying' };
}

export interface AttestationHeartbeatInput {
  readonly enclaveId: string;
  readonly phase: AgentPhase;
}

/**
 * `POST /enclaves/{id}/attestation/heartbeat`: the parent's agent (and, while it fetches the image, its
 * user data) tells the workflow it is still on its way to a document, so WaitForAttestation's heartbeat
 * (shorter than its timeout) ends the wait early only when the parent went silent: a dead parent is
 * compensated in minutes, not at the timeout. The wait is only read, never used up: the document's
 * submission still takes the token once.
 *
 * Refused as the submission is, minus the document: 404, 403 for another instance (audited), 409
 * `attestation-not-awaited` (not Initializing), 409 `attestation-wait-not-open` (retry), 409
 * `attestation-already-submitted` (also when the document completed the wait while this heartbeat was
 * on its way) and 410 `attestation-wait-expired`. Only the foreign instance is a security refusal; the
 * others are the parent's own ordinary races and are not audited. Accepted heartbeats are logged with
 * their phase, for operators following a slow boot.
 * @example
 * await sendAttestationHeartbeat(deps, caller, { enclaveId, phase: 'fetching-image' });
 */
export async function sendAttestationHeartbeat(
  deps: Dependencies,
  caller: InstanceCaller,
  input: AttestationHeartbeatInput,
): Promise<{ enclaveId: string; instanceId: string; phase: AgentPhase; status: 'waiting' }> {
  const { taskTokens, callbacks } = workflowPorts(deps);
  const { enclave, refuse } = await awaitingEnclave(deps, caller, input.enclaveId, 'attestation-heartbeat');
  const wait: TaskTokenTake = await taskTokens.peek(enclave.id, { instanceId: caller.instanceId });
  switch (wait) {
    case 'none':
      throw waitNotOpen(enclave.id);
    case 'wrong_instance':
      return refuse('wrong-instance', wrongInstance(enclave.id));
    case 'already_taken':
      throw alreadySubmitted(enclave.id);
    case 'expired':
      throw lateSubmission(enclave.id);
  }
  if ((await callbacks.heartbeat(wait.taskToken)) === 'gone') {
    // The document may have completed the wait between the read and the heartbeat: say so, not "too late".
    const now = await taskTokens.peek(enclave.id, { instanceId: caller.instanceId });
    throw now === 'already_taken' ? alreadySubmitted(enclave.id) : lateSubmission(enclave.id);
  }
  logger.info('attestation heartbeat', {
    enclaveId: enclave.id,
    instanceId: caller.instanceId,
    phase: input.phase,
  });
  return { enclaveId: enclave.id, instanceId: caller.instanceId, phase: input.phase, status: 'waiting' };
}

/**
 * The checks both agent calls start with: the enclave exists (404), is called by its parent once that is
 * known (403, audited), and is Initializing (409, audited as `attestation-not-awaited` for a document
 * only). Returns the enclave and how to refuse with an audit record.
 */
async function awaitingEnclave(
  deps: Dependencies,
  caller: InstanceCaller,
  enclaveId: string,
  action: 'submit-attestation' | 'attestation-heartbeat',
) {
  const loaded = await loadEnclave(deps.db, enclaveId);
  if (!loaded) throw new NotFoundError(`Enclave ${enclaveId}`);
  const { enclave } = loaded;
  const refuse = async (code: string, error: DomainError): Promise<never> => {
    await recordSecurityRefusal(deps, {
      entityType: 'enclave',
      entityId: enclave.id,
      action,
      callerArn: caller.callerArn,
      code,
      detail: error.message,
    });
    throw error;
  };
  // Whose parent first: another instance learns nothing about the enclave (not even its status), and
  // every probe it makes is recorded. A restarted (resumed) enclave keeps its parent.
  if (enclave.instanceId !== null && enclave.instanceId !== caller.instanceId) {
    return refuse('wrong-instance', wrongInstance(enclave.id));
  }
  if (enclave.status !== 'Initializing') {
    const error = new ConflictError(
      'attestation-not-awaited',
      'No attestation awaited',
      `Enclave ${enclave.id} does not await an attestation: the wait only exists while it is provisioned.`,
    );
    // A document for an enclave that awaits none is worth a record; its own parent's heartbeat racing a
    // failure is not.
    if (action === 'submit-attestation') return refuse('attestation-not-awaited', error);
    throw error;
  }
  return { enclave, refuse };
}

function waitNotOpen(enclaveId: string): ConflictError {
  return new ConflictError(
    'attestation-wait-not-open',
    'No attestation awaited yet',
    `The provisioning workflow of enclave ${enclaveId} is not waiting for an attestation (yet); retry shortly.`,
  );
}

function alreadySubmitted(enclaveId: string): ConflictError {
  return new ConflictError(
    'attestation-already-submitted',
    'Attestation already submitted',
    `An attestation document was already submitted for enclave ${enclaveId}; it is being verified.`,
  );
}

function wrongInstance(enclaveId: string): ForbiddenError {
  return new ForbiddenError(`This instance is not the parent instance of enclave ${enclaveId}.`);
}

function lateSubmission(enclaveId: string): GoneError {
  return new GoneError(
    'attestation-wait-expired',
    'Attestation too late',
    `The provisioning workflow of enclave ${enclaveId} stopped waiting for an attestation.`,
  );
}
