import type { Context } from 'aws-lambda';
import { EventBridgeBus } from '../../shared/events/eventbridge-bus.ts';
import { drainOutbox } from '../../shared/events/outbox-publisher.ts';
import { parseConfig } from '../../shared/runtime/config.ts';
import { logger } from '../../shared/runtime/logger.ts';
import { runtime } from '../../shared/runtime/runtime.ts';

const deps = await runtime();
const { EVENT_BUS_NAME } = parseConfig(process.env);
const bus = new EventBridgeBus({ busName: EVENT_BUS_NAME ?? 'default' });

/**
 * Scheduled every minute: publishes the outbox to EventBridge for the whole run (looking again every
 * second), so events reach their rules within about a second of their commit. Each look reads the doorbell
 * and queries Aurora only when a write rang it, so an idle deployment's database can pause.
 */
export const handler = async (
  _event: unknown,
  context: Context,
): Promise<{ published: number; failed: number; rounds: number }> => {
  const total = await drainOutbox(deps.db, bus, {
    remainingMs: () => context.getRemainingTimeInMillis(),
    ...(deps.doorbell ? { doorbell: deps.doorbell, now: deps.now } : {}),
  });
  logger.info('outbox drained', total);
  return total;
};
