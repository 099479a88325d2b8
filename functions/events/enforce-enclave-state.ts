import * as z from '../../shared/domain/zod.ts';
import { enforce, triggerOfEvent } from '../../shared/enclaves/enclave-enforcement.ts';
import { logger } from '../../shared/runtime/logger.ts';
import { runtime } from '../../shared/runtime/runtime.ts';

const deps = await runtime();

/** The EventBridge envelope fields read here; the detail is parsed per detail-type. */
const EventSchema = z.object({
  id: z.optional(z.string()),
  source: z.string(),
  'detail-type': z.string(),
  detail: z.unknown(),
});

/**
 * EventBridge (outbox events): stops or terminates enclave parent instances after EnclaveSuspended,
 * EnclaveTerminated or EnclaveFailed, and suspends or terminates a contract's enclaves after
 * ContractSuspended, ContractTerminated or ContractExpired — always from the current status in the
 * database (see shared/enclaves/enclave-enforcement.ts). EventBridge (default bus, `aws.states`): a
 * provisioning execution that timed out or was aborted is compensated, as its Catch would have. Other
 * events are ignored; failures throw, for the asynchronous retries and the dead-letter queue.
 */
export const handler = async (input: unknown) => {
  const event = z.parse(EventSchema, input);
  const detailType = event['detail-type'];
  const trigger = triggerOfEvent(event.source, detailType, event.detail);
  if (trigger === null) {
    logger.info('event ignored', { eventId: event.id, source: event.source, detailType });
    return { ignored: detailType };
  }
  const result = await enforce(deps, trigger);
  logger.info('enclave enforcement', { eventId: event.id, detailType, ...result });
  return result;
};
