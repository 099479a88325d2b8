import { expireContracts } from '../../shared/contracts/contract-expiry.ts';
import { logger } from '../../shared/runtime/logger.ts';
import { runtime } from '../../shared/runtime/runtime.ts';

const deps = await runtime();

/** Scheduled: moves Active and Suspended contracts whose validity ended to Expired. */
export const handler = async (): Promise<{ expired: number }> => {
  const expired = await expireContracts(deps);
  logger.info('expiry sweep', { expired });
  return { expired };
};
