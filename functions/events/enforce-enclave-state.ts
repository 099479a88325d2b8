import { z } from 'zod';
import { enforce, enforcementTriggerOf } from '../../shared/enclaves/enclave-enforcement.ts';
import { EVENT_SOURCE } from '../../shared/events/event-bus.ts';
import { logger } from '../../shared/runtime/logger.ts';
import { runtime } from '../../shared/runtime/runtime.ts';

const deps = await runtime();

/** The EventBridge envelope fields read here; the detail is parsed per detail-type. */
const EventSchema = z.object({
  id: z.string().optional(),
  source: z.string(),
  'detail-type': z.string(),
  detail: z.unknown(),
});

/**
 * EventBridge (outbox events): stops or terminates enclave parent instances after EnclaveSuspended,
 * EnclaveTerminated or EnclaveFailed, and suspends or terminates a contract's enclaves after
 * ContractSuspended, ContractTerminated or ContractExpired — always from the current status in the
 * database (see shared/enclaves/enclave-enforcement.ts). Other events are ignored; failures throw, for
 * the asynchronous retries and the dead-letter queue.
 */
export const handler = async (input: unknown) => {
  const event = EventSchema.parse(input);
  const detailType = event['detail-type'];
  const trigger = event.source === EVENT_SOURCE ? enforcementTriggerOf(detailType, event.detail) : null;
  if (trigger === null) {
    logger.info('event ignored', { eventId: event.id, source: event.source, detailType });
    return { ignored: detailType };
  }
  const result = await enforce(deps, trigger);
  logger.info('enclave enforcement', { eventId: event.id, detailType, ...result });
  return result;
};
