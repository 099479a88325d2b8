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

/** A real PostgreSQL server through node-postgres (`DATABASE_URL`). */
export class PostgresDatabase implements Database {
  private readonly pool: pg.Pool;

  constructor(connectionString: string, options: { max?: number } = {}) {
    this.pool = new pg.Pool({
      connectionString,
      max: options.max ?? 10,
      options: '-c TimeZone=UTC',
      types: {
        getTypeParser: ((oid: number, format?: string) =>
          textParsers[oid] ?? pg.types.getTypeParser(oid, format as 'text')) as typeof pg.types.getTypeParser,
      },
    });
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

async function run<R extends Row>(
  target: pg.Pool | pg.PoolClient,
  statement: string,
  params?: SqlParams,
): Promise<QueryResult<R>> {
  const { text, values } = bindPositional(statement, params);
  try {
    const result = await target.query<R>(text, values);
    return {
      rows: result.rows,
      rowCount: result.fields.length > 0 ? result.rows.length : (result.rowCount ?? 0),
    };
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    throw new DatabaseError(
      error instanceof Error ? error.message : String(error),
      typeof code === 'string' ? code : undefined,
      {
        cause: error,
      },
    );
  }
}
