import { randomUUID } from 'node:crypto';
import type { Database } from '../../shared/database/database.ts';
import { PgliteDatabase } from '../../shared/database/pglite-database.ts';
import { PostgresDatabase } from '../../shared/database/postgres-database.ts';

/**
 * The three database adapters, each opened on a fresh, empty database: PGlite in memory, a real PostgreSQL
 * server (a new database on TEST_DATABASE_URL, which `npm test` starts when a server is installed), and the
 * production Data API adapter through the real SDK client against the local Data API emulator.
 */
export interface OpenedDatabase {
  readonly db: Database;
  close(): Promise<void>;
}

export interface AdapterFactory {
  readonly name: 'pglite' | 'postgres' | 'data-api';
  /** False when the adapter's server is not available here (only postgres outside CI). */
  readonly available: boolean;
  open(): Promise<OpenedDatabase>;
}

const serverUrl = process.env.TEST_DATABASE_URL;

/**
 * A new, empty database on the TEST_DATABASE_URL server (undefined without one): its URL, and `drop` to
 * remove it (connections still open are closed).
 */
export async function serverDatabase(): Promise<{ url: string; drop(): Promise<void> } | undefined> {
  if (serverUrl === undefined) return undefined;
  const name = `test_${randomUUID().replaceAll('-', '')}`;
  const admin = new PostgresDatabase(serverUrl, { max: 1 });
  await admin.query(`CREATE DATABASE ${name}`);
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return {
    url: url.href,
    async drop() {
      await admin.query(`DROP DATABASE ${name} WITH (FORCE)`);
      await admin.close();
    },
  };
}

export const ADAPTERS: readonly AdapterFactory[] = [
  {
    name: 'pglite',
    available: true,
    async open() {
      const db = await PgliteDatabase.open();
      return { db, close: () => db.close() };
    },
  },
  {
    name: 'postgres',
    available: serverUrl !== undefined,
    async open() {
      const database = (await serverDatabase())!;
      const db = new PostgresDatabase(database.url, { max: 20 });
      return {
        db,
        async close() {
          await db.close();
          await database.drop();
        },
      };
    },
  },
  {
    name: 'data-api',
    available: true,
    async open() {
      const { PGlite } = await import('@electric-sql/pglite');
      const { pgliteBackend } = await import('../../infra/local/services/rds-data/data-api-emulator.ts');
      const { openLocalDataApi } = await import('../../infra/local/services/rds-data/local-data-api.ts');
      const pg = new PGlite();
      const local = await openLocalDataApi(pgliteBackend(pg));
      return {
        db: local.db,
        async close() {
          await local.close();
          await pg.close();
        },
      };
    },
  },
];

/** Where an end-to-end suite's local stack keeps its data. */
export type StackDatabase = 'pglite' | 'data-api' | 'postgres';

/**
 * The local stack's databases the end-to-end suites run on, each named for `describe.each`: PGlite, the
 * Data API emulator, and a real PostgreSQL server when TEST_DATABASE_URL names one.
 */
export function stackDatabases(
  only: readonly StackDatabase[] = ['pglite', 'data-api', 'postgres'],
): { name: string; database: StackDatabase }[] {
  const names: Record<StackDatabase, string> = {
    pglite: 'PGlite',
    'data-api': 'the Data API emulator',
    postgres: 'PostgreSQL',
  };
  return only
    .filter((database) => database !== 'postgres' || serverUrl !== undefined)
    .map((database) => ({ name: names[database], database }));
}

/**
 * The local stack options for `database`, and `drop` to remove what it created. On the server, each call
 * gets a new database of its own: two stacks on one database publish each other's outbox (one stack's
 * publisher starts provisioning for the other's enclaves on its own simulated EC2, and the other waits for
 * them in vain) and sweep each other's rows.
 */
export async function stackDatabase(
  database: StackDatabase,
): Promise<{ options: { viaDataApi?: boolean; databaseUrl?: string }; drop(): Promise<void> }> {
  if (database === 'pglite') return { options: {}, drop: async () => undefined };
  if (database === 'data-api') return { options: { viaDataApi: true }, drop: async () => undefined };
  const server = await serverDatabase();
  if (!server) throw new Error('the postgres stack database needs TEST_DATABASE_URL');
  return { options: { databaseUrl: server.url }, drop: () => server.drop() };
}
