/**
 * A measurement set's proposal schema and signed payload: image registers that are all zeros are refused
 * (one rule with the enclave image schema), additional PCRs admit only the indexes the platform lets a set
 * pin, and the payload of a set without them is exactly what it was before they existed.
 */
import { describe, expect, it } from 'vitest';
import { EnclaveImageSchema } from '../../shared/domain/enclave.ts';
import {
  ADDITIONAL_PCR_INDEXES,
  MAX_ADDITIONAL_PCRS,
  type MeasurementSet,
  measurementSigningPayload,
  ProposeMeasurementsSchema,
} from '../../shared/domain/measurement-set.ts';

const pcr = (c: string) => c.repeat(96);
const ZERO = pcr('0');
const valid = { pcr0: pcr('a'), pcr1: pcr('b'), pcr2: pcr('c') };

/** The issues of a refused body, as `field: message` with the path joined as the HTTP layer joins it. */
function refusal(body: unknown): { field: string; message: string }[] {
  const result = ProposeMeasurementsSchema.safeParse(body);
  expect(result.success).toBe(false);
  return result.success
    ? []
    : result.error.issues.map((i) => ({ field: i.path.join('.'), message: i.message }));
}

describe('ProposeMeasurementsSchema', () => {
  it.each(['pcr0', 'pcr1', 'pcr2'] as const)('refuses an all-zero %s, naming it', (field) => {
    expect(refusal({ ...valid, [field]: ZERO })).toEqual([
      { field, message: 'all zeros is what debug mode reports, not an image measurement' },
    ]);
  });

  it('accepts image registers that are only partly zero, and a zero PCR8 or additional PCR', () => {
    for (const partly of [`${'0'.repeat(95)}1`, `1${'0'.repeat(95)}`]) {
      expect(ProposeMeasurementsSchema.safeParse({ ...valid, pcr0: partly }).success).toBe(true);
    }
    // Zeros outside the image registers mean "not extended", a meaningful pin (PCR8 zero: an unsigned image).
    expect(
      ProposeMeasurementsSchema.safeParse({ ...valid, pcr8: ZERO, additionalPcrs: { 16: ZERO } }).success,
    ).toBe(true);
  });

  it('shares the all-zero rule with the enclave image schema', () => {
    for (const field of ['pcr0', 'pcr1', 'pcr2'] as const) {
      const result = EnclaveImageSchema.safeParse({ ...valid, [field]: ZERO });
      expect(result.success).toBe(false);
      expect(result.error?.issues.map((i) => i.path.join('.'))).toEqual([field]);
    }
  });

  it('allows PCR3, 5–7 and 9–31 as additional PCRs, all 27 at once, kept lower-case', () => {
    expect(ADDITIONAL_PCR_INDEXES).toEqual([3, 5, 6, 7, ...Array.from({ length: 23 }, (_, i) => 9 + i)]);
    expect(MAX_ADDITIONAL_PCRS).toBe(27);
    const all = Object.fromEntries(ADDITIONAL_PCR_INDEXES.map((i) => [String(i), pcr('E')]));
    const parsed = ProposeMeasurementsSchema.parse({ ...valid, additionalPcrs: all });
    expect(Object.keys(parsed.additionalPcrs ?? {})).toHaveLength(27);
    expect(parsed.additionalPcrs?.['31']).toBe(pcr('e'));
    expect(ProposeMeasurementsSchema.parse({ ...valid, additionalPcrs: {} }).additionalPcrs).toEqual({});
  });

  it.each<[string, string, RegExp]>([
    ['PCR4, the parent instance', '4', /^PCR4 measures the parent instance's id/],
    ['PCR0, its own field', '0', /^PCR0 has its own field, pcr0$/],
    ['PCR1, its own field', '1', /^PCR1 has its own field, pcr1$/],
    ['PCR2, its own field', '2', /^PCR2 has its own field, pcr2$/],
    ['PCR8, its own field', '8', /^PCR8 has its own field, pcr8$/],
    ['PCR32', '32', /^not a PCR index that may be pinned here/],
    ['PCR -1', '-1', /^not a PCR index/],
    ['"03", a leading zero', '03', /^not a PCR index/],
    ['"016", a leading zero', '016', /^not a PCR index/],
    ['"3.0"', '3.0', /^not a PCR index/],
    ['" 3"', ' 3', /^not a PCR index/],
    ['"pcr3"', 'pcr3', /^not a PCR index/],
  ])('refuses %s as an additional PCR, naming it', (_why, key, message) => {
    const body = JSON.parse(`{"additionalPcrs":{${JSON.stringify(key)}:"${pcr('d')}"}}`);
    const issues = refusal({ ...valid, ...body });
    expect(issues).toHaveLength(1);
    expect(issues[0]!.field).toBe(`additionalPcrs.${key}`);
    expect(issues[0]!.message).toMatch(message);
  });

  it('drops an own "__proto__" key (zod skips it in records): nothing is pinned and no prototype changes', () => {
    const body = JSON.parse(`{"additionalPcrs":{"__proto__":"${pcr('d')}"}}`);
    const parsed = ProposeMeasurementsSchema.parse({ ...valid, ...body });
    expect(Object.getOwnPropertyNames(parsed.additionalPcrs)).toEqual([]);
    expect(Object.getPrototypeOf(parsed.additionalPcrs)).toBe(Object.prototype);
  });

  it.each<[string, unknown]>([
    ['a short value', 'ab'],
    ['a non-hex value', pcr('z')],
    ['a number', 3],
    ['null', null],
  ])('refuses %s for an additional PCR, naming it', (_why, value) => {
    expect(refusal({ ...valid, additionalPcrs: { 16: value } }).map((i) => i.field)).toEqual([
      'additionalPcrs.16',
    ]);
  });

  it.each<[string, unknown]>([
    ['an array', [pcr('d')]],
    ['a string', pcr('d')],
    ['null', null],
  ])('refuses additionalPcrs as %s', (_why, additionalPcrs) => {
    expect(refusal({ ...valid, additionalPcrs }).map((i) => i.field)).toEqual(['additionalPcrs']);
  });
});

describe('measurementSigningPayload', () => {
  const set: Pick<MeasurementSet, 'contractId' | 'pcr0' | 'pcr1' | 'pcr2' | 'pcr8' | 'additionalPcrs'> = {
    contractId: '7b7c1e5e-2b7a-4d8e-9a40-0c1f5f3c9d11',
    ...valid,
    pcr8: null,
    additionalPcrs: {},
  };

  it('omits additionalPcrs when empty: the payload approvals were signed over before it existed', () => {
    expect(measurementSigningPayload(set)).toBe(
      `{"contractId":"${set.contractId}","pcr0":"${pcr('a')}","pcr1":"${pcr('b')}","pcr2":"${pcr('c')}"}`,
    );
    expect(measurementSigningPayload({ ...set, pcr8: pcr('8') })).toBe(
      `{"contractId":"${set.contractId}","pcr0":"${pcr('a')}","pcr1":"${pcr('b')}","pcr2":"${pcr('c')}","pcr8":"${pcr('8')}"}`,
    );
  });

  it('signs the additional PCRs when there are any, in RFC 8785 key order', () => {
    const payload = measurementSigningPayload({ ...set, additionalPcrs: { 3: pcr('3'), 16: pcr('f') } });
    expect(payload).toBe(
      `{"additionalPcrs":{"16":"${pcr('f')}","3":"${pcr('3')}"},"contractId":"${set.contractId}","pcr0":"${pcr('a')}","pcr1":"${pcr('b')}","pcr2":"${pcr('c')}"}`,
    );
    // Another pin is another payload: an approval of one set is no approval of the other.
    expect(measurementSigningPayload({ ...set, additionalPcrs: { 3: pcr('3') } })).not.toBe(payload);
  });
});
