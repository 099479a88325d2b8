import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type AuditRecord, chainRecord, GENESIS_HASH, verifyChain } from '../../shared/audit/audit-chain.ts';

function chain(length: number): AuditRecord[] {
  const records: AuditRecord[] = [];
  let prev = GENESIS_HASH;
  for (let seq = 1; seq <= length; seq++) {
    const record = chainRecord(
      {
        entityType: 'contract',
        entityId: '99999999-9999-4999-8999-999999999999',
        seq,
        action: `a${seq}`,
        actorId: null,
        occurredAt: new Date(seq * 1000).toISOString(),
        data: { n: seq },
      },
      prev,
    );
    records.push(record);
    prev = record.hash;
  }
  return records;
}

describe('the per-entity audit hash chain', () => {
  it('verifies an intact chain and reports its head', () => {
    const records = chain(5);
    expect(verifyChain(records)).toEqual({
      valid: true,
      checked: 5,
      head: records[4]!.hash,
      brokenAtSeq: null,
      reason: null,
    });
  });

  it('detects any edited, removed, reordered or re-hashed record', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 5 }),
        fc.constantFrom('data', 'action', 'drop', 'swap', 'rehash', 'actor'),
        (i, how) => {
          const records = chain(6);
          const r = records[i]!;
          if (how === 'data') records[i] = { ...r, data: { n: -1 } };
          if (how === 'action') records[i] = { ...r, action: 'forged' };
          if (how === 'actor') records[i] = { ...r, actorId: '11111111-1111-4111-8111-111111111111' };
          if (how === 'drop') records.splice(i, 1);
          if (how === 'swap') [records[i], records[(i + 1) % 6]] = [records[(i + 1) % 6]!, records[i]!];
          if (how === 'rehash') records[i] = chainRecord({ ...r, data: { n: -1 } }, r.prevHash);
          const result = verifyChain(records);
          // a re-hashed last record is indistinguishable without an external anchor (the signed head)
          if (how === 'rehash' && i === 5) expect(result.head).not.toBe(chain(6)[5]!.hash);
          else if (how === 'drop' && i === 5) expect(result.head).not.toBe(chain(6)[5]!.hash);
          else expect(result.valid).toBe(false);
        },
      ),
    );
  });

  it('verifies a page that starts after the genesis', () => {
    const records = chain(4);
    expect(verifyChain(records.slice(2), { seq: 3, prevHash: records[1]!.hash }).valid).toBe(true);
    expect(verifyChain(records.slice(2), { seq: 3, prevHash: GENESIS_HASH }).valid).toBe(false);
  });
});
