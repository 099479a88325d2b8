/**
 * A local RDS Data API: an HTTP server speaking the service's REST-JSON protocol, so that the real
 * `RDSDataClient` (pointed at `endpoint`) runs unchanged against embedded PostgreSQL (PGlite) or a
 * PostgreSQL server. It reproduces the rules that bite on AWS (the RDS Data API documentation) instead
 * of being lenient: a plain `stringValue` is bound as `varchar`, so putting it into a `uuid` or `jsonb`
 * column fails exactly as it does on Aurora; array parameters are refused; `timestamptz` comes back in UTC
 * without a zone; responses over 1 MiB, rows over 64 KB and requests over 4 MiB are refused; statements
 * time out after 45 s; idle transactions are rolled back after 3 minutes. A fault switch answers the next
 * calls with a chosen error, so retries can be shown locally.
 *
 * @example
 * const pg = new PGlite();
 * const emulator = await startDataApiEmulator({ backend: pgliteBackend(pg) });
 * const client = new RDSDataClient({ endpoint: emulator.endpoint, region: 'eu-west-1',
 *   credentials: { accessKeyId: 'local', secretAccessKey: 'local' } });
 * await client.send(new ExecuteStatementCommand({ resourceArn: emulator.resourceArn,
 *   secretArn: emulator.secretArn, sql: 'SELECT 1' }));
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { PGlite, Transaction as PgliteTransaction, Results } from '@electric-sql/pglite';
import pg from 'pg';
import { toPositional } from '../../../../shared/database/named-parameters.ts';

// ---------------------------------------------------------------------------------------------------------
// Service limits and errors
// ---------------------------------------------------------------------------------------------------------

/** Limits of the service (Aurora user guide, "Data API limitations" and troubleshooting pages). */
export const DATA_API_LIMITS = {
  /** `sql` length constraint of `ExecuteStatement` in the service model. */
  maxSqlChars: 65_536,
  maxRequestBytes: 4 * 1024 * 1024,
  maxResponseBytes: 1024 * 1024,
  maxRowBytes: 64 * 1024,
  /** `formattedRecords` is capped at 10 MB instead of the 1 MiB of `records`. */
  maxFormattedRecordsBytes: 10 * 1024 * 1024,
  statementTimeoutMs: 45_000,
  transactionIdleTimeoutMs: 3 * 60_000,
  transactionMaxLifetimeMs: 24 * 60 * 60_000,
} as const;

/**
 * Every error the emulator can answer with, and its HTTP status as declared in the service model, so the
 * SDK maps the `x-amzn-errortype` header to the right exception class (`DatabaseResumingException` is a
 * client fault with status 400 there, which is why the SDK never retries it).
 */
export const DATA_API_ERROR_STATUS = {
  AccessDeniedException: 403,
  BadRequestException: 400,
  DatabaseErrorException: 400,
  DatabaseNotFoundException: 404,
  DatabaseResumingException: 400,
  DatabaseUnavailableException: 504,
  ForbiddenException: 403,
  HttpEndpointNotEnabledException: 400,
  InternalServerErrorException: 500,
  InvalidResourceStateException: 400,
  InvalidSecretException: 400,
  NotFoundException: 404,
  SecretsErrorException: 400,
  ServiceUnavailableError: 503,
  StatementTimeoutException: 400,
  ThrottlingException: 400,
  TransactionNotFoundException: 404,
  UnknownOperationException: 404,
  UnsupportedResultException: 400,
} as const satisfies Record<string, number>;

export type DataApiErrorName = keyof typeof DATA_API_ERROR_STATUS;

const FAULT_MESSAGES: Partial<Record<DataApiErrorName, string>> = {
  DatabaseResumingException:
    'The Aurora DB instance is resuming after being auto-paused. Please wait a few seconds and try again.',
  DatabaseUnavailableException: 'The database is unavailable.',
  ServiceUnavailableError: 'The service is unavailable. Try again later.',
  InternalServerErrorException: 'An internal error occurred.',
  ThrottlingException: 'Rate exceeded',
  StatementTimeoutException: 'The statement timed out.',
};

/** An error answered to the caller as `{ message }` with `x-amzn-errortype: errorType`. */
export class DataApiServiceError extends Error {
  override readonly name = 'DataApiServiceError';
  constructor(
    readonly errorType: DataApiErrorName,
    message: string,
    /** Further members of the error shape (for example `dbConnectionId` of a statement timeout). */
    readonly members: Readonly<Record<string, unknown>> = {},
  ) {
    super(message);
  }

  get statusCode(): number {
    return DATA_API_ERROR_STATUS[this.errorType];
  }
}

const badRequest = (message: string) => new DataApiServiceError('BadRequestException', message);

// ---------------------------------------------------------------------------------------------------------
// Backend port: what the emulator needs from a PostgreSQL engine
// ---------------------------------------------------------------------------------------------------------

/** A PostgreSQL type as `pg_type` describes it; `element` is set for array types. */
export interface PgType {
  readonly oid: number;
  readonly name: string;
  /** `pg_type.typcategory`: `A` array, `B` boolean, `N` numeric, `D` date/time, `S` string, `U` user … */
  readonly category: string;
  readonly element?: PgType;
}

export interface BackendColumn {
  readonly name: string;
  readonly type: PgType;
}

/** One statement's outcome, values in PostgreSQL's text form (the session runs in UTC). */
export interface BackendResult {
  /** The command tag's verb: `SELECT`, `INSERT`, `UPDATE`, `CREATE` … */
  readonly command: string;
  readonly columns: readonly BackendColumn[];
  readonly rows: readonly (readonly (string | null)[])[];
  /** Rows changed by INSERT/UPDATE/DELETE/MERGE/COPY, 0 for other commands. */
  readonly affectedRows: number;
}

/** A statement with positional `$n` parameters (casts already written into the text) and their text values. */
export interface BoundStatement {
  readonly text: string;
  readonly values: readonly (string | null)[];
}

export interface StatementLimits {
  readonly timeoutMs: number;
  /** When true a statement that outlives `timeoutMs` is left to finish (the caller still gets the timeout). */
  readonly continueAfterTimeout: boolean;
}

/** A transaction holding its own connection until `commit` or `rollback`. */
export interface DataApiBackendTransaction {
  execute(statement: BoundStatement, limits: StatementLimits): Promise<BackendResult>;
  commit(): Promise<void>;
  rollback(): Promise<void>;
}

/**
 * The engine behind the emulator. Statements fail with {@link BackendDatabaseError} (a PostgreSQL error) or
 * {@link BackendStatementTimeoutError}; a statement run outside a transaction is committed on success and
 * undone when it times out without `continueAfterTimeout`.
 */
export interface DataApiBackend {
  /** `role`: the database user the statement runs as (SET LOCAL ROLE), as a secret names the one the Data API signs in as. */
  execute(statement: BoundStatement, limits: StatementLimits, role?: string): Promise<BackendResult>;
  begin(role?: string): Promise<DataApiBackendTransaction>;
  /** Releases what the backend itself opened (a pool); never closes a database handed to it. */
  close(): Promise<void>;
}

/** A PostgreSQL error with the fields the Data API puts into its message. */
export class BackendDatabaseError extends Error {
  override readonly name = 'BackendDatabaseError';
  constructor(
    message: string,
    readonly code: string | undefined,
    readonly detail?: string,
    readonly hint?: string,
    readonly position?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** A statement outlived its time limit. */
export class BackendStatementTimeoutError extends Error {
  override readonly name = 'BackendStatementTimeoutError';
}

/** SQLSTATE 25001: the statement (VACUUM, CREATE DATABASE …) cannot run inside a transaction block. */
const ACTIVE_SQL_TRANSACTION = '25001';

function toBackendError(error: unknown): Error {
  if (error instanceof BackendDatabaseError || error instanceof BackendStatementTimeoutError) return error;
  const fields = (typeof error === 'object' && error !== null ? error : {}) as Record<string, unknown>;
  const text = (key: string) => (typeof fields[key] === 'string' ? (fields[key] as string) : undefined);
  const code = text('code');
  if (code !== undefined && /^[0-9A-Z]{5}$/.test(code)) {
    const message = error instanceof Error ? error.message : String(error);
    return new BackendDatabaseError(message, code, text('detail'), text('hint'), text('position'), {
      cause: error,
    });
  }
  // No SQLSTATE: the connection itself failed, which the service reports as an unavailable database.
  return new DataApiServiceError('DatabaseUnavailableException', 'The database is unavailable.');
}

const UNKNOWN_TYPE = { name: 'unknown', category: 'X', element: 0 } as const;

/** Reads `pg_type` lazily, through the session that saw the type, so types created in a transaction resolve. */
class PgTypeCatalog {
  private readonly rows = new Map<number, { name: string; category: string; element: number }>();

  remember(rows: readonly (readonly (string | null)[])[]): void {
    for (const [oid, name, category, element] of rows) {
      this.rows.set(Number(oid), {
        name: name ?? '',
        category: category ?? 'X',
        element: Number(element ?? 0),
      });
    }
  }

  async resolve(
    oids: readonly number[],
    lookup: (missing: number[]) => Promise<BackendRows>,
  ): Promise<PgType[]> {
    // Each round fetches the unknown types, then the elements of the arrays among them.
    for (let missing = this.missing(oids); missing.length > 0; missing = this.missing(oids)) {
      this.remember(await lookup(missing));
      for (const oid of missing) if (!this.rows.has(oid)) this.rows.set(oid, UNKNOWN_TYPE);
    }
    return oids.map((oid) => this.type(oid));
  }

  private missing(oids: readonly number[]): number[] {
    const out = new Set<number>();
    for (const oid of oids) {
      const row = this.rows.get(oid);
      if (!row) out.add(oid);
      else if (row.element !== 0 && !this.rows.has(row.element)) out.add(row.element);
    }
    return [...out];
  }

  private type(oid: number): PgType {
    const row = this.rows.get(oid) ?? UNKNOWN_TYPE;
    return row.category === 'A' && row.element !== 0
      ? { oid, name: row.name, category: row.category, element: this.type(row.element) }
      : { oid, name: row.name, category: row.category };
  }
}

type BackendRows = readonly (readonly (string | null)[])[];

const TYPE_COLUMNS = 'oid::text, typname::text, typcategory::text, typelem::text';
const TYPE_LOOKUP = `SELECT ${TYPE_COLUMNS} FROM pg_type WHERE oid = ANY($1::oid[])`;
const DML_COMMANDS = new Set(['INSERT', 'UPDATE', 'DELETE', 'MERGE', 'COPY']);

/** When a statement's time is up (measured after the fact too: PGlite blocks the event loop while it runs). */
class Deadline {
  private readonly end: number;
  constructor(readonly limits: StatementLimits) {
    this.end = performance.now() + limits.timeoutMs;
  }
  get passed(): boolean {
    return performance.now() > this.end;
  }
  get remainingMs(): number {
    return Math.max(0, this.end - performance.now());
  }
}

// ---------------------------------------------------------------------------------------------------------
// PGlite backend
// ---------------------------------------------------------------------------------------------------------

/**
 * A backend over one PGlite instance. PGlite has a single connection, so a Data API transaction holds it
 * exclusively from BeginTransaction to Commit/Rollback (or the idle timeout) and every other call waits: a
 * call that waits longer than its statement timeout answers `StatementTimeoutException` without running.
 * PGlite runs a statement synchronously, so its duration is checked once it returns: a statement outside a
 * transaction runs in a transaction of its own so that a late one can still be undone.
 */
export function pgliteBackend(pglite: PGlite): DataApiBackend {
  return new PgliteBackend(pglite);
}

type PgliteTarget = PGlite | PgliteTransaction;

/** A database user's name as a statement may hold it unquoted (the emulator's settings name them). */
function checkRole(role: string): string {
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(role)) throw new TypeError(`not a plain database user name: ${role}`);
  return role;
}

/**
 * Runs the rest of the transaction as `role`, with its privileges only. It emulates the privileges of the
 * user a secret names; it is no security boundary (the session's own user could RESET ROLE), and the
 * application's statements never change roles.
 */
function setLocalRole(role: string): string {
  return `SET LOCAL ROLE ${checkRole(role)}`;
}

class PgliteBackend implements DataApiBackend {
  private readonly catalog = new PgTypeCatalog();
  /** Identity parsers/serializers for every known type: the emulator formats values itself from text. */
  private readonly parsers: Record<number, (value: string) => string> = {};
  private readonly serializers: Record<number, (value: unknown) => string> = {};
  private readonly ready: Promise<void>;

  constructor(private readonly pglite: PGlite) {
    this.ready = this.init();
  }

  private async init(): Promise<void> {
    await this.pglite.waitReady;
    // The service answers timestamptz in UTC: run the session in UTC and format from its text form.
    await this.pglite.exec("SET TIME ZONE 'UTC'");
    const { rows } = await this.pglite.query<unknown[]>(`SELECT ${TYPE_COLUMNS} FROM pg_type`, [], {
      rowMode: 'array',
    });
    const typeRows = rows.map((row) => row.map((v) => (v === null ? null : String(v))));
    this.catalog.remember(typeRows);
    for (const [oid] of typeRows) this.learn(Number(oid));
  }

  private learn(oid: number): void {
    this.parsers[oid] = (value) => value;
    this.serializers[oid] = (value) => String(value);
  }

  async run(target: PgliteTarget, statement: BoundStatement): Promise<BackendResult> {
    let result: Results<unknown[]>;
    try {
      result = await target.query<unknown[]>(statement.text, [...statement.values], {
        rowMode: 'array',
        parsers: this.parsers,
        serializers: this.serializers,
      });
    } catch (error) {
      throw toBackendError(error);
    }
    const oids = result.fields.map((f) => f.dataTypeID);
    const types = await this.catalog.resolve(oids, (missing) => this.lookupTypes(target, missing));
    for (const oid of oids) if (!(oid in this.parsers)) this.learn(oid);
    return {
      command: result.command ?? '',
      columns: result.fields.map((field, i) => ({ name: field.name, type: types[i]! })),
      rows: (result.rows as unknown[][]).map((row) => row.map(asText)),
      affectedRows: DML_COMMANDS.has(result.command ?? '')
        ? (result.rowCount ?? result.affectedRows ?? 0)
        : 0,
    };
  }

  private async lookupTypes(target: PgliteTarget, oids: number[]): Promise<BackendRows> {
    const { rows } = await target.query<unknown[]>(TYPE_LOOKUP, [`{${oids.join(',')}}`], {
      rowMode: 'array',
      parsers: this.parsers,
      serializers: this.serializers,
    });
    return (rows as unknown[][]).map((row) => row.map(asText));
  }

  async execute(statement: BoundStatement, limits: StatementLimits, role?: string): Promise<BackendResult> {
    await this.ready;
    try {
      return await this.inOwnTransaction(limits, async (tx) => {
        if (role !== undefined) await tx.query(setLocalRole(role));
        return this.run(tx, statement);
      });
    } catch (error) {
      if (error instanceof BackendDatabaseError && error.code === ACTIVE_SQL_TRANSACTION) {
        // VACUUM and the like cannot be undone anyway: run them bare, timed after the fact.
        const deadline = new Deadline(limits);
        if (role !== undefined) await this.pglite.query(`SET ROLE ${checkRole(role)}`);
        try {
          const result = await this.run(this.pglite, statement);
          if (deadline.passed) throw new BackendStatementTimeoutError('statement timed out');
          return result;
        } finally {
          if (role !== undefined) await this.pglite.query('RESET ROLE');
        }
      }
      throw error;
    }
  }

  private inOwnTransaction<T>(
    limits: StatementLimits,
    work: (tx: PgliteTransaction) => Promise<T>,
  ): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      let started = false;
      let abandoned = false;
      // Only the wait for the connection is timed by the clock: the statement is timed once it returns.
      const timer = setTimeout(() => {
        if (started) return;
        abandoned = !limits.continueAfterTimeout;
        reject(new BackendStatementTimeoutError('timed out waiting for the connection'));
      }, limits.timeoutMs);
      this.pglite
        .transaction(async (tx) => {
          if (abandoned) return { timedOut: true } as const;
          started = true;
          const deadline = new Deadline(limits);
          const value = await work(tx);
          if (!deadline.passed) return { timedOut: false, value } as const;
          if (!limits.continueAfterTimeout) await tx.rollback();
          return { timedOut: true } as const;
        })
        .then(
          (outcome) =>
            outcome.timedOut
              ? reject(new BackendStatementTimeoutError('statement timed out'))
              : resolve(outcome.value),
          (error: unknown) => reject(toBackendError(error)),
        )
        .finally(() => clearTimeout(timer));
    });
  }

  async begin(role?: string): Promise<DataApiBackendTransaction> {
    await this.ready;
    return new Promise<DataApiBackendTransaction>((resolve, reject) => {
      let decide: (commit: boolean) => void = () => undefined;
      const decided = new Promise<boolean>((r) => {
        decide = r;
      });
      const settled: Promise<void> = this.pglite.transaction(async (tx) => {
        if (role !== undefined) await tx.query(setLocalRole(role));
        resolve(
          new PgliteBackendTransaction(this, tx, async (commit) => {
            decide(commit);
            try {
              await settled;
            } catch (error) {
              throw toBackendError(error);
            }
          }),
        );
        if (!(await decided)) await tx.rollback();
      });
      settled.catch((error: unknown) => reject(toBackendError(error)));
    });
  }

  async close(): Promise<void> {
    // The PGlite instance belongs to the caller; open transactions are rolled back by the emulator.
  }
}

class PgliteBackendTransaction implements DataApiBackendTransaction {
  constructor(
    private readonly backend: PgliteBackend,
    private readonly tx: PgliteTransaction,
    private readonly end: (commit: boolean) => Promise<void>,
  ) {}

  async execute(statement: BoundStatement, limits: StatementLimits): Promise<BackendResult> {
    const deadline = new Deadline(limits);
    const result = await this.backend.run(this.tx, statement);
    if (!deadline.passed) return result;
    if (!limits.continueAfterTimeout) {
      // A cancelled statement aborts the transaction on PostgreSQL: reproduce that state.
      await this.tx
        .query(
          "DO $$ BEGIN RAISE EXCEPTION 'canceling statement due to statement timeout' USING ERRCODE = '57014'; END $$",
        )
        .catch(() => undefined);
    }
    throw new BackendStatementTimeoutError('statement timed out');
  }

  commit(): Promise<void> {
    return this.end(true);
  }

  rollback(): Promise<void> {
    return this.end(false);
  }
}

function asText(value: unknown): string | null {
  if (value === null || value === undefined) return null;
  if (typeof value === 'string') return value;
  // A type PGlite learnt after this backend started may arrive parsed: give it back in a text form.
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

// ---------------------------------------------------------------------------------------------------------
// node-postgres backend
// ---------------------------------------------------------------------------------------------------------

/** Options of {@link postgresBackend}. */
export interface PostgresBackendOptions {
  /** Pool size: one connection per open Data API transaction plus those of single statements. */
  readonly max?: number;
}

/**
 * A backend over a PostgreSQL server through node-postgres: each Data API transaction gets a dedicated
 * client from a pool, and a statement that outlives its limit is cancelled with `pg_cancel_backend`.
 */
export function postgresBackend(
  connectionString: string,
  options: PostgresBackendOptions = {},
): DataApiBackend {
  return new PostgresBackend(connectionString, options);
}

const RAW_TEXT_TYPES = {
  getTypeParser: () => (value: string) => value,
} as unknown as pg.CustomTypesConfig; // every type as its text form: the emulator formats values itself

class PostgresBackend implements DataApiBackend {
  private readonly pool: pg.Pool;
  private readonly catalog = new PgTypeCatalog();
  private readonly pids = new WeakMap<pg.PoolClient, number>();

  constructor(
    private readonly connectionString: string,
    options: PostgresBackendOptions,
  ) {
    this.pool = new pg.Pool({ connectionString, max: options.max ?? 10, options: '-c TimeZone=UTC' });
    // An idle client losing its connection must not crash the process.
    this.pool.on('error', () => undefined);
  }

  async run(client: pg.PoolClient, statement: BoundStatement): Promise<BackendResult> {
    let result: pg.QueryArrayResult<unknown[]>;
    try {
      result = await client.query<unknown[]>({
        text: statement.text,
        values: [...statement.values],
        rowMode: 'array',
        types: RAW_TEXT_TYPES,
      });
    } catch (error) {
      throw toBackendError(error);
    }
    const oids = result.fields.map((f) => f.dataTypeID);
    const types = await this.catalog.resolve(oids, async (missing) => {
      const lookup = await client.query<unknown[]>({
        text: TYPE_LOOKUP,
        values: [`{${missing.join(',')}}`],
        rowMode: 'array',
        types: RAW_TEXT_TYPES,
      });
      return lookup.rows.map((row) => row.map(asText));
    });
    const command = result.command ?? '';
    return {
      command,
      columns: result.fields.map((field, i) => ({ name: field.name, type: types[i]! })),
      rows: result.rows.map((row) => row.map(asText)),
      affectedRows: DML_COMMANDS.has(command) ? (result.rowCount ?? 0) : 0,
    };
  }

  /** Races `work` against the limit; without `continueAfterTimeout` the statement is cancelled. */
  async timed<T>(client: pg.PoolClient, limits: StatementLimits, work: Promise<T>): Promise<T> {
    let timedOut = false;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        timedOut = true;
        const cancel = limits.continueAfterTimeout ? Promise.resolve() : this.cancel(client);
        cancel.finally(() => reject(new BackendStatementTimeoutError('statement timed out')));
      }, limits.timeoutMs);
    });
    work.catch(() => undefined); // a statement left running may still fail after the caller has its answer
    try {
      return await Promise.race([work, timeout]);
    } catch (error) {
      throw timedOut ? new BackendStatementTimeoutError('statement timed out') : error;
    } finally {
      clearTimeout(timer);
    }
  }

  private async pid(client: pg.PoolClient): Promise<number> {
    let pid = this.pids.get(client);
    if (pid === undefined) {
      const { rows } = await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
      pid = rows[0]!.pid;
      this.pids.set(client, pid);
    }
    return pid;
  }

  private async cancel(client: pg.PoolClient): Promise<void> {
    const pid = this.pids.get(client);
    if (pid === undefined) return;
    const canceller = new pg.Client({ connectionString: this.connectionString });
    try {
      await canceller.connect();
      await canceller.query('SELECT pg_cancel_backend($1)', [pid]);
    } catch {
      // best effort: the statement may have finished meanwhile
    } finally {
      await canceller.end().catch(() => undefined);
    }
  }

  private async connect(): Promise<pg.PoolClient> {
    try {
      const client = await this.pool.connect();
      await this.pid(client);
      return client;
    } catch (error) {
      throw toBackendError(error);
    }
  }

  async execute(statement: BoundStatement, limits: StatementLimits, role?: string): Promise<BackendResult> {
    const client = await this.connect();
    let release = true;
    try {
      await client.query('BEGIN');
      if (role !== undefined) await client.query(setLocalRole(role));
      const work = this.run(client, statement);
      try {
        const result = await this.timed(client, limits, work);
        await client.query('COMMIT');
        return result;
      } catch (error) {
        if (error instanceof BackendStatementTimeoutError && limits.continueAfterTimeout) {
          // Left running: commit when it finishes, then give the connection back.
          release = false;
          work
            .then(
              () => client.query('COMMIT'),
              () => client.query('ROLLBACK'),
            )
            .catch(() => undefined)
            .finally(() => client.release());
          throw error;
        }
        await client.query('ROLLBACK').catch(() => undefined);
        if (error instanceof BackendDatabaseError && error.code === ACTIVE_SQL_TRANSACTION) {
          if (role !== undefined) await client.query(`SET ROLE ${checkRole(role)}`);
          try {
            return await this.timed(client, limits, this.run(client, statement));
          } finally {
            if (role !== undefined) await client.query('RESET ROLE').catch(() => undefined);
          }
        }
        throw error;
      }
    } finally {
      if (release) client.release();
    }
  }

  async begin(role?: string): Promise<DataApiBackendTransaction> {
    const client = await this.connect();
    try {
      await client.query('BEGIN');
      if (role !== undefined) await client.query(setLocalRole(role));
    } catch (error) {
      client.release();
      throw toBackendError(error);
    }
    return new PostgresBackendTransaction(this, client);
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}

class PostgresBackendTransaction implements DataApiBackendTransaction {
  private released = false;

  constructor(
    private readonly backend: PostgresBackend,
    private readonly client: pg.PoolClient,
  ) {}

  execute(statement: BoundStatement, limits: StatementLimits): Promise<BackendResult> {
    return this.backend.timed(this.client, limits, this.backend.run(this.client, statement));
  }

  async commit(): Promise<void> {
    try {
      const result = await this.client.query('COMMIT');
      // PostgreSQL answers COMMIT of a failed transaction with ROLLBACK, not with an error.
      if (result.command === 'ROLLBACK') {
        throw new BackendDatabaseError('current transaction is aborted, COMMIT rolled it back', '25P02');
      }
    } catch (error) {
      throw toBackendError(error);
    } finally {
      this.release();
    }
  }

  async rollback(): Promise<void> {
    try {
      await this.client.query('ROLLBACK');
    } catch (error) {
      throw toBackendError(error);
    } finally {
      this.release();
    }
  }

  private release(): void {
    if (!this.released) this.client.release();
    this.released = true;
  }
}

// ---------------------------------------------------------------------------------------------------------
// Parameters: the wire's SqlParameter → positional SQL with the cast AWS applies
// ---------------------------------------------------------------------------------------------------------

const TYPE_HINT_CAST = {
  JSON: 'jsonb',
  UUID: 'uuid',
  TIMESTAMP: 'timestamp',
  DATE: 'date',
  TIME: 'time',
  DECIMAL: 'numeric',
} as const;

type TypeHint = keyof typeof TYPE_HINT_CAST;

/** Formats the service accepts for hinted strings (Java's `Timestamp.valueOf` and friends). */
const TYPE_HINT_FORMAT: Partial<Record<TypeHint, { pattern: RegExp; message: string }>> = {
  TIMESTAMP: {
    pattern: /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}(\.\d{1,9})?$/,
    message: 'Timestamp format must be yyyy-mm-dd hh:mm:ss[.fffffffff]',
  },
  DATE: { pattern: /^\d{4}-\d{2}-\d{2}$/, message: 'Date format must be yyyy-mm-dd' },
  TIME: { pattern: /^\d{2}:\d{2}:\d{2}(\.\d{1,9})?$/, message: 'Time format must be hh:mm:ss[.fffffffff]' },
};

const SPECIAL_DOUBLES = new Set(['NaN', 'Infinity', '-Infinity']);

interface BoundParameter {
  /** The cast written after `$n`: what the service's JDBC binding gives PostgreSQL as the parameter's type. */
  readonly cast: string;
  readonly text: string | null;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function bindParameter(parameter: unknown): [string, BoundParameter] {
  if (!isRecord(parameter)) throw badRequest('Each parameter must be an object with a name and a value');
  const { name, value, typeHint } = parameter;
  if (typeof name !== 'string' || name === '') throw badRequest('Parameter name must not be empty');
  if (typeHint !== undefined && !(typeof typeHint === 'string' && typeHint in TYPE_HINT_CAST)) {
    throw badRequest(`Invalid typeHint for parameter ${name}: ${String(typeHint)}`);
  }
  const hint = typeHint as TypeHint | undefined;
  if (!isRecord(value)) throw badRequest(`Parameter ${name} has no value`);
  const members = Object.keys(value).filter((key) => value[key] !== undefined);
  if (members.length !== 1) throw badRequest(`Parameter ${name} must set exactly one value member`);
  const member = members[0]!;
  const v = value[member];
  switch (member) {
    case 'arrayValue':
      throw badRequest('Array parameters are not supported.');
    case 'isNull':
      if (v !== true) throw badRequest(`Parameter ${name}: isNull must be true`);
      // An untyped NULL fits any column; with a hint it carries the hinted type.
      return [name, { cast: hint ? `::${TYPE_HINT_CAST[hint]}` : '', text: null }];
    case 'stringValue': {
      if (typeof v !== 'string') throw badRequest(`Parameter ${name}: stringValue must be a string`);
      if (!hint) return [name, { cast: '::varchar', text: v }];
      const format = TYPE_HINT_FORMAT[hint];
      if (format && !format.pattern.test(v)) throw badRequest(`${format.message} (parameter ${name})`);
      return [name, { cast: `::${TYPE_HINT_CAST[hint]}`, text: v }];
    }
    case 'longValue':
      if (typeof v !== 'number' || !Number.isInteger(v))
        throw badRequest(`Parameter ${name}: invalid longValue`);
      return [name, { cast: '::int8', text: String(v) }];
    case 'doubleValue':
      if (typeof v !== 'number' && !(typeof v === 'string' && SPECIAL_DOUBLES.has(v))) {
        throw badRequest(`Parameter ${name}: invalid doubleValue`);
      }
      return [name, { cast: '::float8', text: String(v) }];
    case 'booleanValue':
      if (typeof v !== 'boolean') throw badRequest(`Parameter ${name}: invalid booleanValue`);
      return [name, { cast: '::boolean', text: String(v) }];
    case 'blobValue':
      if (typeof v !== 'string') throw badRequest(`Parameter ${name}: blobValue must be base64`);
      return [name, { cast: '::bytea', text: `\\x${Buffer.from(v, 'base64').toString('hex')}` }];
    default:
      throw badRequest(`Parameter ${name}: unknown value member ${member}`);
  }
}

/** Rewrites `:name` to `$n` with each parameter's cast; unreferenced parameters are ignored. */
export function bindDataApiParameters(sql: string, parameters: unknown): BoundStatement {
  if (parameters !== undefined && parameters !== null && !Array.isArray(parameters)) {
    throw badRequest('parameters must be a list');
  }
  const byName = new Map<string, BoundParameter>();
  for (const parameter of (parameters ?? []) as unknown[]) {
    const [name, bound] = bindParameter(parameter);
    if (byName.has(name)) throw badRequest(`Duplicate parameter name: ${name}`);
    byName.set(name, bound);
  }
  const values: (string | null)[] = [];
  const { text } = toPositional(sql, (name, position) => {
    const bound = byName.get(name);
    if (!bound) throw badRequest(`No value specified for parameter: ${name}`);
    values[position - 1] = bound.text;
    return `$${position}${bound.cast}`;
  });
  return { text, values };
}

// ---------------------------------------------------------------------------------------------------------
// Results: PostgreSQL text values → Field, ColumnMetadata, formattedRecords
// ---------------------------------------------------------------------------------------------------------

type WireArrayValue =
  | { booleanValues: (boolean | null)[] }
  | { longValues: (number | null)[] }
  | { doubleValues: (number | string | null)[] }
  | { stringValues: (string | null)[] }
  | { arrayValues: WireArrayValue[] };

type WireField =
  | { isNull: true }
  | { booleanValue: boolean }
  | { longValue: number }
  | { doubleValue: number | string }
  | { stringValue: string }
  | { blobValue: string }
  | { arrayValue: WireArrayValue };

interface ResultOptions {
  readonly longAsString: boolean;
  readonly decimalAsNumber: boolean;
}

const INTEGER_TYPES = new Set(['int2', 'int4', 'int8', 'oid']);
const FLOAT_TYPES = new Set(['float4', 'float8']);

/**
 * `2026-11-25 12:00:00.5+02` → `2026-11-25 10:00:00.5`: the service answers `timestamptz` in UTC without a
 * zone. Converted here rather than trusted to the session's TimeZone, which another user of a shared PGlite
 * may have changed. `infinity` and BC dates pass as PostgreSQL wrote them.
 */
export function timestamptzInUtc(text: string): string {
  const m =
    /^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})(\.\d+)?([+-])(\d{2})(?::?(\d{2}))?(?::?(\d{2}))?$/.exec(
      text,
    );
  if (!m) return text;
  const [, year, month, day, hour, minute, second, fraction = '', sign, oh, om = '0', os = '0'] = m;
  const offsetMs = (sign === '-' ? -1 : 1) * (Number(oh) * 3600 + Number(om) * 60 + Number(os)) * 1000;
  const local = new Date(0);
  local.setUTCFullYear(Number(year), Number(month) - 1, Number(day));
  local.setUTCHours(Number(hour), Number(minute), Number(second), 0);
  const utc = new Date(local.getTime() - offsetMs);
  const pad = (n: number, width = 2) => String(n).padStart(width, '0');
  return (
    `${pad(utc.getUTCFullYear(), 4)}-${pad(utc.getUTCMonth() + 1)}-${pad(utc.getUTCDate())} ` +
    `${pad(utc.getUTCHours())}:${pad(utc.getUTCMinutes())}:${pad(utc.getUTCSeconds())}${fraction}`
  );
}

function doubleOf(text: string): number | string {
  const n = Number(text);
  // restJson1 carries non-finite doubles as the strings NaN, Infinity, -Infinity.
  return Number.isFinite(n) ? n : text === 'NaN' ? 'NaN' : n > 0 ? 'Infinity' : '-Infinity';
}

function scalarText(text: string, type: PgType): string {
  return type.name === 'timestamptz' ? timestamptzInUtc(text) : text;
}

function toField(text: string | null, type: PgType, options: ResultOptions): WireField {
  if (text === null) return { isNull: true };
  if (type.category === 'A' && type.element)
    return { arrayValue: toArrayValue(parseArrayLiteral(text), type.element) };
  if (type.name === 'bool') return { booleanValue: text === 't' };
  if (INTEGER_TYPES.has(type.name))
    return options.longAsString ? { stringValue: text } : { longValue: Number(text) };
  if (FLOAT_TYPES.has(type.name)) return { doubleValue: doubleOf(text) };
  if (type.name === 'numeric' && options.decimalAsNumber && text !== 'NaN') {
    return /^-?\d+$/.test(text) && Number.isSafeInteger(Number(text))
      ? { longValue: Number(text) }
      : { doubleValue: doubleOf(text) };
  }
  if (type.name === 'bytea') return { blobValue: Buffer.from(text.slice(2), 'hex').toString('base64') };
  return { stringValue: scalarText(text, type) };
}

type NestedText = (string | null | NestedText)[];

/** Parses PostgreSQL's array text form (`{a,"b,c",NULL}`, nested, with an optional `[l:u]=` prefix). */
export function parseArrayLiteral(text: string): NestedText {
  let i = text.startsWith('[') ? text.indexOf('=') + 1 : 0;
  const parse = (): NestedText => {
    const out: NestedText = [];
    i++; // '{'
    if (text[i] === '}') {
      i++;
      return out;
    }
    while (i < text.length) {
      if (text[i] === '{') out.push(parse());
      else if (text[i] === '"') {
        let value = '';
        i++;
        while (i < text.length && text[i] !== '"') {
          if (text[i] === '\\') i++;
          value += text[i] ?? '';
          i++;
        }
        i++;
        out.push(value);
      } else {
        let end = i;
        while (end < text.length && text[end] !== ',' && text[end] !== '}') end++;
        const raw = text.slice(i, end).trim();
        out.push(raw.toUpperCase() === 'NULL' ? null : raw);
        i = end;
      }
      if (text[i] === ',') i++;
      else if (text[i] === '}') {
        i++;
        return out;
      }
    }
    return out;
  };
  return parse();
}

function toArrayValue(items: NestedText, element: PgType): WireArrayValue {
  if (items.some((item) => Array.isArray(item))) {
    return { arrayValues: items.map((item) => toArrayValue(Array.isArray(item) ? item : [], element)) };
  }
  const flat = items as (string | null)[];
  if (element.name === 'bool') return { booleanValues: flat.map((v) => (v === null ? null : v === 't')) };
  if (INTEGER_TYPES.has(element.name))
    return { longValues: flat.map((v) => (v === null ? null : Number(v))) };
  if (FLOAT_TYPES.has(element.name))
    return { doubleValues: flat.map((v) => (v === null ? null : doubleOf(v))) };
  return { stringValues: flat.map((v) => (v === null ? null : scalarText(v, element))) };
}

/** JSON value of a column for `formatRecordsAs: 'JSON'`: numbers, booleans, null, otherwise strings. */
function toJsonValue(text: string | null, type: PgType, options: ResultOptions): unknown {
  if (text === null) return null;
  if (type.category === 'A' && type.element) {
    const element = type.element;
    const convert = (items: NestedText): unknown[] =>
      items.map((item) => (Array.isArray(item) ? convert(item) : toJsonValue(item, element, options)));
    return convert(parseArrayLiteral(text));
  }
  const field = toField(text, type, options);
  if ('booleanValue' in field) return field.booleanValue;
  if ('longValue' in field) return field.longValue;
  if ('doubleValue' in field) return field.doubleValue;
  if ('blobValue' in field) return field.blobValue;
  if ('stringValue' in field) return field.stringValue;
  return null;
}

/** `java.sql.Types` codes the service reports in `ColumnMetadata.type` (PostgreSQL JDBC's mapping). */
const JDBC_TYPES: Readonly<Record<string, number>> = {
  bool: -7,
  int2: 5,
  int4: 4,
  int8: -5,
  oid: -5,
  float4: 7,
  float8: 8,
  numeric: 2,
  money: 8,
  char: 1,
  bpchar: 1,
  varchar: 12,
  text: 12,
  name: 12,
  bytea: -2,
  date: 91,
  time: 92,
  timetz: 92,
  timestamp: 93,
  timestamptz: 93,
};
const JDBC_ARRAY = 2003;
const JDBC_OTHER = 1111;

function jdbcType(type: PgType): number {
  return type.category === 'A' ? JDBC_ARRAY : (JDBC_TYPES[type.name] ?? JDBC_OTHER);
}

function columnMetadata(column: BackendColumn): Record<string, unknown> {
  const { type } = column;
  return {
    name: column.name,
    label: column.name,
    type: jdbcType(type),
    typeName: type.name,
    schemaName: '',
    tableName: '',
    isAutoIncrement: false,
    isSigned: type.category === 'N',
    isCurrency: type.name === 'money',
    isCaseSensitive: type.category === 'S',
    nullable: 1,
    precision: 0,
    scale: 0,
    arrayBaseColumnType: type.element ? jdbcType(type.element) : 0,
  };
}

// ---------------------------------------------------------------------------------------------------------
// The service: operations over a backend
// ---------------------------------------------------------------------------------------------------------

interface OpenTransaction {
  readonly id: string;
  readonly backend: DataApiBackendTransaction;
  /** Calls on one transaction id run one after another. */
  queue: Promise<unknown>;
  /** Calls queued or running: the idle clock runs only while there are none. */
  calls: number;
  idleTimer?: NodeJS.Timeout;
  lifetimeTimer?: NodeJS.Timeout;
  /** Set by a statement error: later statements fail and Commit rolls back. */
  abortedBy?: string;
}

interface ServiceSettings {
  readonly resourceArn: string;
  readonly secretArn: string;
  readonly secretUsers: Readonly<Record<string, string>>;
  readonly database?: string;
  readonly statementTimeoutMs: number;
  readonly transactionIdleTimeoutMs: number;
  readonly transactionMaxLifetimeMs: number;
}

const ARN = /^arn:aws[a-z-]*:[a-z-]+:[a-z0-9-]*:\d{12}:.+$/;

class DataApiService {
  private readonly transactions = new Map<string, OpenTransaction>();

  constructor(
    private readonly backend: DataApiBackend,
    private readonly settings: ServiceSettings,
  ) {}

  /** Checks the request's cluster, secret and database; answers the user the secret signs in as (none: the backend's own). */
  private authorize(body: Record<string, unknown>, operation: string): string | undefined {
    const { resourceArn, secretArn } = body;
    if (typeof resourceArn !== 'string' || resourceArn === '') throw badRequest('resourceArn is required');
    if (typeof secretArn !== 'string' || secretArn === '') throw badRequest('secretArn is required');
    if (!ARN.test(resourceArn)) throw badRequest(`Invalid resourceArn: ${resourceArn}`);
    if (resourceArn !== this.settings.resourceArn) {
      throw new DataApiServiceError(
        'AccessDeniedException',
        `User: arn:aws:sts::000000000000:assumed-role/local is not authorized to perform: rds-data:${operation} on resource: ${resourceArn}`,
      );
    }
    const user = Object.hasOwn(this.settings.secretUsers, secretArn)
      ? this.settings.secretUsers[secretArn]
      : undefined;
    if (secretArn !== this.settings.secretArn && user === undefined) {
      throw badRequest(
        `Error fetching secret ${secretArn}: Secrets Manager can't find the specified secret.`,
      );
    }
    const { database } = body;
    if (database !== undefined && database !== null) {
      if (typeof database !== 'string' || database.length > 64) throw badRequest('Invalid database name');
      if (this.settings.database !== undefined && database !== '' && database !== this.settings.database) {
        throw badRequest(`FATAL: database "${database}" does not exist`);
      }
    }
    return user;
  }

  private sqlOf(body: Record<string, unknown>): string {
    const { sql } = body;
    if (typeof sql !== 'string' || sql.trim() === '') throw badRequest('sql is required');
    if (sql.length > DATA_API_LIMITS.maxSqlChars) {
      throw badRequest(
        `SQL statement exceeds the maximum length of ${DATA_API_LIMITS.maxSqlChars} characters`,
      );
    }
    return sql;
  }

  async executeStatement(body: Record<string, unknown>): Promise<Record<string, unknown>> {
    const user = this.authorize(body, 'ExecuteStatement');
    const statement = bindDataApiParameters(this.sqlOf(body), body.parameters);
    const continueAfterTimeout = body.continueAfterTimeout === true;
    const limits = { timeoutMs: this.settings.statementTimeoutMs, continueAfterTimeout };
    const resultSetOptions = isRecord(body.resultSetOptions) ? body.resultSetOptions : {};
    const options: ResultOptions = {
      longAsString: resultSetOptions.longReturnType === 'STRING',
      decimalAsNumber: resultSetOptions.decimalReturnType === 'DOUBLE_OR_LONG',
    };
    const transactionId = this.transactionIdOf(body, false);
    const result = transactionId
      ? await this.inTransaction(transactionId, limits, (tx) => tx.execute(statement, limits))
      : await this.translate(() => this.backend.execute(statement, limits, user), limits);
    return shapeResult(result, options, body.includeResultMetadata === true, body.formatRecordsAs === 'JSON');
  }

  async batchExecuteStatement(body: Record<string, unknown>): Promise<Record<string, unknown>> {
    const user = this.authorize(body, 'BatchExecuteStatement');
    const sql = this.sqlOf(body);
    const { parameterSets } = body;
    if (parameterSets !== undefined && parameterSets !== null && !Array.isArray(parameterSets)) {
      throw badRequest('parameterSets must be a list of parameter lists');
    }
    const sets = (parameterSets ?? []) as unknown[];
    const statements = (sets.length === 0 ? [[]] : sets).map((set) => bindDataApiParameters(sql, set));
    // BatchExecuteStatement has no continueAfterTimeout: the whole batch is cancelled at the limit.
    const deadline = new Deadline({
      timeoutMs: this.settings.statementTimeoutMs,
      continueAfterTimeout: false,
    });
    const runAll = async (tx: DataApiBackendTransaction) => {
      for (const statement of statements) {
        await tx.execute(statement, { timeoutMs: deadline.remainingMs, continueAfterTimeout: false });
      }
    };
    const transactionId = this.transactionIdOf(body, false);
    if (transactionId) {
      await this.inTransaction(transactionId, deadline.limits, runAll);
    } else {
      await this.translate(async () => {
        const tx = await this.backend.begin(user);
        try {
          await runAll(tx);
        } catch (error) {
          await tx.rollback().catch(() => undefined);
          throw error;
        }
        await tx.commit();
      }, deadline.limits);
    }
    return { updateResults: sets.map(() => ({ generatedFields: [] })) };
  }

  async beginTransaction(body: Record<string, unknown>): Promise<Record<string, unknown>> {
    const user = this.authorize(body, 'BeginTransaction');
    const backend = await this.translate(() => this.backend.begin(user));
    const id = randomBytes(48).toString('base64');
    const tx: OpenTransaction = { id, backend, queue: Promise.resolve(), calls: 0 };
    this.transactions.set(id, tx);
    tx.lifetimeTimer = setTimeout(() => void this.expire(tx), this.settings.transactionMaxLifetimeMs);
    tx.lifetimeTimer.unref();
    this.armIdleTimer(tx);
    return { transactionId: id };
  }

  async commitTransaction(body: Record<string, unknown>): Promise<Record<string, unknown>> {
    this.authorize(body, 'CommitTransaction');
    const tx = this.openTransaction(this.transactionIdOf(body, true)!);
    return this.serialise(tx, async () => {
      if (this.transactions.get(tx.id) !== tx) throw transactionNotFound(tx.id);
      this.forget(tx);
      if (tx.abortedBy !== undefined) {
        await tx.backend.rollback().catch(() => undefined);
        throw new DataApiServiceError(
          'DatabaseErrorException',
          `The database returned ROLLBACK, so the transaction cannot be committed. Transaction failure cause is <<${tx.abortedBy}>>; SQLState: 25P02`,
        );
      }
      await this.translate(() => tx.backend.commit());
      return { transactionStatus: 'Transaction Committed' };
    });
  }

  async rollbackTransaction(body: Record<string, unknown>): Promise<Record<string, unknown>> {
    this.authorize(body, 'RollbackTransaction');
    const tx = this.openTransaction(this.transactionIdOf(body, true)!);
    return this.serialise(tx, async () => {
      if (this.transactions.get(tx.id) !== tx) throw transactionNotFound(tx.id);
      this.forget(tx);
      await this.translate(() => tx.backend.rollback());
      return { transactionStatus: 'Rollback Complete' };
    });
  }

  /** Rolls back every open transaction (the emulator is closing). */
  async rollbackAll(): Promise<void> {
    await Promise.all([...this.transactions.values()].map((tx) => this.expire(tx)));
  }

  private transactionIdOf(body: Record<string, unknown>, required: boolean): string | undefined {
    const { transactionId } = body;
    if (transactionId === undefined || transactionId === null || transactionId === '') {
      if (required) throw badRequest('transactionId is required');
      return undefined;
    }
    if (typeof transactionId !== 'string') throw badRequest('transactionId must be a string');
    return transactionId;
  }

  private openTransaction(id: string): OpenTransaction {
    const tx = this.transactions.get(id);
    if (!tx) throw transactionNotFound(id);
    return tx;
  }

  private async inTransaction<T>(
    id: string,
    limits: StatementLimits,
    work: (tx: DataApiBackendTransaction) => Promise<T>,
  ): Promise<T> {
    const tx = this.openTransaction(id);
    return this.serialise(tx, async () => {
      // It may have been committed, rolled back or expired while this call waited for the one before.
      if (this.transactions.get(id) !== tx) throw transactionNotFound(id);
      try {
        return await work(tx.backend);
      } catch (error) {
        if (error instanceof BackendDatabaseError) tx.abortedBy ??= formatDatabaseError(error);
        if (error instanceof BackendStatementTimeoutError && !limits.continueAfterTimeout) {
          tx.abortedBy ??= 'ERROR: canceling statement due to statement timeout; SQLState: 57014';
        }
        throw translateError(error, limits);
      }
    });
  }

  /** Runs `work` after the calls already queued on `tx`; the idle clock stops while a call runs. */
  private serialise<T>(tx: OpenTransaction, work: () => Promise<T>): Promise<T> {
    tx.calls++;
    clearTimeout(tx.idleTimer);
    const run = tx.queue.then(work);
    const settled = () => {
      tx.calls--;
      if (tx.calls === 0) this.armIdleTimer(tx);
    };
    tx.queue = run.then(settled, settled);
    return run;
  }

  private armIdleTimer(tx: OpenTransaction): void {
    clearTimeout(tx.idleTimer);
    if (this.transactions.get(tx.id) !== tx) return;
    tx.idleTimer = setTimeout(() => void this.expire(tx), this.settings.transactionIdleTimeoutMs);
    tx.idleTimer.unref();
  }

  private forget(tx: OpenTransaction): void {
    this.transactions.delete(tx.id);
    clearTimeout(tx.idleTimer);
    clearTimeout(tx.lifetimeTimer);
  }

  /** A transaction left idle (or open too long) is rolled back; its id then answers "isn't found". */
  private expire(tx: OpenTransaction): Promise<void> {
    return this.serialise(tx, async () => {
      if (this.transactions.get(tx.id) !== tx) return;
      this.forget(tx);
      await tx.backend.rollback().catch(() => undefined);
    });
  }

  private async translate<T>(work: () => Promise<T>, limits?: StatementLimits): Promise<T> {
    try {
      return await work();
    } catch (error) {
      throw translateError(error, limits);
    }
  }
}

function transactionNotFound(id: string): DataApiServiceError {
  return new DataApiServiceError('TransactionNotFoundException', `Transaction ${id} isn't found`);
}

/** PostgreSQL JDBC's rendering of a server error, followed by the SQLSTATE, as the service reports it. */
function formatDatabaseError(error: BackendDatabaseError): string {
  let message = `ERROR: ${error.message}`;
  if (error.detail) message += `\n  Detail: ${error.detail}`;
  if (error.hint) message += `\n  Hint: ${error.hint}`;
  if (error.position) message += `\n  Position: ${error.position}`;
  return error.code ? `${message}; SQLState: ${error.code}` : message;
}

function translateError(error: unknown, limits?: StatementLimits): DataApiServiceError {
  if (error instanceof DataApiServiceError) return error;
  if (error instanceof BackendDatabaseError) {
    return new DataApiServiceError('DatabaseErrorException', formatDatabaseError(error));
  }
  if (error instanceof BackendStatementTimeoutError) {
    const seconds = Math.round((limits?.timeoutMs ?? DATA_API_LIMITS.statementTimeoutMs) / 1000);
    const fate = limits?.continueAfterTimeout
      ? 'The statement continues to run in the database.'
      : 'The statement was cancelled.';
    return new DataApiServiceError(
      'StatementTimeoutException',
      `The statement didn't finish within the ${seconds} s limit. ${fate}`,
      { dbConnectionId: 1 },
    );
  }
  return new DataApiServiceError('InternalServerErrorException', 'An internal error occurred.');
}

function shapeResult(
  result: BackendResult,
  options: ResultOptions,
  includeResultMetadata: boolean,
  formatAsJson: boolean,
): Record<string, unknown> {
  const numberOfRecordsUpdated = result.affectedRows;
  if (result.columns.length === 0) return { numberOfRecordsUpdated };
  const { columns } = result;
  if (formatAsJson && result.command === 'SELECT') {
    const rows = result.rows.map((row) =>
      Object.fromEntries(
        row.map((text, i) => [columns[i]!.name, toJsonValue(text, columns[i]!.type, options)]),
      ),
    );
    for (const row of rows) checkRowSize(JSON.stringify(row));
    const formattedRecords = JSON.stringify(rows);
    if (Buffer.byteLength(formattedRecords) > DATA_API_LIMITS.maxFormattedRecordsBytes) {
      throw badRequest('Database response exceeded size limit');
    }
    return { formattedRecords, numberOfRecordsUpdated };
  }
  let responseBytes = 0;
  const records = result.rows.map((row) => {
    const record = row.map((text, i) => toField(text, columns[i]!.type, options));
    responseBytes += checkRowSize(JSON.stringify(record));
    if (responseBytes > DATA_API_LIMITS.maxResponseBytes)
      throw badRequest('Database response exceeded size limit');
    return record;
  });
  return {
    records,
    ...(includeResultMetadata ? { columnMetadata: columns.map(columnMetadata) } : {}),
    numberOfRecordsUpdated,
  };
}

function checkRowSize(json: string): number {
  const bytes = Buffer.byteLength(json);
  if (bytes > DATA_API_LIMITS.maxRowBytes) {
    throw badRequest('Packet for query is too large: a row of the result set exceeds 64 KB');
  }
  return bytes;
}

// ---------------------------------------------------------------------------------------------------------
// HTTP: the REST-JSON front
// ---------------------------------------------------------------------------------------------------------

/** Options of {@link startDataApiEmulator}. */
export interface DataApiEmulatorOptions {
  readonly backend: DataApiBackend;
  /** 0 (the default) picks a free port. */
  readonly port?: number;
  readonly host?: string;
  /** The cluster ARN callers must name; others are refused with AccessDeniedException. */
  readonly resourceArn?: string;
  /** The secret ARN callers must name (or one of {@link secretUsers}); others are refused with BadRequestException. */
  readonly secretArn?: string;
  /**
   * Further secrets the emulator accepts, each with the database user it signs in as: statements run with
   * that user's privileges (SET LOCAL ROLE), as the Data API signs in with the user its secret names. Those
   * named by {@link secretArn} run as the backend's own user.
   */
  readonly secretUsers?: Readonly<Record<string, string>>;
  /** When set, a request naming another database is refused. */
  readonly database?: string;
  /** 45 s on AWS; shorten it to test timeouts. */
  readonly statementTimeoutMs?: number;
  /** 3 minutes on AWS; shorten it to test expiry. */
  readonly transactionIdleTimeoutMs?: number;
  /** 24 hours on AWS. */
  readonly transactionMaxLifetimeMs?: number;
}

/** A running emulator. */
export interface DataApiEmulator {
  /** `http://host:port`, for `new RDSDataClient({ endpoint })`. */
  readonly endpoint: string;
  readonly resourceArn: string;
  readonly secretArn: string;
  /**
   * Answers the next `count` Data API calls with `errorName` (queued after faults already pending), as
   * Aurora does while it resumes from auto-pause. Also reachable as `POST /__faults {"error","count"}`.
   */
  injectFaults(errorName: DataApiErrorName, count: number): void;
  /** Drops pending faults (`DELETE /__faults`). */
  clearFaults(): void;
  /** Stops listening and rolls back open transactions; the backend stays open (it belongs to the caller). */
  close(): Promise<void>;
}

/** The cluster ARN the emulator answers to unless told otherwise (well-formed, so ARN checks pass). */
export const DEFAULT_RESOURCE_ARN = 'arn:aws:rds:us-east-1:123456789012:cluster:local-data-api';
/** The secret ARN the emulator accepts unless told otherwise. */
export const DEFAULT_SECRET_ARN =
  'arn:aws:secretsmanager:us-east-1:123456789012:secret:local-data-api-AbCdEf';

const OPERATIONS: Readonly<Record<string, keyof OperationHandlers>> = {
  '/Execute': 'executeStatement',
  '/BatchExecute': 'batchExecuteStatement',
  '/BeginTransaction': 'beginTransaction',
  '/CommitTransaction': 'commitTransaction',
  '/RollbackTransaction': 'rollbackTransaction',
};

type OperationHandlers = Pick<
  DataApiService,
  | 'executeStatement'
  | 'batchExecuteStatement'
  | 'beginTransaction'
  | 'commitTransaction'
  | 'rollbackTransaction'
>;

const FAULTS_PATH = '/__faults';

/** Starts the emulator; resolves once it listens. */
export async function startDataApiEmulator(options: DataApiEmulatorOptions): Promise<DataApiEmulator> {
  const resourceArn = options.resourceArn ?? DEFAULT_RESOURCE_ARN;
  const secretArn = options.secretArn ?? DEFAULT_SECRET_ARN;
  const service = new DataApiService(options.backend, {
    resourceArn,
    secretArn,
    secretUsers: options.secretUsers ?? {},
    ...(options.database !== undefined ? { database: options.database } : {}),
    statementTimeoutMs: options.statementTimeoutMs ?? DATA_API_LIMITS.statementTimeoutMs,
    transactionIdleTimeoutMs: options.transactionIdleTimeoutMs ?? DATA_API_LIMITS.transactionIdleTimeoutMs,
    transactionMaxLifetimeMs: options.transactionMaxLifetimeMs ?? DATA_API_LIMITS.transactionMaxLifetimeMs,
  });
  const faults: { error: DataApiErrorName; remaining: number }[] = [];

  const injectFaults = (errorName: DataApiErrorName, count: number): void => {
    if (!(errorName in DATA_API_ERROR_STATUS)) throw new TypeError(`unknown Data API error: ${errorName}`);
    if (!Number.isSafeInteger(count) || count < 0) throw new TypeError(`invalid fault count: ${count}`);
    if (count > 0) faults.push({ error: errorName, remaining: count });
  };
  const takeFault = (): DataApiServiceError | undefined => {
    const fault = faults[0];
    if (!fault) return undefined;
    fault.remaining--;
    if (fault.remaining === 0) faults.shift();
    return new DataApiServiceError(fault.error, FAULT_MESSAGES[fault.error] ?? `Injected ${fault.error}`, {
      ...(fault.error === 'StatementTimeoutException' ? { dbConnectionId: 1 } : {}),
    });
  };

  const handle = async (request: IncomingMessage, response: ServerResponse): Promise<void> => {
    const path = (request.url ?? '/').split('?')[0]!;
    try {
      const raw = await readBody(request);
      if (path === FAULTS_PATH) {
        if (request.method === 'DELETE') faults.length = 0;
        else if (request.method === 'POST') injectFaultsFromRequest(raw, injectFaults);
        else if (request.method !== 'GET') {
          throw new DataApiServiceError(
            'UnknownOperationException',
            `No operation at ${request.method} ${path}`,
          );
        }
        sendJson(response, 200, { pending: faults.map((f) => ({ error: f.error, count: f.remaining })) });
        return;
      }
      const operation = OPERATIONS[path];
      if (request.method !== 'POST' || !operation) {
        throw new DataApiServiceError(
          'UnknownOperationException',
          `No operation at ${request.method} ${path}`,
        );
      }
      const fault = takeFault();
      if (fault) throw fault;
      const body = parseJsonBody(raw);
      sendJson(response, 200, await service[operation](body));
    } catch (error) {
      const failure = translateError(error);
      sendJson(
        response,
        failure.statusCode,
        { message: failure.message, ...failure.members },
        {
          'x-amzn-errortype': failure.errorType,
        },
      );
    }
  };

  const server = createServer((request, response) => {
    void handle(request, response);
  });
  // Node closes a keep-alive connection after 5 idle seconds; AWS endpoints keep them far longer. With 5 s,
  // a client reusing its socket at the instant the emulator closes it (after a retry's backoff, say) fails
  // with ECONNRESET, a fault the real service would not cause. The client drops idle sockets first.
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => resolve());
  });
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;

  return {
    endpoint: `http://${host}:${address.port}`,
    resourceArn,
    secretArn,
    injectFaults,
    clearFaults: () => {
      faults.length = 0;
    },
    close: async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await service.rollbackAll();
      await closed;
    },
  };
}

/** `POST /__faults {"error": "DatabaseResumingException", "count": 3}` (for the local stack and curl). */
function injectFaultsFromRequest(
  raw: Buffer,
  inject: (error: DataApiErrorName, count: number) => void,
): void {
  const { error, count } = parseJsonBody(raw);
  if (typeof error !== 'string' || !(error in DATA_API_ERROR_STATUS)) {
    throw badRequest(`error must be one of ${Object.keys(DATA_API_ERROR_STATUS).join(', ')}`);
  }
  if (typeof count !== 'number' || !Number.isSafeInteger(count) || count < 0) {
    throw badRequest('count must be a non-negative integer');
  }
  inject(error as DataApiErrorName, count);
}

/** Reads the whole body; past 4 MiB it drains the rest and refuses the request. */
function readBody(request: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    request.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= DATA_API_LIMITS.maxRequestBytes) chunks.push(chunk);
    });
    request.on('end', () => {
      if (size > DATA_API_LIMITS.maxRequestBytes) {
        reject(badRequest(`Request size ${size} bytes exceeds the 4 MiB limit`));
      } else resolve(Buffer.concat(chunks));
    });
    request.on('error', reject);
  });
}

function parseJsonBody(raw: Buffer): Record<string, unknown> {
  let body: unknown;
  try {
    body = raw.length === 0 ? {} : JSON.parse(raw.toString('utf8'));
  } catch {
    throw badRequest('The request body is not valid JSON');
  }
  if (!isRecord(body)) throw badRequest('The request body must be a JSON object');
  return body;
}

function sendJson(
  response: ServerResponse,
  status: number,
  body: unknown,
  headers: Readonly<Record<string, string>> = {},
): void {
  const payload = JSON.stringify(body);
  response.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(payload),
    'x-amzn-requestid': randomUUID(),
    ...headers,
  });
  response.end(payload);
}
