/**
 * The workflow task-token port. The provisioning workflow's WaitForAttestation state
 * (`.waitForTaskToken`, with heartbeat and timeout) records its task token against the enclave it waits
 * for; the attestation route, when the parent instance's agent posts the document, takes the token and
 * completes the task (`SendTaskSuccess`). Taking is atomic and happens at most once per token, so a
 * duplicate or late callback never completes a task twice and never completes a task it was not meant for.
 *
 * Semantics, in one place:
 * - **One pending wait per enclave.** `put` replaces whatever wait the enclave had: the newest execution
 *   (or the newest attempt of a state) supersedes older ones. A superseded token is never handed out; its
 *   execution's wait ends by its own `TimeoutSeconds`/`HeartbeatSeconds` and goes to Compensate. Callers
 *   must therefore not run two provisioning executions for one enclave at once (the workflow service starts
 *   them under a deterministic execution name for that reason).
 * - **A token is stored once.** `put` of a token that is already stored (a retried put, or a replay of the
 *   state's input) is a no-op: it neither revives a taken token nor extends its expiry.
 * - **A token is handed out once.** Of any number of concurrent `take`s for an enclave, at most one
 *   receives the token; the rest learn why not.
 * - **Expiry is the store's own check.** A wait past its `expiresAt` is `'expired'` even while the item
 *   still exists (TTL deletion is lazy); once TTL has deleted it, it is `'none'`.
 *
 * Adapters: DynamoDB with a TTL in AWS and, through the same adapter, dynalite locally
 * (`dynamodb-task-token-store.ts`, sharing the nonce table's layout; `infra/local/services/dynamodb/local-dynamodb.ts`).
 */

/** The longest task token Step Functions issues or accepts (`SendTaskSuccess.taskToken`, 1..1024). */
export const MAX_TASK_TOKEN_LENGTH = 1024;

/**
 * The longest a wait may be recorded for. WaitForAttestation only has to outlive an instance's boot and the
 * agent's first submission; a longer window only widens the time in which a stray callback is accepted.
 */
export const MAX_TASK_WAIT_SECONDS = 24 * 60 * 60;

/** The longest caller-presented instance id looked at; anything longer is refused without a round trip. */
export const MAX_INSTANCE_ID_LENGTH = 256;

/** What a waiting workflow state records for its enclave. */
export interface PendingTaskWait {
  /** `$$.Task.Token`: 1..{@link MAX_TASK_TOKEN_LENGTH} characters, opaque. */
  readonly taskToken: string;
  /** The Step Functions execution waiting (diagnosis, and for the caller of `take` to log or check). */
  readonly executionArn: string;
  /**
   * The parent instance whose agent may complete this wait. When set, `take` refuses every caller that does
   * not present exactly this id (including a caller that presents none): fail closed.
   */
  readonly instanceId?: string;
  /**
   * The wait is refused from this instant on; stored in whole seconds, rounded down (never later than
   * asked). Must lie in the future and at most {@link MAX_TASK_WAIT_SECONDS} ahead.
   */
  readonly expiresAt: Date;
}

/** Who is calling back: the route's authenticated view of the caller. */
export interface TaskTokenCaller {
  /** The calling parent instance (in AWS from its IAM role session); untrusted as to shape. */
  readonly instanceId?: string;
}

/** A token handed out by `take`: complete the task with it, exactly once. */
export interface TakenTaskToken {
  readonly taskToken: string;
  readonly executionArn: string;
}

/**
 * The outcome of a `take`. Only a {@link TakenTaskToken} lets the caller complete the task; every other
 * outcome is a refusal, distinguished so that audit entries and problem details say what happened.
 * - `'none'`: no wait recorded for the enclave (never put, or already deleted by TTL), or a malformed item.
 * - `'wrong_instance'`: the wait is bound to another parent instance than the caller's (the caller learns
 *   nothing more: not whether the token was taken or has expired).
 * - `'already_taken'`: the token was handed out before: a duplicate callback.
 * - `'expired'`: the wait is past its `expiresAt`, never taken: a late callback.
 *
 * When several refusals apply, `'none'` wins over `'wrong_instance'`, which wins over `'already_taken'`,
 * which wins over `'expired'`.
 */
export type TaskTokenTake = TakenTaskToken | 'none' | 'wrong_instance' | 'already_taken' | 'expired';

/** Records the pending workflow wait of each enclave and hands its token out at most once. */
export interface TaskTokenStore {
  /**
   * Records `wait` as the enclave's pending wait, replacing any older one (see the module comment). Putting
   * a token that is already stored is a no-op.
   *
   * @throws {TypeError | RangeError} for an empty enclave id, a token outside 1..{@link MAX_TASK_TOKEN_LENGTH}
   *   characters, an empty execution ARN or instance id, or an `expiresAt` not in (now, now +
   *   {@link MAX_TASK_WAIT_SECONDS}] (programming errors, not input errors).
   * @throws {TaskTokenStoreError} when the store cannot be reached (see `transient`).
   */
  put(enclaveId: string, wait: PendingTaskWait): Promise<void>;

  /**
   * Takes the enclave's pending token, atomically marking it taken: of any number of concurrent calls, at
   * most one ever receives it. `enclaveId` and `caller` may be untrusted input; malformed values are
   * refused (`'none'`, `'wrong_instance'`) without a store round trip.
   *
   * @throws {TaskTokenStoreError} when the store cannot be reached. The token may or may not have been taken
   *   then; a retry answers `'already_taken'` in the worst case, which fails closed (the wait times out).
   */
  take(enclaveId: string, caller?: TaskTokenCaller): Promise<TaskTokenTake>;

  /**
   * Reads the enclave's pending wait without taking it: the token when `take` would hand it to this caller
   * now, otherwise the refusal `take` would give (same precedence). For the agent's heartbeat, which keeps
   * the wait alive (`SendTaskHeartbeat`) but must not use it up. A strongly consistent read; untrusted
   * input is refused as by `take`.
   * @throws {TaskTokenStoreError} when the store cannot be reached.
   */
  peek(enclaveId: string, caller?: TaskTokenCaller): Promise<TaskTokenTake>;

  /**
   * Forgets the enclave's wait, taken or not: a new provisioning run (Challenge) starts from no wait, so an
   * agent that calls before the new WaitForAttestation is told "not open yet" (and retries) instead of
   * "already taken" or "expired" by the previous run's wait. A no-op when there is none.
   * @throws {TypeError} for an invalid enclave id; {TaskTokenStoreError} when the store cannot be reached.
   */
  discard(enclaveId: string): Promise<void>;

  /**
   * Hands a taken token back, so the same caller can take it again: for a completion that failed
   * transiently (Step Functions throttled) after the take, which would otherwise use up the wait. Only the
   * token that was taken is released (a newer wait is left alone); a no-op when it is not taken.
   * @throws {TaskTokenStoreError} when the store cannot be reached.
   */
  release(enclaveId: string, taskToken: string): Promise<void>;
}

/** The task-token store itself failed (not a refusal): never shown to clients beyond a 5xx. */
export class TaskTokenStoreError extends Error {
  override readonly name = 'TaskTokenStoreError';
  /** The store was unavailable or throttled: the operation may succeed later (503, or a workflow retry). */
  readonly transient: boolean;

  constructor(message: string, options?: { cause?: unknown; transient?: boolean }) {
    super(message, options);
    this.transient = options?.transient ?? false;
  }
}
