/**
 * CA constraints on the chain (RFC 5280 §4.2.1.3, §4.2.1.9), through the full verifier: basicConstraints cA
 * and keyCertSign above the leaf, pathLenConstraint, and a leaf that is no CA and may sign. Every verdict is
 * checked on the uncached path, a fresh cache, a warm cache and the default cache, which must agree.
 */
import { createPublicKey } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { KEY_USAGE } from '../../shared/attestation/der.ts';
import {
  type AttestationResult,
  buildPolicy,
  ChainCache,
  type Policy,
  verifyAttestation,
} from '../../shared/attestation/index.ts';
import { encodeCbor } from './cbor-encoder.ts';
import { documentParts, fixtures, measurementSetOf, type NitroFixture } from './nitro-fixtures.ts';
import {
  bool,
  buildDocument,
  type ChainOptions,
  certificate,
  extension,
  integer,
  namedBits,
  OID_BASIC_CONSTRAINTS,
  OID_KEY_USAGE,
  pcrValue,
  seq,
  type TestChain,
  testChain,
  tlv,
} from './test-documents.ts';

const at = new Date('2025-06-01T12:00:00.000Z');
const policy = buildPolicy({ measurements: [{ 0: Buffer.from(pcrValue('pcr0')).toString('hex') }] });
const { digitalSignature, nonRepudiation, keyEncipherment, keyCertSign, cRLSign } = KEY_USAGE;
const GENERIC = 'unexpected error';

/** One verdict, after checking that every cache path gives the very same one. */
function verifyEverywhere(
  document: Uint8Array,
  roots: readonly Uint8Array[],
  when: Date,
  p: Policy,
): AttestationResult {
  const common = { at: when, trustedRoots: [...roots] };
  const uncached = verifyAttestation(document, p, { ...common, useCache: false });
  const cache = new ChainCache();
  const cold = verifyAttestation(document, p, { ...common, chainCache: cache });
  const warm = verifyAttestation(document, p, { ...common, chainCache: cache });
  const shared = verifyAttestation(document, p, common);
  expect(cold).toEqual(uncached);
  expect(warm).toEqual(uncached);
  expect(shared).toEqual(uncached);
  if (!uncached.ok) expect(uncached.message).not.toContain(GENERIC);
  return uncached;
}

function verifyChain(chain: TestChain): AttestationResult {
  return verifyEverywhere(buildDocument({ chain, timestamp: at.getTime() }), [chain.root], at, policy);
}

const verdictOf = (options: ChainOptions) => {
  const result = verifyChain(testChain(at, options));
  return result.ok ? 'ok' : `${result.code}: ${result.message}`;
};

describe('the real AWS documents satisfy every constraint', () => {
  it.each(fixtures)('$name verifies at its timestamp', (fixture) => {
    const p = buildPolicy({
      measurements: [measurementSetOf(fixture)],
      allowDebug: fixture.facts.debug_mode,
    });
    const result = verifyEverywhere(
      fixture.bytes,
      documentParts(fixture).cabundle.slice(0, 1),
      fixture.at,
      p,
    );
    expect(result.ok).toBe(true);
  });
});

describe('CA certificates (root and intermediates)', () => {
  it('the AWS shape verifies: keyUsage with keyCertSign, pathLen counting down to 0', () => {
    expect(
      verdictOf({
        intermediateCount: 3,
        rootExtensions: { keyUsage: [digitalSignature, keyCertSign, cRLSign] },
        intermediateExtensions: [
          { pathLen: 2, keyUsage: [digitalSignature, keyCertSign, cRLSign] },
          { pathLen: 1, keyUsage: [keyCertSign] },
          { pathLen: 0, keyUsage: [keyCertSign] },
        ],
        leafExtensions: { keyUsage: [digitalSignature, nonRepudiation] },
      }),
    ).toBe('ok');
  });

  it('an intermediate with cA but a keyUsage without keyCertSign → chain_invalid', () => {
    expect(verdictOf({ intermediateExtensions: [{ keyUsage: [digitalSignature, cRLSign] }] })).toBe(
      'chain_invalid: The intermediate certificate cabundle[1] may not sign certificates: its keyUsage lacks keyCertSign.',
    );
  });

  it('a root with a keyUsage without keyCertSign → chain_invalid', () => {
    expect(verdictOf({ rootExtensions: { keyUsage: [cRLSign] } })).toBe(
      'chain_invalid: The root certificate (cabundle[0]) may not sign certificates: its keyUsage lacks keyCertSign.',
    );
  });

  it('a trusted root or an intermediate that is not a CA → chain_invalid', () => {
    expect(verdictOf({ rootExtensions: { ca: false } })).toBe(
      'chain_invalid: The root certificate (cabundle[0]) is not a certificate authority: its basicConstraints do not assert cA.',
    );
    expect(
      verdictOf({ intermediateExtensions: [{ noBasicConstraints: true, keyUsage: [keyCertSign] }] }),
    ).toBe(
      'chain_invalid: The intermediate certificate cabundle[1] is not a certificate authority: it has no basicConstraints extension.',
    );
    expect(verdictOf({ intermediateCount: 2, intermediateExtensions: [undefined, { ca: false }] })).toBe(
      'chain_invalid: The intermediate certificate cabundle[2] is not a certificate authority: its basicConstraints do not assert cA.',
    );
  });

  it('pathLenConstraint: n allows n intermediates below, not n + 1', () => {
    // root → A (pathLen n) → B → C → leaf: two intermediates below A.
    const twoBelow = (pathLen: number) =>
      verdictOf({ intermediateCount: 3, intermediateExtensions: [{ pathLen }] });
    expect(twoBelow(2)).toBe('ok');
    expect(twoBelow(1)).toBe(
      'chain_invalid: The intermediate certificate cabundle[1] allows at most 1 intermediate certificate below it (basicConstraints pathLenConstraint), but the chain has 2.',
    );
    expect(twoBelow(0)).toMatch(
      /^chain_invalid: .*cabundle\[1\] allows at most 0 intermediate certificates .* has 2\.$/,
    );
  });

  it('pathLenConstraint of the root, and of the last intermediate (the leaf does not count)', () => {
    expect(verdictOf({ intermediateCount: 2, rootExtensions: { pathLen: 1 } })).toMatch(
      /^chain_invalid: The root certificate \(cabundle\[0\]\) allows at most 1 intermediate certificate below it .* has 2\.$/,
    );
    expect(verdictOf({ intermediateCount: 2, rootExtensions: { pathLen: 2 } })).toBe('ok');
    expect(verdictOf({ rootExtensions: { pathLen: 1 }, intermediateExtensions: [{ pathLen: 0 }] })).toBe(
      'ok',
    );
  });

  it('a constraint is reported before a bad link signature and before expiry (the fixed order)', () => {
    const bad = testChain(at, { intermediateExtensions: [{ keyUsage: [digitalSignature] }] });
    const stranger = testChain(at);
    const forged = buildDocument({
      chain: { ...bad, leaf: stranger.leaf, leafKey: stranger.leafKey },
      timestamp: at.getTime(),
    });
    expect(verifyEverywhere(forged, [bad.root], at, policy)).toMatchObject({
      code: 'chain_invalid',
      message: expect.stringContaining('keyCertSign'),
    });
    const document = buildDocument({ chain: bad, timestamp: at.getTime() });
    expect(verifyEverywhere(document, [bad.root], new Date('2099-01-01'), policy)).toMatchObject({
      code: 'chain_invalid',
      message: expect.stringContaining('keyCertSign'),
    });
  });
});

describe('the leaf', () => {
  it('a leaf that is a CA → chain_invalid', () => {
    expect(verdictOf({ leafExtensions: { ca: true } })).toBe(
      'chain_invalid: The leaf certificate is a certificate authority (basicConstraints cA); a leaf must not be one.',
    );
    expect(
      verdictOf({ leafExtensions: { ca: true, pathLen: 0, keyUsage: [digitalSignature, keyCertSign] } }),
    ).toMatch(/^chain_invalid: The leaf certificate is a certificate authority/);
  });

  it('a leaf whose keyUsage lacks digitalSignature → chain_invalid', () => {
    expect(verdictOf({ leafExtensions: { keyUsage: [nonRepudiation, keyEncipherment] } })).toBe(
      'chain_invalid: The leaf certificate may not sign the document: its keyUsage lacks digitalSignature.',
    );
    expect(verdictOf({ leafExtensions: { keyUsage: [] } })).toMatch(/lacks digitalSignature/);
  });

  it('a leaf with digitalSignature, or without keyUsage or basicConstraints at all, verifies', () => {
    expect(verdictOf({ leafExtensions: { keyUsage: [digitalSignature] } })).toBe('ok');
    expect(verdictOf({ leafExtensions: { keyUsage: [digitalSignature, nonRepudiation] } })).toBe('ok');
    expect(verdictOf({ leafExtensions: { noBasicConstraints: true } })).toBe('ok');
  });
});

describe('extensions that are not strict DER → malformed, naming the certificate', () => {
  const raw = (...rawExtensions: Uint8Array[]) => ({ rawExtensions });
  const bc = (...fields: Uint8Array[]) => extension(OID_BASIC_CONSTRAINTS, true, seq(...fields));
  it.each<[string, ChainOptions, RegExp]>([
    [
      'the leaf: cA FALSE written out',
      { leafExtensions: raw(bc(bool(false))) },
      /^The leaf certificate .*cA FALSE/,
    ],
    [
      'the leaf: a truncated basicConstraints',
      {
        leafExtensions: raw(
          extension(OID_BASIC_CONSTRAINTS, true, Uint8Array.of(0x30, 0x05, 0x01, 0x01, 0xff)),
        ),
      },
      /^The leaf certificate .*truncated/,
    ],
    [
      'an intermediate: a negative pathLen',
      { intermediateExtensions: [raw(bc(bool(true), tlv(0x02, Uint8Array.of(0xfe))))] },
      /^The intermediate certificate cabundle\[1\] .*negative pathLenConstraint/,
    ],
    [
      'an intermediate: keyUsage twice',
      {
        intermediateExtensions: [
          raw(
            bc(bool(true)),
            extension(OID_KEY_USAGE, true, namedBits([5])),
            extension(OID_KEY_USAGE, true, namedBits([5])),
          ),
        ],
      },
      /^The intermediate certificate cabundle\[1\] .*twice/,
    ],
    [
      'the root: a keyUsage with trailing zero bits',
      {
        rootExtensions: raw(
          bc(bool(true)),
          extension(OID_KEY_USAGE, true, tlv(0x03, Uint8Array.of(0, 0x04))),
        ),
      },
      /^The root certificate \(cabundle\[0\]\) .*trailing zero bits/,
    ],
    [
      'the root: a non-minimal pathLen',
      { rootExtensions: raw(bc(bool(true), tlv(0x02, Uint8Array.of(0, 1)))) },
      /^The root certificate \(cabundle\[0\]\) .*non-minimal INTEGER/,
    ],
  ])('%s', (_, options, message) => {
    const result = verifyChain(testChain(at, options));
    expect(result).toMatchObject({ ok: false, code: 'malformed', message: expect.stringMatching(message) });
  });
});

describe('properties: malformed or odd extensions never throw, and every path agrees', () => {
  it('random extensions in a correctly signed leaf', () => {
    const chain = testChain(at);
    const leafPublic = createPublicKey(chain.leafKey);
    const oid = fc.constantFrom(
      OID_BASIC_CONSTRAINTS,
      OID_KEY_USAGE,
      Uint8Array.of(0x06, 0x03, 0x55, 0x1d, 0x0e),
    );
    const value = fc.oneof(
      fc.uint8Array({ maxLength: 10 }),
      fc
        .tuple(fc.option(fc.boolean()), fc.option(fc.integer({ min: 0, max: 3 })))
        .map(([ca, n]) => seq(...(ca === null ? [] : [bool(ca)]), ...(n === null ? [] : [integer(n)]))),
      fc.uniqueArray(fc.integer({ min: 0, max: 9 }), { maxLength: 3 }).map((bits) => namedBits(bits)),
    );
    const anExtension = fc.oneof(
      { weight: 4, arbitrary: fc.tuple(oid, fc.boolean(), value).map(([o, c, v]) => extension(o, c, v)) },
      { weight: 1, arbitrary: fc.uint8Array({ maxLength: 12 }) },
    );
    fc.assert(
      fc.property(fc.array(anExtension, { maxLength: 3 }), (rawExtensions) => {
        const leaf = certificate({
          subject: 'test-leaf',
          issuer: 'test-intermediate',
          publicKey: leafPublic,
          signingKey: chain.issuerKey,
          notBefore: new Date(at.getTime() - 60_000),
          notAfter: new Date(at.getTime() + 3_600_000),
          ca: false,
          rawExtensions,
        });
        const document = buildDocument({ chain: { ...chain, leaf }, timestamp: at.getTime() });
        const result = verifyEverywhere(document, [chain.root], at, policy);
        expect(['ok', 'malformed', 'chain_invalid']).toContain(result.ok ? 'ok' : result.code);
      }),
      { numRuns: 150 },
    );
  });

  it('mutated real certificates, re-encoded into real documents, never throw and never verify', () => {
    const subjects = fixtures.map((fixture) => ({ fixture, parts: documentParts(fixture) }));
    const edit = fc.tuple(
      fc.constantFrom('flip', 'set', 'cut', 'insert', 'delete'),
      fc.nat(),
      fc.integer({ min: 1, max: 255 }),
    );
    fc.assert(
      fc.property(
        fc.constantFrom(...subjects),
        fc.integer({ min: 0, max: 4 }),
        // Half the edits land near the extensions (the last ~160 bytes before the signature algorithm).
        fc.array(fc.tuple(edit, fc.boolean()), { minLength: 1, maxLength: 3 }),
        ({ fixture, parts }, which, edits) => {
          const ders = [...parts.cabundle, parts.leaf];
          let bytes = Buffer.from(ders[which]!);
          for (const [[kind, where, value], nearExtensions] of edits) {
            const span = nearExtensions ? 160 : bytes.length + 1;
            const offset = nearExtensions ? Math.max(0, bytes.length - 110 - 160) : 0;
            const position = Math.min(offset + (where % span), bytes.length);
            if (kind === 'flip' && position < bytes.length) bytes[position]! ^= value;
            else if (kind === 'set' && position < bytes.length) bytes[position] = value;
            else if (kind === 'cut') bytes = bytes.subarray(0, position);
            else if (kind === 'insert')
              bytes = Buffer.concat([
                bytes.subarray(0, position),
                Buffer.of(value),
                bytes.subarray(position),
              ]);
            else
              bytes = Buffer.concat([
                bytes.subarray(0, position),
                bytes.subarray(position + 1 + (value % 4)),
              ]);
          }
          const certificates = [...ders];
          certificates[which] = new Uint8Array(bytes);
          const payload = new Map(parts.payloadMap);
          payload.set('cabundle', certificates.slice(0, 4));
          payload.set('certificate', certificates[4]!);
          const document = encodeCbor([
            parts.protectedHeader,
            new Map(),
            encodeCbor(payload),
            parts.signature,
          ]);
          const p = policyFor(fixture);
          const result = verifyEverywhere(document, [parts.cabundle[0]!], fixture.at, p);
          const unchanged = Buffer.compare(bytes, Buffer.from(ders[which]!)) === 0;
          if (!unchanged) {
            expect(result.ok).toBe(false);
            expect([
              'malformed',
              'untrusted_root',
              'chain_invalid',
              'bad_signature',
              'expired',
              'not_yet_valid',
            ]).toContain(result.ok ? 'ok' : result.code);
          }
        },
      ),
      { numRuns: 150 },
    );
  });
});

function policyFor(fixture: NitroFixture): Policy {
  return buildPolicy({ measurements: [measurementSetOf(fixture)], allowDebug: fixture.facts.debug_mode });
}
