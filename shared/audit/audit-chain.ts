import { canonicalJson, sha256Hex } from '../domain/canonical-json.ts';

/** The previous hash of the first record of every chain. */
export const GENESIS_HASH = '0'.repeat(64);

export interface AuditEntry {
  readonly entityType: string;
  readonly entityId: string;
  /** Position in the entity's chain, from 1; equals the entity's version after the change it records. */
  readonly seq: number;
  readonly action: string;
  readonly actorId: string | null;
  readonly occurredAt: string;
  readonly data: unknown;
}

export interface AuditRecord extends AuditEntry {
  readonly prevHash: string;
  readonly hash: string;
}

/** SHA-256 over the RFC 8785 canonical JSON of the entry and the previous record's hash. */
export function auditHash(entry: AuditEntry, prevHash: string): string {
  return sha256Hex(
    canonicalJson({
      entityType: entry.entityType,
      entityId: entry.entityId,
      seq: entry.seq,
      action: entry.action,
      actorId: entry.actorId,
      occurredAt: entry.occurredAt,
      data: entry.data,
      prevHash,
    }),
  );
}

export function chainRecord(entry: AuditEntry, prevHash: string): AuditRecord {
  return { ...entry, prevHash, hash: auditHash(entry, prevHash) };
}

export interface ChainVerification {
  readonly valid: boolean;
  readonly checked: number;
  readonly head: string | null;
  readonly brokenAtSeq: number | null;
  readonly reason: string | null;
}

/**
 * Recomputes a chain (records in `seq` order, starting at `startSeq` whose predecessor's hash is
 * `startPrevHash`) and reports the first record that does not link or does not hash to what it claims.
 */
export function verifyChain(
  records: readonly AuditRecord[],
  start: { seq: number; prevHash: string } = { seq: 1, prevHash: GENESIS_HASH },
): ChainVerification {
  let expectedPrev = start.prevHash;
  let expectedSeq = start.seq;
  for (const record of records) {
    const broken = (reason: string): ChainVerification => ({
      valid: false,
      // The records verified before this one (not its seq's distance from the start: a gap would count
      // records that were never there).
      checked: expectedSeq - start.seq,
      head: null,
      brokenAtSeq: record.seq,
      reason,
    });
    if (record.seq !== expectedSeq) return broken(`expected seq ${expectedSeq}, found ${record.seq}`);
    if (record.prevHash !== expectedPrev) return broken('prevHash does not match the previous record');
    if (auditHash(record, record.prevHash) !== record.hash)
      return broken('hash does not match the record content');
    expectedPrev = record.hash;
    expectedSeq++;
  }
  return {
    valid: true,
    checked: records.length,
    head: records.length ? expectedPrev : null,
    brokenAtSeq: null,
    reason: null,
  };
}
