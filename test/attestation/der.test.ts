/**
 * The strict DER reader of basicConstraints and keyUsage: what the real AWS certificates carry, what strict
 * DER refuses, and that no input makes it throw.
 */
import { generateKeyPairSync } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type ConstraintsResult,
  hasKeyUsage,
  KEY_USAGE,
  readCertificateConstraints,
} from '../../shared/attestation/der.ts';
import { documentParts, fixtures } from './nitro-fixtures.ts';
import {
  bool,
  certificate,
  extension,
  integer,
  namedBits,
  OID_BASIC_CONSTRAINTS,
  OID_KEY_USAGE,
  octets,
  seq,
  testChain,
  tlv,
} from './test-documents.ts';

const at = new Date('2025-06-01T12:00:00.000Z');
const chain = testChain(at);
const keys = generateKeyPairSync('ec', { namedCurve: 'secp384r1' });

/** A certificate signed by a throwaway key, carrying exactly these extensions. */
const withExtensions = (...rawExtensions: Uint8Array[]) =>
  certificate({
    subject: 's',
    issuer: 's',
    publicKey: keys.publicKey,
    signingKey: keys.privateKey,
    notBefore: new Date(at.getTime() - 1000),
    notAfter: new Date(at.getTime() + 1000),
    ca: false,
    rawExtensions,
  });

const read = (der: Uint8Array) => readCertificateConstraints(der);
const reasonOf = (result: ConstraintsResult) => (result.ok ? 'ok' : result.reason);
const bc = (...fields: Uint8Array[]) => extension(OID_BASIC_CONSTRAINTS, true, seq(...fields));
const ku = (bitString: Uint8Array, critical = true) => extension(OID_KEY_USAGE, critical, bitString);

describe('the real AWS certificates', () => {
  // Identical in all three documents: root (no pathLen) → regional (2) → zonal (1) → instance (0) → leaf.
  const expected = [
    { ca: true, pathLen: null, usage: ['digitalSignature', 'keyCertSign', 'cRLSign'] },
    { ca: true, pathLen: 2, usage: ['digitalSignature', 'keyCertSign', 'cRLSign'] },
    { ca: true, pathLen: 1, usage: ['digitalSignature', 'keyCertSign', 'cRLSign'] },
    { ca: true, pathLen: 0, usage: ['keyCertSign'] },
    { ca: false, pathLen: null, usage: ['digitalSignature', 'nonRepudiation'] },
  ];

  it.each(fixtures)(
    '$name: basicConstraints critical everywhere, keyUsage critical except on the leaf',
    (fixture) => {
      const { cabundle, leaf } = documentParts(fixture);
      const read = [...cabundle, leaf].map((der) => readCertificateConstraints(der));
      expect(
        read.map((r) => {
          if (!r.ok) return r.reason;
          const { basicConstraints, keyUsage } = r.value;
          return {
            ca: basicConstraints?.ca,
            pathLen: basicConstraints?.pathLen,
            usage: Object.entries(KEY_USAGE)
              .filter(([, bit]) => keyUsage !== null && hasKeyUsage(keyUsage, bit))
              .map(([name]) => name),
          };
        }),
      ).toEqual(expected);
      expect(read.map((r) => r.ok && r.value.basicConstraints?.critical)).toEqual([
        true,
        true,
        true,
        true,
        true,
      ]);
      expect(read.map((r) => r.ok && r.value.keyUsage?.critical)).toEqual([true, true, true, true, false]);
    },
  );
});

describe('readCertificateConstraints', () => {
  it('reads the writer’s certificates', () => {
    expect(read(chain.root)).toEqual({
      ok: true,
      value: { basicConstraints: { critical: true, ca: true, pathLen: null }, keyUsage: null },
    });
    expect(read(chain.leaf)).toEqual({
      ok: true,
      value: { basicConstraints: { critical: true, ca: false, pathLen: null }, keyUsage: null },
    });
  });

  it.each<[string, Uint8Array[], unknown]>([
    ['no extensions at all', [], { basicConstraints: null, keyUsage: null }],
    [
      'a two-byte pathLen (128, a leading zero octet)',
      [bc(bool(true), integer(128))],
      { basicConstraints: { critical: true, ca: true, pathLen: 128 }, keyUsage: null },
    ],
    [
      'an enormous pathLen saturates',
      [bc(bool(true), tlv(0x02, Buffer.from([0x7f, 1, 2, 3, 4, 5, 6, 7, 8, 9])))],
      { basicConstraints: { critical: true, ca: true, pathLen: 2 ** 32 }, keyUsage: null },
    ],
    [
      'non-critical extensions and unknown ones',
      [
        extension(OID_BASIC_CONSTRAINTS, false, seq()),
        extension(Buffer.from([0x06, 0x03, 0x55, 0x1d, 0x0e]), false, tlv(0x04, Buffer.from([1]))),
        ku(namedBits([KEY_USAGE.decipherOnly]), false),
      ],
      {
        basicConstraints: { critical: false, ca: false, pathLen: null },
        keyUsage: { critical: false, bits: 1 << KEY_USAGE.decipherOnly },
      },
    ],
    [
      'an empty keyUsage',
      [ku(tlv(0x03, Buffer.from([0])))],
      { basicConstraints: null, keyUsage: { critical: true, bits: 0 } },
    ],
  ])('%s', (_, extensions, value) => {
    expect(read(withExtensions(...extensions))).toEqual({ ok: true, value });
  });

  it.each<[string, Uint8Array[], string]>([
    ['cA FALSE written out (DEFAULT)', [bc(bool(false))], 'cA FALSE encoded explicitly'],
    [
      'critical FALSE written out (DEFAULT)',
      [seq(OID_KEY_USAGE, bool(false), octets(namedBits([0])))],
      'critical FALSE',
    ],
    ['a BOOLEAN 0x01', [bc(tlv(0x01, Buffer.from([0x01])))], 'BOOLEAN neither'],
    ['a two-byte BOOLEAN', [bc(tlv(0x01, Buffer.from([0xff, 0xff])))], 'BOOLEAN of the wrong length'],
    ['a negative pathLen', [bc(bool(true), tlv(0x02, Buffer.from([0xff])))], 'negative'],
    ['a non-minimal pathLen', [bc(bool(true), tlv(0x02, Buffer.from([0x00, 0x01])))], 'non-minimal INTEGER'],
    ['an empty INTEGER', [bc(bool(true), tlv(0x02, Buffer.alloc(0)))], 'empty INTEGER'],
    ['pathLen before cA', [bc(integer(1), bool(true))], 'extra fields'],
    ['a third basicConstraints field', [bc(bool(true), integer(1), integer(1))], 'extra fields'],
    [
      'bytes after the basicConstraints SEQUENCE',
      [extension(OID_BASIC_CONSTRAINTS, true, Buffer.from([0x30, 0x00, 0x00]))],
      'bytes after basicConstraints',
    ],
    [
      'a truncated basicConstraints',
      [extension(OID_BASIC_CONSTRAINTS, true, Buffer.from([0x30, 0x05, 0x01, 0x01, 0xff]))],
      'truncated',
    ],
    ['basicConstraints twice', [bc(bool(true)), bc(bool(true))], 'twice'],
    ['keyUsage twice', [ku(namedBits([0])), ku(namedBits([5]))], 'twice'],
    ['keyUsage with unused bits set', [ku(tlv(0x03, Buffer.from([0x01, 0x87])))], 'unused bits set'],
    ['keyUsage with trailing zero bits', [ku(tlv(0x03, Buffer.from([0x00, 0x84])))], 'trailing zero'],
    ['keyUsage with 8 unused bits', [ku(tlv(0x03, Buffer.from([0x08, 0x80])))], 'unused-bits count'],
    ['keyUsage without content', [ku(tlv(0x03, Buffer.alloc(0)))], 'unused-bits octet'],
    ['keyUsage with an undefined bit', [ku(namedBits([0, 9]))], 'beyond decipherOnly'],
    ['keyUsage as an OCTET STRING', [ku(octets(Buffer.from([0x80])))], 'keyUsage has tag'],
    [
      'a non-minimal length',
      [extension(OID_BASIC_CONSTRAINTS, true, Buffer.from([0x30, 0x81, 0x03, 0x01, 0x01, 0xff]))],
      'non-minimal length',
    ],
    [
      'an indefinite length',
      [extension(OID_BASIC_CONSTRAINTS, true, Buffer.from([0x30, 0x80, 0x01, 0x01, 0xff, 0x00, 0x00]))],
      'indefinite',
    ],
    [
      'a non-minimal OID',
      [extension(Buffer.from([0x06, 0x04, 0x55, 0x80, 0x1d, 0x13]), true, seq(bool(true)))],
      'OBJECT IDENTIFIER',
    ],
    ['an extension without its value', [seq(OID_BASIC_CONSTRAINTS, bool(true))], 'truncated'],
  ])('strict DER refuses %s', (_, extensions, reason) => {
    expect(reasonOf(read(withExtensions(...extensions)))).toContain(reason);
  });

  it('refuses an empty extension list, an empty extension, a trailing byte, and a truncated certificate', () => {
    // The reader does not check signatures: a skeleton certificate is enough to reach the extensions.
    const skeleton = (...tail: Uint8Array[]) =>
      seq(
        seq(tlv(0xa0, integer(2)), integer(1), seq(), seq(), seq(), seq(), seq(), ...tail),
        seq(),
        tlv(0x03, Buffer.from([0])),
      );
    expect(read(skeleton())).toEqual({ ok: true, value: { basicConstraints: null, keyUsage: null } });
    expect(reasonOf(read(skeleton(tlv(0xa3, seq()))))).toBe('empty extensions');
    expect(reasonOf(read(skeleton(tlv(0xa3, seq()), integer(0))))).toBe('unexpected field in TBSCertificate');
    expect(reasonOf(read(skeleton(tlv(0x82, Buffer.from([0])), tlv(0x81, Buffer.from([0])))))).toBe(
      'unexpected field in TBSCertificate',
    );
    expect(read(withExtensions(seq())).ok).toBe(false); // one Extension with nothing in it
    expect(reasonOf(read(Uint8Array.from([...chain.leaf, 0])))).toContain('bytes after the certificate');
    for (let length = 0; length < chain.leaf.length; length++) {
      expect(read(chain.leaf.subarray(0, length)).ok).toBe(false);
    }
  });
});

describe('properties: the reader never throws', () => {
  const realCertificates = fixtures.flatMap((f) => {
    const { cabundle, leaf } = documentParts(f);
    return [...cabundle, leaf];
  });
  const never = (der: Uint8Array) => {
    const result = readCertificateConstraints(der);
    expect(typeof result.ok).toBe('boolean');
    // Every refusal is a DER reason, never the catch-all that would hide a bug in the reader.
    if (!result.ok) expect(result.reason).not.toBe('unreadable certificate structure');
  };

  it('on random bytes, and on random bytes behind a SEQUENCE head', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 1200 }), fc.boolean(), (bytes, wrap) => {
        never(wrap ? tlv(0x30, bytes) : bytes);
      }),
      { numRuns: 2000 },
    );
  });

  it('on mutated real certificates (flips, overwrites, truncations, insertions, deletions)', () => {
    const mutated = fc
      .tuple(
        fc.constantFrom(...realCertificates),
        fc.array(
          fc.tuple(
            fc.constantFrom('flip', 'set', 'cut', 'insert', 'delete'),
            fc.nat(),
            fc.integer({ min: 0, max: 255 }),
          ),
          { minLength: 1, maxLength: 4 },
        ),
      )
      .map(([der, edits]) => {
        let bytes = Buffer.from(der);
        for (const [kind, where, value] of edits) {
          const at = where % (bytes.length + 1);
          if (kind === 'flip' && at < bytes.length) bytes[at]! ^= value || 1;
          else if (kind === 'set' && at < bytes.length) bytes[at] = value;
          else if (kind === 'cut') bytes = bytes.subarray(0, at);
          else if (kind === 'insert')
            bytes = Buffer.concat([bytes.subarray(0, at), Buffer.from([value]), bytes.subarray(at)]);
          else bytes = Buffer.concat([bytes.subarray(0, at), bytes.subarray(at + 1 + (value % 8))]);
        }
        return new Uint8Array(bytes);
      });
    fc.assert(fc.property(mutated, never), { numRuns: 3000 });
  });

  it('on random extension lists inside a well-formed certificate', () => {
    const oid = fc.constantFrom(
      OID_BASIC_CONSTRAINTS,
      OID_KEY_USAGE,
      Buffer.from([0x06, 0x03, 0x55, 0x1d, 0x0e]),
    );
    const value = fc.oneof(
      fc.uint8Array({ maxLength: 12 }),
      fc
        .tuple(fc.option(fc.boolean()), fc.option(fc.integer({ min: 0, max: 300 })))
        .map(([ca, n]) => seq(...(ca === null ? [] : [bool(ca)]), ...(n === null ? [] : [integer(n)]))),
      fc.uniqueArray(fc.integer({ min: 0, max: 10 }), { maxLength: 4 }).map((bits) => namedBits(bits)),
    );
    const anExtension = fc.oneof(
      fc.tuple(oid, fc.boolean(), value).map(([o, critical, v]) => extension(o, critical, v)),
      fc.uint8Array({ maxLength: 16 }),
    );
    fc.assert(
      fc.property(fc.array(anExtension, { maxLength: 4 }), (extensions) => {
        never(withExtensions(...extensions));
      }),
      { numRuns: 300 },
    );
  });
});
