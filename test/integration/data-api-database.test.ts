/**
 * The Data API adapter through the real `RDSDataClient` against the local emulator: typed binding, rows
 * decoded exactly as the PGlite adapter decodes them, transactions, and the retry policy (driven by the
 * emulator's fault switch; aws-sdk-client-mock only for throttling).
 */
import {
  ExecuteStatementCommand,
  RDSDataClient,
  RDSDataServiceException,
  RollbackTransactionCommand,
} from '@aws-sdk/client-rds-data';
import { PGlite } from '@electric-sql/pglite';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  type DataApiEmulator,
  pgliteBackend,
  startDataApiEmulator,
} from '../../infra/local/services/rds-data/data-api-emulator.ts';
import {
  DataApiDatabase,
  QUERY_CANCELED,
  toDataApiTimestamp,
} from '../../shared/database/data-api-database.ts';
import {
  backoffDelayMs,
  DEFAULT_DATA_API_RETRY,
  type RetryClock,
  withDataApiRetry,
} from '../../shared/database/data-api-retry.ts';
import {
  type Database,
  DatabaseError,
  type Queryable,
  type SqlParams,
  sql,
} from '../../shared/database/database.ts';
import { PgliteDatabase } from '../../shared/database/pglite-database.ts';

const FAST_RETRY = { maxAttempts: 6, baseDelayMs: 1, maxDelayMs: 5, maxElapsedMs: 5_000 };

const SCHEMA = `CREATE TABLE samples (
  id uuid PRIMARY KEY,
  doc jsonb,
  at timestamptz,
  n int8,
  small int4,
  amount numeric(12, 2),
  ok boolean,
  tags text[],
  label text
)`;

const INSERT_SAMPLE = `INSERT INTO samples (id, doc, at, n, small, amount, ok, tags, label)
  VALUES (:id, :doc, :at, :n, :small, :amount, :ok, string_to_array(:tags, ','), :label)`;

const SAMPLES: SqlParams[] = [
  {
    id: sql.uuid('0b7c2f4e-1d2a-4c3b-9e8f-7a6b5c4d3e2f'),
    doc: sql.json({ terms: { price: 12.5, currency: 'EUR' }, parties: ['a', 'b'], note: 'Grüße ✓' }),
    at: sql.timestamp('2026-11-25T10:00:00.123Z'),
    n: sql.int(Number.MAX_SAFE_INTEGER),
    small: sql.int(-7),
    amount: sql.decimal('12345.60'),
    ok: sql.bool(true),
    tags: sql.text('alpha,beta'),
    label: sql.text("it's"),
  },
  {
    id: sql.uuid('1c8d3a5f-2e3b-4d4c-8f9a-8b7c6d5e4f3a'),
    doc: sql.json([1, 'two', null]),
    at: sql.timestamp(new Date(Date.UTC(1999, 11, 31, 23, 59, 59, 999))),
    n: sql.int(0),
    small: sql.int(2_147_483_647),
    amount: sql.decimal('-0.01'),
    ok: sql.bool(false),
    tags: sql.text('solo'),
    label: sql.text(''),
  },
  {
    id: sql.uuid('2d9e4b6a-3f4c-4e5d-9a0b-9c8d7e6f5a4b'),
    doc: sql.json(null),
    at: sql.timestamp(null),
    n: sql.int(null),
    small: sql.int(null),
    amount: sql.decimal(null),
    ok: sql.bool(null),
    tags: sql.text(null),
    label: sql.text(null),
  },
];

let emulatorPg: PGlite;
let emulator: DataApiEmulator;
let client: RDSDataClient;
let db: DataApiDatabase;
let reference: PgliteDatabase;
/** Operation names of the calls the adapter sent (each of its retries included). */
let sent: string[] = [];

function adapter(retry = FAST_RETRY): DataApiDatabase {
  return new DataApiDatabase({
    resourceArn: emulator.resourceArn,
    secretArn: emulator.secretArn,
    database: 'postgres',
    client,
    retry,
  });
}

const insert = (tx: Queryable, body: string) =>
  tx.query('INSERT INTO notes (id, body) VALUES (gen_random_uuid(), :body)', { body: sql.text(body) });

async function failureOf(promise: Promise<unknown>): Promise<DatabaseError> {
  try {
    await promise;
  } catch (error) {
    return error as DatabaseError;
  }
  throw new Error('expected the call to fail');
}

beforeAll(async () => {
  emulatorPg = new PGlite();
  emulator = await startDataApiEmulator({ backend: pgliteBackend(emulatorPg) });
  client = new RDSDataClient({
    endpoint: emulator.endpoint,
    region: 'eu-central-1',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    maxAttempts: 1,
  });
  client.middlewareStack.add(
    (next, context) => (args) => {
      sent.push(context.commandName ?? '?');
      return next(args);
    },
    { step: 'initialize', name: 'recordSentCommands' },
  );
  db = adapter();
  // The PGlite adapter owns its own instance: it is the reference the Data API adapter must match.
  reference = await PgliteDatabase.open();
  for (const database of [db, reference] as Database[]) {
    await database.query(SCHEMA);
    await database.query('CREATE TABLE notes (id uuid PRIMARY KEY, body text NOT NULL)');
  }
}, 60_000);

afterEach(() => {
  emulator.clearFaults();
  sent = [];
});

afterAll(async () => {
  await db?.close();
  client?.destroy();
  await emulator?.close();
  await emulatorPg?.close();
  await reference?.close();
});

describe('decoding', () => {
  it('returns the same rows as the PGlite adapter for the same statements', async () => {
    for (const params of SAMPLES) {
      await db.query(INSERT_SAMPLE, params);
      await reference.query(INSERT_SAMPLE, params);
    }
    const select = 'SELECT id, doc, at, n, small, amount, ok, tags, label FROM samples ORDER BY id';

    const viaDataApi = await db.query(select);
    const viaPglite = await reference.query(select);

    expect(viaDataApi).toEqual(viaPglite);
    expect(viaDataApi.rows[0]).toEqual({
      id: '0b7c2f4e-1d2a-4c3b-9e8f-7a6b5c4d3e2f',
      doc: { terms: { price: 12.5, currency: 'EUR' }, parties: ['a', 'b'], note: 'Grüße ✓' },
      at: '2026-11-25T10:00:00.123Z',
      n: Number.MAX_SAFE_INTEGER,
      small: -7,
      amount: '12345.60',
      ok: true,
      tags: ['alpha', 'beta'],
      label: "it's",
    });
  });

  it('decodes computed columns alike: microseconds, offsets, int8 arithmetic, jsonb arrays', async () => {
    const select = `SELECT '2026-11-25 12:00:00.123456+02'::timestamptz AS at, 2::int8 * 21 AS answer,
      '[{"a": 1}]'::jsonb AS list, ARRAY[]::text[] AS empty, NULL::uuid AS missing, 1.5::float8 AS ratio`;

    const viaDataApi = await db.query(select);
    const viaPglite = await reference.query(select);

    expect(viaDataApi).toEqual(viaPglite);
    expect(viaDataApi.rows[0]?.at).toBe('2026-11-25T10:00:00.123Z');
  });

  it('counts rows alike: returned rows with columns, affected rows without', async () => {
    const update = "UPDATE samples SET label = 'seen' WHERE n IS NOT NULL";
    const returning = "UPDATE samples SET label = 'seen' WHERE n IS NOT NULL RETURNING id";

    expect((await db.query(update)).rowCount).toBe((await reference.query(update)).rowCount);
    expect((await db.query(update)).rowCount).toBe(2);
    expect((await db.query(returning)).rowCount).toBe(2);
    expect(await db.query('SELECT id FROM samples WHERE false')).toEqual({ rows: [], rowCount: 0 });
  });

  it('refuses an int8 beyond the safe integer range rather than rounding it, like the PGlite adapter', async () => {
    const select = 'SELECT 9007199254740993::int8 AS big';

    const viaDataApi = await failureOf(db.query(select));
    const viaPglite = await failureOf(reference.query(select));

    expect(viaDataApi).toBeInstanceOf(DatabaseError);
    expect(viaDataApi.message).toBe(viaPglite.message);
  });
});

describe('binding', () => {
  it('binds each declared type with the hint that makes Aurora accept it', async () => {
    const { rows } = await db.query(
      `SELECT pg_typeof(:id)::text AS id, pg_typeof(:doc)::text AS doc, pg_typeof(:at)::text AS at,
        pg_typeof(:n)::text AS n, pg_typeof(:amount)::text AS amount, pg_typeof(:ok)::text AS ok,
        pg_typeof(:label)::text AS label`,
      SAMPLES[0],
    );

    expect(rows[0]).toEqual({
      id: 'uuid',
      doc: 'jsonb',
      at: 'timestamp without time zone',
      n: 'bigint',
      amount: 'numeric',
      ok: 'boolean',
      label: 'character varying',
    });
  });

  it('sends timestamps as YYYY-MM-DD HH:MM:SS.FFF in UTC', () => {
    expect(toDataApiTimestamp('2026-11-25T12:00:00.5+02:00')).toBe('2026-11-25 10:00:00.500');
    expect(() => toDataApiTimestamp('not a date')).toThrow(TypeError);
  });

  it('fails a uuid column given a value declared as text, as Aurora does', async () => {
    const error = await failureOf(
      db.query('INSERT INTO notes (id, body) VALUES (:id, :body)', {
        id: sql.text('3e0f5c7b-4a5d-4f6e-8b1c-0d9e8f7a6b5c'),
        body: sql.text('x'),
      }),
    );

    expect(error).toBeInstanceOf(DatabaseError);
    expect(error.code).toBe('42804');
    expect(error.message).toBe('column "id" is of type uuid but expression is of type character varying');
  });

  it('reports a SQL error with the same message and SQLSTATE as the PGlite adapter', async () => {
    const insert = 'INSERT INTO notes (id, body) VALUES (:id, :body)';
    const params = { id: sql.uuid('4f1a6d8c-5b6e-4a7f-9c2d-1e0f9a8b7c6d'), body: sql.text('first') };
    await db.query(insert, params);
    await reference.query(insert, params);

    const viaDataApi = await failureOf(db.query(insert, params));
    const viaPglite = await failureOf(reference.query(insert, params));

    expect(viaDataApi).toBeInstanceOf(DatabaseError);
    expect(viaDataApi.code).toBe('23505');
    expect(viaDataApi.code).toBe(viaPglite.code);
    expect(viaDataApi.message).toBe(viaPglite.message);
  });

  it('refuses a statement naming a parameter that was not given, before any call', async () => {
    await expect(db.query('SELECT :nope')).rejects.toThrow(TypeError);
    expect(sent).toEqual([]);
  });
});

describe('transactions', () => {
  const count = async (body: string) =>
    (
      await db.query<{ n: number }>('SELECT count(*)::int8 AS n FROM notes WHERE body = :body', {
        body: sql.text(body),
      })
    ).rows[0]?.n;
  it('commits the work', async () => {
    const result = await db.transaction(async (tx) => {
      await insert(tx, 'committed');
      await insert(tx, 'committed');
      return 'done';
    });

    expect(result).toBe('done');
    expect(await count('committed')).toBe(2);
    expect(sent).toEqual([
      'BeginTransactionCommand',
      'ExecuteStatementCommand',
      'ExecuteStatementCommand',
      'CommitTransactionCommand',
      'ExecuteStatementCommand',
    ]);
  });

  it('rolls back when the work throws, and rethrows its error', async () => {
    const failure = new Error('business rule');

    const error = await db
      .transaction(async (tx) => {
        await insert(tx, 'thrown');
        throw failure;
      })
      .catch((e: unknown) => e);

    expect(error).toBe(failure);
    expect(await count('thrown')).toBe(0);
    expect(sent).toContain('RollbackTransactionCommand');
  });

  it('rolls back after a failing statement and reports it as a DatabaseError', async () => {
    const error = await failureOf(
      db.transaction(async (tx) => {
        await insert(tx, 'before-error');
        await tx.query('SELECT 1/0');
      }),
    );

    expect(error).toBeInstanceOf(DatabaseError);
    expect(error.code).toBe('22012');
    expect(await count('before-error')).toBe(0);
  });
});

describe('retries', () => {
  it('retries DatabaseResumingException until the cluster is awake', async () => {
    emulator.injectFaults('DatabaseResumingException', 3);

    const { rows } = await db.query('SELECT 1::int4 AS one');

    expect(rows).toEqual([{ one: 1 }]);
    expect(sent).toHaveLength(4);
  });

  it.each([
    'DatabaseUnavailableException',
    'ServiceUnavailableError',
    'InternalServerErrorException',
    'ThrottlingException',
  ] as const)('retries %s', async (errorName) => {
    emulator.injectFaults(errorName, 2);

    await expect(db.query('SELECT 1')).resolves.toMatchObject({ rowCount: 1 });
    expect(sent).toHaveLength(3);
  });

  it('never retries StatementTimeoutException: the write may have been applied', async () => {
    emulator.injectFaults('StatementTimeoutException', 1);

    const error = await failureOf(
      db.query('INSERT INTO notes (id, body) VALUES (gen_random_uuid(), :body)', {
        body: sql.text('timed-out'),
      }),
    );

    expect(error).toBeInstanceOf(DatabaseError);
    expect(error.code).toBe(QUERY_CANCELED);
    expect(sent).toHaveLength(1);
  });

  it('never retries a real statement timeout either', async () => {
    const quick = await startDataApiEmulator({ backend: pgliteBackend(emulatorPg), statementTimeoutMs: 100 });
    const quickClient = new RDSDataClient({
      endpoint: quick.endpoint,
      region: 'eu-central-1',
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
      maxAttempts: 1,
    });
    let calls = 0;
    quickClient.middlewareStack.add(
      (next) => (args) => {
        calls++;
        return next(args);
      },
      { step: 'initialize' },
    );
    const slowDb = new DataApiDatabase({
      resourceArn: quick.resourceArn,
      secretArn: quick.secretArn,
      database: 'postgres',
      client: quickClient,
      retry: FAST_RETRY,
    });
    try {
      const error = await failureOf(slowDb.query('SELECT pg_sleep(0.3)'));

      expect(error.code).toBe(QUERY_CANCELED);
      expect(calls).toBe(1);
    } finally {
      quickClient.destroy();
      await quick.close();
    }
  });

  it('never retries SQL errors or access errors', async () => {
    emulator.injectFaults('AccessDeniedException', 1);
    const denied = await failureOf(db.query('SELECT 1'));
    const sqlError = await failureOf(db.query('SELECT * FROM no_such_table'));

    expect(denied.message).toContain('AccessDeniedException');
    expect(sqlError.code).toBe('42P01');
    expect(sent).toHaveLength(2);
  });

  it('gives up after maxAttempts with a DatabaseError', async () => {
    emulator.injectFaults('DatabaseResumingException', 50);
    const impatient = adapter({ ...FAST_RETRY, maxAttempts: 3 });

    const error = await failureOf(impatient.query('SELECT 1'));

    expect(error).toBeInstanceOf(DatabaseError);
    expect(error.message).toContain('DatabaseResumingException');
    expect(sent).toHaveLength(3);
  });

  it('retries BeginTransaction, and the first statement only after DatabaseResumingException', async () => {
    emulator.injectFaults('ServiceUnavailableError', 2);

    await db.transaction(async (tx) => {
      emulator.injectFaults('DatabaseResumingException', 1);
      await insert(tx, 'resumed-in-tx');
    });

    expect(sent).toEqual([
      'BeginTransactionCommand',
      'BeginTransactionCommand',
      'BeginTransactionCommand',
      'ExecuteStatementCommand',
      'ExecuteStatementCommand',
      'CommitTransactionCommand',
    ]);
    expect(
      (await db.query('SELECT body FROM notes WHERE body = :body', { body: sql.text('resumed-in-tx') }))
        .rowCount,
    ).toBe(1);
  });

  it('does not retry a statement inside a transaction once it has started', async () => {
    const error = await failureOf(
      db.transaction(async (tx) => {
        await insert(tx, 'not-retried');
        emulator.injectFaults('InternalServerErrorException', 1);
        await insert(tx, 'not-retried');
      }),
    );

    expect(error.message).toContain('InternalServerErrorException');
    expect(sent.filter((name) => name === 'ExecuteStatementCommand')).toHaveLength(2);
    expect(sent.at(-1)).toBe('RollbackTransactionCommand');
    expect(
      (await db.query('SELECT body FROM notes WHERE body = :body', { body: sql.text('not-retried') }))
        .rowCount,
    ).toBe(0);
  });

  it('retries throttling from the SDK with back-off (aws-sdk-client-mock)', async () => {
    const mockedClient = new RDSDataClient({ region: 'eu-central-1' });
    const mock = mockClient(mockedClient);
    const throttled = new RDSDataServiceException({
      name: 'ThrottlingException',
      $fault: 'client',
      $metadata: { httpStatusCode: 400 },
      message: 'Rate exceeded',
    });
    mock
      .on(ExecuteStatementCommand)
      .rejectsOnce(throttled)
      .rejectsOnce(throttled)
      .resolves({
        columnMetadata: [{ name: 'n', typeName: 'int8' }],
        records: [[{ stringValue: '42' }]],
        numberOfRecordsUpdated: 0,
      });
    const mocked = new DataApiDatabase({
      resourceArn: emulator.resourceArn,
      secretArn: emulator.secretArn,
      database: 'postgres',
      client: mockedClient,
      retry: FAST_RETRY,
    });

    const { rows } = await mocked.query('SELECT 42::int8 AS n');

    expect(rows).toEqual([{ n: 42 }]);
    expect(mock.commandCalls(ExecuteStatementCommand)).toHaveLength(3);
    expect(mock.commandCalls(RollbackTransactionCommand)).toHaveLength(0);
    mock.restore();
  });
});

describe('retry policy', () => {
  const fakeClock = (random: number) => {
    let now = 0;
    const sleeps: number[] = [];
    const clock: RetryClock = {
      now: () => now,
      sleep: async (ms) => {
        sleeps.push(ms);
        now += ms;
      },
      random: () => random,
    };
    return { clock, sleeps };
  };
  const resuming = Object.assign(new Error('resuming'), { name: 'DatabaseResumingException' });

  it('draws each delay uniformly below min(maxDelay, base · 2^retry) (full jitter)', () => {
    const options = { ...DEFAULT_DATA_API_RETRY, baseDelayMs: 100, maxDelayMs: 1_000 };

    expect([0, 1, 2, 3, 4, 5].map((retry) => backoffDelayMs(retry, options, () => 0.999999))).toEqual([
      99, 199, 399, 799, 999, 999,
    ]);
    expect(backoffDelayMs(3, options, () => 0)).toBe(0);
  });

  it('covers a ~20 s resume by default, and stops within the time budget', async () => {
    const { clock, sleeps } = fakeClock(0.999999);
    let calls = 0;

    const error = await withDataApiRetry(
      async () => {
        calls++;
        throw resuming;
      },
      DEFAULT_DATA_API_RETRY,
      undefined,
      clock,
    ).catch((e: unknown) => e);
    const waited = sleeps.reduce((a, b) => a + b, 0);

    expect(error).toBe(resuming);
    expect(waited).toBeGreaterThan(15_000);
    expect(waited).toBeLessThanOrEqual(DEFAULT_DATA_API_RETRY.maxElapsedMs);
    expect(calls).toBe(sleeps.length + 1);
  });

  it('returns as soon as a call succeeds', async () => {
    const { clock, sleeps } = fakeClock(0.5);
    let calls = 0;

    const value = await withDataApiRetry(
      async () => {
        calls++;
        if (calls < 3) throw resuming;
        return 'awake';
      },
      DEFAULT_DATA_API_RETRY,
      undefined,
      clock,
    );

    expect(value).toBe('awake');
    expect(sleeps).toEqual([125, 250]);
  });
});
