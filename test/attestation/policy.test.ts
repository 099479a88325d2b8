/** buildPolicy fails closed: a policy that could match "anything" cannot be built. */
import { describe, expect, it } from 'vitest';
import { AttestationPolicyError, buildPolicy, type PolicyInput } from '../../shared/attestation/index.ts';

const pcr = (byte: string) => byte.repeat(48);
const valid = pcr('ab');
const zero = pcr('00');

describe('buildPolicy', () => {
  it.each<[string, unknown, string]>([
    ['no measurement set', { measurements: [] }, 'measurements'],
    ['measurements missing', {}, 'measurements'],
    ['measurements not an array', { measurements: { 0: valid } }, 'measurements'],
    ['an empty set', { measurements: [{ 0: valid }, {}] }, 'measurements[1]'],
    ['a set that is not an object', { measurements: ['x'] }, 'measurements[0]'],
    ['a set that is an array', { measurements: [[valid]] }, 'measurements[0]'],
    ['PCR16', { measurements: [{ 16: valid }] }, 'measurements[0][16]'],
    ['PCR -1', { measurements: [{ '-1': valid }] }, 'measurements[0][-1]'],
    ['PCR "01"', { measurements: [{ '01': valid }] }, 'measurements[0][01]'],
    ['PCR "pcr0"', { measurements: [{ pcr0: valid }] }, 'measurements[0][pcr0]'],
    ['a value of 47 bytes', { measurements: [{ 0: 'ab'.repeat(47) }] }, 'measurements[0][0]'],
    ['a value of 32 bytes', { measurements: [{ 0: 'ab'.repeat(32) }] }, 'measurements[0][0]'],
    ['a value that is not hex', { measurements: [{ 0: 'zz'.repeat(48) }] }, 'measurements[0][0]'],
    ['a value with a 0x prefix', { measurements: [{ 0: `0x${'ab'.repeat(47)}` }] }, 'measurements[0][0]'],
    ['an undefined value', { measurements: [{ 0: undefined }] }, 'measurements[0][0]'],
    ['a bytes value', { measurements: [{ 0: new Uint8Array(48) }] }, 'measurements[0][0]'],
    ['PCR0 zero without allowDebug', { measurements: [{ 0: zero, 3: valid }] }, 'measurements[0][0]'],
    ['PCR1 zero without allowDebug', { measurements: [{ 1: zero }] }, 'measurements[0][1]'],
    ['PCR2 zero without allowDebug', { measurements: [{ 2: zero }] }, 'measurements[0][2]'],
    [
      'requireFreshness without expectedNonce',
      { measurements: [{ 0: valid }], requireFreshness: true },
      'expectedNonce',
    ],
    ['maxAgeMs zero', { measurements: [{ 0: valid }], maxAgeMs: 0 }, 'maxAgeMs'],
    ['maxAgeMs negative', { measurements: [{ 0: valid }], maxAgeMs: -1 }, 'maxAgeMs'],
    ['maxAgeMs NaN', { measurements: [{ 0: valid }], maxAgeMs: Number.NaN }, 'maxAgeMs'],
    ['maxAgeMs infinite', { measurements: [{ 0: valid }], maxAgeMs: Number.POSITIVE_INFINITY }, 'maxAgeMs'],
    ['allowDebug as a string', { measurements: [{ 0: valid }], allowDebug: 'yes' }, 'allowDebug'],
    ['expectedNonce as hex text', { measurements: [{ 0: valid }], expectedNonce: 'abcd' }, 'expectedNonce'],
    [
      'expectedUserData over 1024 bytes',
      { measurements: [{ 0: valid }], expectedUserData: new Uint8Array(1025) },
      'expectedUserData',
    ],
    ['null', null, 'policy'],
  ])('refuses %s', (_, input, field) => {
    let thrown: unknown;
    try {
      buildPolicy(input as PolicyInput);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(AttestationPolicyError);
    expect(thrown).toMatchObject({ name: 'AttestationPolicyError', field });
  });

  it('accepts any subset of PCR0–PCR15, in either case', () => {
    expect(() => buildPolicy({ measurements: [{ 8: valid }] })).not.toThrow();
    expect(() => buildPolicy({ measurements: [{ 15: valid.toUpperCase(), 3: valid }] })).not.toThrow();
  });

  it('accepts zero PCR0/1/2 with allowDebug, and zero PCRs other than 0/1/2 without it', () => {
    expect(() =>
      buildPolicy({ measurements: [{ 0: zero, 1: zero, 2: zero }], allowDebug: true }),
    ).not.toThrow();
    expect(() => buildPolicy({ measurements: [{ 5: zero }] })).not.toThrow();
  });

  it('accepts freshness with a nonce, and a positive maxAgeMs', () => {
    const policy = buildPolicy({
      measurements: [{ 0: valid }],
      requireFreshness: true,
      expectedNonce: new Uint8Array(8),
      maxAgeMs: 1,
    });
    expect(policy.__brand).toBe('AttestationPolicy');
    expect(Object.isFrozen(policy)).toBe(true);
    expect(Object.isFrozen(policy.measurements)).toBe(true);
  });

  it('is not changed by later changes to its input', async () => {
    const { verifyAttestation } = await import('../../shared/attestation/index.ts');
    const { measurementSetOf, prodFixture } = await import('./nitro-fixtures.ts');
    const set: Record<number, string> = { ...measurementSetOf(prodFixture) };
    const nonce = Buffer.from(prodFixture.facts.nonce_hex!, 'hex');
    const policy = buildPolicy({ measurements: [set], expectedNonce: nonce });
    set[0] = valid;
    nonce[0]! ^= 1;
    expect(verifyAttestation(prodFixture.bytes, policy, { at: prodFixture.at }).ok).toBe(true);
  });
});
