import { type Queryable, sql } from '../database/database.ts';
import type { EnclaveMetrics } from '../domain/enclave.ts';

/**
 * SQL for the enclave metrics history (migration `0007-enclave-metrics.sql`). Samples are high-frequency and
 * not security-relevant: they never bump the enclave's version, write no audit record and publish no event.
 */

/** A stored sample: what the agent reported plus when the platform received it. */
export type StoredEnclaveMetrics = EnclaveMetrics & { readonly receivedAt: string };

export interface MetricsReport {
  readonly enclaveId: string;
  /** The reporting parent instance: the sample is stored only while it is the enclave's parent. */
  readonly instanceId: string;
  readonly sample: EnclaveMetrics;
  readonly receivedAt: string;
}

/**
 * Stores a sample, in one statement, only while the enclave is `Running` on `report.instanceId` (so a
 * report racing a suspension or a relaunch is not stored), and makes it the enclave's `metrics` when it is
 * newer than the one there. The same `reportedAt` twice (an agent's retry) stores once.
 * @returns `stored`, `duplicate` (that instant was already stored), or `not-running` (the enclave is not
 *   Running on that instance any more).
 */
export async function recordEnclaveMetrics(
  q: Queryable,
  report: MetricsReport,
): Promise<'stored' | 'duplicate' | 'not-running'> {
  const { rows } = await q.query<{ target: number; stored: number }>(
    `WITH target AS (
       SELECT id FROM enclaves
       WHERE id = :enclave_id AND instance_id = :instance_id AND status = 'Running'
     ),
     stored AS (
       INSERT INTO enclave_metrics (enclave_id, reported_at, received_at, sample)
       SELECT id, :reported_at, :received_at, :sample FROM target
       ON CONFLICT (enclave_id, reported_at) DO NOTHING
       RETURNING 1
     ),
     latest AS (
       UPDATE enclaves SET metrics = :sample
       WHERE id IN (SELECT id FROM target) AND EXISTS (SELECT 1 FROM stored)
         AND (metrics IS NULL OR (metrics->>'reportedAt')::timestamptz < :reported_at)
       RETURNING 1
     )
     SELECT (SELECT count(*) FROM target)::int AS target, (SELECT count(*) FROM stored)::int AS stored`,
    {
      enclave_id: sql.uuid(report.enclaveId),
      instance_id: sql.text(report.instanceId),
      reported_at: sql.timestamp(report.sample.reportedAt),
      received_at: sql.timestamp(report.receivedAt),
      sample: sql.json(report.sample),
    },
  );
  const row = rows[0];
  if (!row || row.target === 0) return 'not-running';
  return row.stored === 1 ? 'stored' : 'duplicate';
}

/** Samples of `enclaveId`, newest first, strictly older than `before` when given. */
export async function listEnclaveMetrics(
  q: Queryable,
  enclaveId: string,
  options: { readonly limit: number; readonly before?: string | undefined },
): Promise<StoredEnclaveMetrics[]> {
  const { rows } = await q.query<{ sample: EnclaveMetrics; received_at: string }>(
    `SELECT sample, received_at FROM enclave_metrics
     WHERE enclave_id = :enclave_id ${options.before !== undefined ? 'AND reported_at < :before' : ''}
     ORDER BY reported_at DESC
     LIMIT :limit`,
    {
      enclave_id: sql.uuid(enclaveId),
      limit: sql.int(options.limit),
      ...(options.before !== undefined ? { before: sql.timestamp(options.before) } : {}),
    },
  );
  return rows.map((r) => ({ ...r.sample, receivedAt: r.received_at }));
}
