/**
 * How the DynamoDB nonce store names a refusal from the item a failed condition returned (no I/O), and the
 * key it derives from a nonce.
 */
import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { classifyRefusal, NONCE_TABLE, nonceKey } from '../../shared/workflow/dynamodb-nonce-store.ts';

const NOW = 1_800_000_000;
const OURS = 'consumption-ours';

function item(fields: { enclaveId?: string; expiresAt?: number; consumedBy?: string }) {
  const out: Record<string, AttributeValue> = {
    [NONCE_TABLE.partitionKey]: { S: `nonce#${'ab'.repeat(32)}` },
  };
  if (fields.enclaveId !== undefined) out.enclaveId = { S: fields.enclaveId };
  if (fields.expiresAt !== undefined) out[NONCE_TABLE.timeToLiveAttribute] = { N: String(fields.expiresAt) };
  if (fields.consumedBy !== undefined) {
    out.consumedAt = { S: '2026-11-25T10:00:00.000Z' };
    out.consumptionId = { S: fields.consumedBy };
  }
  return out;
}

/** The port's precedence, spelled out: unknown, then our own retry, then a replay, then expiry. */
function expectedOutcome(ownItem: boolean, consumedBy: string | undefined, expiresAt: number) {
  if (!ownItem) return 'unknown';
  if (consumedBy === OURS) return 'consumed';
  if (consumedBy !== undefined) return 'already_consumed';
  if (expiresAt <= NOW) return 'expired';
  // Every clause held: the condition cannot have failed on this item, so it is treated as malformed.
  return 'unknown';
}

describe('classifyRefusal', () => {
  it('follows the documented precedence for every combination', () => {
    fc.assert(
      fc.property(
        fc.boolean(),
        fc.constantFrom('enc-1', 'enc-2', undefined),
        fc.integer({ min: NOW - 10, max: NOW + 10 }),
        fc.constantFrom(undefined, OURS, 'consumption-other'),
        (exists, enclaveId, expiresAt, consumedBy) => {
          const stored = exists ? item({ enclaveId, expiresAt, consumedBy }) : undefined;

          const outcome = classifyRefusal(stored, 'enc-1', OURS, NOW);

          const expected = expectedOutcome(exists && enclaveId === 'enc-1', consumedBy, expiresAt);
          expect(outcome).toBe(expected);
        },
      ),
      { numRuns: 1_000 },
    );
  });

  it('refuses an item without a usable expiry', () => {
    expect(classifyRefusal(item({ enclaveId: 'enc-1' }), 'enc-1', OURS, NOW)).toBe('expired');
    const garbled = { ...item({ enclaveId: 'enc-1' }), [NONCE_TABLE.timeToLiveAttribute]: { S: 'soon' } };
    expect(classifyRefusal(garbled, 'enc-1', OURS, NOW)).toBe('expired');
  });
});

describe('nonceKey', () => {
  it('is the lowercase hex of exactly the viewed bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 40, maxLength: 40 }), fc.nat({ max: 8 }), (bytes, offset) => {
        const view = bytes.subarray(offset, offset + 32);

        expect(nonceKey(view)).toBe(`nonce#${Buffer.from(view).toString('hex')}`);
        expect(nonceKey(view)).toMatch(/^nonce#[0-9a-f]{64}$/);
      }),
    );
  });
});
