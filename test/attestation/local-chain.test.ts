/**
 * Documents signed by a locally generated chain (trusted only because each test passes its root): the
 * encodings real firmware generations produce (absent vs null, indefinite lengths, unknown keys), every
 * field's type and bound, and chain defects that real documents cannot show.
 */
import { describe, expect, it } from 'vitest';
import { parseAttestationPayload } from '../../shared/attestation/attestation-document.ts';
import { type AttestationResult, buildPolicy, verifyAttestation } from '../../shared/attestation/index.ts';
import { type Encodable, encodeCbor, RawCbor } from './cbor-encoder.ts';
import {
  ABSENT,
  buildDocument,
  type DocumentSpec,
  defaultFields,
  type Field,
  pcrValue,
  testChain,
} from './test-documents.ts';

const at = new Date('2025-06-01T12:00:00.000Z');
const chain = testChain(at);
const policy = buildPolicy({
  measurements: [
    { 0: Buffer.from(pcrValue('pcr0')).toString('hex'), 4: Buffer.from(pcrValue('pcr4')).toString('hex') },
  ],
});

function verify(spec: Partial<DocumentSpec> = {}, verifyAt = at): AttestationResult {
  const document = buildDocument({ chain, timestamp: at.getTime(), ...spec });
  return verifyAttestation(document, policy, {
    at: verifyAt,
    trustedRoots: [spec.chain?.root ?? chain.root],
  });
}

const codeOf = (result: AttestationResult) => (result.ok ? 'ok' : result.code);
const withFields = (fields: Record<string, Field>) => verify({ fields });

describe('encodings that real firmware generations produce are all accepted', () => {
  it('optional fields absent and optional fields null mean the same: not present', () => {
    const absent = verify({ fields: { public_key: ABSENT, user_data: ABSENT, nonce: ABSENT } });
    const nulls = verify({ fields: { public_key: null, user_data: null, nonce: null } });
    expect(absent).toMatchObject({ ok: true });
    expect(nulls).toMatchObject({ ok: true });
    if (absent.ok && nulls.ok) {
      expect([absent.claims.publicKey, absent.claims.userData, absent.claims.nonce]).toEqual([
        null,
        null,
        null,
      ]);
      expect([nulls.claims.publicKey, nulls.claims.userData, nulls.claims.nonce]).toEqual([null, null, null]);
    }
  });

  it('present optional fields are returned, including empty ones', () => {
    const result = verify({
      fields: {
        public_key: new Uint8Array([1, 2]),
        user_data: new Uint8Array(0),
        nonce: new Uint8Array(1024),
      },
    });
    expect(
      result.ok && [result.claims.publicKey, result.claims.userData, result.claims.nonce?.length],
    ).toEqual([new Uint8Array([1, 2]), new Uint8Array(0), 1024]);
  });

  it.each([
    ['definite, minimal', {}],
    ['indefinite-length maps, arrays and chunked byte strings', { payloadStyle: { indefinite: true } }],
    ['non-minimal heads everywhere', { payloadStyle: { nonMinimal: true } }],
    [
      'an indefinite, non-minimal, tagged envelope',
      { envelopeStyle: { indefinite: true, nonMinimal: true }, tag18: true },
    ],
  ])('%s', (_, spec) => {
    expect(codeOf(verify(spec))).toBe('ok');
  });

  it('fields in any order', () => {
    const fields = defaultFields({ chain, timestamp: at.getTime() });
    const reversed = new Map(Object.entries(fields).reverse() as [string, Encodable][]);
    expect(codeOf(verify({ rawPayload: encodeCbor(reversed) }))).toBe('ok');
  });

  it('unknown payload keys (text or integer) are accepted and ignored', () => {
    expect(codeOf(withFields({ future_field: 'x', 99: [1, 2, 3], extra: new Map([['a', 1]]) }))).toBe('ok');
  });

  it('PCRs may be any subset of 0..31 in the document', () => {
    const pcrs = new Map<number, Uint8Array>([
      [0, pcrValue('pcr0')],
      [4, pcrValue('pcr4')],
      [31, new Uint8Array(48)],
    ]);
    expect(codeOf(withFields({ pcrs }))).toBe('ok');
  });
});

describe('field types and bounds', () => {
  it.each<[string, Record<string, Field>]>([
    ['module_id missing', { module_id: ABSENT }],
    ['module_id empty', { module_id: '' }],
    ['module_id as bytes', { module_id: new Uint8Array([0x69]) }],
    ['module_id of 256 characters', { module_id: 'i'.repeat(256) }],
    ['digest missing', { digest: ABSENT }],
    ['digest SHA256', { digest: 'SHA256' }],
    ['digest lower case', { digest: 'sha384' }],
    ['timestamp missing', { timestamp: ABSENT }],
    ['timestamp zero', { timestamp: 0 }],
    ['timestamp negative', { timestamp: -1 }],
    ['timestamp as a float', { timestamp: at.getTime() + 0.5 }],
    ['timestamp as text', { timestamp: String(at.getTime()) }],
    ['timestamp beyond 2^53 (decoded as bigint)', { timestamp: 2n ** 53n }],
    ['timestamp 2^64 - 1', { timestamp: 2n ** 64n - 1n }],
    ['pcrs missing', { pcrs: ABSENT }],
    ['pcrs empty', { pcrs: new Map() }],
    ['pcrs as an array', { pcrs: [pcrValue('pcr0')] }],
    ['a PCR index 32', { pcrs: new Map([[32, pcrValue('x')]]) }],
    ['a PCR index negative', { pcrs: new Map([[-1, pcrValue('x')]]) }],
    ['a PCR index as text', { pcrs: new Map([['0', pcrValue('x')]]) }],
    ['a 32-byte PCR under SHA384', { pcrs: new Map([[0, new Uint8Array(32)]]) }],
    ['a 64-byte PCR under SHA384', { pcrs: new Map([[0, new Uint8Array(64)]]) }],
    ['a PCR value as text', { pcrs: new Map([[0, 'ab'.repeat(48)]]) }],
    ['certificate missing', { certificate: ABSENT }],
    ['certificate empty', { certificate: new Uint8Array(0) }],
    ['certificate over 1024 bytes', { certificate: new Uint8Array(1025).fill(0x30) }],
    ['cabundle missing', { cabundle: ABSENT }],
    ['cabundle empty', { cabundle: [] }],
    ['cabundle of 17 certificates', { cabundle: new Array(17).fill(chain.root) }],
    ['cabundle with a text entry', { cabundle: [chain.root, 'x'] }],
    ['cabundle with an empty entry', { cabundle: [chain.root, new Uint8Array(0)] }],
    ['public_key as text', { public_key: 'key' }],
    ['user_data over 1024 bytes', { user_data: new Uint8Array(1025) }],
    ['nonce as undefined (not null)', { nonce: undefined }],
    ['nonce as false', { nonce: false }],
    ['a PEM leaf instead of DER', { certificate: new Uint8Array(Buffer.from(chain.rootPem)) }],
  ])('%s → malformed', (_, fields) => {
    expect(codeOf(withFields(fields))).toBe('malformed');
  });

  it('a payload that is not a map, or has duplicate keys, or trailing bytes → malformed', () => {
    const valid = encodeCbor(new Map<string, Encodable>([['module_id', 'x']]));
    for (const rawPayload of [
      encodeCbor([1, 2]),
      encodeCbor(new Map([[1, 2]])),
      Uint8Array.from([...valid, 0x00]),
      // {"digest": "SHA384", "digest": "SHA384"}: a duplicate key, which two readers could read differently.
      encodeCbor(
        new RawCbor(
          Uint8Array.from([
            0xa2,
            ...encodeCbor('digest'),
            ...encodeCbor('SHA384'),
            ...encodeCbor('digest'),
            ...encodeCbor('SHA384'),
          ]),
        ),
      ),
    ]) {
      expect(codeOf(verify({ rawPayload }))).toBe('malformed');
    }
  });

  it('parseAttestationPayload reports absent and null optional fields identically', () => {
    const fields = (extra: [string, Encodable][]) =>
      encodeCbor(
        new Map<string, Encodable>([
          ['module_id', 'm'],
          ['digest', 'SHA384'],
          ['timestamp', 1],
          ['pcrs', new Map([[0, new Uint8Array(48)]])],
          ['certificate', new Uint8Array([0x30])],
          ['cabundle', [new Uint8Array([0x30])]],
          ...extra,
        ]),
      );
    const absent = parseAttestationPayload(fields([]));
    const nulls = parseAttestationPayload(
      fields([
        ['nonce', null],
        ['user_data', null],
        ['public_key', null],
      ]),
    );
    expect(absent).toEqual(nulls);
    expect(absent.ok).toBe(true);
  });
});

describe('chain defects', () => {
  it('an intermediate that is not a CA → chain_invalid', () => {
    const notCa = testChain(at, { intermediateIsCa: false });
    expect(codeOf(verify({ chain: notCa }))).toBe('chain_invalid');
  });

  it('a leaf with a P-256 key → chain_invalid (even with a 96-byte signature)', () => {
    const p256 = testChain(at, { leafCurve: 'prime256v1' });
    const padded = (signature: Uint8Array) =>
      Uint8Array.from([...signature, ...new Uint8Array(96 - signature.length)]);
    expect(codeOf(verify({ chain: p256, signature: padded }))).toBe('chain_invalid');
  });

  it('the leaf expired or not yet valid at the verification instant → expired / not_yet_valid', () => {
    const expired = testChain(at, {
      leafNotBefore: new Date(at.getTime() - 7_200_000),
      leafNotAfter: new Date(at.getTime() - 3_600_000),
    });
    expect(codeOf(verify({ chain: expired }))).toBe('expired');
    const early = testChain(at, {
      leafNotBefore: new Date(at.getTime() + 3_600_000),
      leafNotAfter: new Date(at.getTime() + 7_200_000),
    });
    expect(codeOf(verify({ chain: early }))).toBe('not_yet_valid');
  });

  it('a leaf from another chain (signed by a stranger) → chain_invalid', () => {
    const stranger = testChain(at);
    const document = buildDocument({
      chain: { ...stranger, root: chain.root, intermediate: chain.intermediate },
      timestamp: at.getTime(),
    });
    expect(codeOf(verifyAttestation(document, policy, { at, trustedRoots: [chain.root] }))).toBe(
      'chain_invalid',
    );
  });

  it('a document signed by a key other than the leaf’s → bad_signature', () => {
    const stranger = testChain(at);
    const document = buildDocument({
      chain: { ...chain, leafKey: stranger.leafKey },
      timestamp: at.getTime(),
    });
    expect(codeOf(verifyAttestation(document, policy, { at, trustedRoots: [chain.root] }))).toBe(
      'bad_signature',
    );
  });

  it('the local root is not trusted by default (only the pinned AWS root is)', () => {
    const document = buildDocument({ chain, timestamp: at.getTime() });
    expect(codeOf(verifyAttestation(document, policy, { at }))).toBe('untrusted_root');
    expect(codeOf(verifyAttestation(document, policy, { at, trustedRoots: [] }))).toBe('untrusted_root');
    expect(codeOf(verifyAttestation(document, policy, { at, trustedRoots: [chain.rootPem] }))).toBe('ok');
  });
});
