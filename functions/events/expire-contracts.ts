import { expireContracts } from '../../shared/contracts/contract-expiry.ts';
import { expireContractsWhenDue } from '../../shared/events/doorbell-jobs.ts';
import { purgeIdempotencyKeys } from '../../shared/idempotency/idempotency-store.ts';
import { logger } from '../../shared/runtime/logger.ts';
import { runtime } from '../../shared/runtime/runtime.ts';

const deps = await runtime();

/**
 * Scheduled: moves Active and Suspended contracts whose validity ended to Expired, and forgets idempotency
 * keys past their retention window. With the doorbell, a run touches Aurora only when a write rang it, the
 * earliest validity end came, or its last real run is a day old.
 */
export const handler = async (): Promise<{ skipped: boolean; expired: number; purgedKeys: number }> => {
  const result = deps.doorbell
    ? await expireContractsWhenDue(deps, deps.doorbell)
    : {
        skipped: false,
        expired: await expireContracts(deps),
        purgedKeys: await purgeIdempotencyKeys(deps.db, deps.now()),
      };
  logger.info('expiry sweep', result);
  return result;
};
