/**
 * The database port: one SQL dialect (PostgreSQL) with named `:parameters`, three adapters
 * (RDS Data API, PGlite, node-postgres). Every parameter carries its declared SQL type, so each adapter
 * binds it the same way (the Data API with a `typeHint`, the others with an explicit cast) and nothing is
 * guessed from a value's content.
 *
 * Rows come back decoded identically by every adapter:
 * - `uuid`, `text` → string; `jsonb` → parsed JSON; `timestamptz` → ISO-8601 UTC string with milliseconds
 *   (`2026-11-25T10:00:00.000Z`); `int2/int4/int8` → number; `bool` → boolean; `numeric` → string;
 *   `text[]` → string[].
 */
export type SqlType = 'text' | 'uuid' | 'json' | 'timestamp' | 'int' | 'bool' | 'decimal';

export interface SqlParam {
  readonly type: SqlType;
  readonly value: string | number | boolean | null | object;
}

export type SqlParams = Readonly<Record<string, SqlParam>>;
export type Row = Record<string, unknown>;

export interface QueryResult<R extends Row = Row> {
  readonly rows: R[];
  /** Rows returned by a SELECT or `RETURNING`, or rows affected by DML without `RETURNING`. */
  readonly rowCount: number;
}

export interface Queryable {
  query<R extends Row = Row>(sql: string, params?: SqlParams): Promise<QueryResult<R>>;
}

export interface Database extends Queryable {
  /** Runs `work` in one transaction: committed when it resolves, rolled back when it throws. */
  transaction<T>(work: (tx: Queryable) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

/** Typed parameter constructors: `sql.uuid(id)`, `sql.json(terms)`, `sql.timestamp(now)`. */
export const sql = {
  text: (value: string | null): SqlParam => ({ type: 'text', value }),
  uuid: (value: string | null): SqlParam => ({ type: 'uuid', value }),
  json: (value: unknown): SqlParam => ({
    type: 'json',
    value: value === null || value === undefined ? null : JSON.stringify(value),
  }),
  timestamp: (value: Date | string | null): SqlParam => ({
    type: 'timestamp',
    value: value === null ? null : new Date(value).toISOString(),
  }),
  int: (value: number | null): SqlParam => {
    if (value !== null && !Number.isSafeInteger(value)) throw new TypeError(`not a safe integer: ${value}`);
    return { type: 'int', value };
  },
  bool: (value: boolean | null): SqlParam => ({ type: 'bool', value }),
  decimal: (value: string | null): SqlParam => ({ type: 'decimal', value }),
} as const;

/** The PostgreSQL type each declared parameter type is cast to by the adapters that bind positionally. */
export const POSTGRES_CAST: Readonly<Record<SqlType, string>> = {
  text: 'text',
  uuid: 'uuid',
  json: 'jsonb',
  timestamp: 'timestamptz',
  int: 'int8',
  bool: 'boolean',
  decimal: 'numeric',
};

/** A database failure that is not the caller's fault; never shown to clients beyond "internal error". */
export class DatabaseError extends Error {
  override readonly name = 'DatabaseError';
  /** The database was unavailable (still after retries): the request may succeed later (503). */
  readonly transient: boolean;
  constructor(
    message: string,
    /** The PostgreSQL SQLSTATE when known (e.g. `23505` unique violation). */
    readonly code?: string,
    options?: { cause?: unknown; transient?: boolean },
  ) {
    super(message, options);
    this.transient = options?.transient ?? false;
  }
}

export const UNIQUE_VIOLATION = '23505';
/** SQLSTATE `query_canceled`: a statement that timed out (the Data API's statement timeout too). */
export const QUERY_CANCELED = '57014';
export const SERIALIZATION_FAILURE = '40001';
