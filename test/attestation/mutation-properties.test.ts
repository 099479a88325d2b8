/**
 * Property tests: random mutations of valid documents never throw and never verify.
 *
 * "Never verify" is stated precisely: a mutated document may only verify if its SIGNED content (protected
 * header, payload, signature) is byte-identical to the original's. Some mutations legitimately keep it —
 * wrapping the document in tag 18, or touching only the unsigned envelope — and refusing those would
 * contradict accepting every valid CBOR encoding of the envelope.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseCoseSign1 } from '../../shared/attestation/cose.ts';
import {
  type AttestationResult,
  buildPolicy,
  FAILURE_CODES,
  verifyAttestation,
} from '../../shared/attestation/index.ts';
import { type Encodable, encodeCbor } from './cbor-encoder.ts';
import { fixtures, measurementSetOf } from './nitro-fixtures.ts';
import { buildDocument, pcrValue, testChain } from './test-documents.ts';

/** A byte-level mutation of a document. */
type Mutation =
  | { kind: 'flip'; position: number; mask: number }
  | { kind: 'set'; position: number; value: number }
  | { kind: 'insert'; position: number; bytes: Uint8Array }
  | { kind: 'delete'; position: number; count: number }
  | { kind: 'replace'; position: number; count: number; bytes: Uint8Array };

const cborValue = fc.letrec<{ value: Encodable }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    fc.integer(),
    fc.bigInt({ min: -(2n ** 64n), max: 2n ** 64n - 1n }),
    fc.string({ maxLength: 10 }),
    fc.uint8Array({ maxLength: 100 }),
    fc.constantFrom<Encodable>(null, undefined, true, false, 1.5),
    fc.array(tie('value'), { maxLength: 4 }),
    fc
      .array(fc.tuple(fc.oneof(fc.string({ maxLength: 6 }), fc.integer()), tie('value')), { maxLength: 4 })
      .map((e) => new Map(e)),
  ),
}));

const insertedBytes = fc.oneof(
  fc.uint8Array({ minLength: 1, maxLength: 16 }),
  cborValue.value.map((value) => encodeCbor(value)),
  fc.constantFrom(
    Uint8Array.of(0xff),
    Uint8Array.of(0x9f),
    Uint8Array.of(0x5b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff),
  ),
);

function mutation(length: number): fc.Arbitrary<Mutation> {
  const position = fc.integer({ min: 0, max: length - 1 });
  return fc.oneof(
    fc.record({
      kind: fc.constant('flip' as const),
      position,
      mask: fc.integer({ min: 1, max: 255 }).map((b) => 1 << (b % 8)),
    }),
    fc.record({ kind: fc.constant('set' as const), position, value: fc.integer({ min: 0, max: 255 }) }),
    fc.record({ kind: fc.constant('insert' as const), position, bytes: insertedBytes }),
    fc.record({ kind: fc.constant('delete' as const), position, count: fc.integer({ min: 1, max: 64 }) }),
    fc.record({
      kind: fc.constant('replace' as const),
      position,
      count: fc.integer({ min: 1, max: 64 }),
      bytes: insertedBytes,
    }),
  );
}

function apply(document: Uint8Array, mutations: readonly Mutation[]): Uint8Array {
  let bytes = Buffer.from(document);
  for (const m of mutations) {
    const at = Math.min(m.position, bytes.length);
    switch (m.kind) {
      case 'flip':
      case 'set':
        if (at < bytes.length) {
          bytes = Buffer.from(bytes);
          bytes[at] = m.kind === 'flip' ? bytes[at]! ^ m.mask : m.value;
        }
        break;
      case 'insert':
        bytes = Buffer.concat([bytes.subarray(0, at), m.bytes, bytes.subarray(at)]);
        break;
      case 'delete':
        bytes = Buffer.concat([bytes.subarray(0, at), bytes.subarray(at + m.count)]);
        break;
      case 'replace':
        bytes = Buffer.concat([bytes.subarray(0, at), m.bytes, bytes.subarray(at + m.count)]);
        break;
    }
  }
  return new Uint8Array(bytes);
}

/** The signed content of a document, or null when it has none. */
function signedContent(document: Uint8Array): string | null {
  const cose = parseCoseSign1(document);
  if (!cose.ok) return null;
  const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
  return `${hex(cose.value.protectedHeader)}|${hex(cose.value.payload)}|${hex(cose.value.signature)}`;
}

function expectWellFormedVerdict(result: AttestationResult): void {
  expect(typeof result.ok).toBe('boolean');
  if (!result.ok) {
    expect(FAILURE_CODES).toContain(result.code);
    expect(result.message.length).toBeGreaterThan(0);
  }
}

const at = new Date('2025-06-01T12:00:00.000Z');
const chain = testChain(at);
const local = {
  name: 'locally signed',
  bytes: buildDocument({
    chain,
    timestamp: at.getTime(),
    fields: { nonce: new Uint8Array(32), user_data: new Uint8Array(8) },
  }),
  policy: buildPolicy({ measurements: [{ 0: Buffer.from(pcrValue('pcr0')).toString('hex') }] }),
  options: { at, trustedRoots: [chain.root] },
};
const subjects = [
  ...fixtures.map((f) => ({
    name: f.name,
    bytes: f.bytes,
    policy: buildPolicy({ measurements: [measurementSetOf(f)], allowDebug: f.facts.debug_mode }),
    options: { at: f.at },
  })),
  local,
];

describe.each(subjects)('random mutations of $name', (subject) => {
  const original = signedContent(subject.bytes);

  it('the original verifies (control)', () => {
    expect(verifyAttestation(subject.bytes, subject.policy, subject.options).ok).toBe(true);
  });

  it('never throw, and never verify unless the signed content is untouched', () => {
    fc.assert(
      fc.property(fc.array(mutation(subject.bytes.length), { minLength: 1, maxLength: 3 }), (mutations) => {
        const mutated = apply(subject.bytes, mutations);
        const result = verifyAttestation(mutated, subject.policy, subject.options);
        expectWellFormedVerdict(result);
        if (result.ok) expect(signedContent(mutated)).toBe(original);
      }),
      { numRuns: 3_000 },
    );
  });

  it('mutated base64 text never throws and never verifies with other content', () => {
    const text = Buffer.from(subject.bytes).toString('base64');
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: text.length - 1 }),
        fc.string({ maxLength: 4 }),
        fc.nat(3),
        (position, insert, cut) => {
          const mutated = text.slice(0, position) + insert + text.slice(position + cut);
          const result = verifyAttestation(mutated, subject.policy, subject.options);
          expectWellFormedVerdict(result);
          if (result.ok) expect(signedContent(new Uint8Array(Buffer.from(mutated, 'base64')))).toBe(original);
        },
      ),
      { numRuns: 1_000 },
    );
  });
});

describe('hostile inputs stay cheap', () => {
  const policy = subjects[0]!.policy;

  it('random byte strings and random CBOR values never throw and never verify', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 300 }),
          cborValue.value.map((v) => encodeCbor(v)),
        ),
        (input) => {
          const result = verifyAttestation(input, policy, subjects[0]!.options);
          expectWellFormedVerdict(result);
          expect(result.ok).toBe(false);
        },
      ),
      { numRuns: 5_000 },
    );
  });

  it('headers declaring huge lengths and a 10 MB input → malformed, fast, without big allocations', () => {
    const hostile = [
      Uint8Array.of(0x84, 0x5b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff),
      Uint8Array.of(0x9b, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff),
      Uint8Array.of(0x84, 0x44, 0xa1, 0x01, 0x38, 0x22, 0xa0, 0x5a, 0x7f, 0xff, 0xff, 0xff, 0x00),
      Uint8Array.of(0x84, 0x44, 0xa1, 0x01, 0x38, 0x22, 0xbb, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff),
      new Uint8Array(60_000).fill(0x9f),
      new Uint8Array(10 * 1024 * 1024).fill(0x5f),
    ];
    const before = process.memoryUsage().arrayBuffers;
    const started = performance.now();
    for (const input of hostile) {
      expect(verifyAttestation(input, policy, subjects[0]!.options)).toMatchObject({
        ok: false,
        code: 'malformed',
      });
    }
    expect(performance.now() - started).toBeLessThan(100);
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(2 * 1024 * 1024);
  });
});
