import {
  type ArrayValue,
  BeginTransactionCommand,
  type ColumnMetadata,
  CommitTransactionCommand,
  ExecuteStatementCommand,
  type ExecuteStatementCommandOutput,
  type Field,
  RDSDataClient,
  RollbackTransactionCommand,
  type SqlParameter,
  type TypeHint,
} from '@aws-sdk/client-rds-data';
import {
  DATABASE_RESUMING,
  type DataApiRetryOptions,
  DEFAULT_DATA_API_RETRY,
  isTransientDataApiError,
  withDataApiRetry,
} from './data-api-retry.ts';
import {
  type Database,
  DatabaseError,
  QUERY_CANCELED,
  type Queryable,
  type QueryResult,
  type Row,
  type SqlParam,
  type SqlParams,
  type SqlType,
} from './database.ts';
import { toPositional } from './named-parameters.ts';
import { decodeBigint, decodeTimestamp } from './row-decoding.ts';

/** Options of {@link DataApiDatabase}. */
export interface DataApiDatabaseOptions {
  /** The Aurora cluster's ARN. */
  readonly resourceArn: string;
  /** The Secrets Manager secret holding the database credentials. */
  readonly secretArn: string;
  readonly database: string;
  /**
   * A client built once per cold start (or pointed at the local emulator). When omitted, one is created
   * with the SDK's own retries off, because this adapter retries itself; a client passed in keeps its
   * settings (give it `maxAttempts: 1` so 5xx retries do not multiply).
   */
  readonly client?: RDSDataClient;
  /**
   * Where the client it creates sends its calls when not to AWS: the local stack's Data API emulator, with
   * placeholder credentials. Ignored when `client` is given.
   */
  readonly endpoint?: { readonly url: string; readonly region: string };
  /** Retry budget for transient errors (defaults: {@link DEFAULT_DATA_API_RETRY}, ~20 s for a resume). */
  readonly retry?: Partial<DataApiRetryOptions>;
  /**
   * Let a statement that outlasts the call's 45 s go on running on the cluster (the Data API's
   * `continueAfterTimeout`); the call still fails as a statement timeout. For schema migrations, as AWS
   * recommends for DDL: a long index build or backfill then finishes, and the next run finds it done,
   * instead of being cancelled at 45 s on every attempt. Default false: a request's statement that times
   * out is cancelled.
   */
  readonly continueAfterTimeout?: boolean;
}

/** Which failures a call may be retried after. */
type RetryScope = 'transient' | 'resuming-only' | 'never';

/** SQLSTATE of a cancelled statement, given to `DatabaseError.code` for a Data API statement timeout. */
export { QUERY_CANCELED };

/**
 * The production database adapter: Aurora PostgreSQL through the RDS Data API. Parameters are bound from
 * their declared type (UUID, JSON, TIMESTAMP, DECIMAL type hints; never guessed from a value), rows are
 * decoded from the column metadata exactly as the PGlite and node-postgres adapters decode them, and the
 * errors of a waking or overloaded cluster are retried with jittered back-off. A statement that timed out
 * is never retried: it may have been applied.
 *
 * @example
 * const client = new RDSDataClient({ maxAttempts: 1 }); // module scope
 * const db = new DataApiDatabase({ resourceArn, secretArn, database: 'contracts', client });
 * const { rows } = await db.query('SELECT id FROM contracts WHERE id = :id', { id: sql.uuid(id) });
 */
export class DataApiDatabase implements Database {
  private readonly client: RDSDataClient;
  private readonly ownsClient: boolean;
  private readonly retry: DataApiRetryOptions;

  constructor(private readonly options: DataApiDatabaseOptions) {
    const endpoint = options.endpoint;
    this.client =
      options.client ??
      new RDSDataClient({
        maxAttempts: 1,
        ...(endpoint
          ? {
              endpoint: endpoint.url,
              region: endpoint.region,
              credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
            }
          : {}),
      });
    this.ownsClient = options.client === undefined;
    this.retry = { ...DEFAULT_DATA_API_RETRY, ...options.retry };
  }

  query<R extends Row = Row>(statement: string, params?: SqlParams): Promise<QueryResult<R>> {
    return this.execute<R>(statement, params, undefined, 'transient');
  }

  /**
   * BeginTransaction (retried like a single statement), the work with the transaction id on every
   * statement, then Commit; Rollback when the work throws. Statements inside are not retried, except the
   * first one after a `DatabaseResumingException` (which guarantees it did not run).
   */
  async transaction<T>(work: (tx: Queryable) => Promise<T>): Promise<T> {
    const { resourceArn, secretArn, database } = this.options;
    const { transactionId } = await this.call(
      () => this.client.send(new BeginTransactionCommand({ resourceArn, secretArn, database })),
      'transient',
    );
    if (!transactionId) throw new DatabaseError('BeginTransaction answered without a transaction id');
    let first = true;
    const tx: Queryable = {
      query: <R extends Row = Row>(statement: string, params?: SqlParams) => {
        const scope: RetryScope = first ? 'resuming-only' : 'never';
        first = false;
        return this.execute<R>(statement, params, transactionId, scope);
      },
    };
    let result: T;
    try {
      result = await work(tx);
    } catch (error) {
      await this.rollback(transactionId);
      throw error;
    }
    try {
      await this.call(
        () => this.client.send(new CommitTransactionCommand({ resourceArn, secretArn, transactionId })),
        'never',
      );
    } catch (error) {
      await this.rollback(transactionId);
      throw error;
    }
    return result;
  }

  /** Destroys the client only when this adapter created it: a client passed in outlives the adapter. */
  async close(): Promise<void> {
    if (this.ownsClient) this.client.destroy();
  }

  private async rollback(transactionId: string): Promise<void> {
    const { resourceArn, secretArn } = this.options;
    // Best effort: the service may already have ended it (statement error, idle timeout).
    await this.client
      .send(new RollbackTransactionCommand({ resourceArn, secretArn, transactionId }))
      .catch(() => undefined);
  }

  private async execute<R extends Row>(
    statement: string,
    params: SqlParams | undefined,
    transactionId: string | undefined,
    scope: RetryScope,
  ): Promise<QueryResult<R>> {
    const { resourceArn, secretArn, database } = this.options;
    const parameters = toSqlParameters(statement, params);
    const output = await this.call(
      () =>
        this.client.send(
          new ExecuteStatementCommand({
            resourceArn,
            secretArn,
            database,
            sql: statement,
            parameters,
            ...(transactionId ? { transactionId } : {}),
            ...(this.options.continueAfterTimeout ? { continueAfterTimeout: true } : {}),
            includeResultMetadata: true,
            // int8 as text, so a value beyond 2^53 is refused rather than silently rounded.
            resultSetOptions: { longReturnType: 'STRING', decimalReturnType: 'STRING' },
          }),
        ),
      scope,
    );
    try {
      return decodeResult<R>(output);
    } catch (error) {
      // A value this adapter cannot represent (an int8 beyond 2^53): refused like the other adapters do.
      throw new DatabaseError(error instanceof Error ? error.message : String(error), undefined, {
        cause: error,
      });
    }
  }

  private async call<T>(operation: () => Promise<T>, scope: RetryScope): Promise<T> {
    try {
      if (scope === 'never') return await operation();
      const shouldRetry =
        scope === 'transient'
          ? isTransientDataApiError
          : (error: unknown) => (error as { name?: unknown } | null)?.name === DATABASE_RESUMING;
      return await withDataApiRetry(operation, this.retry, shouldRetry);
    } catch (error) {
      throw toDatabaseError(error);
    }
  }
}

// ---------------------------------------------------------------------------------------------------------
// Binding: declared SqlType → Field + typeHint
// ---------------------------------------------------------------------------------------------------------

const TYPE_HINTS: Partial<Record<SqlType, TypeHint>> = {
  uuid: 'UUID',
  json: 'JSON',
  timestamp: 'TIMESTAMP',
  decimal: 'DECIMAL',
};

/** The parameters `statement` refers to, in the Data API's shape; unknown names are refused like elsewhere. */
function toSqlParameters(statement: string, params: SqlParams = {}): SqlParameter[] {
  return toPositional(statement).names.map((name) => {
    const param = params[name];
    if (!param) throw new TypeError(`missing SQL parameter :${name}`);
    return toSqlParameter(name, param);
  });
}

function toSqlParameter(name: string, { type, value }: SqlParam): SqlParameter {
  const typeHint = TYPE_HINTS[type];
  const hinted = typeHint ? { typeHint } : {};
  if (value === null || value === undefined) return { name, value: { isNull: true }, ...hinted };
  switch (type) {
    case 'int':
      if (typeof value !== 'number' || !Number.isSafeInteger(value))
        throw new TypeError(`:${name} is not a safe integer`);
      return { name, value: { longValue: value } };
    case 'bool':
      if (typeof value !== 'boolean') throw new TypeError(`:${name} is not a boolean`);
      return { name, value: { booleanValue: value } };
    case 'timestamp':
      return { name, value: { stringValue: toDataApiTimestamp(value, name) }, ...hinted };
    case 'json':
      return {
        name,
        value: { stringValue: typeof value === 'string' ? value : JSON.stringify(value) },
        ...hinted,
      };
    default:
      return { name, value: { stringValue: String(value) }, ...hinted };
  }
}

/** `YYYY-MM-DD HH:MM:SS.FFF` in UTC: the only TIMESTAMP form the service takes (no `T`, no zone). */
export function toDataApiTimestamp(value: unknown, name = 'timestamp'): string {
  const date = value instanceof Date ? value : new Date(String(value));
  if (Number.isNaN(date.getTime())) throw new TypeError(`:${name} is not a valid timestamp`);
  return date.toISOString().slice(0, 23).replace('T', ' ');
}

// ---------------------------------------------------------------------------------------------------------
// Decoding: Field + ColumnMetadata.typeName → the values every adapter returns
// ---------------------------------------------------------------------------------------------------------

const INTEGER_TYPES = new Set(['int2', 'int4', 'int8', 'oid']);

function decodeResult<R extends Row>(output: ExecuteStatementCommandOutput): QueryResult<R> {
  const columns: readonly ColumnMetadata[] = output.columnMetadata ?? [];
  if (columns.length === 0) return { rows: [], rowCount: output.numberOfRecordsUpdated ?? 0 };
  const rows = (output.records ?? []).map((record) => {
    const row: Row = {};
    record.forEach((field, i) => {
      const column = columns[i];
      row[column?.name ?? column?.label ?? `?column?${i}`] = decodeField(field, column?.typeName ?? '');
    });
    return row as R;
  });
  return { rows, rowCount: rows.length };
}

function decodeField(field: Field, typeName: string): unknown {
  if (field.isNull) return null;
  if (field.stringValue !== undefined) return decodeText(field.stringValue, typeName);
  if (field.longValue !== undefined) return decodeBigint(field.longValue);
  if (field.doubleValue !== undefined) return field.doubleValue;
  if (field.booleanValue !== undefined) return field.booleanValue;
  if (field.blobValue !== undefined) return field.blobValue;
  if (field.arrayValue !== undefined) return decodeArray(field.arrayValue, typeName.replace(/^_/, ''));
  return null;
}

/** Strings by column type: JSON parsed, timestamps to ISO UTC, integers to numbers, the rest (uuid, numeric, text) as is. */
function decodeText(text: string, typeName: string): unknown {
  if (typeName === 'jsonb' || typeName === 'json') return JSON.parse(text);
  if (typeName === 'timestamptz' || typeName === 'timestamp') return decodeTimestamp(text);
  if (INTEGER_TYPES.has(typeName)) return decodeBigint(text);
  return text;
}

function decodeArray(array: ArrayValue, elementType: string): unknown[] {
  if (array.stringValues)
    return array.stringValues.map((v) => (v === null ? null : decodeText(v, elementType)));
  if (array.longValues) return array.longValues.map((v) => (v === null ? null : decodeBigint(v)));
  if (array.doubleValues) return array.doubleValues;
  if (array.booleanValues) return array.booleanValues;
  if (array.arrayValues)
    return array.arrayValues.map((inner) => (inner === null ? null : decodeArray(inner, elementType)));
  return [];
}

// ---------------------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------------------

/**
 * Any failure → {@link DatabaseError}: for SQL errors the PostgreSQL message and SQLSTATE (the service
 * reports `ERROR: <message>…; SQLState: <code>`), so callers see the same error as from the other adapters.
 */
function toDatabaseError(error: unknown): DatabaseError {
  if (error instanceof DatabaseError) return error;
  const name = error instanceof Error ? error.name : 'Error';
  const message = error instanceof Error ? error.message : String(error);
  const sqlState = /;\s*SQLState:\s*([0-9A-Z]{5})\s*$/.exec(message);
  if (sqlState) {
    const text = message
      .slice(0, sqlState.index)
      .split('\n')[0]!
      .replace(/^(?:ERROR|FATAL|PANIC):\s*/, '');
    return new DatabaseError(text, sqlState[1], { cause: error });
  }
  if (name === 'StatementTimeoutException') {
    return new DatabaseError(`Data API statement timeout: ${message}`, QUERY_CANCELED, { cause: error });
  }
  return new DatabaseError(`Data API ${name}: ${message}`, undefined, {
    cause: error,
    transient: isTransientDataApiError(error),
  });
}
