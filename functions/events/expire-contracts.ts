import { expireContracts } from '../../shared/contracts/contract-expiry.ts';
import { purgeIdempotencyKeys } from '../../shared/idempotency/idempotency-store.ts';
import { logger } from '../../shared/runtime/logger.ts';
import { runtime } from '../../shared/runtime/runtime.ts';

const deps = await runtime();

/**
 * Scheduled: moves Active and Suspended contracts whose validity ended to Expired, and forgets idempotency
 * keys past their retention window.
 */
export const handler = async (): Promise<{ expired: number; purgedKeys: number }> => {
  const expired = await expireContracts(deps);
  const purgedKeys = await purgeIdempotencyKeys(deps.db, deps.now());
  logger.info('expiry sweep', { expired, purgedKeys });
  return { expired, purgedKeys };
};
