import { PGlite, type Transaction } from '@electric-sql/pglite';
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
 * Embedded PostgreSQL (PGlite, WebAssembly). The default for `npm start` (kept in a directory) and for tests
 * (in memory). One connection: PGlite serialises statements and transactions itself.
 */
export class PgliteDatabase implements Database {
  private constructor(private readonly pg: PGlite) {}

  /** @param dataDir a directory to persist to, or undefined for an in-memory database */
  static async open(dataDir?: string): Promise<PgliteDatabase> {
    const pg = new PGlite({ ...(dataDir ? { dataDir } : {}), parsers: textParsers });
    await pg.waitReady;
    await pg.exec("SET TIME ZONE 'UTC'");
    return new PgliteDatabase(pg);
  }

  query<R extends Row = Row>(statement: string, params?: SqlParams): Promise<QueryResult<R>> {
    return run<R>(this.pg, statement, params);
  }

  async transaction<T>(work: (tx: Queryable) => Promise<T>): Promise<T> {
    return this.pg.transaction((tx) => work({ query: (s, p) => run(tx, s, p) }));
  }

  async close(): Promise<void> {
    await this.pg.close();
  }
}

async function run<R extends Row>(
  target: PGlite | Transaction,
  statement: string,
  params?: SqlParams,
): Promise<QueryResult<R>> {
  const { text, values } = bindPositional(statement, params);
  try {
    const result = await target.query<R>(text, values);
    return {
      rows: result.rows,
      rowCount: result.fields.length > 0 ? result.rows.length : (result.affectedRows ?? 0),
    };
  } catch (error) {
    throw toDatabaseError(error);
  }
}

function toDatabaseError(error: unknown): DatabaseError {
  const code = (error as { code?: unknown }).code;
  const message = error instanceof Error ? error.message : String(error);
  return new DatabaseError(message, typeof code === 'string' ? code : undefined, { cause: error });
}
