import { type Queryable, type Row, type SqlParams, sql } from '../database/database.ts';
import { type AuditEntry, chainRecord } from './audit-chain.ts';

export interface DomainEvent {
  readonly id: string;
  readonly aggregateType: string;
  readonly aggregateId: string;
  readonly type: string;
  readonly payload: unknown;
  readonly occurredAt: string;
}

export interface AuditedWrite {
  /** Extra CTEs placed before `changed`, e.g. an idempotency key claim. */
  readonly preamble?: string;
  /** One data-modifying statement with `RETURNING 1`; it yields exactly one row when the write applies. */
  readonly mutation: string;
  /** Extra CTEs placed after `changed`; they must select `FROM changed` to apply only with it. */
  readonly followUp?: string;
  readonly params: SqlParams;
  readonly audit: AuditEntry;
  /** The hash of the entity's record at `audit.seq - 1` (genesis for a new entity). */
  readonly prevHash: string;
  readonly event: DomainEvent;
  /** Columns the final SELECT adds next to the `changed` row count, e.g. `(SELECT ok FROM claim) AS claimed`. */
  readonly extraColumns?: string;
}

/**
 * The change, its audit record and its domain event in ONE statement (one round trip, atomic even
 * without an explicit transaction): the audit and outbox rows are inserted only when the mutation
 * returned its row, so a lost optimistic-lock race writes nothing at all.
 */
export async function auditedWrite(
  q: Queryable,
  write: AuditedWrite,
): Promise<{ applied: boolean; extra: Row }> {
  const record = chainRecord(write.audit, write.prevHash);
  const statement = `WITH ${write.preamble ? `${write.preamble},` : ''}
  changed AS (${write.mutation}),${write.followUp ? `\n  ${write.followUp},` : ''}
  audited AS (
    INSERT INTO audit_log (entity_id, seq, entity_type, action, actor_id, occurred_at, data, prev_hash, hash)
    SELECT :audit_entity_id, :audit_seq, :audit_entity_type, :audit_action, :audit_actor_id, :audit_occurred_at,
           :audit_data, :audit_prev_hash, :audit_hash
    FROM (SELECT 1 FROM changed LIMIT 1) AS applied
  ),
  published AS (
    INSERT INTO outbox (id, aggregate_type, aggregate_id, event_type, payload, occurred_at)
    SELECT :event_id, :event_aggregate_type, :event_aggregate_id, :event_type, :event_payload, :event_occurred_at
    FROM (SELECT 1 FROM changed LIMIT 1) AS applied
  )
  SELECT (SELECT count(*) FROM changed)::int AS applied${write.extraColumns ? `, ${write.extraColumns}` : ''}`;
  const { rows } = await q.query<{ applied: number } & Row>(statement, {
    ...write.params,
    audit_entity_id: sql.uuid(record.entityId),
    audit_seq: sql.int(record.seq),
    audit_entity_type: sql.text(record.entityType),
    audit_action: sql.text(record.action),
    audit_actor_id: sql.uuid(record.actorId),
    audit_occurred_at: sql.timestamp(record.occurredAt),
    audit_data: sql.json(record.data),
    audit_prev_hash: sql.text(record.prevHash),
    audit_hash: sql.text(record.hash),
    event_id: sql.uuid(write.event.id),
    event_aggregate_type: sql.text(write.event.aggregateType),
    event_aggregate_id: sql.uuid(write.event.aggregateId),
    event_type: sql.text(write.event.type),
    event_payload: sql.json(write.event.payload),
    event_occurred_at: sql.timestamp(write.event.occurredAt),
  });
  const [first] = rows;
  if (!first) throw new Error('audited write returned no row');
  const { applied, ...extra } = first;
  if (applied > 1) throw new Error(`audited write changed ${applied} rows; expected at most one`);
  return { applied: applied === 1, extra };
}
