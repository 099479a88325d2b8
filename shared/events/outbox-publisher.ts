import type { DomainEvent } from '../audit/audited-write.ts';
import { type Database, sql } from '../database/database.ts';
import { type Doorbell, olderThan, QUIET_SWEEP_MS } from './doorbell.ts';
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
  /**
   * The doorbell (shared/events/doorbell.ts): given, the run queries the database only when it rang since
   * the last drain (looking at it, not at the database, every `pollMs`), when the last drain left rows the
   * bus refused, and when the last drain is older than `sweepEveryMs`. Without it, every look is a query.
   */
  readonly doorbell?: Doorbell;
  /** The clock of the doorbell's marks. @default the system clock */
  readonly now?: () => Date;
  /** The fallback for a lost ring: drain when the last drain is older than this. @default QUIET_SWEEP_MS */
  readonly sweepEveryMs?: number;
  /** How a wait of `ms` is spent (tests pass a simulated clock's). @default a timer */
  readonly sleep?: (ms: number) => Promise<void>;
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
  if (options.doorbell) return drainWhenRung(db, bus, options.doorbell, options);
  const pollMs = options.pollMs ?? OUTBOX_PUBLISHER_SCHEDULE.pollMs;
  const reserveMs = options.reserveMs ?? OUTBOX_PUBLISHER_SCHEDULE.reserveMs;
  const sleep = options.sleep ?? wait;
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
    if (!more) await sleep(pollMs);
  }
}

/**
 * {@link drainOutbox} with the doorbell: each look reads the doorbell, and only a ring since the last drain
 * (or a refused batch, or a drain older than the sweep period) queries the database, rounds following one
 * another until the outbox is empty. The ring count is read before the drain's queries, so a commit that
 * rings after it moves the counter again and the next look drains it. Idle, a run costs one GetItem a
 * second and no database call at all, which is what lets Aurora auto-pause.
 */
async function drainWhenRung(db: Database, bus: EventBus, doorbell: Doorbell, options: DrainOptions) {
  const pollMs = options.pollMs ?? OUTBOX_PUBLISHER_SCHEDULE.pollMs;
  const reserveMs = options.reserveMs ?? OUTBOX_PUBLISHER_SCHEDULE.reserveMs;
  const now = options.now ?? (() => new Date());
  const sleep = options.sleep ?? wait;
  const total = { published: 0, failed: 0, rounds: 0 };
  const state = await doorbell.read();
  let rings = state.rings;
  let drained = state.outbox.drained?.rings;
  let due =
    drained !== rings ||
    state.outbox.failedAt !== undefined ||
    olderThan(state.outbox.drained?.at, options.sweepEveryMs ?? QUIET_SWEEP_MS, now());
  for (;;) {
    if (due) {
      const startedAt = now().toISOString();
      for (;;) {
        const round = await publishOutbox(db, bus, { batchSize: options.batchSize ?? 100, now });
        total.rounds += 1;
        total.published += round.published;
        total.failed += round.failed;
        if (round.failed > 0) {
          // The bus refused some: the next run retries them (a minute), not every look of this one.
          await doorbell.recordDrain({ failedAt: now().toISOString() });
          return total;
        }
        // Out of time with rows left: no mark, so the next run starts with a drain.
        if (round.published > 0 && options.remainingMs() < reserveMs) return total;
        if (round.published === 0) break;
      }
      await doorbell.recordDrain({ rings, at: startedAt });
      drained = rings;
    }
    if (options.remainingMs() < pollMs + reserveMs) return total;
    await sleep(pollMs);
    rings = (await doorbell.read()).rings;
    due = rings !== drained;
  }
}

function wait(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
