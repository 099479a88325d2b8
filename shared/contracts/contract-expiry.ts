import { DomainError } from '../domain/errors.ts';
import type { Dependencies } from '../runtime/dependencies.ts';
import { logger } from '../runtime/logger.ts';
import { expireContract } from './contract-service.ts';
import { findExpiredLiveContractIds } from './contract-store.ts';

/**
 * Expires every live contract whose validity window has ended, one audited write each. A contract that
 * changed meanwhile (resumed, terminated) is checked again by the lifecycle table and skipped if needed.
 */
export async function expireContracts(deps: Dependencies, batch = 100): Promise<number> {
  let expired = 0;
  // Bounded: a contract that keeps failing its guard must not hold the sweep forever.
  for (let round = 0; round < 50; round++) {
    const ids = await findExpiredLiveContractIds(deps.db, deps.now().toISOString(), batch);
    for (const id of ids) {
      try {
        await expireContract(deps, id);
        expired++;
      } catch (error) {
        if (!(error instanceof DomainError)) throw error;
        logger.warn('contract not expired', { contractId: id, reason: error.message });
      }
    }
    if (ids.length < batch) break;
  }
  return expired;
}
