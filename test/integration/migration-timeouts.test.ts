import { PGlite } from '@electric-sql/pglite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type DataApiEmulator,
  pgliteBackend,
  startDataApiEmulator,
} from '../../infra/local/services/rds-data/data-api-emulator.ts';
import { DataApiDatabase } from '../../shared/database/data-api-database.ts';
import { DatabaseError, QUERY_CANCELED } from '../../shared/database/database.ts';
import { type Migration, migrate } from '../../shared/database/migrate.ts';

/**
 * A migration statement that outlasts the Data API's statement timeout (45 s; 300 ms here): with
 * `continueAfterTimeout`, as the migration custom resource runs, it finishes on the cluster and the next
 * run finds it done; without, it is cancelled and would be on every run. Either way the failure names the
 * migration and the statement.
 */
describe('a migration statement that outlasts the Data API statement timeout', () => {
  let pg: PGlite;
  let emulator: DataApiEmulator;

  beforeAll(async () => {
    pg = new PGlite();
    emulator = await startDataApiEmulator({ backend: pgliteBackend(pg), statementTimeoutMs: 300 });
  });
  afterAll(async () => {
    await emulator?.close();
    await pg?.close();
  });

  const database = (continueAfterTimeout: boolean) =>
    new DataApiDatabase({
      resourceArn: emulator.resourceArn,
      secretArn: emulator.secretArn,
      database: 'postgres',
      endpoint: { url: emulator.endpoint, region: 'eu-central-1' },
      continueAfterTimeout,
    });

  /** A long build: one statement that sleeps 0.8 s, then a quick one. */
  const slow = (table: string): Migration => ({
    name: `0001-${table}.sql`,
    script: `CREATE TABLE IF NOT EXISTS ${table} AS SELECT 1 AS built FROM pg_sleep(0.8);\nCREATE INDEX IF NOT EXISTS ${table}_built ON ${table} (built);`,
  });

  async function exists(table: string): Promise<boolean> {
    const { rows } = await pg.query<{ found: boolean }>('SELECT to_regclass($1) IS NOT NULL AS found', [
      table,
    ]);
    return rows[0]!.found;
  }

  async function settle(): Promise<void> {
    // The statement the call gave up on ends 0.8 s after it started (a PGlite backend runs one at a time).
    await new Promise((resolve) => setTimeout(resolve, 1200));
  }

  it('with continueAfterTimeout, finishes on the cluster, and the next run completes the migration', async () => {
    const db = database(true);
    try {
      const error = await migrate(db, [slow('continued')]).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(DatabaseError);
      expect((error as DatabaseError).code).toBe(QUERY_CANCELED);
      expect((error as Error).message).toMatch(
        /^migration 0001-continued\.sql, statement 1 of 2 timed out: it may still be running on the cluster; every statement can run again, so deploy again once it has finished \(Data API statement timeout: /,
      );
      await settle();
      expect(await exists('continued')).toBe(true);
      expect(await migrate(db, [slow('continued')])).toEqual(['0001-continued.sql']);
      expect(await exists('continued_built')).toBe(true);
    } finally {
      await db.close();
    }
  });

  it('without it, the statement is cancelled and nothing is left of it', async () => {
    const db = database(false);
    try {
      await expect(migrate(db, [slow('cancelled')])).rejects.toThrow(
        /^migration 0001-cancelled\.sql, statement 1 of 2 timed out/,
      );
      await settle();
      expect(await exists('cancelled')).toBe(false);
      const { rows } = await pg.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM schema_migrations WHERE name = '0001-cancelled.sql'",
      );
      expect(rows[0]!.n).toBe(0);
    } finally {
      await db.close();
    }
  });

  it('names the migration and statement of any other failure, with the database error as its cause', async () => {
    const db = database(true);
    try {
      const error = (await migrate(db, [
        { name: '0002-broken.sql', script: 'SELECT 1;\nSELECT * FROM no_such_table;' },
      ]).catch((e: unknown) => e)) as DatabaseError;
      expect(error.message).toMatch(/^migration 0002-broken\.sql, statement 2 of 2 failed: .*no_such_table/);
      expect(error.code).toBe('42P01');
      expect(error.cause).toBeInstanceOf(DatabaseError);
    } finally {
      await db.close();
    }
  });
});
