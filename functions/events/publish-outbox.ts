import { EventBridgeBus } from '../../shared/events/eventbridge-bus.ts';
import { publishOutbox } from '../../shared/events/outbox-publisher.ts';
import { parseConfig } from '../../shared/runtime/config.ts';
import { logger } from '../../shared/runtime/logger.ts';
import { runtime } from '../../shared/runtime/runtime.ts';

const deps = await runtime();
const { EVENT_BUS_NAME } = parseConfig(process.env);
const bus = new EventBridgeBus({ busName: EVENT_BUS_NAME ?? 'default' });

/** Scheduled: drains the outbox to EventBridge until it is empty or the batch limit is reached. */
export const handler = async (): Promise<{ published: number; failed: number }> => {
  let total = { published: 0, failed: 0 };
  for (let round = 0; round < 20; round++) {
    const result = await publishOutbox(deps.db, bus);
    total = { published: total.published + result.published, failed: total.failed + result.failed };
    if (result.published + result.failed === 0 || result.failed > 0) break;
  }
  logger.info('outbox drained', total);
  return total;
};
