import { createCheckpoint } from '../audit/audit-checkpoints.ts';
import { expireContracts } from '../contracts/contract-expiry.ts';
import { findNextValidityEnd } from '../contracts/contract-store.ts';
import { purgeIdempotencyKeys } from '../idempotency/idempotency-store.ts';
import type { Dependencies } from '../runtime/dependencies.ts';
import { type Doorbell, olderThan, QUIET_SWEEP_MS } from './doorbell.ts';

/**
 * The scheduled jobs other than the outbox publisher, each gated by the doorbell (shared/events/doorbell.ts)
 * so that an idle deployment's schedules make no database call at all: a run reads the doorbell (DynamoDB)
 * and touches Aurora only when something was written since its last real run, when a deadline it stored
 * comes, or once a day ({@link QUIET_SWEEP_MS}) in case a ring was lost.
 */

/** Options of the gated jobs. */
export interface GatedJobOptions {
  /** The fallback for a lost ring: run when the last real run is older than this. @default QUIET_SWEEP_MS */
  readonly sweepEveryMs?: number;
}

/** A checkpoint covers at most 1000 heads; a run takes a few when a busy period left more. */
const CHECKPOINT_ROUNDS = 20;

/**
 * Signs checkpoints over the audit heads that grew since the last one (`createCheckpoint`), unless the
 * doorbell did not ring since the last run that covered everything: no audit record was written, so no
 * head can have grown. A run that still left heads uncovered records nothing, so the next one runs.
 */
export async function checkpointAuditWhenRung(
  deps: Dependencies,
  doorbell: Doorbell,
  options: GatedJobOptions = {},
): Promise<{ skipped: boolean; checkpoints: number; heads: number }> {
  const state = await doorbell.read();
  const startedAt = deps.now();
  const mark = state.checkpoint;
  if (mark?.rings === state.rings && !olderThan(mark.at, options.sweepEveryMs ?? QUIET_SWEEP_MS, startedAt)) {
    return { skipped: true, checkpoints: 0, heads: 0 };
  }
  let checkpoints = 0;
  let heads = 0;
  for (let round = 0; round < CHECKPOINT_ROUNDS; round++) {
    const statement = await createCheckpoint(deps);
    if (!statement) {
      await doorbell.recordCheckpoint({ rings: state.rings, at: startedAt.toISOString() });
      break;
    }
    checkpoints++;
    heads += statement.treeSize;
  }
  return { skipped: false, checkpoints, heads };
}

/**
 * Expires the live contracts whose validity ended and forgets idempotency keys past their retention,
 * unless nothing can be due: the doorbell did not ring since the last run (every change of a contract's
 * status or validity is an audited write, which rings), the earliest validity end that run found has not
 * come, and that run is less than a day old (the daily run also purges the idempotency keys of a quiet
 * deployment).
 */
export async function expireContractsWhenDue(
  deps: Dependencies,
  doorbell: Doorbell,
  options: GatedJobOptions = {},
): Promise<{ skipped: boolean; expired: number; purgedKeys: number }> {
  const state = await doorbell.read();
  const startedAt = deps.now();
  const mark = state.expiry;
  const deadlineCame = mark?.nextDeadline != null && startedAt.getTime() >= Date.parse(mark.nextDeadline);
  if (
    mark?.rings === state.rings &&
    !deadlineCame &&
    !olderThan(mark.at, options.sweepEveryMs ?? QUIET_SWEEP_MS, startedAt)
  ) {
    return { skipped: true, expired: 0, purgedKeys: 0 };
  }
  const expired = await expireContracts(deps);
  const purgedKeys = await purgeIdempotencyKeys(deps.db, startedAt);
  const nextDeadline = await findNextValidityEnd(deps.db);
  await doorbell.recordExpiry({ rings: state.rings, at: startedAt.toISOString(), nextDeadline });
  return { skipped: false, expired, purgedKeys };
}
