/**
 * Each input guard of verifyAttestation refuses for its own reason, at its exact bound: the size of a
 * document as bytes, as base64 text and once decoded, the base64 shape, the trusted roots' form, and the
 * messages that say which measurement set came closest, whether a nonce was missing or wrong, and how far
 * in the future a document is stamped. Several of these inputs would be refused anyway by a later check
 * (a 64 KiB document is no COSE_Sign1 either), so the tests assert which check answered: the message.
 */
import { describe, expect, it } from 'vitest';
import {
  LOCAL_DEFAULT_IMAGE,
  NitroSimulator,
} from '../../infra/local/services/nitro-enclaves/nitro-simulator.ts';
import {
  type AttestationResult,
  AWS_NITRO_ROOT_PEM,
  buildPolicy,
  isDebugMode,
  verifyAttestation,
} from '../../shared/attestation/index.ts';
import { fixtures, measurementSetOf, prodFixture } from './nitro-fixtures.ts';

const MAX_DOCUMENT_BYTES = 65_536;
/** ⌊⌈65536 / 3⌉ · 4 · 1.1 + 64⌋ = 96186: base64 with line breaks and padding, the longest text accepted. */
const MAX_BASE64_CHARS = 96_186;
const TOO_LARGE = `The document is larger than ${MAX_DOCUMENT_BYTES} bytes; real documents are about 5 KB.`;

const policy = buildPolicy({ measurements: [measurementSetOf(prodFixture)] });
const at = prodFixture.at;
const verify = (document: unknown, options: Record<string, unknown> = { at }): AttestationResult =>
  verifyAttestation(document as string, policy, options);
const refusal = (result: AttestationResult) => (result.ok ? 'verified' : `${result.code}: ${result.message}`);

describe('the size guards', () => {
  it('refuses bytes over 64 KiB as too large, and reads 64 KiB as a document', () => {
    expect(refusal(verify(new Uint8Array(MAX_DOCUMENT_BYTES + 1)))).toBe(`malformed: ${TOO_LARGE}`);
    const atLimit = refusal(verify(new Uint8Array(MAX_DOCUMENT_BYTES)));
    expect(atLimit).toMatch(/^malformed: /);
    expect(atLimit).not.toContain('larger than');
  });

  it(`takes base64 text of ${MAX_BASE64_CHARS} characters (line breaks included) and refuses one more`, () => {
    const text = prodFixture.base64.replace(/\s+/g, '');
    const padded = (length: number) => text + '\n'.repeat(length - text.length);
    expect(refusal(verify(padded(MAX_BASE64_CHARS)))).toBe('verified');
    expect(refusal(verify(padded(MAX_BASE64_CHARS + 1)))).toBe(`malformed: ${TOO_LARGE}`);
  });

  it('refuses base64 that decodes to more than 64 KiB, and reads exactly 64 KiB', () => {
    const over = Buffer.alloc(MAX_DOCUMENT_BYTES + 1).toString('base64');
    expect(over.length).toBeLessThan(MAX_BASE64_CHARS);
    expect(refusal(verify(over))).toBe(`malformed: ${TOO_LARGE}`);
    const atLimit = refusal(verify(Buffer.alloc(MAX_DOCUMENT_BYTES).toString('base64')));
    expect(atLimit).toMatch(/^malformed: /);
    expect(atLimit).not.toContain('larger than');
  });
});

describe('the shape of a document', () => {
  const text = prodFixture.base64.replace(/\s+/g, '');

  it('verifies base64 with or without line breaks, padded or not, and base64url', () => {
    expect(refusal(verify(text))).toBe('verified');
    expect(refusal(verify(text.replace(/(.{64})/g, '$1\r\n')))).toBe('verified');
    expect(refusal(verify(text.replace(/=+$/, '')))).toBe('verified');
    expect(refusal(verify(text.replace(/\+/g, '-').replace(/\//g, '_')))).toBe('verified');
  });

  it('refuses text that is not base64, which Node would decode by skipping what it cannot read', () => {
    const NOT_BASE64 = 'malformed: The document string is not base64.';
    // Junk after the document, inside it, a mixed alphabet, and a length no base64 has (4n + 1).
    for (const bad of [
      `${text}!`,
      `${text.slice(0, 100)}*${text.slice(100)}`,
      `${text.slice(0, 100)}-${text.slice(100).replace(/-/g, '+')}+`,
      text.replace(/=+$/, '').slice(0, Math.floor(text.replace(/=+$/, '').length / 4) * 4 + 1),
    ]) {
      expect(refusal(verify(bad))).toBe(NOT_BASE64);
    }
  });

  it('refuses what is neither bytes nor text, saying so', () => {
    for (const bad of [42, null, undefined, {}, [1, 2]]) {
      expect(refusal(verify(bad))).toBe('malformed: The document is neither bytes nor a base64 string.');
    }
  });
});

describe('the trusted roots', () => {
  const invalid = (i: number) =>
    `invalid_policy: options.trustedRoots[${i}] is neither DER bytes nor one PEM certificate.`;

  it('takes a PEM root with surrounding whitespace, and refuses junk around it or a second certificate', () => {
    const pem = AWS_NITRO_ROOT_PEM.trim();
    expect(refusal(verify(prodFixture.bytes, { at, trustedRoots: [`\n  ${pem}\n`] }))).toBe('verified');
    expect(refusal(verify(prodFixture.bytes, { at, trustedRoots: [`junk${pem}`] }))).toBe(invalid(0));
    expect(refusal(verify(prodFixture.bytes, { at, trustedRoots: [`${pem}junk`] }))).toBe(invalid(0));
    expect(refusal(verify(prodFixture.bytes, { at, trustedRoots: [`${pem}\n${pem}`] }))).toBe(invalid(0));
    expect(refusal(verify(prodFixture.bytes, { at, trustedRoots: [pem, 42] }))).toBe(invalid(1));
  });

  it('refuses roots that are not an array', () => {
    for (const roots of [AWS_NITRO_ROOT_PEM, {}, 1]) {
      expect(refusal(verify(prodFixture.bytes, { at, trustedRoots: roots }))).toBe(
        'invalid_policy: options.trustedRoots is not an array.',
      );
    }
  });
});

describe('what a refusal says', () => {
  const pcrs = measurementSetOf(prodFixture);
  const wrong = 'cd'.repeat(48);

  it('names the set that came closest: the first of the closest, by how many registers differ', () => {
    const twoOff = { ...pcrs, 3: wrong, 4: wrong };
    const oneOff = { ...pcrs, 4: wrong };
    const closest = (sets: Record<number, string>[]) => {
      const result = verifyAttestation(prodFixture.bytes, buildPolicy({ measurements: sets }), { at });
      return result.ok ? 'verified' : result.message;
    };
    expect(closest([oneOff, twoOff])).toBe(
      'The measurements match no acceptable set; the closest, set 0, differs in PCR4.',
    );
    expect(closest([twoOff, oneOff])).toBe(
      'The measurements match no acceptable set; the closest, set 1, differs in PCR4.',
    );
    expect(closest([twoOff, { ...pcrs, 3: wrong }, oneOff])).toBe(
      'The measurements match no acceptable set; the closest, set 1, differs in PCR3.',
    );
  });

  it('says whether the nonce was missing or another', () => {
    const withNonce = fixtures.find((f) => f.facts.nonce_hex !== null && !f.facts.debug_mode)!;
    const withoutNonce = fixtures.find((f) => f.facts.nonce_hex === null)!;
    const expecting = (fixture: typeof withNonce) =>
      verifyAttestation(
        fixture.bytes,
        buildPolicy({
          measurements: [measurementSetOf(fixture)],
          allowDebug: fixture.facts.debug_mode,
          expectedNonce: new Uint8Array(8).fill(9),
        }),
        { at: fixture.at },
      );
    expect(refusal(expecting(withNonce))).toBe('nonce_mismatch: The document nonce is not the expected one.');
    expect(refusal(expecting(withoutNonce))).toBe(
      'nonce_mismatch: The document carries no nonce, and the policy expects one.',
    );
  });

  it('says how far after the verification instant a document is stamped', async () => {
    const simulator = await NitroSimulator.create();
    const now = Date.now();
    const request = { instanceId: 'i-0123456789abcdef0', image: LOCAL_DEFAULT_IMAGE };
    // The enclave's leaf is issued with its first document; a later one, stamped 10 minutes on, reuses it.
    await simulator.attest({ ...request, timestamp: now });
    const document = await simulator.attest({ ...request, timestamp: now + 600_000 });
    const check = (atMs: number) =>
      refusal(
        verifyAttestation(document, buildPolicy({ measurements: [simulator.expectedPcrs(request)] }), {
          at: new Date(atMs),
          trustedRoots: [simulator.rootPem],
        }),
      );
    expect(check(now + 60_000)).toBe(
      'from_the_future: The document is stamped 540000 ms after the verification instant (more than the 300000 ms of clock skew allowed).',
    );
    // Within the 5 minutes of skew allowed: verified.
    expect(check(now + 300_000)).toBe('verified');
  });
});

describe('debug mode', () => {
  const zero = new Uint8Array(48);
  const partly = new Uint8Array(48).fill(0);
  partly[47] = 1;

  it('is PCR0, PCR1 and PCR2 all zero, a missing one counting as zero; a register only partly zero is not', () => {
    expect(
      isDebugMode(
        new Map([
          [0, zero],
          [1, zero],
          [2, zero],
        ]),
      ),
    ).toBe(true);
    expect(
      isDebugMode(
        new Map([
          [0, zero],
          [1, zero],
        ]),
      ),
    ).toBe(true);
    expect(
      isDebugMode(
        new Map([
          [0, partly],
          [1, zero],
          [2, zero],
        ]),
      ),
    ).toBe(false);
    expect(
      isDebugMode(
        new Map([
          [0, zero],
          [1, zero],
          [2, partly],
        ]),
      ),
    ).toBe(false);
  });
});
