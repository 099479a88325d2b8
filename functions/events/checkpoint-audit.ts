import { createCheckpoint } from '../../shared/audit/audit-checkpoints.ts';
import { logger } from '../../shared/runtime/logger.ts';
import { runtime } from '../../shared/runtime/runtime.ts';

const deps = await runtime();

/** Scheduled: signs a checkpoint over the heads of the audit chains that grew since the last one. */
export const handler = async (): Promise<{ checkpoints: number; heads: number }> => {
  let checkpoints = 0;
  let heads = 0;
  // Bounded: each checkpoint covers at most 1000 heads; a busy period takes a few.
  for (let round = 0; round < 20; round++) {
    const statement = await createCheckpoint(deps);
    if (!statement) break;
    checkpoints++;
    heads += statement.treeSize;
  }
  logger.info('audit checkpoint', { checkpoints, heads });
  return { checkpoints, heads };
};
