/**
 * The attestation-nonce port. The provisioning workflow's Challenge step issues a fresh random nonce bound
 * to one enclave; the parent agent asks the enclave for an attestation document carrying that nonce; the
 * VerifyAttestation step consumes it. Consuming exactly once is what makes a recorded document useless to
 * an attacker: a replayed document carries a nonce that is already consumed (or was never ours).
 *
 * Adapters: DynamoDB with a TTL in AWS and, through the same adapter, dynalite locally
 * (`dynamodb-nonce-store.ts`, `infra/local/services/dynamodb/local-dynamodb.ts`).
 */

/** Length of every nonce in bytes: 256 bits, so guessing or colliding one is out of reach. */
export const NONCE_BYTES = 32;

/**
 * The longest lifetime a nonce may be issued with. A challenge only has to outlive the instance's boot and
 * the WaitForAttestation timeout; anything longer widens the window in which a leaked nonce is usable.
 */
export const MAX_NONCE_TTL_SECONDS = 24 * 60 * 60;

/** Who a nonce is issued to: the enclave it is bound to, and the workflow execution that asked for it. */
export interface NonceBinding {
  readonly enclaveId: string;
  /** The Step Functions execution that issued it; kept for diagnosis, not checked on consumption. */
  readonly executionId?: string;
}

/** A freshly issued nonce. */
export interface IssuedNonce {
  /** {@link NONCE_BYTES} bytes from a CSPRNG; goes into the attestation request as is. */
  readonly nonce: Uint8Array;
  /** The nonce is refused from this instant on (whole seconds, never later than `now + ttlSeconds`). */
  readonly expiresAt: Date;
}

/**
 * The outcome of a consumption. Only `'consumed'` lets an attestation pass; every other outcome is a
 * refusal, distinguished so that audit entries and failure reasons say what happened.
 * - `'consumed'`: the nonce was live, bound to this enclave, and is now used up (by this call).
 * - `'unknown'`: never issued, issued to another enclave (not revealed, so a caller learns nothing about
 *   other enclaves' nonces), malformed, or already deleted by the store's expiry sweep.
 * - `'expired'`: issued to this enclave, never consumed, but past its `expiresAt`.
 * - `'already_consumed'`: issued to this enclave and consumed before: a replay.
 */
export type NonceConsumption = 'consumed' | 'unknown' | 'expired' | 'already_consumed';

/** Issues attestation nonces and consumes each at most once. */
export interface NonceStore {
  /**
   * Issues a new random nonce bound to `binding.enclaveId`, valid for `ttlSeconds`.
   *
   * @param ttlSeconds a whole number of seconds in `1..`{@link MAX_NONCE_TTL_SECONDS}; anything else throws
   *   a `RangeError` (a programming error, not an input error).
   * @throws {NonceStoreError} when the store cannot be reached (see `transient`).
   */
  issue(binding: NonceBinding, ttlSeconds: number): Promise<IssuedNonce>;

  /**
   * Consumes `nonce` for `enclaveId`, atomically: of any number of concurrent calls for one nonce, at most
   * one ever answers `'consumed'`. `nonce` may be untrusted input (it is read from a submitted attestation
   * document): a value of the wrong length answers `'unknown'` without a store round trip.
   *
   * When several refusals apply, `'unknown'` wins over `'already_consumed'`, which wins over `'expired'`:
   * a replay is the more telling signal for an audit trail than an expiry.
   *
   * @param consumptionId names this consumption, so that its repeat (a retried workflow step) answers
   *   `'consumed'` again instead of `'already_consumed'`: the provisioning workflow passes its execution, so
   *   only another execution's use of the nonce is a replay. Without it each call is its own consumption.
   * @throws {NonceStoreError} when the store cannot be reached. The nonce may or may not have been consumed
   *   then; a retry with the same `consumptionId` answers `'consumed'`, one without answers
   *   `'already_consumed'`, which fails closed.
   */
  consume(enclaveId: string, nonce: Uint8Array, consumptionId?: string): Promise<NonceConsumption>;
}

/** The nonce store itself failed (not a refusal of the nonce): never shown to clients beyond a 5xx. */
export class NonceStoreError extends Error {
  override readonly name = 'NonceStoreError';
  /** The store was unavailable or throttled: the operation may succeed later (503, or a workflow retry). */
  readonly transient: boolean;

  constructor(message: string, options?: { cause?: unknown; transient?: boolean }) {
    super(message, options);
    this.transient = options?.transient ?? false;
  }
}
