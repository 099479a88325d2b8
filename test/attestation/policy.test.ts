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
    [
      'PCR32, one past the last a document may carry',
      { measurements: [{ 32: valid }] },
      'measurements[0][32]',
    ],
    ['PCR99', { measurements: [{ 99: valid }] }, 'measurements[0][99]'],
    ['PCR100', { measurements: [{ 100: valid }] }, 'measurements[0][100]'],
    ['PCR -1', { measurements: [{ '-1': valid }] }, 'measurements[0][-1]'],
    ['PCR "01"', { measurements: [{ '01': valid }] }, 'measurements[0][01]'],
    ['PCR "00"', { measurements: [{ '00': valid }] }, 'measurements[0][00]'],
    ['PCR "031" (a second spelling of PCR31)', { measurements: [{ '031': valid }] }, 'measurements[0][031]'],
    ['PCR "016" beside "16"', { measurements: [{ 16: valid, '016': valid }] }, 'measurements[0][016]'],
    ['PCR "1.0"', { measurements: [{ '1.0': valid }] }, 'measurements[0][1.0]'],
    ['PCR " 1"', { measurements: [{ ' 1': valid }] }, 'measurements[0][ 1]'],
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
    // A string is truthy but not `true`: accepted, it would ask for freshness and never enforce it.
    [
      "requireFreshness as the string 'true', with a nonce",
      { measurements: [{ 0: valid }], requireFreshness: 'true', expectedNonce: new Uint8Array(8) },
      'requireFreshness',
    ],
    [
      "requireFreshness as the string 'true', without a nonce",
      { measurements: [{ 0: valid }], requireFreshness: 'true' },
      'requireFreshness',
    ],
    ['requireFreshness as 1', { measurements: [{ 0: valid }], requireFreshness: 1 }, 'requireFreshness'],
    ['expectedNonce as hex text', { measurements: [{ 0: valid }], expectedNonce: 'abcd' }, 'expectedNonce'],
    ...(['expectedNonce', 'expectedPublicKey', 'expectedUserData'] as const).map(
      (field) =>
        [
          `${field} of 1025 bytes, one more than a document holds`,
          { measurements: [{ 0: valid }], [field]: new Uint8Array(1025) },
          field,
        ] as [string, unknown, string],
    ),
    ['null', null, 'policy'],
    ['a string', 'measurements', 'policy'],
    ['a number', 42, 'policy'],
    ['a null set', { measurements: [null] }, 'measurements[0]'],
    ['maxAgeMs as a numeric string', { measurements: [{ 0: valid }], maxAgeMs: '300000' }, 'maxAgeMs'],
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

  it('accepts any subset of PCR0–PCR31, in either case', () => {
    expect(() => buildPolicy({ measurements: [{ 8: valid }] })).not.toThrow();
    expect(() => buildPolicy({ measurements: [{ 15: valid.toUpperCase(), 3: valid }] })).not.toThrow();
    expect(() => buildPolicy({ measurements: [{ 16: valid }] })).not.toThrow();
    expect(() => buildPolicy({ measurements: [{ 31: valid }] })).not.toThrow();
    const all = Object.fromEntries(Array.from({ length: 32 }, (_, i) => [i, valid]));
    expect(() => buildPolicy({ measurements: [all] })).not.toThrow();
  });

  it('refuses a leading zero as an index, even where it spells a register the set also pins', () => {
    for (const [index, alias] of [
      [1, '01'],
      [5, '05'],
      [0, '00'],
    ] as const) {
      expect(() => buildPolicy({ measurements: [{ [index]: valid, [alias]: valid }] })).toThrow(
        expect.objectContaining({
          field: `measurements[0][${alias}]`,
          message: expect.stringContaining('not a PCR index 0 to 31'),
        }),
      );
    }
  });

  it('accepts an expected nonce, public key and user data of exactly 1024 bytes', () => {
    for (const field of ['expectedNonce', 'expectedPublicKey', 'expectedUserData'] as const) {
      const policy = buildPolicy({ measurements: [{ 0: valid }], [field]: new Uint8Array(1024).fill(7) });
      expect(policy[field]).toHaveLength(1024);
    }
  });

  it('accepts a PCR0/1/2 that is only partly zero without allowDebug: only all zeros means debug', () => {
    const lastByteSet = `${'00'.repeat(47)}01`;
    const firstByteSet = `01${'00'.repeat(47)}`;
    for (const index of [0, 1, 2]) {
      expect(() => buildPolicy({ measurements: [{ [index]: lastByteSet }] })).not.toThrow();
      expect(() => buildPolicy({ measurements: [{ [index]: firstByteSet }] })).not.toThrow();
    }
  });

  it('accepts requireFreshness false without a nonce, and true with one', () => {
    expect(() => buildPolicy({ measurements: [{ 0: valid }], requireFreshness: false })).not.toThrow();
    expect(() =>
      buildPolicy({ measurements: [{ 0: valid }], requireFreshness: true, expectedNonce: new Uint8Array(1) }),
    ).not.toThrow();
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
