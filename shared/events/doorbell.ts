import type { Database, Row, SqlParams } from '../database/database.ts';
import { logger } from '../runtime/logger.ts';

/**
 * The doorbell lets an idle deployment leave Aurora alone, so that Serverless v2 with `minCapacity: 0`
 * auto-pauses (issue 11 §2.7). Every committed write that leaves work for a scheduled job (an outbox event
 * to publish, an audit record to checkpoint, a contract whose validity window may have changed) rings it:
 * one counter, incremented after the commit. The scheduled jobs read the counter (a DynamoDB GetItem, which
 * never touches Aurora) and query the database only when it moved since their last run, or when a deadline
 * they stored comes, or when their last real run is older than {@link QUIET_SWEEP_MS} (the fallback for a
 * ring that was lost: a function that crashed between its commit and its ring, or DynamoDB unavailable).
 *
 * A ring is read strictly before a job's own queries: a commit whose ring the job read is visible to those
 * queries, and a commit whose ring came later moves the counter past what the job recorded, so the next
 * look runs again. Nothing is ever missed, only (rarely) looked at once more than needed.
 */
export interface Doorbell {
  /** Increments the counter (after a commit). Throws on failure: {@link ringingDatabase} logs and moves on. */
  ring(): Promise<void>;
  /** The counter and every job's marks, read consistently (one read). */
  read(): Promise<DoorbellState>;
  /** Records what the outbox publisher drained. */
  recordDrain(drain: OutboxDrainMark): Promise<void>;
  /** Records the ring count the audit checkpoint job covered. */
  recordCheckpoint(mark: JobMark): Promise<void>;
  /** Records the ring count the contract expirer covered and the next validity end it must act on. */
  recordExpiry(mark: ExpiryMark): Promise<void>;
}

/** What a writer needs of the doorbell: the ring (request functions ring without reading). */
export type DoorbellRing = Pick<Doorbell, 'ring'>;

/** When a job last ran for real, and the ring count it had read before it queried the database. */
export interface JobMark {
  readonly rings: number;
  /** ISO-8601: when that run started. */
  readonly at: string;
}

/** The publisher's mark: `failedAt` when the bus refused events (the next run retries them). */
export type OutboxDrainMark = JobMark | { readonly failedAt: string };

export interface ExpiryMark extends JobMark {
  /** The earliest `valid_until` of the Active and Suspended contracts (ISO-8601), or null when there is none. */
  readonly nextDeadline: string | null;
}

/** The doorbell item as the jobs read it; a mark is undefined until its job first recorded one. */
export interface DoorbellState {
  /** How many times the doorbell rang (0 before the first ring). */
  readonly rings: number;
  readonly outbox: { readonly drained?: JobMark; readonly failedAt?: string };
  readonly checkpoint?: JobMark;
  readonly expiry?: ExpiryMark;
}

/**
 * How old a job's last real run may grow before it runs without a ring: once a day, so a lost ring is caught
 * within a day while an idle cluster wakes about once a day (each wake keeps it up for its auto-pause delay).
 * Any later ring catches a lost one at once, since every run looks at everything pending.
 */
export const QUIET_SWEEP_MS = 24 * 60 * 60 * 1000;

/**
 * The statements that leave work for the scheduled jobs: the only ones that insert into the outbox or the
 * audit log (`auditedWrite` in shared/audit/audited-write.ts, the security refusals). Every change of a
 * contract's status or validity is such a write, so it rings for the expirer too.
 */
const RINGING_STATEMENT = /\bINSERT\s+INTO\s+(outbox|audit_log)\b/i;

/** Whether `statement` leaves work for the scheduled jobs (exported for tests). */
export function ringsDoorbell(statement: string): boolean {
  return RINGING_STATEMENT.test(statement);
}

/**
 * `db` with the doorbell rung after every committed write that inserts outbox or audit rows: after the
 * statement for one run alone (it commits by itself), after the commit for one in a transaction (never
 * for a rolled-back one). The one place every function's writes pass through, so no use case or route
 * rings by hand. A failed ring never fails the write: it is logged, and the jobs' daily sweep (or the next
 * ring) picks the work up.
 */
export function ringingDatabase(db: Database, doorbell: DoorbellRing): Database {
  const ring = async () => {
    try {
      await doorbell.ring();
    } catch (error) {
      logger.warn('doorbell ring failed: the scheduled jobs pick this write up at their next sweep', {
        error: error instanceof Error ? error.name : String(error),
      });
    }
  };
  return {
    async query<R extends Row = Row>(text: string, params?: SqlParams) {
      const result = await db.query<R>(text, params);
      if (ringsDoorbell(text)) await ring();
      return result;
    },
    transaction: async (work) => {
      let rings = false;
      const value = await db.transaction((tx) =>
        work({
          query<R extends Row = Row>(text: string, params?: SqlParams) {
            if (ringsDoorbell(text)) rings = true;
            return tx.query<R>(text, params);
          },
        }),
      );
      if (rings) await ring();
      return value;
    },
    close: () => db.close(),
  };
}

/** Whether a mark taken at `at` (ISO-8601) is older than `maxAgeMs` at `now` (a missing mark is). */
export function olderThan(at: string | undefined, maxAgeMs: number, now: Date): boolean {
  return at === undefined || now.getTime() - Date.parse(at) >= maxAgeMs;
}
