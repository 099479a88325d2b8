import type { DomainEvent } from '../audit/audited-write.ts';
import { type Database, sql } from '../database/database.ts';
import type { EventBus } from './event-bus.ts';

/**
 * Forwards unpublished outbox rows to the bus, oldest first, in one transaction that locks the batch
 * (`FOR UPDATE SKIP LOCKED`, so concurrent publishers never take the same rows). Delivery is at least
 * once: consumers must be idempotent on the event id.
 */
export async function publishOutbox(
  db: Database,
  bus: EventBus,
  options: { batchSize?: number; now?: () => Date } = {},
) {
  const now = options.now ?? (() => new Date());
  return db.transaction(async (tx) => {
    const { rows } = await tx.query<{
      id: string;
      aggregate_type: string;
      aggregate_id: string;
      event_type: string;
      payload: unknown;
      occurred_at: string;
    }>(
      `SELECT id, aggregate_type, aggregate_id, event_type, payload, occurred_at FROM outbox
       WHERE published_at IS NULL ORDER BY occurred_at, id LIMIT :limit FOR UPDATE SKIP LOCKED`,
      { limit: sql.int(options.batchSize ?? 100) },
    );
    if (rows.length === 0) return { published: 0, failed: 0 };
    const events: DomainEvent[] = rows.map((r) => ({
      id: r.id,
      aggregateType: r.aggregate_type,
      aggregateId: r.aggregate_id,
      type: r.event_type,
      payload: r.payload,
      occurredAt: r.occurred_at,
    }));
    const accepted = await bus.publish(events);
    const ids = events.map((e) => e.id);
    await tx.query(
      `UPDATE outbox SET
         published_at = CASE WHEN id IN (SELECT jsonb_array_elements_text(:accepted)::uuid) THEN :now ELSE NULL END,
         attempts = attempts + 1
       WHERE id IN (SELECT jsonb_array_elements_text(:ids)::uuid)`,
      { accepted: sql.json([...accepted]), ids: sql.json(ids), now: sql.timestamp(now()) },
    );
    return { published: accepted.size, failed: ids.length - accepted.size };
  });
}
