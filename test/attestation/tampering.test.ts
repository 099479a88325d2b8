/**
 * Negative tests on real AWS documents: byte-level tampering, truncation, re-encoding, foreign roots, and
 * each policy failure, with the exact failure code where the check order determines it.
 */
import { X509Certificate } from 'node:crypto';
import { rootCertificates } from 'node:tls';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeCbor } from '../../shared/attestation/cbor.ts';
import { parseCoseSign1 } from '../../shared/attestation/cose.ts';
import {
  type AttestationResult,
  buildPolicy,
  FAILURE_CODES,
  type Policy,
  verifyAttestation,
} from '../../shared/attestation/index.ts';
import { type Encodable, encodeCbor, fromCborValue, RawCbor, Tagged } from './cbor-encoder.ts';
import { fixtures, measurementSetOf, type NitroFixture, prodFixture } from './nitro-fixtures.ts';

const policyFor = (fixture: NitroFixture): Policy =>
  buildPolicy({ measurements: [measurementSetOf(fixture)], allowDebug: fixture.facts.debug_mode });

const debug2022 = fixtures.find((f) => f.name.startsWith('debug-2022'))!;
const debug2023 = fixtures.find((f) => f.name.startsWith('debug-2023'))!;

/** The three signed-or-not parts of a real document, and where they lie in it. */
function partsOf(document: Uint8Array) {
  const cose = parseCoseSign1(document);
  if (!cose.ok) throw new Error(cose.message);
  const payloadMap = fromCborValue(decodeCbor(cose.value.payload)) as Map<string, Encodable>;
  return {
    protectedHeader: cose.value.protectedHeader,
    payload: cose.value.payload,
    signature: cose.value.signature,
    protectedRange: cose.value.protectedRange!,
    payloadRange: cose.value.payloadRange!,
    signatureRange: [document.length - 96, document.length] as const,
    payloadMap,
  };
}

/** Re-assembles a COSE_Sign1 (minimal encoding) from parts. */
function envelope(protectedHeader: Uint8Array, payload: Uint8Array, signature: Uint8Array): Uint8Array {
  return encodeCbor([protectedHeader, new Map(), payload, signature]);
}

function flip(document: Uint8Array, position: number, mask: number): Uint8Array {
  const copy = new Uint8Array(document);
  copy[position]! ^= mask;
  return copy;
}

function verifyAt(
  fixture: NitroFixture,
  document: Uint8Array | string,
  policy = policyFor(fixture),
): AttestationResult {
  return verifyAttestation(document, policy, { at: fixture.at });
}

function codeOf(result: AttestationResult): string {
  return result.ok ? 'ok' : result.code;
}

const indexOf = (haystack: Uint8Array, needle: Uint8Array) =>
  Buffer.from(haystack).indexOf(Buffer.from(needle));

describe.each(fixtures)('byte-level tampering of $name', (fixture) => {
  const parts = partsOf(fixture.bytes);

  it('the untouched document verifies (control)', () => {
    expect(codeOf(verifyAt(fixture, fixture.bytes))).toBe('ok');
  });

  it('every bit of the signature → bad_signature', () => {
    const [start, end] = parts.signatureRange;
    for (let position = start; position < end; position++) {
      for (let bit = 0; bit < 8; bit++) {
        expect(codeOf(verifyAt(fixture, flip(fixture.bytes, position, 1 << bit)))).toBe('bad_signature');
      }
    }
  });

  it('every value of every protected-header byte → malformed, unsupported_algorithm or bad_signature', () => {
    const [start, end] = parts.protectedRange;
    for (let position = start; position < end; position++) {
      for (let mask = 1; mask < 256; mask++) {
        const code = codeOf(verifyAt(fixture, flip(fixture.bytes, position, mask)));
        expect(['malformed', 'unsupported_algorithm', 'bad_signature']).toContain(code);
      }
    }
  });

  it('any byte of the payload changed → never ok, never a throw, a failure code', () => {
    const [start, end] = parts.payloadRange;
    fc.assert(
      fc.property(
        fc.integer({ min: start, max: end - 1 }),
        fc.integer({ min: 1, max: 255 }),
        (position, mask) => {
          const result = verifyAt(fixture, flip(fixture.bytes, position, mask));
          expect(result.ok).toBe(false);
          expect(FAILURE_CODES).toContain(codeOf(result));
        },
      ),
      { numRuns: 1_500 },
    );
  });

  it('truncated at every length → malformed', () => {
    for (let length = 0; length < fixture.bytes.length; length++) {
      expect(codeOf(verifyAt(fixture, fixture.bytes.subarray(0, length)))).toBe('malformed');
    }
  });

  it('a trailing byte → malformed', () => {
    for (const extra of [0x00, 0xff, 0xf6]) {
      expect(codeOf(verifyAt(fixture, Uint8Array.from([...fixture.bytes, extra])))).toBe('malformed');
    }
  });

  it('the payload map re-encoded in another key order (same meaning) → bad_signature', () => {
    const reversed = new Map([...parts.payloadMap].reverse());
    const document = envelope(parts.protectedHeader, encodeCbor(reversed), parts.signature);
    expect(codeOf(verifyAt(fixture, document))).toBe('bad_signature');
  });

  it('the payload re-encoded with indefinite lengths or non-minimal heads (same meaning) → bad_signature', () => {
    for (const style of [{ indefinite: true }, { nonMinimal: true }]) {
      const document = envelope(parts.protectedHeader, encodeCbor(parts.payloadMap, style), parts.signature);
      expect(codeOf(verifyAt(fixture, document))).toBe('bad_signature');
    }
  });

  it('the unsigned envelope in any valid encoding still verifies (tag 18, indefinite, non-minimal)', () => {
    const items: Encodable = [parts.protectedHeader, new Map(), parts.payload, parts.signature];
    for (const document of [
      encodeCbor(new Tagged(18, new RawCbor(fixture.bytes))),
      encodeCbor(items, { indefinite: true }),
      encodeCbor(items, { nonMinimal: true }),
      encodeCbor([
        parts.protectedHeader,
        new Map([[4, new Uint8Array([1])]]),
        parts.payload,
        parts.signature,
      ]),
    ]) {
      expect(codeOf(verifyAt(fixture, document))).toBe('ok');
    }
  });

  it('another COSE tag, or another envelope shape → malformed', () => {
    const items: Encodable[] = [parts.protectedHeader, new Map(), parts.payload, parts.signature];
    for (const document of [
      encodeCbor(new Tagged(98, new RawCbor(fixture.bytes))),
      encodeCbor(items.slice(0, 3)),
      encodeCbor([...items, null]),
      encodeCbor([parts.protectedHeader, new Map(), null, parts.signature]),
      encodeCbor([parts.protectedHeader, [], parts.payload, parts.signature]),
      encodeCbor([new Map([[1, -35]]), new Map(), parts.payload, parts.signature]),
      encodeCbor([parts.protectedHeader, new Map(), parts.payload, parts.signature.subarray(0, 95)]),
      encodeCbor([parts.protectedHeader, new Map(), parts.payload, Uint8Array.from([...parts.signature, 0])]),
      encodeCbor(new Map([[1, 2]])),
    ]) {
      expect(codeOf(verifyAt(fixture, document))).toBe('malformed');
    }
  });

  it('the algorithm changed in the protected header → unsupported_algorithm (checked before the signature)', () => {
    for (const header of [
      new Map<number | string, Encodable>([[1, -7]]),
      new Map<number | string, Encodable>([[1, -36]]),
      new Map<number | string, Encodable>([[1, 'ES384']]),
      new Map<number | string, Encodable>(),
      new Map<number | string, Encodable>([[3, -35]]),
      new Map<number | string, Encodable>([
        [1, -35],
        [2, [99]],
      ]),
    ]) {
      const document = envelope(encodeCbor(header), parts.payload, parts.signature);
      expect(codeOf(verifyAt(fixture, document))).toBe('unsupported_algorithm');
    }
    // An empty protected header (COSE's encoding of "no parameters") names no algorithm either.
    expect(codeOf(verifyAt(fixture, envelope(new Uint8Array(0), parts.payload, parts.signature)))).toBe(
      'unsupported_algorithm',
    );
    // A protected header that is not a map at all is malformed.
    expect(codeOf(verifyAt(fixture, envelope(encodeCbor([1, -35]), parts.payload, parts.signature)))).toBe(
      'malformed',
    );
  });

  it('ES384 kept, but the protected bytes changed (non-minimal, extra parameter) → bad_signature', () => {
    const nonMinimal = encodeCbor(new Map([[1, -35]]), { nonMinimal: true });
    const withKid = encodeCbor(
      new Map<number, Encodable>([
        [1, -35],
        [4, new Uint8Array([1, 2])],
      ]),
    );
    for (const header of [nonMinimal, withKid]) {
      expect(codeOf(verifyAt(fixture, envelope(header, parts.payload, parts.signature)))).toBe(
        'bad_signature',
      );
    }
  });

  it('a foreign root in place of cabundle[0] → untrusted_root; trusting it instead → chain_invalid', () => {
    const foreignRoot = new Uint8Array(new X509Certificate(rootCertificates[0]!).raw);
    const cabundle = [...(parts.payloadMap.get('cabundle') as Uint8Array[])];
    cabundle[0] = foreignRoot;
    const payload = encodeCbor(new Map([...parts.payloadMap, ['cabundle', cabundle]]));
    const document = envelope(parts.protectedHeader, payload, parts.signature);
    expect(codeOf(verifyAt(fixture, document))).toBe('untrusted_root');
    const trustingForeign = verifyAttestation(document, policyFor(fixture), {
      at: fixture.at,
      trustedRoots: [foreignRoot],
    });
    expect(codeOf(trustingForeign)).toBe('chain_invalid');
    // And the genuine document is not trusted when only the foreign root is.
    expect(
      codeOf(
        verifyAttestation(fixture.bytes, policyFor(fixture), { at: fixture.at, trustedRoots: [foreignRoot] }),
      ),
    ).toBe('untrusted_root');
  });
});

describe('targeted tampering of the production document', () => {
  const fixture = prodFixture;
  const parts = partsOf(fixture.bytes);
  const payloadStart = parts.payloadRange[0];
  const cabundle = parts.payloadMap.get('cabundle') as Uint8Array[];
  const leaf = parts.payloadMap.get('certificate') as Uint8Array;
  const pcrs = parts.payloadMap.get('pcrs') as Map<number, Uint8Array>;

  it.each([
    ['a PCR0 byte', () => indexOf(fixture.bytes, pcrs.get(0)!) + 10, 0x01, 'bad_signature'],
    [
      'the module_id last character',
      () => indexOf(fixture.bytes, Buffer.from('24190')) + 4,
      0x01,
      'bad_signature',
    ],
    [
      'the timestamp low byte',
      () => indexOf(fixture.bytes, Buffer.from('itimestamp')) + 10 + 8,
      0x01,
      'bad_signature',
    ],
    ['the digest name', () => indexOf(fixture.bytes, Buffer.from('SHA384')) + 5, 0x01, 'malformed'],
    [
      'the timestamp major type (→ negative)',
      () => indexOf(fixture.bytes, Buffer.from('itimestamp')) + 10,
      0x20,
      'malformed',
    ],
    ['the root certificate', () => indexOf(fixture.bytes, cabundle[0]!) + 100, 0x01, 'untrusted_root'],
    [
      'the leaf certificate signature',
      () => indexOf(fixture.bytes, leaf) + leaf.length - 1,
      0x01,
      'chain_invalid',
    ],
    [
      'an intermediate signature',
      () => indexOf(fixture.bytes, cabundle[2]!) + cabundle[2]!.length - 1,
      0x01,
      'chain_invalid',
    ],
    ['the payload string head', () => payloadStart - 1, 0x01, 'malformed'],
  ])('%s', (_, position, mask, expected) => {
    const at = position();
    expect(at).toBeGreaterThan(0);
    const result = verifyAt(fixture, mask === 0 ? fixture.bytes : flip(fixture.bytes, at, mask));
    expect(codeOf(result)).toBe(expected);
  });

  it('an emptied cabundle, or a second leaf for a root → malformed / untrusted_root', () => {
    const rebuild = (key: string, value: Encodable) =>
      envelope(
        parts.protectedHeader,
        encodeCbor(new Map([...parts.payloadMap, [key, value]])),
        parts.signature,
      );
    expect(codeOf(verifyAt(fixture, rebuild('cabundle', [])))).toBe('malformed');
    expect(codeOf(verifyAt(fixture, rebuild('cabundle', [leaf])))).toBe('untrusted_root');
    expect(codeOf(verifyAt(fixture, rebuild('cabundle', [cabundle[0]!])))).toBe('chain_invalid');
    expect(codeOf(verifyAt(fixture, rebuild('cabundle', [cabundle[0]!, cabundle[2]!, cabundle[3]!])))).toBe(
      'chain_invalid',
    );
    expect(codeOf(verifyAt(fixture, rebuild('certificate', cabundle[3]!)))).toBe('chain_invalid');
    expect(
      codeOf(verifyAt(fixture, rebuild('certificate', new Uint8Array([0x30, 0x03, 0x02, 0x01, 0x00])))),
    ).toBe('malformed');
  });
});

describe('policy failures on real documents', () => {
  const pcrs = measurementSetOf(prodFixture);
  const otherValue = 'ab'.repeat(48);

  it('a wrong PCR → pcr_mismatch, naming the differing PCRs of the closest set', () => {
    const policy = buildPolicy({
      measurements: [
        { ...pcrs, 0: otherValue, 1: otherValue },
        { ...pcrs, 4: otherValue },
      ],
    });
    const result = verifyAt(prodFixture, prodFixture.bytes, policy);
    expect(result).toMatchObject({ ok: false, code: 'pcr_mismatch' });
    expect(!result.ok && result.message).toMatch(/set 1, differs in PCR4\./);
  });

  it('the second set matching → ok, with its index', () => {
    const policy = buildPolicy({ measurements: [{ 0: otherValue }, { 0: pcrs[0]!, 8: pcrs[8]! }] });
    expect(verifyAt(prodFixture, prodFixture.bytes, policy)).toMatchObject({
      ok: true,
      matchedMeasurementSet: 1,
    });
  });

  it('a PCR pinned with upper-case hex still matches', () => {
    const policy = buildPolicy({ measurements: [{ 0: pcrs[0]!.toUpperCase() }] });
    expect(verifyAt(prodFixture, prodFixture.bytes, policy).ok).toBe(true);
  });

  it('a debug document without allowDebug → debug_mode, even with matching PCR3/4', () => {
    for (const fixture of [debug2022, debug2023]) {
      const set = measurementSetOf(fixture);
      const policy = buildPolicy({ measurements: [{ 3: set[3]!, 4: set[4]! }] });
      expect(codeOf(verifyAt(fixture, fixture.bytes, policy))).toBe('debug_mode');
    }
  });

  it('nonce: equal → ok; different → nonce_mismatch; absent in the document → nonce_mismatch', () => {
    const nonce = Buffer.from(prodFixture.facts.nonce_hex!, 'hex');
    const withNonce = (expectedNonce: Uint8Array) =>
      buildPolicy({ measurements: [pcrs], expectedNonce, requireFreshness: true });
    expect(codeOf(verifyAt(prodFixture, prodFixture.bytes, withNonce(nonce)))).toBe('ok');
    const other = Buffer.from(nonce);
    other[0]! ^= 1;
    expect(codeOf(verifyAt(prodFixture, prodFixture.bytes, withNonce(other)))).toBe('nonce_mismatch');
    expect(codeOf(verifyAt(prodFixture, prodFixture.bytes, withNonce(nonce.subarray(1))))).toBe(
      'nonce_mismatch',
    );
    const noNonce = buildPolicy({
      measurements: [measurementSetOf(debug2022)],
      allowDebug: true,
      expectedNonce: new Uint8Array(0),
    });
    expect(codeOf(verifyAt(debug2022, debug2022.bytes, noNonce))).toBe('nonce_mismatch');
  });

  it('maxAgeMs: older → stale; within → ok', () => {
    const policy = buildPolicy({ measurements: [pcrs], maxAgeMs: 60_000 });
    const verifyAfter = (ms: number) =>
      verifyAttestation(prodFixture.bytes, policy, { at: new Date(prodFixture.facts.timestamp_ms + ms) });
    expect(codeOf(verifyAfter(60_000))).toBe('ok');
    expect(codeOf(verifyAfter(60_001))).toBe('stale');
  });

  it('a timestamp more than five minutes after the verification instant → from_the_future', () => {
    const policy = policyFor(debug2023);
    const verifyBefore = (ms: number) =>
      verifyAttestation(debug2023.bytes, policy, { at: new Date(debug2023.facts.timestamp_ms - ms) });
    expect(codeOf(verifyBefore(5 * 60_000))).toBe('ok');
    expect(codeOf(verifyBefore(5 * 60_000 + 1))).toBe('from_the_future');
  });

  it('public_key and user_data: equal → ok, different or absent → mismatch', () => {
    const set = measurementSetOf(debug2022);
    const publicKey = Buffer.from(debug2022.facts.public_key_hex!, 'hex');
    const userData = Buffer.from(debug2022.facts.user_data_hex!, 'hex');
    const policy = (extra: object) => buildPolicy({ measurements: [set], allowDebug: true, ...extra });
    expect(
      codeOf(
        verifyAt(
          debug2022,
          debug2022.bytes,
          policy({ expectedPublicKey: publicKey, expectedUserData: userData }),
        ),
      ),
    ).toBe('ok');
    expect(codeOf(verifyAt(debug2022, debug2022.bytes, policy({ expectedPublicKey: userData })))).toBe(
      'public_key_mismatch',
    );
    expect(codeOf(verifyAt(debug2022, debug2022.bytes, policy({ expectedUserData: publicKey })))).toBe(
      'user_data_mismatch',
    );
    const prod = (extra: object) => buildPolicy({ measurements: [pcrs], ...extra });
    expect(codeOf(verifyAt(prodFixture, prodFixture.bytes, prod({ expectedPublicKey: publicKey })))).toBe(
      'public_key_mismatch',
    );
    expect(codeOf(verifyAt(prodFixture, prodFixture.bytes, prod({ expectedUserData: userData })))).toBe(
      'user_data_mismatch',
    );
  });
});

describe('inputs that are not documents, and unusable requests', () => {
  const policy = policyFor(prodFixture);

  it.each([
    ['an empty array', new Uint8Array(0)],
    ['an empty string', ''],
    ['text that is not base64', 'not base64!'],
    ['base64 of garbage', Buffer.from('hello world').toString('base64')],
    ['a number', 42],
    ['null', null],
    ['an object', { length: 3 }],
    ['11 MB of zeros', new Uint8Array(11 * 1024 * 1024)],
    ['a 10 MB base64 string', 'A'.repeat(10 * 1024 * 1024)],
  ])('%s → malformed', (_, input) => {
    expect(codeOf(verifyAttestation(input as never, policy, { at: prodFixture.at }))).toBe('malformed');
  });

  it('base64 with line breaks, and URL-safe base64, are accepted', () => {
    const wrapped = prodFixture.base64.replace(/(.{76})/g, '$1\n');
    expect(codeOf(verifyAt(prodFixture, wrapped))).toBe('ok');
    const urlSafe = prodFixture.base64.replaceAll('+', '-').replaceAll('/', '_');
    expect(codeOf(verifyAt(prodFixture, urlSafe))).toBe('ok');
  });

  it('a hand-made policy that buildPolicy would refuse → invalid_policy, never "match anything"', () => {
    for (const bad of [
      { measurements: [] },
      { measurements: [{}] },
      {},
      null,
      { measurements: [{ 0: 'zz' }] },
      { measurements: [measurementSetOf(prodFixture)], requireFreshness: true },
    ]) {
      expect(codeOf(verifyAttestation(prodFixture.bytes, bad as never, { at: prodFixture.at }))).toBe(
        'invalid_policy',
      );
    }
    // A plain object that buildPolicy would accept is checked and used.
    const plain = { measurements: [measurementSetOf(prodFixture)] } as never;
    expect(codeOf(verifyAttestation(prodFixture.bytes, plain, { at: prodFixture.at }))).toBe('ok');
  });

  it('an invalid instant or trusted-root list → invalid_policy', () => {
    expect(codeOf(verifyAttestation(prodFixture.bytes, policy, { at: new Date(Number.NaN) }))).toBe(
      'invalid_policy',
    );
    expect(codeOf(verifyAttestation(prodFixture.bytes, policy, { at: '2022' as never }))).toBe(
      'invalid_policy',
    );
    expect(
      codeOf(verifyAttestation(prodFixture.bytes, policy, { at: prodFixture.at, trustedRoots: ['x'] })),
    ).toBe('invalid_policy');
  });

  it('a policy whose getters throw → a failure, not a throw', () => {
    const hostile = new Proxy(
      {},
      {
        get() {
          throw new Error('boom');
        },
      },
    );
    const result = verifyAttestation(prodFixture.bytes, hostile as never, { at: prodFixture.at });
    expect(result.ok).toBe(false);
    expect(!result.ok && result.message).not.toMatch(/boom/);
  });
});
