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

/** Options of {@link drainOutbox}. */
export interface DrainOptions {
  /** How long the run may still take (ms): Lambda's `context.getRemainingTimeInMillis`. */
  readonly remainingMs: () => number;
  /** How long to wait before looking again when the outbox was empty or the bus refused events (ms). */
  readonly pollMs?: number;
  /** Time kept back at the end of the run for the last round and the return (ms). */
  readonly reserveMs?: number;
  /** Rows per round. */
  readonly batchSize?: number;
}

/**
 * The deployed publisher's schedule, which the CDK stack renders (`infra/constructs/event-bus.ts`):
 * EventBridge Scheduler starts a run every `everyMs`, and a run may last `timeoutMs` (its Lambda timeout),
 * of which {@link drainOutbox} keeps back `pollMs + reserveMs` (its defaults). The local stack looks every
 * `pollMs` (`infra/local/local-stack.ts`), as the overlapping runs do.
 *
 * A run outlasts the period by `overlapMs`, so the next run starts (late starts and cold starts included)
 * while the previous one still looks every second: the outbox is never left unwatched. With a timeout equal
 * to the period, each run stopped looking `pollMs + reserveMs` before the next began, and an event
 * committed in those 6 s of every minute (a contract's suspension to enforce) waited for the next run.
 * Overlapping runs share the work safely ({@link publishOutbox} locks its batch).
 */
export const OUTBOX_PUBLISHER_SCHEDULE = {
  everyMs: 60_000,
  overlapMs: 30_000,
  timeoutMs: 90_000,
  pollMs: 1000,
  reserveMs: 5000,
} as const;

/**
 * Publishes the outbox for the whole run, not once: rounds follow one another while rows are pending, and
 * an empty round waits `pollMs` and looks again, until less than `pollMs + reserveMs` is left. A round
 * the bus partly refused ends the run: the next run retries those rows. Run once a minute, each run
 * outlasting the minute ({@link OUTBOX_PUBLISHER_SCHEDULE}), it delivers an event within about `pollMs` of
 * its commit instead of up to a minute later, which is what stopping a suspended contract's enclaves
 * promptly needs. Concurrent runs share the work safely ({@link publishOutbox} locks its batch).
 * @example
 * export const handler = (_event: unknown, context: Context) =>
 *   drainOutbox(db, bus, { remainingMs: () => context.getRemainingTimeInMillis() });
 */
export async function drainOutbox(db: Database, bus: EventBus, options: DrainOptions) {
  const pollMs = options.pollMs ?? OUTBOX_PUBLISHER_SCHEDULE.pollMs;
  const reserveMs = options.reserveMs ?? OUTBOX_PUBLISHER_SCHEDULE.reserveMs;
  const total = { published: 0, failed: 0, rounds: 0 };
  for (;;) {
    const round = await publishOutbox(db, bus, { batchSize: options.batchSize ?? 100 });
    total.rounds += 1;
    total.published += round.published;
    total.failed += round.failed;
    // The bus refused some: leave them to the next run (a minute), not to a retry every second.
    if (round.failed > 0) return total;
    const more = round.published > 0;
    if (options.remainingMs() < (more ? 0 : pollMs) + reserveMs) return total;
    if (!more) await new Promise((resolve) => setTimeout(resolve, pollMs));
  }
}
