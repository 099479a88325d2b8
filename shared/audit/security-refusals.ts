import { createHash } from 'node:crypto';
import { type Queryable, sql } from '../database/database.ts';
import { DomainError } from '../domain/errors.ts';
import { type AuditRecord, chainRecord, GENESIS_HASH } from './audit-chain.ts';

/**
 * Security-relevant refusals (a parent instance reporting for an enclave it does not host, an attestation
 * submitted by the wrong instance, …) go into the tamper-evident audit trail WITHOUT changing the entity.
 *
 * They cannot share the entity's own chain: an entity's chain has one record per version (`seq` = version,
 * which `loadEnclave`/`loadContract` join on), so a refusal taking the next seq would block the entity's
 * next real write. Each entity therefore has a second chain, of refusals only, whose `entity_id` is derived
 * from the entity's type and id (`securityRefusalChainId`) and whose `entity_type` is `security-refusal`.
 * It is an ordinary chain: verified by `GET /audit?entityId=<chain id>` (admins and auditors) and anchored
 * by the signed checkpoints like every other chain.
 *
 * Refusals can come in bursts from concurrent requests: the next `seq` is read, the record inserted with
 * `ON CONFLICT DO NOTHING`, and a lost race retried from the new head.
 */

/** The `entity_type` of refusal chains. */
export const SECURITY_REFUSAL_ENTITY_TYPE = 'security-refusal';

/** Bounds of the stored strings: the record is shown to auditors and must stay small. */
const MAX_CODE_LENGTH = 64;
const MAX_DETAIL_LENGTH = 1000;
const MAX_ARN_LENGTH = 2048;
/** Lost races before giving up (each retry reads the new head). */
const MAX_ATTEMPTS = 5;

export interface SecurityRefusal {
  /** The refused request's target, e.g. `enclave`. */
  readonly entityType: string;
  /** Its id (a UUID). */
  readonly entityId: string;
  /** What was attempted, e.g. `report-metrics`, `submit-attestation`. */
  readonly action: string;
  /** The identity that was refused, when the caller is one (a user token). */
  readonly actorId?: string | null | undefined;
  /** The verified caller ARN, when the caller is an AWS principal (an `iam` route's instance). */
  readonly callerArn?: string | null | undefined;
  /** A short machine code, e.g. `wrong-instance`. */
  readonly code: string;
  /** A sentence for auditors; no secrets. */
  readonly detail: string;
}

/**
 * The id of `entityId`'s refusal chain: a UUID (version 8, RFC 9562 §5.8) from the SHA-256 of the entity's
 * type and id, so anyone can compute where an entity's refusals are without a lookup table.
 * @example
 * securityRefusalChainId('enclave', enclaveId) // → '…-8…-…', then GET /audit?entityId=<that>
 */
export function securityRefusalChainId(entityType: string, entityId: string): string {
  const digest = createHash('sha256').update(`${SECURITY_REFUSAL_ENTITY_TYPE}:${entityType}:${entityId}`);
  const bytes = digest.digest().subarray(0, 16);
  bytes[6] = (bytes[6]! & 0x0f) | 0x80; // version 8
  bytes[8] = (bytes[8]! & 0x3f) | 0x80; // RFC 9562 variant
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/**
 * Appends `refusal` to its entity's refusal chain and returns the record written. The entity itself (its
 * row, version and own chain) is untouched, and no domain event is published.
 * @throws Error when the chain keeps moving under it (more than 5 lost races) or on a database failure; the
 *   caller's request is then a 500 rather than a refusal without its audit record.
 * @example
 * await recordSecurityRefusal(deps, {
 *   entityType: 'enclave', entityId: enclave.id, action: 'report-metrics',
 *   callerArn: caller.callerArn, code: 'wrong-instance', detail: `instance ${caller.instanceId} is not the parent`,
 * });
 */
export async function recordSecurityRefusal(
  deps: { readonly db: Queryable; readonly now: () => Date },
  refusal: SecurityRefusal,
): Promise<AuditRecord> {
  const chainId = securityRefusalChainId(refusal.entityType, refusal.entityId);
  const data = {
    entityType: refusal.entityType,
    entityId: refusal.entityId,
    action: refusal.action,
    callerArn: refusal.callerArn ? refusal.callerArn.slice(0, MAX_ARN_LENGTH) : null,
    code: refusal.code.slice(0, MAX_CODE_LENGTH),
    detail: refusal.detail.slice(0, MAX_DETAIL_LENGTH),
  };
  for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
    const { rows } = await deps.db.query<{ seq: number; hash: string }>(
      'SELECT seq, hash FROM audit_log WHERE entity_id = :id ORDER BY seq DESC LIMIT 1',
      { id: sql.uuid(chainId) },
    );
    const head = rows[0];
    const record = chainRecord(
      {
        entityType: SECURITY_REFUSAL_ENTITY_TYPE,
        entityId: chainId,
        seq: (head?.seq ?? 0) + 1,
        action: 'refuse',
        actorId: refusal.actorId ?? null,
        occurredAt: deps.now().toISOString(),
        data,
      },
      head?.hash ?? GENESIS_HASH,
    );
    const inserted = await deps.db.query(
      `INSERT INTO audit_log (entity_id, seq, entity_type, action, actor_id, occurred_at, data, prev_hash, hash)
       VALUES (:entity_id, :seq, :entity_type, :action, :actor_id, :occurred_at, :data, :prev_hash, :hash)
       ON CONFLICT (entity_id, seq) DO NOTHING
       RETURNING 1`,
      {
        entity_id: sql.uuid(record.entityId),
        seq: sql.int(record.seq),
        entity_type: sql.text(record.entityType),
        action: sql.text(record.action),
        actor_id: sql.uuid(record.actorId),
        occurred_at: sql.timestamp(record.occurredAt),
        data: sql.json(record.data),
        prev_hash: sql.text(record.prevHash),
        hash: sql.text(record.hash),
      },
    );
    if (inserted.rows.length === 1) return record;
  }
  throw new Error(`security refusal chain ${chainId} kept changing; the refusal was not recorded`);
}

/**
 * Runs `attempt` (a credential check: a signature, a second factor) and, when it refuses with a 422, records
 * the refusal in the caller's refusal chain before passing it on: a failed signature attempt changes nothing
 * but leaves its trace (what was tried, on what, and why it failed), whatever the route.
 * @example
 * const key = await auditedAttempt(deps, { entityType: 'identity', entityId: caller.id, actorId: caller.id,
 *   action: 'sign-contract', subject: `contract ${c.id} version ${c.contentVersion}` }, () => verify(...));
 */
export async function auditedAttempt<T>(
  deps: { readonly db: Queryable; readonly now: () => Date },
  refusal: Omit<SecurityRefusal, 'code' | 'detail'> & { readonly subject: string },
  attempt: () => Promise<T>,
): Promise<T> {
  try {
    return await attempt();
  } catch (error) {
    if (error instanceof DomainError && error.status === 422) {
      const { subject, ...rest } = refusal;
      await recordSecurityRefusal(deps, {
        ...rest,
        code: error.type,
        detail: `${subject}: ${error.message}`,
      });
    }
    throw error;
  }
}
