import { type Queryable, sql } from '../database/database.ts';
import { type AuditRecord, GENESIS_HASH } from './audit-chain.ts';

interface AuditRow {
  entity_type: string;
  entity_id: string;
  seq: number;
  action: string;
  actor_id: string | null;
  occurred_at: string;
  data: unknown;
  prev_hash: string;
  hash: string;
  [k: string]: unknown;
}

/** The hash of an entity's record at `seq` (genesis when seq is 0 or the record does not exist yet). */
export async function loadAuditHead(q: Queryable, entityId: string, seq: number): Promise<string> {
  if (seq < 1) return GENESIS_HASH;
  const { rows } = await q.query<{ hash: string }>(
    'SELECT hash FROM audit_log WHERE entity_id = :id AND seq = :seq',
    {
      id: sql.uuid(entityId),
      seq: sql.int(seq),
    },
  );
  return rows[0]?.hash ?? GENESIS_HASH;
}

export async function listAuditRecords(
  q: Queryable,
  entityId: string,
  afterSeq: number,
  limit: number,
): Promise<AuditRecord[]> {
  const { rows } = await q.query<AuditRow>(
    `SELECT entity_type, entity_id, seq, action, actor_id, occurred_at, data, prev_hash, hash
     FROM audit_log WHERE entity_id = :id AND seq > :after ORDER BY seq LIMIT :limit`,
    { id: sql.uuid(entityId), after: sql.int(afterSeq), limit: sql.int(limit) },
  );
  return rows.map((r) => ({
    entityType: r.entity_type,
    entityId: r.entity_id,
    seq: r.seq,
    action: r.action,
    actorId: r.actor_id,
    occurredAt: r.occurred_at,
    data: r.data,
    prevHash: r.prev_hash,
    hash: r.hash,
  }));
}
