import { createHash } from 'node:crypto';
import pg from 'pg';
import {
  type Database,
  DatabaseError,
  type Queryable,
  type QueryResult,
  type Row,
  type SqlParams,
} from './database.ts';
import { bindPositional, textParsers } from './positional-binding.ts';

/**
 * Where a {@link PostgresDatabase} connects: a connection string (`DATABASE_URL`), or the parts of one (a
 * password with any character in it, TLS settings), as the secret rotation function reads them.
 */
export type PostgresConnection =
  | string
  | Pick<
      pg.ClientConfig,
      'host' | 'port' | 'user' | 'password' | 'database' | 'ssl' | 'connectionTimeoutMillis'
    >;

/** A real PostgreSQL server through node-postgres (`DATABASE_URL`). */
export class PostgresDatabase implements Database {
  private readonly pool: pg.Pool;

  constructor(connection: PostgresConnection, options: { max?: number } = {}) {
    this.pool = new pg.Pool({
      ...(typeof connection === 'string' ? { connectionString: connection } : connection),
      max: options.max ?? 10,
      options: '-c TimeZone=UTC',
      types: {
        getTypeParser: ((oid: number, format?: string) =>
          textParsers[oid] ?? pg.types.getTypeParser(oid, format as 'text')) as typeof pg.types.getTypeParser,
      },
    });
    // An idle connection the server closes (restart, failover, DROP DATABASE) must not crash the process;
    // the pool replaces it on the next checkout.
    this.pool.on('error', () => undefined);
  }

  query<R extends Row = Row>(statement: string, params?: SqlParams): Promise<QueryResult<R>> {
    return run<R>(this.pool, statement, params);
  }

  async transaction<T>(work: (tx: Queryable) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
      const result = await work({ query: (s, p) => run(client, s, p) });
      await client.query('COMMIT');
      return result;
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    } finally {
      client.release();
    }
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}

const names = new Map<string, string>();

function statementName(text: string): string {
  let name = names.get(text);
  if (!name) {
    name = `s_${createHash('sha1').update(text).digest('hex').slice(0, 24)}`;
    if (names.size < 5000) names.set(text, name);
  }
  return name;
}

async function run<R extends Row>(
  target: pg.Pool | pg.PoolClient,
  statement: string,
  params?: SqlParams,
): Promise<QueryResult<R>> {
  const { text, values } = bindPositional(statement, params);
  try {
    // Parameterised statements are prepared once per connection (named by their text's hash): the server
    // skips parsing and planning the long CTEs on every call, and the wire carries only the values.
    const result = await target.query<R>(values.length ? { name: statementName(text), text, values } : text);
    return {
      rows: result.rows,
      rowCount: result.fields.length > 0 ? result.rows.length : (result.rowCount ?? 0),
    };
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    throw new DatabaseError(
      error instanceof Error ? error.message : String(error),
      typeof code === 'string' ? code : undefined,
      { cause: error, transient: typeof code === 'string' && TRANSIENT_CODES.test(code) },
    );
  }
}

/** Connection failures (08xxx, ECONN*), server shutdown (57P0x) and too many connections (53300). */
const TRANSIENT_CODES = /^(08|57P0|53300$|ECONN|ETIMEDOUT)/;
