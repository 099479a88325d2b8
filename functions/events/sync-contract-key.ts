import * as z from '../../shared/domain/zod.ts';
import { contractOfKeyEvent, syncContractKey } from '../../shared/keys/contract-keys.ts';
import { logger } from '../../shared/runtime/logger.ts';
import { runtime } from '../../shared/runtime/runtime.ts';

const deps = await runtime();

/** The EventBridge envelope fields read here; the detail is parsed per detail-type. */
const EventSchema = z.object({
  id: z.optional(z.string()),
  'detail-type': z.string(),
  detail: z.unknown(),
});

/**
 * EventBridge (outbox events that may change what a contract's key admits: the contract's lifecycle, a
 * measurement set approved, an enclave activated, suspended, failed, terminated or updated): brings the
 * contract's KMS key to the contract's current state (shared/keys/contract-keys.ts), whatever the event
 * said. Other events are ignored; failures throw, for the asynchronous retries and the dead-letter queue.
 */
export const handler = async (input: unknown) => {
  const event = z.parse(EventSchema, input);
  const detailType = event['detail-type'];
  const contractId = contractOfKeyEvent(detailType, event.detail);
  if (contractId === null) {
    logger.info('event ignored', { eventId: event.id, detailType });
    return { ignored: detailType };
  }
  const { changes, key } = await syncContractKey(deps, contractId);
  logger.info('contract key synced', {
    eventId: event.id,
    detailType,
    contractId,
    changes,
    ...(key ? { keyArn: key.keyArn, state: key.state, policyDigest: key.policyDigest } : {}),
  });
  return { contractId, changes };
};
