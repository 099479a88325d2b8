/**
 * The local Data API emulator, driven by the real `RDSDataClient`: each rule of `DATA-API.md` that the
 * emulator reproduces is shown here against embedded PostgreSQL (and against a PostgreSQL server when
 * `TEST_DATABASE_URL` is set).
 */
import {
  AccessDeniedException,
  BadRequestException,
  BatchExecuteStatementCommand,
  BeginTransactionCommand,
  CommitTransactionCommand,
  DatabaseErrorException,
  DatabaseNotFoundException,
  DatabaseResumingException,
  DatabaseUnavailableException,
  ExecuteStatementCommand,
  type ExecuteStatementCommandInput,
  ForbiddenException,
  InternalServerErrorException,
  RDSDataClient,
  RDSDataServiceException,
  RollbackTransactionCommand,
  ServiceUnavailableError,
  StatementTimeoutException,
  TransactionNotFoundException,
} from '@aws-sdk/client-rds-data';
import { PGlite } from '@electric-sql/pglite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type DataApiBackend,
  type DataApiEmulator,
  type DataApiEmulatorOptions,
  pgliteBackend,
  postgresBackend,
  startDataApiEmulator,
} from '../../infra/local/services/rds-data/data-api-emulator.ts';

const UUID = '6f1c1c1e-9b1a-4c55-8f1e-2a0b0c0d0e0f';

/** A client as the adapter builds one, without SDK retries so each fault reaches the test. */
function clientFor(emulator: DataApiEmulator): RDSDataClient {
  return new RDSDataClient({
    endpoint: emulator.endpoint,
    region: 'eu-central-1',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    maxAttempts: 1,
  });
}

/** The rejection of `promise`, failing the test when it resolves. */
async function failureOf(promise: Promise<unknown>): Promise<RDSDataServiceException> {
  try {
    await promise;
  } catch (error) {
    return error as RDSDataServiceException;
  }
  throw new Error('expected the call to fail');
}

interface Harness {
  emulator: DataApiEmulator;
  client: RDSDataClient;
  execute(
    input: Omit<ExecuteStatementCommandInput, 'resourceArn' | 'secretArn'>,
  ): ReturnType<typeof sendExecute>;
  begin(): Promise<string>;
  commit(transactionId: string): Promise<unknown>;
  rollback(transactionId: string): Promise<unknown>;
  close(): Promise<void>;
}

function sendExecute(client: RDSDataClient, input: ExecuteStatementCommandInput) {
  return client.send(new ExecuteStatementCommand(input));
}

async function harness(
  backend: DataApiBackend,
  options: Omit<DataApiEmulatorOptions, 'backend'> = {},
): Promise<Harness> {
  const emulator = await startDataApiEmulator({ backend, ...options });
  const client = clientFor(emulator);
  const arns = { resourceArn: emulator.resourceArn, secretArn: emulator.secretArn };
  return {
    emulator,
    client,
    execute: (input) => sendExecute(client, { ...arns, ...input }),
    begin: async () => (await client.send(new BeginTransactionCommand(arns))).transactionId!,
    commit: (transactionId) => client.send(new CommitTransactionCommand({ ...arns, transactionId })),
    rollback: (transactionId) => client.send(new RollbackTransactionCommand({ ...arns, transactionId })),
    close: async () => {
      client.destroy();
      await emulator.close();
    },
  };
}

let pg: PGlite;
let api: Harness;

beforeAll(async () => {
  pg = new PGlite();
  api = await harness(pgliteBackend(pg));
  await api.execute({
    sql: `CREATE TABLE items (
      id uuid PRIMARY KEY,
      doc jsonb,
      label text,
      at timestamptz,
      n int8,
      flag boolean DEFAULT false,
      data bytea
    )`,
  });
}, 60_000);

afterAll(async () => {
  await api?.close();
  await pg?.close();
});

describe('wire protocol', () => {
  it('serves the real SDK client, signed requests and all', async () => {
    const result = await api.execute({ sql: 'SELECT 1 AS one' });

    expect(result.$metadata.httpStatusCode).toBe(200);
    expect(result.records).toEqual([[{ longValue: 1 }]]);
  });

  it('refuses a cluster the caller has no access to with AccessDeniedException (403)', async () => {
    const error = await failureOf(
      sendExecute(api.client, {
        resourceArn: 'arn:aws:rds:us-east-1:123456789012:cluster:someone-else',
        secretArn: api.emulator.secretArn,
        sql: 'SELECT 1',
      }),
    );

    expect(error).toBeInstanceOf(AccessDeniedException);
    expect(error.$metadata.httpStatusCode).toBe(403);
  });

  it('refuses an unknown secret and a malformed ARN with BadRequestException', async () => {
    const wrongSecret = await failureOf(
      sendExecute(api.client, {
        resourceArn: api.emulator.resourceArn,
        secretArn: 'arn:aws:secretsmanager:us-east-1:123456789012:secret:other',
        sql: 'SELECT 1',
      }),
    );
    const malformed = await failureOf(
      sendExecute(api.client, {
        resourceArn: 'cluster-1',
        secretArn: api.emulator.secretArn,
        sql: 'SELECT 1',
      }),
    );

    expect(wrongSecret).toBeInstanceOf(BadRequestException);
    expect(malformed).toBeInstanceOf(BadRequestException);
  });

  it('answers an unknown operation with 404', async () => {
    const response = await fetch(`${api.emulator.endpoint}/ExecuteSql`, { method: 'POST', body: '{}' });

    expect(response.status).toBe(404);
    expect(response.headers.get('x-amzn-errortype')).toBe('UnknownOperationException');
  });
});

describe('the user a secret signs in as', () => {
  const APP_SECRET = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:application-Xy12Ab';
  let app: Harness;
  let appPg: PGlite;
  const asApp = (sql: string, transactionId?: string) =>
    sendExecute(app.client, {
      resourceArn: app.emulator.resourceArn,
      secretArn: APP_SECRET,
      sql,
      ...(transactionId ? { transactionId } : {}),
    });

  beforeAll(async () => {
    appPg = new PGlite();
    await appPg.exec(`CREATE TABLE notes (n int); CREATE ROLE reader NOLOGIN; GRANT SELECT ON notes TO reader;
      INSERT INTO notes VALUES (1)`);
    app = await harness(pgliteBackend(appPg), { secretUsers: { [APP_SECRET]: 'reader' } });
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    await appPg?.close();
  });

  it("runs a statement with the privileges of the secret's user, and the emulator's own secret as the backend's", async () => {
    expect((await asApp('SELECT n FROM notes')).records).toEqual([[{ longValue: 1 }]]);
    expect((await asApp('SELECT current_user AS u')).records).toEqual([[{ stringValue: 'reader' }]]);
    const denied = await failureOf(asApp('INSERT INTO notes VALUES (2)'));
    expect(denied).toBeInstanceOf(DatabaseErrorException);
    expect(denied.message).toMatch(/permission denied for table notes/);
    await app.execute({ sql: 'INSERT INTO notes VALUES (2)' });
    expect((await asApp('SELECT count(*) AS c FROM notes')).records).toEqual([[{ longValue: 2 }]]);
  });

  it("keeps the secret's user for a whole transaction and for batches", async () => {
    const { transactionId } = await app.client.send(
      new BeginTransactionCommand({ resourceArn: app.emulator.resourceArn, secretArn: APP_SECRET }),
    );
    expect((await asApp('SELECT current_user AS u', transactionId)).records).toEqual([
      [{ stringValue: 'reader' }],
    ]);
    await expect(asApp('DELETE FROM notes', transactionId)).rejects.toThrow(/permission denied/);
    await app.client.send(
      new RollbackTransactionCommand({
        resourceArn: app.emulator.resourceArn,
        secretArn: APP_SECRET,
        transactionId,
      }),
    );
    await expect(
      app.client.send(
        new BatchExecuteStatementCommand({
          resourceArn: app.emulator.resourceArn,
          secretArn: APP_SECRET,
          sql: 'INSERT INTO notes VALUES (:n)',
          parameterSets: [[{ name: 'n', value: { longValue: 3 } }]],
        }),
      ),
    ).rejects.toThrow(/permission denied/);
    expect((await app.execute({ sql: 'SELECT count(*) AS c FROM notes' })).records).toEqual([
      [{ longValue: 2 }],
    ]);
  });
});

describe('parameters', () => {
  it('fails a plain string put into a uuid column, as Aurora does', async () => {
    const error = await failureOf(
      api.execute({
        sql: 'INSERT INTO items (id) VALUES (:id)',
        parameters: [{ name: 'id', value: { stringValue: UUID } }],
      }),
    );

    expect(error).toBeInstanceOf(DatabaseErrorException);
    expect(error.$metadata.httpStatusCode).toBe(400);
    expect(error.message).toContain(
      'column "id" is of type uuid but expression is of type character varying',
    );
    expect(error.message).toMatch(/; SQLState: 42804$/);
  });

  it('binds a string with typeHint UUID as uuid', async () => {
    const inserted = await api.execute({
      sql: 'INSERT INTO items (id) VALUES (:id) RETURNING id',
      parameters: [{ name: 'id', value: { stringValue: UUID }, typeHint: 'UUID' }],
    });

    expect(inserted.records).toEqual([[{ stringValue: UUID }]]);
  });

  it('needs typeHint JSON (or an explicit cast) for jsonb', async () => {
    const id = '00000000-0000-4000-8000-000000000001';
    const plain = await failureOf(
      api.execute({
        sql: 'INSERT INTO items (id, doc) VALUES (:id, :doc)',
        parameters: [
          { name: 'id', value: { stringValue: id }, typeHint: 'UUID' },
          { name: 'doc', value: { stringValue: '{"a":1}' } },
        ],
      }),
    );
    const hinted = await api.execute({
      sql: 'INSERT INTO items (id, doc) VALUES (:id, :doc) RETURNING doc',
      parameters: [
        { name: 'id', value: { stringValue: id }, typeHint: 'UUID' },
        { name: 'doc', value: { stringValue: '{"a":1}' }, typeHint: 'JSON' },
      ],
    });
    const cast = await api.execute({
      sql: 'SELECT (:doc::jsonb) -> :key AS v',
      parameters: [
        { name: 'doc', value: { stringValue: '{"a":[1,2]}' } },
        { name: 'key', value: { stringValue: 'a' } },
      ],
    });

    expect(plain).toBeInstanceOf(DatabaseErrorException);
    expect(plain.message).toContain('is of type jsonb but expression is of type character varying');
    expect(hinted.records).toEqual([[{ stringValue: '{"a": 1}' }]]);
    expect(cast.records).toEqual([[{ stringValue: '[1, 2]' }]]);
  });

  it('takes TIMESTAMP strings as YYYY-MM-DD HH:MM:SS[.FFF] only', async () => {
    const ok = await api.execute({
      sql: 'SELECT :at AS at, pg_typeof(:at)::text AS type',
      parameters: [{ name: 'at', value: { stringValue: '2026-11-25 10:00:00.123' }, typeHint: 'TIMESTAMP' }],
    });
    const withT = await failureOf(
      api.execute({
        sql: 'SELECT :at',
        parameters: [
          { name: 'at', value: { stringValue: '2026-11-25T10:00:00.123' }, typeHint: 'TIMESTAMP' },
        ],
      }),
    );
    const withZone = await failureOf(
      api.execute({
        sql: 'SELECT :at',
        parameters: [
          { name: 'at', value: { stringValue: '2026-11-25 10:00:00.123Z' }, typeHint: 'TIMESTAMP' },
        ],
      }),
    );

    expect(ok.records).toEqual([
      [{ stringValue: '2026-11-25 10:00:00.123' }, { stringValue: 'timestamp without time zone' }],
    ]);
    expect(withT).toBeInstanceOf(BadRequestException);
    expect(withT.message).toContain('Timestamp format must be yyyy-mm-dd hh:mm:ss');
    expect(withZone).toBeInstanceOf(BadRequestException);
  });

  it('checks DATE and TIME strings and casts DECIMAL', async () => {
    const ok = await api.execute({
      sql: 'SELECT pg_typeof(:d)::text, pg_typeof(:t)::text, :n + 0.5 AS n',
      parameters: [
        { name: 'd', value: { stringValue: '2026-11-25' }, typeHint: 'DATE' },
        { name: 't', value: { stringValue: '10:00:00' }, typeHint: 'TIME' },
        { name: 'n', value: { stringValue: '1.25' }, typeHint: 'DECIMAL' },
      ],
    });
    const badDate = await failureOf(
      api.execute({
        sql: 'SELECT :d',
        parameters: [{ name: 'd', value: { stringValue: '25/11/2026' }, typeHint: 'DATE' }],
      }),
    );

    expect(ok.records).toEqual([
      [{ stringValue: 'date' }, { stringValue: 'time without time zone' }, { stringValue: '1.75' }],
    ]);
    expect(badDate).toBeInstanceOf(BadRequestException);
  });

  it('binds longValue as int8, doubleValue as float8, booleanValue as boolean, plain strings as varchar', async () => {
    const result = await api.execute({
      sql: 'SELECT pg_typeof(:l)::text, pg_typeof(:d)::text, pg_typeof(:b)::text, pg_typeof(:s)::text',
      parameters: [
        { name: 'l', value: { longValue: 7 } },
        { name: 'd', value: { doubleValue: 1.5 } },
        { name: 'b', value: { booleanValue: true } },
        { name: 's', value: { stringValue: 'x' } },
      ],
    });

    expect(result.records).toEqual([
      [
        { stringValue: 'bigint' },
        { stringValue: 'double precision' },
        { stringValue: 'boolean' },
        { stringValue: 'character varying' },
      ],
    ]);
  });

  it('binds isNull untyped (any column takes it), or with the typeHint type', async () => {
    const untyped = await api.execute({
      sql: 'INSERT INTO items (id, doc, at) VALUES (:id, :doc, :at) RETURNING doc, at',
      parameters: [
        { name: 'id', value: { stringValue: '00000000-0000-4000-8000-000000000002' }, typeHint: 'UUID' },
        { name: 'doc', value: { isNull: true } },
        { name: 'at', value: { isNull: true } },
      ],
    });
    const hinted = await api.execute({
      sql: 'SELECT pg_typeof(:u)::text',
      parameters: [{ name: 'u', value: { isNull: true }, typeHint: 'UUID' }],
    });

    expect(untyped.records).toEqual([[{ isNull: true }, { isNull: true }]]);
    expect(hinted.records).toEqual([[{ stringValue: 'uuid' }]]);
  });

  it('round-trips blobValue as bytea', async () => {
    const bytes = new Uint8Array([0, 1, 2, 254, 255]);

    const result = await api.execute({
      sql: 'SELECT :b AS b, length(:b) AS len',
      parameters: [{ name: 'b', value: { blobValue: bytes } }],
    });

    expect(result.records?.[0]?.[0]?.blobValue).toEqual(bytes);
    expect(result.records?.[0]?.[1]).toEqual({ longValue: 5 });
  });

  it('refuses array parameters with a 400', async () => {
    const error = await failureOf(
      api.execute({
        sql: 'SELECT :ids',
        parameters: [{ name: 'ids', value: { arrayValue: { stringValues: ['a', 'b'] } } }],
      }),
    );

    expect(error).toBeInstanceOf(BadRequestException);
    expect(error.$metadata.httpStatusCode).toBe(400);
    expect(error.message).toContain('Array parameters are not supported');
  });

  it('refuses a statement naming a parameter that was not given', async () => {
    const error = await failureOf(api.execute({ sql: 'SELECT :missing' }));

    expect(error).toBeInstanceOf(BadRequestException);
  });

  it('leaves ::casts, string literals and comments alone when rewriting :names', async () => {
    const result = await api.execute({
      sql: "SELECT ':not' AS literal, :x::int AS cast_value -- :comment",
      parameters: [{ name: 'x', value: { stringValue: '41' } }],
    });

    expect(result.records).toEqual([[{ stringValue: ':not' }, { longValue: 41 }]]);
  });
});

describe('results', () => {
  it('maps each PostgreSQL type to its Field', async () => {
    const result = await api.execute({
      sql: `SELECT '{"b": 1}'::jsonb AS j, '${UUID}'::uuid AS u, 12.50::numeric AS d, 'txt'::text AS t,
        1::int2 AS s, 2::int4 AS i, 9007199254740991::int8 AS l, 1.5::float8 AS f, true AS b,
        '\\x0102'::bytea AS bin, NULL::text AS nothing, ARRAY['a', NULL, 'c,d'] AS tags,
        ARRAY[1, 2]::int8[] AS longs, ARRAY[[1, 2], [3, 4]] AS matrix, ARRAY[true, false] AS bools,
        '2026-11-25'::date AS day`,
    });

    expect(result.records).toEqual([
      [
        { stringValue: '{"b": 1}' },
        { stringValue: UUID },
        { stringValue: '12.50' },
        { stringValue: 'txt' },
        { longValue: 1 },
        { longValue: 2 },
        { longValue: 9007199254740991 },
        { doubleValue: 1.5 },
        { booleanValue: true },
        { blobValue: new Uint8Array([1, 2]) },
        { isNull: true },
        { arrayValue: { stringValues: ['a', null, 'c,d'] } },
        { arrayValue: { longValues: [1, 2] } },
        { arrayValue: { arrayValues: [{ longValues: [1, 2] }, { longValues: [3, 4] }] } },
        { arrayValue: { booleanValues: [true, false] } },
        { stringValue: '2026-11-25' },
      ],
    ]);
  });

  it('resolves types created after start, inside the transaction that created them', async () => {
    const transactionId = await api.begin();
    await api.execute({ sql: "CREATE TYPE mood AS ENUM ('calm', 'busy')", transactionId });

    const result = await api.execute({
      sql: "SELECT 'busy'::mood AS m, ARRAY['calm', 'busy']::mood[] AS ms",
      includeResultMetadata: true,
      transactionId,
    });
    await api.rollback(transactionId);

    expect(result.records).toEqual([
      [{ stringValue: 'busy' }, { arrayValue: { stringValues: ['calm', 'busy'] } }],
    ]);
    expect(result.columnMetadata?.map((c) => c.typeName)).toEqual(['mood', '_mood']);
  });

  it('returns timestamptz in UTC without a zone, whatever the session time zone', async () => {
    await pg.exec("SET TIME ZONE 'Asia/Kolkata'");
    try {
      const result = await api.execute({
        sql: "SELECT '2026-11-25 12:00:00.123456+02'::timestamptz AS at, ARRAY['2026-01-01 00:30:00+05:30'::timestamptz] AS ats",
      });

      expect(result.records).toEqual([
        [
          { stringValue: '2026-11-25 10:00:00.123456' },
          { arrayValue: { stringValues: ['2025-12-31 19:00:00'] } },
        ],
      ]);
    } finally {
      await pg.exec("SET TIME ZONE 'UTC'");
    }
  });

  it('describes columns with includeResultMetadata', async () => {
    const result = await api.execute({
      sql: `SELECT '${UUID}'::uuid AS id, '{}'::jsonb AS doc, now() AS at, 1::int8 AS n, ARRAY['a'] AS tags`,
      includeResultMetadata: true,
    });

    expect(result.columnMetadata?.map((c) => [c.name, c.typeName, c.type])).toEqual([
      ['id', 'uuid', 1111],
      ['doc', 'jsonb', 1111],
      ['at', 'timestamptz', 93],
      ['n', 'int8', -5],
      ['tags', '_text', 2003],
    ]);
  });

  it('honours resultSetOptions (longReturnType STRING, decimalReturnType DOUBLE_OR_LONG)', async () => {
    const result = await api.execute({
      sql: 'SELECT 42::int8 AS l, 2.5::numeric AS d, 3::numeric AS w',
      resultSetOptions: { longReturnType: 'STRING', decimalReturnType: 'DOUBLE_OR_LONG' },
    });

    expect(result.records).toEqual([[{ stringValue: '42' }, { doubleValue: 2.5 }, { longValue: 3 }]]);
  });

  it("formats a SELECT as one JSON string with formatRecordsAs 'JSON', without records or metadata", async () => {
    const result = await api.execute({
      sql: `SELECT '${UUID}'::uuid AS id, 5::int8 AS n, true AS ok, 1.50::numeric AS amount, NULL AS none, ARRAY['a'] AS tags`,
      formatRecordsAs: 'JSON',
      includeResultMetadata: true,
    });

    expect(result.records).toBeUndefined();
    expect(result.columnMetadata).toBeUndefined();
    expect(JSON.parse(result.formattedRecords!)).toEqual([
      { id: UUID, n: 5, ok: true, amount: '1.50', none: null, tags: ['a'] },
    ]);
  });

  it("ignores formatRecordsAs 'JSON' for statements other than SELECT", async () => {
    const id = '00000000-0000-4000-8000-000000000003';
    const returning = await api.execute({
      sql: 'INSERT INTO items (id, label) VALUES (:id, :label) RETURNING label',
      parameters: [
        { name: 'id', value: { stringValue: id }, typeHint: 'UUID' },
        { name: 'label', value: { stringValue: 'json-insert' } },
      ],
      formatRecordsAs: 'JSON',
    });
    const update = await api.execute({
      sql: "UPDATE items SET label = 'json-update' WHERE id = :id",
      parameters: [{ name: 'id', value: { stringValue: id }, typeHint: 'UUID' }],
      formatRecordsAs: 'JSON',
    });

    expect(returning.formattedRecords).toBeUndefined();
    expect(returning.records).toEqual([[{ stringValue: 'json-insert' }]]);
    expect(update.formattedRecords).toBeUndefined();
    expect(update.records).toBeUndefined();
    expect(update.numberOfRecordsUpdated).toBe(1);
  });

  it('counts numberOfRecordsUpdated for DML and 0 for SELECT', async () => {
    await api.execute({
      sql: "INSERT INTO items (id, label) SELECT gen_random_uuid(), 'counted' FROM generate_series(1, 3)",
    });

    const update = await api.execute({ sql: "UPDATE items SET flag = true WHERE label = 'counted'" });
    const select = await api.execute({ sql: "SELECT id FROM items WHERE label = 'counted'" });

    expect(update.numberOfRecordsUpdated).toBe(3);
    expect(select.numberOfRecordsUpdated).toBe(0);
    expect(select.records).toHaveLength(3);
  });
});

describe('limits', () => {
  it('refuses a response over 1 MiB: "Database response exceeded size limit"', async () => {
    const error = await failureOf(
      api.execute({ sql: "SELECT repeat('x', 60000) FROM generate_series(1, 20)" }),
    );

    expect(error).toBeInstanceOf(BadRequestException);
    expect(error.message).toBe('Database response exceeded size limit');
  });

  it('allows formattedRecords past 1 MiB (capped at 10 MB instead)', async () => {
    const result = await api.execute({
      sql: "SELECT repeat('x', 60000) AS x FROM generate_series(1, 20)",
      formatRecordsAs: 'JSON',
    });

    expect(result.formattedRecords!.length).toBeGreaterThan(1024 * 1024);
  });

  it('refuses formattedRecords over 10 MB', async () => {
    const error = await failureOf(
      api.execute({
        sql: "SELECT repeat('x', 60000) AS x FROM generate_series(1, 180)",
        formatRecordsAs: 'JSON',
      }),
    );

    expect(error).toBeInstanceOf(BadRequestException);
    expect(error.message).toBe('Database response exceeded size limit');
  });

  it('refuses a row over 64 KB', async () => {
    const error = await failureOf(api.execute({ sql: "SELECT repeat('x', 70000)" }));

    expect(error).toBeInstanceOf(BadRequestException);
    expect(error.message).toContain('64 KB');
  });

  it('refuses a statement over 65,536 characters', async () => {
    const error = await failureOf(api.execute({ sql: `SELECT 1 /*${' '.repeat(65_536)}*/` }));

    expect(error).toBeInstanceOf(BadRequestException);
  });

  it('refuses a request body over 4 MiB', async () => {
    const error = await failureOf(
      api.execute({
        sql: 'SELECT length(:s)',
        parameters: [{ name: 's', value: { stringValue: 'x'.repeat(4_300_000) } }],
      }),
    );

    expect(error).toBeInstanceOf(BadRequestException);
    expect(error.message).toContain('4 MiB');
  });
});

describe('transactions', () => {
  const countLabel = async (label: string) =>
    (
      await api.execute({
        sql: 'SELECT count(*) FROM items WHERE label = :label',
        parameters: [{ name: 'label', value: { stringValue: label } }],
      })
    ).records?.[0]?.[0]?.longValue;

  const insertLabel = (label: string, transactionId?: string) =>
    api.execute({
      sql: 'INSERT INTO items (id, label) VALUES (gen_random_uuid(), :label)',
      parameters: [{ name: 'label', value: { stringValue: label } }],
      ...(transactionId ? { transactionId } : {}),
    });

  it('commits the statements run with the transaction id', async () => {
    const transactionId = await api.begin();
    await insertLabel('tx-commit', transactionId);

    const committed = await api.commit(transactionId);

    expect(committed).toMatchObject({ transactionStatus: 'Transaction Committed' });
    expect(await countLabel('tx-commit')).toBe(1);
  });

  it('rolls them back on RollbackTransaction, after which the id is gone', async () => {
    const transactionId = await api.begin();
    await insertLabel('tx-rollback', transactionId);

    const rolledBack = await api.rollback(transactionId);
    const reused = await failureOf(insertLabel('tx-rollback', transactionId));

    expect(rolledBack).toMatchObject({ transactionStatus: 'Rollback Complete' });
    expect(await countLabel('tx-rollback')).toBe(0);
    expect(reused).toBeInstanceOf(TransactionNotFoundException);
    expect(reused.$metadata.httpStatusCode).toBe(404);
  });

  it('aborts the transaction on a statement error: later statements and the commit fail', async () => {
    const transactionId = await api.begin();
    await insertLabel('tx-aborted', transactionId);
    const failed = await failureOf(api.execute({ sql: 'SELECT 1/0', transactionId }));

    const later = await failureOf(insertLabel('tx-aborted', transactionId));
    const commit = await failureOf(api.commit(transactionId));

    expect(failed).toBeInstanceOf(DatabaseErrorException);
    expect(failed.message).toContain('division by zero');
    expect(later).toBeInstanceOf(DatabaseErrorException);
    expect(later.message).toContain('current transaction is aborted');
    expect(commit).toBeInstanceOf(DatabaseErrorException);
    expect(await countLabel('tx-aborted')).toBe(0);
  });

  it('lets an aborted transaction be rolled back', async () => {
    const transactionId = await api.begin();
    await failureOf(api.execute({ sql: 'SELECT 1/0', transactionId }));

    await expect(api.rollback(transactionId)).resolves.toMatchObject({
      transactionStatus: 'Rollback Complete',
    });
  });

  it('keeps DDL transactional on PostgreSQL (the implicit commit of DDL is Aurora MySQL only)', async () => {
    const transactionId = await api.begin();
    await api.execute({ sql: 'CREATE TABLE ddl_in_transaction (id int)', transactionId });

    await api.rollback(transactionId);
    const lookup = await api.execute({ sql: "SELECT to_regclass('ddl_in_transaction')::text AS t" });

    expect(lookup.records).toEqual([[{ isNull: true }]]);
  });

  it('answers TransactionNotFoundException for an id it never gave', async () => {
    const error = await failureOf(api.execute({ sql: 'SELECT 1', transactionId: 'AQ-not-a-transaction' }));

    expect(error).toBeInstanceOf(TransactionNotFoundException);
  });

  it('makes other calls wait while a transaction holds the single PGlite connection', async () => {
    const transactionId = await api.begin();
    await insertLabel('tx-serialised', transactionId);
    let counted: number | undefined;
    const outside = countLabel('tx-serialised').then((n) => {
      counted = n;
    });
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(counted).toBeUndefined();

    await api.commit(transactionId);
    await outside;

    expect(counted).toBe(1);
  });

  it('runs BatchExecuteStatement over every parameter set, all or nothing', async () => {
    const arns = { resourceArn: api.emulator.resourceArn, secretArn: api.emulator.secretArn };
    const sql = 'INSERT INTO items (id, label) VALUES (:id::uuid, :label)';
    const set = (id: string) => [
      { name: 'id', value: { stringValue: id } },
      { name: 'label', value: { stringValue: 'batch' } },
    ];

    const ok = await api.client.send(
      new BatchExecuteStatementCommand({
        ...arns,
        sql,
        parameterSets: [
          set('10000000-0000-4000-8000-000000000001'),
          set('10000000-0000-4000-8000-000000000002'),
        ],
      }),
    );
    const duplicate = await failureOf(
      api.client.send(
        new BatchExecuteStatementCommand({
          ...arns,
          sql,
          parameterSets: [
            set('10000000-0000-4000-8000-000000000003'),
            set('10000000-0000-4000-8000-000000000001'),
          ],
        }),
      ),
    );

    expect(ok.updateResults).toHaveLength(2);
    expect(duplicate).toBeInstanceOf(DatabaseErrorException);
    expect(duplicate.message).toMatch(
      /duplicate key value violates unique constraint[\s\S]*SQLState: 23505$/,
    );
    expect(await countLabel('batch')).toBe(2);
  });
});

describe('time limits', () => {
  let quick: Harness;

  beforeAll(async () => {
    quick = await harness(pgliteBackend(pg), { statementTimeoutMs: 200, transactionIdleTimeoutMs: 300 });
  });

  afterAll(async () => {
    await quick?.close();
  });

  const countLabel = async (label: string) =>
    (
      await quick.execute({
        sql: 'SELECT count(*) FROM items WHERE label = :label',
        parameters: [{ name: 'label', value: { stringValue: label } }],
      })
    ).records?.[0]?.[0]?.longValue;

  it('times a statement out with StatementTimeoutException and undoes it', async () => {
    const error = await failureOf(
      quick.execute({
        sql: "INSERT INTO items (id, label) SELECT gen_random_uuid(), 'slow' FROM pg_sleep(0.4)",
      }),
    );

    expect(error).toBeInstanceOf(StatementTimeoutException);
    expect(await countLabel('slow')).toBe(0);
  });

  it('still answers the timeout with continueAfterTimeout, but lets the statement finish', async () => {
    const error = await failureOf(
      quick.execute({
        sql: "INSERT INTO items (id, label) SELECT gen_random_uuid(), 'slow-continued' FROM pg_sleep(0.4)",
        continueAfterTimeout: true,
      }),
    );

    expect(error).toBeInstanceOf(StatementTimeoutException);
    expect(await countLabel('slow-continued')).toBe(1);
  });

  it('rolls back a transaction left idle, whose id then answers TransactionNotFoundException', async () => {
    const transactionId = await quick.begin();
    await quick.execute({
      sql: "INSERT INTO items (id, label) VALUES (gen_random_uuid(), 'idle')",
      transactionId,
    });

    await new Promise((resolve) => setTimeout(resolve, 600));
    const error = await failureOf(quick.execute({ sql: 'SELECT 1', transactionId }));

    expect(error).toBeInstanceOf(TransactionNotFoundException);
    expect(error.message).toContain("isn't found");
    expect(await countLabel('idle')).toBe(0);
  });

  it('times out a call that waits too long for the connection a transaction holds', async () => {
    const transactionId = await quick.begin();
    try {
      const error = await failureOf(quick.execute({ sql: 'SELECT 1' }));

      expect(error).toBeInstanceOf(StatementTimeoutException);
    } finally {
      await quick.rollback(transactionId);
    }
  });
});

describe('errors and the fault switch', () => {
  it.each([
    ['BadRequestException', BadRequestException, 400],
    ['DatabaseErrorException', DatabaseErrorException, 400],
    ['StatementTimeoutException', StatementTimeoutException, 400],
    ['DatabaseResumingException', DatabaseResumingException, 400],
    ['TransactionNotFoundException', TransactionNotFoundException, 404],
    ['DatabaseNotFoundException', DatabaseNotFoundException, 404],
    ['AccessDeniedException', AccessDeniedException, 403],
    ['ForbiddenException', ForbiddenException, 403],
    ['InternalServerErrorException', InternalServerErrorException, 500],
    ['ServiceUnavailableError', ServiceUnavailableError, 503],
    ['DatabaseUnavailableException', DatabaseUnavailableException, 504],
  ] as const)('raises %s in the SDK (HTTP %s)', async (name, exceptionClass, status) => {
    api.emulator.injectFaults(name, 1);

    const error = await failureOf(api.execute({ sql: 'SELECT 1' }));

    expect(error).toBeInstanceOf(exceptionClass);
    expect(error.name).toBe(name);
    expect(error.$metadata.httpStatusCode).toBe(status);
  });

  it('fails exactly the next N calls, then answers normally', async () => {
    api.emulator.injectFaults('DatabaseResumingException', 3);

    const outcomes = [];
    for (let i = 0; i < 4; i++) {
      outcomes.push(
        await api.execute({ sql: 'SELECT 1' }).then(
          () => 'ok',
          (error: Error) => error.name,
        ),
      );
    }

    expect(outcomes).toEqual([
      'DatabaseResumingException',
      'DatabaseResumingException',
      'DatabaseResumingException',
      'ok',
    ]);
  });

  it('takes faults over HTTP too (POST/GET/DELETE /__faults), for the local stack', async () => {
    const faults = `${api.emulator.endpoint}/__faults`;
    const posted = await fetch(faults, {
      method: 'POST',
      body: JSON.stringify({ error: 'ServiceUnavailableError', count: 2 }),
    });
    const pending = await (await fetch(faults)).json();

    const error = await failureOf(api.execute({ sql: 'SELECT 1' }));
    await fetch(faults, { method: 'DELETE' });
    const afterClear = await api.execute({ sql: 'SELECT 1' });
    const refused = await fetch(faults, {
      method: 'POST',
      body: JSON.stringify({ error: 'NoSuchError', count: 1 }),
    });

    expect(posted.status).toBe(200);
    expect(pending).toEqual({ pending: [{ error: 'ServiceUnavailableError', count: 2 }] });
    expect(error).toBeInstanceOf(ServiceUnavailableError);
    expect(afterClear.records).toEqual([[{ longValue: 1 }]]);
    expect(refused.status).toBe(400);
  });

  it('is an RDSDataServiceException hierarchy the SDK understands', async () => {
    api.emulator.injectFaults('ThrottlingException', 1);

    const error = await failureOf(api.execute({ sql: 'SELECT 1' }));

    expect(error).toBeInstanceOf(RDSDataServiceException);
    expect(error.name).toBe('ThrottlingException');
  });
});

// The same engine contract over a PostgreSQL server (a dedicated connection per transaction, cancellation
// with pg_cancel_backend); runs when TEST_DATABASE_URL names a server (npm test starts one).
const databaseUrl = process.env.TEST_DATABASE_URL;

describe.runIf(databaseUrl)('over a PostgreSQL server (TEST_DATABASE_URL)', () => {
  let server: Harness;
  let backend: DataApiBackend;
  const table = `data_api_emulator_${process.pid}`;

  beforeAll(async () => {
    backend = postgresBackend(databaseUrl!);
    server = await harness(backend, { statementTimeoutMs: 300 });
    await server.execute({ sql: `CREATE TABLE ${table} (id uuid PRIMARY KEY, label text, at timestamptz)` });
  });

  afterAll(async () => {
    await server?.execute({ sql: `DROP TABLE IF EXISTS ${table}` }).catch(() => undefined);
    await server?.close();
    await backend?.close();
  });

  it('fails a plain string into uuid and accepts typeHint UUID', async () => {
    const plain = await failureOf(
      server.execute({
        sql: `INSERT INTO ${table} (id) VALUES (:id)`,
        parameters: [{ name: 'id', value: { stringValue: UUID } }],
      }),
    );
    const hinted = await server.execute({
      sql: `INSERT INTO ${table} (id, at) VALUES (:id, '2026-11-25 12:00:00+02') RETURNING id, at`,
      parameters: [{ name: 'id', value: { stringValue: UUID }, typeHint: 'UUID' }],
    });

    expect(plain).toBeInstanceOf(DatabaseErrorException);
    expect(hinted.records).toEqual([[{ stringValue: UUID }, { stringValue: '2026-11-25 10:00:00' }]]);
  });

  it('keeps a transaction on its own connection until commit, while other calls go on', async () => {
    const transactionId = await server.begin();
    await server.execute({
      sql: `INSERT INTO ${table} (id, label) VALUES (gen_random_uuid(), 'pg-tx')`,
      transactionId,
    });
    const outside = await server.execute({ sql: `SELECT count(*) FROM ${table} WHERE label = 'pg-tx'` });

    await server.commit(transactionId);
    const after = await server.execute({ sql: `SELECT count(*) FROM ${table} WHERE label = 'pg-tx'` });

    expect(outside.records).toEqual([[{ longValue: 0 }]]);
    expect(after.records).toEqual([[{ longValue: 1 }]]);
  });

  it('cancels a statement past its limit', async () => {
    const error = await failureOf(
      server.execute({
        sql: `INSERT INTO ${table} (id, label) SELECT gen_random_uuid(), 'pg-slow' FROM pg_sleep(1)`,
      }),
    );
    const count = await server.execute({ sql: `SELECT count(*) FROM ${table} WHERE label = 'pg-slow'` });

    expect(error).toBeInstanceOf(StatementTimeoutException);
    expect(count.records).toEqual([[{ longValue: 0 }]]);
  });
});
