import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DomainEvent } from '../../shared/audit/audited-write.ts';
import { type Database, sql } from '../../shared/database/database.ts';
import { loadMigrations, migrate } from '../../shared/database/migrate.ts';
import type { EventBus } from '../../shared/events/event-bus.ts';
import { InProcessBus } from '../../shared/events/in-process-bus.ts';
import { drainOutbox } from '../../shared/events/outbox-publisher.ts';
import { ADAPTERS, type OpenedDatabase } from '../support/databases.ts';

/**
 * The scheduled publisher's run on PGlite: it keeps publishing for the whole run, so an event committed
 * while it runs goes out in one of its later rounds (about one poll interval later), not a minute later.
 */
const pglite = ADAPTERS.find((a) => a.name === 'pglite')!;
let opened: OpenedDatabase;
let db: Database;

beforeAll(async () => {
  opened = await pglite.open();
  db = opened.db;
  await migrate(db, await loadMigrations());
});
afterAll(async () => opened?.close());

async function addEvent(): Promise<string> {
  const id = randomUUID();
  await db.query(
    `INSERT INTO outbox (id, aggregate_type, aggregate_id, event_type, payload, occurred_at)
     VALUES (:id, 'contract', :aggregate, 'ContractSuspended', :payload, :at)`,
    {
      id: sql.uuid(id),
      aggregate: sql.uuid(randomUUID()),
      payload: sql.json({}),
      at: sql.timestamp(new Date()),
    },
  );
  return id;
}

describe('drainOutbox', () => {
  it('publishes what is committed while it runs, in a later round of the same run, and then ends', async () => {
    const bus = new InProcessBus();
    const deadline = Date.now() + 1500;
    const seenAt = new Map<string, number>();
    bus.subscribe((e) => seenAt.set(e.id, Date.now()));
    const before = await addEvent();
    const run = drainOutbox(db, bus, {
      remainingMs: () => deadline - Date.now(),
      pollMs: 50,
      reserveMs: 200,
    });
    await new Promise((resolve) => setTimeout(resolve, 400));
    const committedAt = Date.now();
    const during = await addEvent();
    const total = await run;
    expect([...seenAt.keys()]).toEqual(expect.arrayContaining([before, during]));
    expect(total.published).toBeGreaterThanOrEqual(2);
    // Picked up by a later round of the same run, not by the next scheduled run.
    expect(seenAt.get(during)!).toBeGreaterThanOrEqual(committedAt);
    expect(total.rounds).toBeGreaterThan(2);
    const { rows } = await db.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM outbox WHERE published_at IS NULL',
    );
    expect(rows[0]!.n).toBe(0);
  });

  it('with no time left to wait, still publishes every pending row before it returns (the local timer)', async () => {
    const ids = await Promise.all(Array.from({ length: 25 }, () => addEvent()));
    const bus = new InProcessBus();
    const total = await drainOutbox(db, bus, { remainingMs: () => 0, reserveMs: 0, batchSize: 10 });
    expect(total).toEqual({ published: 25, failed: 0, rounds: 4 });
    expect(bus.published.map((e) => e.id).sort()).toEqual([...ids].sort());
  });

  it('leaves what the bus refused to the next run instead of retrying it every poll', async () => {
    const refused = await addEvent();
    let calls = 0;
    const refusing: EventBus = {
      publish: async (events: readonly DomainEvent[]) => {
        calls += 1;
        return new Set(events.map((e) => e.id).filter((id) => id !== refused));
      },
    };
    const total = await drainOutbox(db, refusing, { remainingMs: () => 60_000, pollMs: 10, reserveMs: 10 });
    expect(total).toMatchObject({ failed: 1, rounds: 1 });
    expect(calls).toBe(1);
    const { rows } = await db.query<{ attempts: number; published_at: string | null }>(
      'SELECT attempts, published_at FROM outbox WHERE id = :id',
      { id: sql.uuid(refused) },
    );
    expect(rows[0]).toEqual({ attempts: 1, published_at: null });
    await db.query('UPDATE outbox SET published_at = now() WHERE id = :id', { id: sql.uuid(refused) });
  });
});
