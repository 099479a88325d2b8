import { createCheckpoint } from '../../shared/audit/audit-checkpoints.ts';
import { checkpointAuditWhenRung } from '../../shared/events/doorbell-jobs.ts';
import { logger } from '../../shared/runtime/logger.ts';
import { runtime } from '../../shared/runtime/runtime.ts';

const deps = await runtime();

/**
 * Scheduled: signs a checkpoint over the heads of the audit chains that grew since the last one, unless the
 * doorbell says no audit record was written since (then Aurora is not touched at all).
 */
export const handler = async (): Promise<{ skipped: boolean; checkpoints: number; heads: number }> => {
  const result = deps.doorbell
    ? await checkpointAuditWhenRung(deps, deps.doorbell)
    : await checkpointUngated();
  logger.info('audit checkpoint', result);
  return result;
};

/** Without a doorbell (a function configured without one): every run looks at the database. */
async function checkpointUngated(): Promise<{ skipped: boolean; checkpoints: number; heads: number }> {
  let checkpoints = 0;
  let heads = 0;
  // Bounded: each checkpoint covers at most 1000 heads; a busy period takes a few.
  for (let round = 0; round < 20; round++) {
    const statement = await createCheckpoint(deps);
    if (!statement) break;
    checkpoints++;
    heads += statement.treeSize;
  }
  return { skipped: false, checkpoints, heads };
}
