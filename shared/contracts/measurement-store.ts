import { type Queryable, sql } from '../database/database.ts';
import type {
  AdditionalPcrs,
  MeasurementApproval,
  MeasurementSet,
  MeasurementSetStatus,
} from '../domain/measurement-set.ts';

/** SQL for measurement sets; the only module that knows the `measurement_sets` table. */
const COLUMNS = `m.id, m.contract_id, m.pcr0, m.pcr1, m.pcr2, m.pcr8, m.additional_pcrs, m.status, m.approvals,
  m.proposed_by, m.version, m.created_at, m.updated_at`;

interface Row {
  id: string;
  contract_id: string;
  pcr0: string;
  pcr1: string;
  pcr2: string;
  pcr8: string | null;
  additional_pcrs: AdditionalPcrs;
  status: MeasurementSetStatus;
  approvals: MeasurementApproval[];
  proposed_by: string;
  version: number;
  created_at: string;
  updated_at: string;
  [k: string]: unknown;
}

function toSet(r: Row): MeasurementSet {
  return {
    id: r.id,
    contractId: r.contract_id,
    pcr0: r.pcr0,
    pcr1: r.pcr1,
    pcr2: r.pcr2,
    pcr8: r.pcr8,
    additionalPcrs: r.additional_pcrs,
    status: r.status,
    approvals: r.approvals,
    proposedBy: r.proposed_by,
    version: r.version,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

/** A set of the given contract with the hash of its latest audit record (seq = version). */
export async function loadMeasurementSet(
  q: Queryable,
  contractId: string,
  id: string,
): Promise<{ set: MeasurementSet; auditHead: string } | null> {
  const { rows } = await q.query<Row & { audit_head: string }>(
    `SELECT ${COLUMNS}, a.hash AS audit_head
     FROM measurement_sets m JOIN audit_log a ON a.entity_id = m.id AND a.seq = m.version
     WHERE m.id = :id AND m.contract_id = :contract_id`,
    { id: sql.uuid(id), contract_id: sql.uuid(contractId) },
  );
  const row = rows[0];
  return row ? { set: toSet(row), auditHead: row.audit_head } : null;
}

export async function listMeasurementSets(
  q: Queryable,
  contractId: string,
  status?: MeasurementSetStatus,
): Promise<MeasurementSet[]> {
  const { rows } = await q.query<Row>(
    `SELECT ${COLUMNS} FROM measurement_sets m
     WHERE m.contract_id = :contract_id AND (:status::text IS NULL OR m.status = :status)
     ORDER BY m.created_at, m.id`,
    { contract_id: sql.uuid(contractId), status: sql.text(status ?? null) },
  );
  return rows.map(toSet);
}

function params(m: MeasurementSet) {
  return {
    id: sql.uuid(m.id),
    contract_id: sql.uuid(m.contractId),
    pcr0: sql.text(m.pcr0),
    pcr1: sql.text(m.pcr1),
    pcr2: sql.text(m.pcr2),
    pcr8: sql.text(m.pcr8),
    additional_pcrs: sql.json(m.additionalPcrs),
    status: sql.text(m.status),
    approvals: sql.json(m.approvals),
    proposed_by: sql.uuid(m.proposedBy),
    version: sql.int(m.version),
    created_at: sql.timestamp(m.createdAt),
    updated_at: sql.timestamp(m.updatedAt),
  };
}

/** INSERT of a proposed set; nothing when the same set was already proposed for the contract. */
export function insertMeasurementSetMutation(m: MeasurementSet, maxPerContract: number) {
  const sameSet = `EXISTS (
    SELECT 1 FROM measurement_sets
    WHERE contract_id = :contract_id AND pcr0 = :pcr0 AND pcr1 = :pcr1 AND pcr2 = :pcr2
      AND coalesce(pcr8, '') = coalesce(:pcr8, '') AND additional_pcrs = :additional_pcrs
  )`;
  return {
    // The contract's count of sets takes the place first, unless the same set is there already (a repeated
    // proposal must not use a place up). Its condition is on the contract's own row, which PostgreSQL
    // re-checks on the latest version when proposals race, so they never overshoot the cap.
    preamble: `place AS (
      UPDATE contracts SET measurement_sets_held = measurement_sets_held + 1
      WHERE id = :contract_id AND measurement_sets_held < :max_sets AND NOT ${sameSet}
      RETURNING 1
    )`,
    mutation: `INSERT INTO measurement_sets (id, contract_id, pcr0, pcr1, pcr2, pcr8, additional_pcrs, status,
        approvals, proposed_by, version, created_at, updated_at)
      SELECT :id, :contract_id, :pcr0, :pcr1, :pcr2, :pcr8, :additional_pcrs, :status, :approvals, :proposed_by,
        :version, :created_at, :updated_at
      FROM place
      ON CONFLICT DO NOTHING
      RETURNING 1`,
    // Why nothing applied: the same set was there (or won a race, after the place was taken), or the cap.
    extraColumns: `(SELECT count(*) FROM place)::int = 1 OR ${sameSet} AS set_exists`,
    params: { ...params(m), max_sets: sql.int(maxPerContract) },
  };
}

/** UPDATE to the `next` approvals and status, applied only if the row is still at `expectedVersion`. */
export function updateMeasurementSetMutation(next: MeasurementSet, expectedVersion: number) {
  return {
    mutation: `UPDATE measurement_sets SET status = :status, approvals = :approvals, version = :version,
        updated_at = :updated_at
      WHERE id = :id AND version = :expected_version
      RETURNING 1`,
    params: { ...params(next), expected_version: sql.int(expectedVersion) },
  };
}
