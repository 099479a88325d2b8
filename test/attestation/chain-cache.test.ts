/**
 * The fast path: the chain cache is bounded, keyed by exact bytes, never used past a certificate's
 * validity, and — the differential property — gives bit-for-bit the same verdict as the uncached path.
 */
import { X509Certificate } from 'node:crypto';
import fc from 'fast-check';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { decodeCbor } from '../../shared/attestation/cbor.ts';
import { parseCertificate } from '../../shared/attestation/chain-cache.ts';
import {
  AttestationPolicyError,
  type AttestationResult,
  buildPolicy,
  ChainCache,
  type Policy,
  verifyAttestation,
} from '../../shared/attestation/index.ts';
import { type Encodable, fromCborValue } from './cbor-encoder.ts';
import { fixtures, measurementSetOf, type NitroFixture, prodFixture } from './nitro-fixtures.ts';
import { buildDocument, pcrValue, testChain } from './test-documents.ts';

/** A result as JSON: Maps as entry lists, bytes as hex, so two results compare bit for bit. */
function serialise(result: AttestationResult): string {
  return JSON.stringify(result, (_, value: unknown) => {
    if (value instanceof Map) return { map: [...value.entries()] };
    if (value instanceof Uint8Array) return { hex: Buffer.from(value).toString('hex') };
    return value;
  });
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe('ChainCache', () => {
  it('a warm document costs no certificate-link verification', () => {
    const cache = new ChainCache();
    const policy = buildPolicy({ measurements: [measurementSetOf(prodFixture)] });
    const linkVerify = vi.spyOn(X509Certificate.prototype, 'verify');
    expect(verifyAttestation(prodFixture.bytes, policy, { at: prodFixture.at, chainCache: cache }).ok).toBe(
      true,
    );
    expect(linkVerify).toHaveBeenCalledTimes(4);
    expect(cache.size).toEqual({ certificates: 5, links: 4 });
    linkVerify.mockClear();
    expect(verifyAttestation(prodFixture.bytes, policy, { at: prodFixture.at, chainCache: cache }).ok).toBe(
      true,
    );
    expect(linkVerify).not.toHaveBeenCalled();
    // useCache: false ignores the cache entirely.
    expect(
      verifyAttestation(prodFixture.bytes, policy, { at: prodFixture.at, chainCache: cache, useCache: false })
        .ok,
    ).toBe(true);
    expect(linkVerify).toHaveBeenCalledTimes(4);
  });

  it('documents sharing the root and upper intermediates reuse those links', () => {
    const cache = new ChainCache();
    const [first, second] = fixtures.filter((f) => f.name.includes('2022'));
    const verifyIn = (f: NitroFixture) =>
      verifyAttestation(f.bytes, buildPolicy({ measurements: [measurementSetOf(f)], allowDebug: true }), {
        at: f.at,
        chainCache: cache,
      });
    expect(verifyIn(first!).ok).toBe(true);
    const linkVerify = vi.spyOn(X509Certificate.prototype, 'verify');
    expect(verifyIn(second!).ok).toBe(true);
    expect(linkVerify.mock.calls.length).toBeLessThan(4);
  });

  it('is bounded: least recently used entries go first', () => {
    const cache = new ChainCache(3);
    const parsed = certificatesOf(prodFixture).map((der) => parseCertificate(der));
    // Links root→c1, c1→c2, c2→c3, c3→leaf: five certificates and four links into a 3-entry cache.
    for (let i = 1; i < parsed.length; i++) cache.rememberVerifiedLink(parsed[i]!, parsed[i - 1]!);
    expect(cache.size).toEqual({ certificates: 3, links: 3 });
    const at = prodFixture.at.getTime();
    expect(cache.hasVerifiedLink(parsed[1]!, parsed[0]!, at)).toBe(false); // the oldest link went first
    expect(cache.hasVerifiedLink(parsed[4]!, parsed[3]!, at)).toBe(true);
    expect(cache.certificate(parsed[4]!.der)).toBe(parsed[4]); // kept
    expect(cache.certificate(parsed[0]!.der)).not.toBe(parsed[0]); // evicted: parsed again
  });

  it('keeps only certificates that are part of a verified link', () => {
    const cache = new ChainCache();
    const der = certificatesOf(prodFixture)[1]!;
    const first = cache.certificate(der);
    expect(cache.size.certificates).toBe(0);
    expect(cache.certificate(der)).not.toBe(first);
    const policy = buildPolicy({ measurements: [measurementSetOf(prodFixture)] });
    // A document whose chain fails (checked today: expired) still caches its verified links.
    verifyAttestation(prodFixture.bytes, policy, { chainCache: cache });
    expect(cache.size).toEqual({ certificates: 5, links: 4 });
    // A foreign chain stops at the root check: nothing is parsed or kept.
    const other = new ChainCache();
    verifyAttestation(prodFixture.bytes, policy, { at: prodFixture.at, chainCache: other, trustedRoots: [] });
    expect(other.size).toEqual({ certificates: 0, links: 0 });
  });

  it('reuses a parsed certificate only for the exact bytes', () => {
    const cache = new ChainCache();
    const der = certificatesOf(prodFixture)[1]!;
    const [root, ...rest] = certificatesOf(prodFixture).map((d) => parseCertificate(d));
    cache.rememberVerifiedLink(rest[0]!, root!);
    const parsed = cache.certificate(der);
    expect(parsed).toBe(rest[0]);
    expect(cache.certificate(new Uint8Array(der))).toBe(parsed);
    const altered = new Uint8Array(der);
    altered[altered.length - 1]! ^= 1;
    expect(cache.certificate(altered)).not.toBe(parsed);
  });

  it('never uses a verified link past the earliest notAfter of its two certificates', () => {
    const cache = new ChainCache();
    const [root, intermediate] = certificatesOf(prodFixture).map((der) => parseCertificate(der));
    cache.rememberVerifiedLink(intermediate!, root!);
    const notAfter = Math.min(intermediate!.validToMs, root!.validToMs);
    expect(cache.hasVerifiedLink(intermediate!, root!, notAfter)).toBe(true);
    expect(cache.hasVerifiedLink(intermediate!, root!, notAfter + 1)).toBe(false);
    // Dropped, not just skipped.
    expect(cache.size.links).toBe(0);
    expect(cache.hasVerifiedLink(intermediate!, root!, notAfter)).toBe(false);
  });

  it('a leaf with an unreadable validity time → malformed, the same on every call and path', () => {
    // Regression: Node's X509Certificate.validFromDate returns a random instant for such a time.
    const policy = buildPolicy({ measurements: [measurementSetOf(prodFixture)] });
    const leaf = certificatesOf(prodFixture)[4]!;
    const notBefore =
      Buffer.from(prodFixture.bytes).indexOf(Buffer.from(leaf)) +
      Buffer.from(leaf).indexOf(Buffer.from('221013'));
    const document = new Uint8Array(prodFixture.bytes);
    document[notBefore]! ^= 171;
    const verdicts = new Set<string>();
    for (let i = 0; i < 5; i++) {
      for (const options of [{ useCache: false }, { chainCache: new ChainCache() }, {}]) {
        verdicts.add(serialise(verifyAttestation(document, policy, { at: prodFixture.at, ...options })));
      }
    }
    expect([...verdicts]).toEqual([expect.stringContaining('"code":"malformed"')]);
  });

  it('refuses a non-positive size', () => {
    expect(() => new ChainCache(0)).toThrow(RangeError);
  });
});

function certificatesOf(fixture: NitroFixture): Uint8Array[] {
  const cose = decodeCbor(fixture.bytes);
  if (cose.type !== 'array' || cose.items[2]?.type !== 'bytes') throw new Error('not a document');
  const payload = fromCborValue(decodeCbor(cose.items[2].value)) as Map<string, Encodable>;
  return [...(payload.get('cabundle') as Uint8Array[]), payload.get('certificate') as Uint8Array];
}

describe('differential: cached and uncached verification give identical results', () => {
  const at = new Date('2025-06-01T12:00:00.000Z');
  const chain = testChain(at);
  const localDocument = buildDocument({
    chain,
    timestamp: at.getTime(),
    fields: { nonce: new Uint8Array([7]) },
  });
  const subjects = [
    ...fixtures.map((f) => ({
      bytes: f.bytes,
      timestamp: f.facts.timestamp_ms,
      pcrs: measurementSetOf(f),
      nonce: f.facts.nonce_hex === null ? null : Buffer.from(f.facts.nonce_hex, 'hex'),
      from: Date.parse(f.facts.leaf_valid_from),
      to: Date.parse(f.facts.leaf_valid_to),
      roots: undefined as Uint8Array[] | undefined,
    })),
    {
      bytes: localDocument,
      timestamp: at.getTime(),
      pcrs: {
        0: Buffer.from(pcrValue('pcr0')).toString('hex'),
        4: Buffer.from(pcrValue('pcr4')).toString('hex'),
      },
      nonce: Buffer.from([7]),
      from: at.getTime() - 60_000,
      to: at.getTime() + 3 * 3_600_000,
      roots: [chain.root],
    },
  ];
  const wrong = 'cd'.repeat(48);

  const scenario = fc.record({
    subject: fc.constantFrom(...subjects),
    // Instants across and around the leaf's validity window, and far outside it.
    instant: fc.oneof(
      fc.record({
        edge: fc.constantFrom('from', 'to', 'timestamp'),
        offset: fc.integer({ min: -7_200_000, max: 7_200_000 }),
      }),
      fc.constant({ edge: 'today' as const, offset: 0 }),
      fc.record({
        edge: fc.constant('timestamp' as const),
        offset: fc.integer({ min: -400 * 86_400_000, max: 400 * 86_400_000 }),
      }),
    ),
    policyShape: fc.record({
      pcrs: fc.constantFrom('all', 'subset', 'wrong', 'second-set'),
      allowDebug: fc.boolean(),
      nonce: fc.constantFrom('none', 'right', 'wrong'),
      maxAgeMs: fc.option(fc.integer({ min: 1, max: 10_000_000 }), { nil: undefined }),
    }),
    mutation: fc.option(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })), { nil: undefined, freq: 2 }),
    tinyCache: fc.boolean(),
  });

  const sharedCache = new ChainCache();
  const tinyCache = new ChainCache(2);

  interface PolicyShape {
    readonly pcrs: 'all' | 'subset' | 'wrong' | 'second-set';
    readonly allowDebug: boolean;
    readonly nonce: 'none' | 'right' | 'wrong';
    readonly maxAgeMs: number | undefined;
  }

  function policyOf(subject: (typeof subjects)[number], shape: PolicyShape): Policy | null {
    const entries = Object.entries(subject.pcrs);
    const all = Object.fromEntries(entries);
    const sets =
      shape.pcrs === 'all'
        ? [all]
        : shape.pcrs === 'subset'
          ? [Object.fromEntries(entries.filter((_, i) => i % 2 === 1))]
          : shape.pcrs === 'wrong'
            ? [{ ...all, 4: wrong }]
            : [{ 4: wrong }, all];
    const expectedNonce =
      shape.nonce === 'none'
        ? undefined
        : shape.nonce === 'right'
          ? (subject.nonce ?? new Uint8Array(1))
          : new Uint8Array(3);
    try {
      return buildPolicy({
        measurements: sets,
        allowDebug: shape.allowDebug,
        expectedNonce,
        maxAgeMs: shape.maxAgeMs,
      });
    } catch (error) {
      // The one refusal these shapes can meet: a debug-mode document's zero PCR0-2 pinned without
      // allowDebug, refused at build time (nothing to compare). Anything else is a defect, and fails.
      if (
        !(error instanceof AttestationPolicyError) ||
        shape.allowDebug ||
        !/pins PCR[012] to zero, which only a debug-mode enclave reports/.test(error.message)
      )
        throw error;
      return null;
    }
  }

  it('over real and local documents, random instants, policies and mutations', () => {
    fc.assert(
      fc.property(scenario, ({ subject, instant, policyShape, mutation, tinyCache: useTiny }) => {
        const policy = policyOf(subject, policyShape);
        if (policy === null) return;
        const base =
          instant.edge === 'today'
            ? Date.now()
            : instant.edge === 'from'
              ? subject.from
              : instant.edge === 'to'
                ? subject.to
                : subject.timestamp;
        const at = new Date(base + instant.offset);
        let document = subject.bytes;
        if (mutation !== undefined) {
          document = new Uint8Array(document);
          document[mutation[0] % document.length]! ^= mutation[1];
        }
        const common = { at, ...(subject.roots ? { trustedRoots: subject.roots } : {}) };
        const uncached = serialise(verifyAttestation(document, policy, { ...common, useCache: false }));
        const cached = serialise(
          verifyAttestation(document, policy, { ...common, chainCache: useTiny ? tinyCache : sharedCache }),
        );
        const cachedAgain = serialise(
          verifyAttestation(document, policy, { ...common, chainCache: sharedCache }),
        );
        const defaultCache = serialise(verifyAttestation(document, policy, common));
        expect(cached).toBe(uncached);
        expect(cachedAgain).toBe(uncached);
        expect(defaultCache).toBe(uncached);
      }),
      { numRuns: 400 },
    );
  });
});
