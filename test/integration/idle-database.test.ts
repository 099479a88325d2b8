import { randomUUID } from 'node:crypto';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { seedIdentities } from '../../infra/local/seed.ts';
import {
  type LocalDynamoDb,
  startLocalDynamoDb,
} from '../../infra/local/services/dynamodb/local-dynamodb.ts';
import { createContract } from '../../shared/contracts/contract-service.ts';
import type { Database, Queryable } from '../../shared/database/database.ts';
import { loadMigrations, migrate } from '../../shared/database/migrate.ts';
import { type Doorbell, QUIET_SWEEP_MS, ringingDatabase } from '../../shared/events/doorbell.ts';
import { checkpointAuditWhenRung, expireContractsWhenDue } from '../../shared/events/doorbell-jobs.ts';
import { DynamoDbDoorbell } from '../../shared/events/dynamodb-doorbell.ts';
import { InProcessBus } from '../../shared/events/in-process-bus.ts';
import { drainOutbox, OUTBOX_PUBLISHER_SCHEDULE } from '../../shared/events/outbox-publisher.ts';
import { findIdentityBySubject } from '../../shared/identities/identity-store.ts';
import type { Dependencies } from '../../shared/runtime/dependencies.ts';
import { LocalSigner } from '../../shared/signing/local-signer.ts';
import { CREATE_FIXTURE } from '../support/contracts.ts';
import { ADAPTERS, type OpenedDatabase } from '../support/databases.ts';
import { dynamoDbServiceError } from '../support/dynamodb-faults.ts';
import { SimulatedTime } from '../support/simulated-time.ts';

/**
 * Issue 11 §2.7: Aurora Serverless v2 auto-pauses after a delay without user connections, so an idle
 * deployment's scheduled jobs must not touch it. The publisher (every minute, each run looking every second
 * for 90 s), the audit checkpoints (every 5 minutes) and the contract expirer (hourly) run on a simulated
 * clock against PGlite and dynalite, as deployed; every database call is counted.
 */

const pglite = ADAPTERS.find((a) => a.name === 'pglite')!;
const MINUTE = 60_000;
let opened: OpenedDatabase;
let dynamo: LocalDynamoDb;
let signer: LocalSigner;
let table: string;

beforeAll(async () => {
  [opened, dynamo, signer] = await Promise.all([pglite.open(), startLocalDynamoDb(), LocalSigner.create()]);
  await migrate(opened.db, await loadMigrations());
  await seedIdentities({ db: opened.db, signer, now: () => new Date(), newId: randomUUID });
});
afterAll(async () => {
  await opened?.close();
  await dynamo?.close();
});
beforeEach(async () => {
  // A fresh doorbell per test: as after a deployment, every job's first run looks at the database.
  table = `doorbell-${randomUUID()}`;
  await dynamo.createDoorbellTable(table);
});

/** `db` counting every call the Data API would serve: each statement, and each transaction's begin/commit. */
function counting(db: Database): { db: Database; calls: () => number } {
  let calls = 0;
  const counted = (q: Queryable): Queryable => ({
    query: (text, params) => {
      calls++;
      return q.query(text, params);
    },
  });
  return {
    calls: () => calls,
    db: {
      ...counted(db),
      transaction: (work) => {
        calls += 2;
        return db.transaction((tx) => work(counted(tx)));
      },
      close: () => db.close(),
    },
  };
}

/** The deployed stack's schedules on one simulated clock: what each run returned, and when. */
function deployment(options: { ringClient?: DynamoDBClient } = {}) {
  const time = new SimulatedTime(new Date('2027-03-01T00:00:00.000Z'));
  const doorbell = new DynamoDbDoorbell({ tableName: table, client: dynamo.client });
  const ringing: Doorbell = options.ringClient
    ? new DynamoDbDoorbell({ tableName: table, client: options.ringClient })
    : doorbell;
  const database = counting(opened.db);
  // Every function's database rings after its writes; the jobs read the doorbell.
  const deps: Dependencies = {
    db: ringingDatabase(database.db, ringing),
    doorbell,
    signer,
    now: time.now,
    newId: randomUUID,
  };
  const bus = new InProcessBus();
  const publishedAt = new Map<string, number>();
  bus.subscribe((event) => publishedAt.set(event.aggregateId, time.now().getTime()));
  const checkpoints: { at: number; skipped: boolean; checkpoints: number }[] = [];
  const publisherRun = async () => {
    const end = time.now().getTime() + OUTBOX_PUBLISHER_SCHEDULE.timeoutMs;
    await drainOutbox(deps.db, bus, {
      remainingMs: () => end - time.now().getTime(),
      doorbell,
      now: time.now,
      sleep: time.sleep,
    });
  };
  return {
    time,
    deps,
    publishedAt,
    checkpoints,
    databaseCalls: database.calls,
    publisherRun,
    start() {
      time.every(OUTBOX_PUBLISHER_SCHEDULE.everyMs, publisherRun);
      time.every(5 * MINUTE, async () => {
        const at = time.now().getTime();
        const result = await checkpointAuditWhenRung(deps, doorbell);
        checkpoints.push({ at, ...result });
      });
      time.every(60 * MINUTE, () => expireContractsWhenDue(deps, doorbell));
    },
  };
}

async function provider(deps: Dependencies) {
  return (await findIdentityBySubject(deps.db, 'local|provider'))!;
}

describe('an idle deployment', () => {
  it('makes no database call in an idle hour after the first runs; one write is published within a second and checkpointed once', async () => {
    // Prepare
    const d = deployment();
    const author = await provider(d.deps);
    const before = d.databaseCalls();
    d.start();

    // Act: the first runs look at everything once, then an hour passes without a write.
    await d.time.runFor(5 * MINUTE);
    const afterFirstRuns = d.databaseCalls();
    await d.time.runFor(60 * MINUTE);
    const afterIdleHour = d.databaseCalls();

    // Assess
    expect(afterFirstRuns).toBeGreaterThan(before);
    expect(afterIdleHour - afterFirstRuns).toBe(0);
    expect(d.checkpoints.filter((c) => !c.skipped)).toHaveLength(1);
    expect(d.checkpoints.length).toBeGreaterThanOrEqual(13);

    // Act: one write in the middle of a second, under a publisher run that is already looking.
    await d.time.runFor(400);
    let committedAt = 0;
    let contractId = '';
    d.time.spawn(async () => {
      contractId = (await createContract(d.deps, author, CREATE_FIXTURE)).body.id;
      committedAt = d.time.now().getTime();
    });
    await d.time.runFor(5 * MINUTE);

    // Assess: published at the publisher's next look (within a second), checkpointed by the next run only.
    expect(d.publishedAt.get(contractId)! - committedAt).toBeLessThanOrEqual(1000);
    const real = d.checkpoints.filter((c) => !c.skipped);
    expect(real).toHaveLength(2);
    expect(real[1]!.checkpoints).toBe(1);

    // And quiet again: the expirer's next run and every other look leave the database alone.
    const afterWrite = d.databaseCalls();
    await d.time.runFor(70 * MINUTE);
    // The expirer's one run for the write's ring: its sweep, the idempotency purge, the next deadline.
    expect(d.databaseCalls() - afterWrite).toBe(3);
    const quiet = d.databaseCalls();
    await d.time.runFor(60 * MINUTE);
    expect(d.databaseCalls() - quiet).toBe(0);
  }, 120_000);

  it('does not fail a write whose ring is lost, and publishes its event at the daily sweep', async () => {
    // Prepare: the writer's DynamoDB fails every UpdateItem (after its retries), the jobs' does not.
    const failing = new DynamoDBClient({
      endpoint: dynamo.endpoint,
      region: 'eu-central-1',
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
      maxAttempts: 1,
    });
    failing.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName === 'UpdateItemCommand') {
          throw dynamoDbServiceError('InternalServerError', 'server', 500);
        }
        return next(args);
      },
      { step: 'initialize', name: 'failUpdates' },
    );
    const d = deployment({ ringClient: failing });
    const author = await provider(d.deps);
    const scheduledRun = async () => {
      d.time.spawn(d.publisherRun);
      await d.time.runFor(OUTBOX_PUBLISHER_SCHEDULE.timeoutMs);
    };
    await scheduledRun();

    // Act: the write commits; its ring fails. The next run finds no ring; a day later, the sweep runs.
    const { body } = await createContract(d.deps, author, CREATE_FIXTURE);
    await scheduledRun();
    const beforeSweep = d.publishedAt.has(body.id);
    await d.time.runFor(QUIET_SWEEP_MS);
    await scheduledRun();

    // Assess: the write stood, the event waited for the sweep, and went out then.
    expect(body.status).toBe('Draft');
    expect(beforeSweep).toBe(false);
    expect(d.publishedAt.has(body.id)).toBe(true);
    failing.destroy();
  }, 60_000);
});

describe('the gated jobs', () => {
  it('the expirer wakes for the validity end it stored, without a ring, and not before', async () => {
    // Prepare: its last run found a live contract ending at noon.
    const d = deployment();
    const doorbell = d.deps.doorbell!;
    const { rings } = await doorbell.read();
    const noon = new Date(d.time.now().getTime() + 12 * 60 * MINUTE).toISOString();
    await doorbell.recordExpiry({ rings, at: d.time.now().toISOString(), nextDeadline: noon });

    // Act
    await d.time.runFor(12 * 60 * MINUTE - 1);
    const before = await expireContractsWhenDue(d.deps, doorbell);
    await d.time.runFor(1);
    const at = await expireContractsWhenDue(d.deps, doorbell);

    // Assess
    expect(before.skipped).toBe(true);
    expect(at.skipped).toBe(false);
  });

  it('leaves a batch the bus refused to the next run, which drains it without a ring', async () => {
    // Prepare: one pending event; the bus refuses everything during the first run.
    const d = deployment();
    const author = await provider(d.deps);
    const { body } = await createContract(d.deps, author, CREATE_FIXTURE);
    const refusing = { publish: async () => new Set<string>() };
    const end = d.time.now().getTime() + OUTBOX_PUBLISHER_SCHEDULE.timeoutMs;
    const calls = d.databaseCalls();

    // Act: the refused run ends at once (no retry every second); the next, with a working bus, drains.
    const refused = await drainOutbox(d.deps.db, refusing, {
      remainingMs: () => end - d.time.now().getTime(),
      doorbell: d.deps.doorbell!,
      now: d.time.now,
      sleep: d.time.sleep,
    });
    const afterRefusal = d.databaseCalls();
    await d.time.runFor(MINUTE);
    d.time.spawn(d.publisherRun);
    await d.time.runFor(OUTBOX_PUBLISHER_SCHEDULE.timeoutMs);

    // Assess
    expect(refused).toMatchObject({ published: 0, rounds: 1 });
    expect(refused.failed).toBeGreaterThanOrEqual(1);
    expect(afterRefusal - calls).toBeLessThanOrEqual(4);
    expect(d.publishedAt.has(body.id)).toBe(true);
    expect((await d.deps.doorbell!.read()).outbox.failedAt).toBeUndefined();
  });
});

describe('ringingDatabase', () => {
  it('rings after a committed write of the outbox or the audit log, never for a read or a rollback', async () => {
    // Prepare
    const doorbell = new DynamoDbDoorbell({ tableName: table, client: dynamo.client });
    const db = ringingDatabase(opened.db, doorbell);
    const rings = async () => (await doorbell.read()).rings;

    // Act and assess
    await db.query('SELECT count(*) FROM outbox');
    expect(await rings()).toBe(0);
    await expect(
      db.transaction(async (tx) => {
        await tx.query(
          `INSERT INTO outbox (id, aggregate_type, aggregate_id, event_type, payload, occurred_at)
           VALUES (gen_random_uuid(), 'contract', gen_random_uuid(), 'Test', '{}'::jsonb, now())`,
        );
        throw new Error('rolled back');
      }),
    ).rejects.toThrow('rolled back');
    expect(await rings()).toBe(0);
    await db.transaction(async (tx) => {
      await tx.query(
        `INSERT INTO outbox (id, aggregate_type, aggregate_id, event_type, payload, occurred_at, published_at)
         VALUES (gen_random_uuid(), 'contract', gen_random_uuid(), 'Test', '{}'::jsonb, now(), now())`,
      );
    });
    expect(await rings()).toBe(1);
  });
});
