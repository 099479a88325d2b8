import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type CborValue, decodeCbor } from '../../shared/attestation/cbor.ts';
import { CborDecodeError } from '../../shared/attestation/errors.ts';
import { encodeCbor, Tagged } from './cbor-encoder.ts';

const hexBytes = (hex: string) => new Uint8Array(Buffer.from(hex.replaceAll(' ', ''), 'hex'));

/** A decoded tree as plain values, for comparisons. */
function plain(value: CborValue): unknown {
  switch (value.type) {
    case 'array':
      return value.items.map(plain);
    case 'map':
      return new Map([...value.entries].map(([k, v]) => [k, plain(v)]));
    case 'tag':
      return { tag: value.tag, value: plain(value.value) };
    case 'bytes':
      return Buffer.from(value.value).toString('hex');
    default:
      return value.value;
  }
}

describe('decodeCbor: well-formed input (RFC 8949 Appendix A)', () => {
  it.each([
    ['00', 0],
    ['17', 23],
    ['1818', 24],
    ['1903e8', 1000],
    ['1a000f4240', 1_000_000],
    ['1b000000e8d4a51000', 1_000_000_000_000],
    ['1b001fffffffffffff', Number.MAX_SAFE_INTEGER],
    ['1b0020000000000000', 2n ** 53n],
    ['1bffffffffffffffff', 2n ** 64n - 1n],
    ['20', -1],
    ['3863', -100],
    ['3b001ffffffffffffe', -Number.MAX_SAFE_INTEGER],
    ['3bffffffffffffffff', -(2n ** 64n)],
    ['f4', false],
    ['f5', true],
    ['f6', null],
    ['f7', undefined],
    ['f93c00', 1],
    ['f97bff', 65504],
    ['f90001', 2 ** -24],
    ['fa47c35000', 100000],
    ['fb3ff199999999999a', 1.1],
    ['6449455446', 'IETF'],
    ['62c3bc', '\u00fc'],
    ['7f657374726561646d696e67ff', 'streaming'],
  ])('%s', (hex, expected) => {
    expect(plain(decodeCbor(hexBytes(hex)))).toEqual(expected);
  });

  it('accepts non-minimal integer and length encodings (firmware may use them)', () => {
    expect(plain(decodeCbor(hexBytes('1b0000000000000001')))).toBe(1);
    expect(plain(decodeCbor(hexBytes('5800')))).toBe('');
    expect(plain(decodeCbor(hexBytes('9a00000001 01')))).toEqual([1]);
  });

  it('decodes byte strings as views of the input, and chunked ones joined', () => {
    const input = hexBytes('43010203');
    const value = decodeCbor(input);
    expect(value.type).toBe('bytes');
    if (value.type !== 'bytes') return;
    expect(value.value.buffer).toBe(input.buffer);
    expect(value.contentOffset).toBe(1);
    const chunked = decodeCbor(hexBytes('5f42010243030405ff'));
    expect(plain(chunked)).toBe('0102030405');
    expect(chunked.type === 'bytes' && chunked.contentOffset).toBe(-1);
  });

  it('decodes definite and indefinite arrays and maps alike', () => {
    const expected = new Map<string | number, unknown>([
      ['a', 1],
      [2, [2, 3]],
    ]);
    expect(plain(decodeCbor(hexBytes('a2 6161 01 02 820203')))).toEqual(expected);
    expect(plain(decodeCbor(hexBytes('bf 6161 01 02 9f0203ff ff')))).toEqual(expected);
  });

  it('keeps text key "1" and integer key 1 apart', () => {
    const value = decodeCbor(hexBytes('a2 6131 01 01 02'));
    expect(value.type === 'map' && [...value.entries.keys()]).toEqual(['1', 1]);
  });

  it('passes tags through', () => {
    expect(plain(decodeCbor(hexBytes('d2 80')))).toEqual({ tag: 18, value: [] });
  });
});

describe('decodeCbor: refused input', () => {
  it.each([
    ['empty input', ''],
    ['trailing byte', '0000'],
    ['truncated head', '19 01'],
    ['truncated string', '43 0102'],
    ['reserved additional information 28', '1c'],
    ['reserved additional information 30', '5e'],
    ['indefinite integer', '1f'],
    ['indefinite tag', 'df 00'],
    ['stray break', 'ff'],
    ['break inside a definite array', '82 01 ff'],
    ['unterminated indefinite array', '9f 01 02'],
    ['wrong chunk type in an indefinite byte string', '5f 6161 ff'],
    ['nested indefinite chunk', '5f 5f4101ff ff'],
    ['invalid UTF-8', '62 c328'],
    ['UTF-8 code point split across chunks', '7f 61c3 61bc ff'],
    ['overlong UTF-8', '62 c0af'],
    ['UTF-16 surrogate in UTF-8', '63 eda080'],
    ['duplicate text key', 'a2 6161 01 6161 02'],
    ['duplicate integer key, encoded differently', 'a2 01 01 1801 02'],
    ['byte-string map key', 'a1 4101 01'],
    ['array map key', 'a1 80 01'],
    ['bigint map key', 'a1 1bffffffffffffffff 01'],
    ['map key without value (indefinite)', 'bf 01 ff'],
    ['unassigned simple value', 'f0'],
    ['one-byte simple value', 'f818'],
    ['map with 2^64 - 1 entries', 'bbffffffffffffffff'],
    ['array with 2^32 - 1 items', '9affffffff'],
    ['byte string longer than the input', '5a00100000 00'],
    ['text string of 2^63 bytes', '7b8000000000000000'],
  ])('%s', (_, hex) => {
    expect(() => decodeCbor(hexBytes(hex))).toThrow(CborDecodeError);
  });

  it('bounds nesting depth (arrays and tags)', () => {
    expect(() => decodeCbor(Uint8Array.from([...new Array(17).fill(0x81), 0x00]))).toThrow(/nesting/);
    expect(() => decodeCbor(Uint8Array.from([...new Array(16).fill(0x81), 0x00]))).not.toThrow();
    expect(() => decodeCbor(Uint8Array.from([...new Array(40).fill(0xc1), 0x00]))).toThrow(/nesting/);
    expect(() => decodeCbor(new Uint8Array(100_000).fill(0x9f))).toThrow(/nesting/);
  });

  it('bounds items per container', () => {
    const big = encodeCbor(new Array(1025).fill(0));
    expect(() => decodeCbor(big)).toThrow(/items/);
    expect(() => decodeCbor(big, { maxItems: 2000 })).not.toThrow();
    const indefinite = Uint8Array.from([0x9f, ...new Array(1025).fill(0), 0xff]);
    expect(() => decodeCbor(indefinite)).toThrow(/items/);
  });

  it('refuses huge declared lengths at once, without allocating them', () => {
    const heapBefore = process.memoryUsage().arrayBuffers;
    const started = performance.now();
    for (const hex of [
      '5bffffffffffffffff',
      '9bffffffffffffffff',
      'bb7fffffffffffffff',
      '5b0000000100000000',
    ]) {
      expect(() => decodeCbor(hexBytes(`${hex}00`))).toThrow(/remain/);
    }
    expect(performance.now() - started).toBeLessThan(50);
    expect(process.memoryUsage().arrayBuffers - heapBefore).toBeLessThan(1024 * 1024);
  });

  it('decodes a hostile 10 MB input in bounded time', () => {
    const hostile = new Uint8Array(10 * 1024 * 1024);
    // An array that claims 2^32 - 1 items, then a sea of zeros.
    hostile.set([0x9a, 0xff, 0xff, 0xff, 0xff]);
    const started = performance.now();
    expect(() => decodeCbor(hostile)).toThrow(CborDecodeError);
    // An array of 2048 one-byte items, followed by 10 MB: refused at the item bound, before any item.
    hostile.set([0x9a, 0x00, 0x00, 0x08, 0x00]);
    expect(() => decodeCbor(hostile)).toThrow(/items/);
    expect(performance.now() - started).toBeLessThan(200);
  });
});

describe('decodeCbor: properties', () => {
  it('never throws anything but CborDecodeError on random bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (input) => {
        try {
          decodeCbor(input);
        } catch (error) {
          expect(error).toBeInstanceOf(CborDecodeError);
        }
      }),
      { numRuns: 20_000 },
    );
  });

  const encodable = fc.letrec<{ value: unknown }>((tie) => ({
    value: fc.oneof(
      { depthSize: 'small', withCrossShrink: true },
      fc.maxSafeInteger(),
      fc.bigInt({ min: -(2n ** 64n), max: 2n ** 64n - 1n }),
      fc.string({ unit: 'grapheme', maxLength: 20 }),
      fc.uint8Array({ maxLength: 40 }),
      fc.constantFrom(true, false, null, undefined),
      fc.array(tie('value'), { maxLength: 5 }),
      fc
        .uniqueArray(fc.tuple(fc.oneof(fc.string({ maxLength: 8 }), fc.integer()), tie('value')), {
          maxLength: 5,
          selector: ([key]) => key,
        })
        .map((entries) => new Map(entries)),
    ),
  }));

  it('decodes what an encoder produced, in every encoding style, to the same value', () => {
    fc.assert(
      fc.property(encodable.value, (value) => {
        const minimal = plain(decodeCbor(encodeCbor(value as never)));
        expect(plain(decodeCbor(encodeCbor(value as never, { indefinite: true })))).toEqual(minimal);
        expect(plain(decodeCbor(encodeCbor(value as never, { nonMinimal: true })))).toEqual(minimal);
        expect(plain(decodeCbor(encodeCbor(new Tagged(55799, value as never))))).toEqual({
          tag: 55799,
          value: minimal,
        });
      }),
      { numRuns: 2_000 },
    );
  });

  it('refuses every strict prefix of a valid item', () => {
    fc.assert(
      fc.property(encodable.value, fc.nat(), (value, cut) => {
        const encoded = encodeCbor(value as never);
        const prefix = encoded.subarray(0, cut % encoded.length);
        expect(() => decodeCbor(prefix)).toThrow(CborDecodeError);
      }),
      { numRuns: 2_000 },
    );
  });
});
