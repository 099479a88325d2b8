/**
 * The Nitro simulator, checked on its own (no dependency on the verifier): its documents have the byte
 * layout of the real AWS documents in test/fixtures/nitro, their signatures and chains check with
 * node:crypto, PCR3/PCR4 follow AWS's derivation, and every defect breaks exactly what it claims to.
 */
import { createHash, verify, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { CborMap, type CborValue, encodeCbor } from '../../infra/local/services/nitro-enclaves/nitro-cbor.ts';
import {
  type DEFECTS,
  imageMeasurements,
  NitroSimulator,
  pcr3ForRole,
  pcr4ForInstance,
} from '../../infra/local/services/nitro-enclaves/nitro-simulator.ts';

const REPO = join(import.meta.dirname, '..', '..');
const FIXTURES = resolve(REPO, process.env.NITRO_FIXTURES_DIR ?? 'test/fixtures/nitro');
const INSTANCE = 'i-020b6af9246d90e92';
const IMAGE = { eif: 'contract-runner:1.0.0' };
const ROLE = 'arn:aws:iam::123456789012:role/enclave-parent';

/** A decoded CBOR item that keeps what the layout comparison needs: the head byte and map order. */
type Item =
  | { readonly kind: 'uint'; readonly head: number; readonly value: bigint }
  | { readonly kind: 'nint'; readonly head: number; readonly value: bigint }
  | { readonly kind: 'bytes'; readonly head: number; readonly value: Uint8Array }
  | { readonly kind: 'text'; readonly head: number; readonly value: string }
  | { readonly kind: 'array'; readonly head: number; readonly value: Item[] }
  | { readonly kind: 'map'; readonly head: number; readonly value: [Item, Item][] }
  | { readonly kind: 'simple'; readonly head: number; readonly value: number };

/** A strict, test-only decoder: definite lengths only, no tags, no floats; rejects trailing bytes. */
function decode(bytes: Uint8Array): Item {
  let offset = 0;
  const take = (count: number): Uint8Array => {
    if (offset + count > bytes.length) throw new Error('truncated');
    const out = bytes.subarray(offset, offset + count);
    offset += count;
    return out;
  };
  const item = (): Item => {
    const head = take(1)[0]!;
    const major = head >> 5;
    const info = head & 31;
    let argument: bigint;
    if (info < 24) argument = BigInt(info);
    else if (info <= 27)
      argument = take(1 << (info - 24)).reduce((acc, byte) => (acc << 8n) | BigInt(byte), 0n);
    else throw new Error(`unsupported additional info ${info}`);
    switch (major) {
      case 0:
        return { kind: 'uint', head, value: argument };
      case 1:
        return { kind: 'nint', head, value: -1n - argument };
      case 2:
        return { kind: 'bytes', head, value: take(Number(argument)) };
      case 3:
        return {
          kind: 'text',
          head,
          value: new TextDecoder('utf-8', { fatal: true }).decode(take(Number(argument))),
        };
      case 4:
        return { kind: 'array', head, value: Array.from({ length: Number(argument) }, item) };
      case 5:
        return { kind: 'map', head, value: Array.from({ length: Number(argument) }, () => [item(), item()]) };
      case 7:
        return { kind: 'simple', head, value: info };
      default:
        throw new Error(`unexpected major type ${major}`);
    }
  };
  const result = item();
  if (offset !== bytes.length) throw new Error('trailing bytes');
  return result;
}

/** The document's structure without its values: kinds, head bytes (so integer/length widths) and keys. */
function layout(item: Item): unknown {
  switch (item.kind) {
    case 'array':
      return { array: item.value.map(layout) };
    case 'map':
      return {
        map: item.value.map(([key, value]) => [
          key.kind === 'text' ? key.value : `#${key.head}`,
          layout(value),
        ]),
      };
    case 'bytes':
      // Lengths vary (certificates, nonce); the width class of the length does not for the fields compared.
      return 'bytes';
    default:
      return `${item.kind}:${item.head.toString(16)}`;
  }
}

interface Parsed {
  readonly protectedHeader: Uint8Array;
  readonly unprotected: Item;
  readonly payloadBytes: Uint8Array;
  readonly signature: Uint8Array;
  readonly payload: Map<string, Item>;
  readonly payloadItem: Item;
}

function parse(document: Uint8Array): Parsed {
  const cose = decode(document);
  if (cose.kind !== 'array' || cose.value.length !== 4) throw new Error('not a COSE_Sign1 array');
  const [protectedHeader, unprotected, payload, signature] = cose.value as [Item, Item, Item, Item];
  if (protectedHeader.kind !== 'bytes' || payload.kind !== 'bytes' || signature.kind !== 'bytes') {
    throw new Error('COSE_Sign1 members of the wrong type');
  }
  const payloadItem = decode(payload.value);
  if (payloadItem.kind !== 'map') throw new Error('payload is not a map');
  const fields = new Map<string, Item>();
  for (const [key, value] of payloadItem.value) {
    if (key.kind !== 'text') throw new Error('payload key is not text');
    fields.set(key.value, value);
  }
  return {
    protectedHeader: protectedHeader.value,
    unprotected,
    payloadBytes: payload.value,
    signature: signature.value,
    payload: fields,
    payloadItem,
  };
}

function bytesField(parsed: Parsed, key: string): Uint8Array {
  const item = parsed.payload.get(key);
  if (item?.kind !== 'bytes') throw new Error(`${key} is not a byte string`);
  return item.value;
}

function chainOf(parsed: Parsed): { leaf: X509Certificate; cabundle: X509Certificate[] } {
  const bundle = parsed.payload.get('cabundle');
  if (bundle?.kind !== 'array') throw new Error('cabundle is not an array');
  return {
    leaf: new X509Certificate(bytesField(parsed, 'certificate')),
    cabundle: bundle.value.map((item) => {
      if (item.kind !== 'bytes') throw new Error('cabundle entry is not bytes');
      return new X509Certificate(item.value);
    }),
  };
}

function coseSignatureValid(parsed: Parsed): boolean {
  const toBeSigned = encodeCbor([
    'Signature1',
    parsed.protectedHeader,
    new Uint8Array(0),
    parsed.payloadBytes,
  ]);
  const { leaf } = chainOf(parsed);
  return verify('sha384', toBeSigned, { key: leaf.publicKey, dsaEncoding: 'ieee-p1363' }, parsed.signature);
}

/** Every link root → … → leaf signed by its predecessor, with the issuer name matching. */
function chainLinksValid(parsed: Parsed): boolean {
  const { leaf, cabundle } = chainOf(parsed);
  const path = [...cabundle, leaf];
  return path.every((cert, index) => {
    const issuer = path[Math.max(0, index - 1)]!;
    return cert.checkIssued(issuer) && cert.verify(issuer.publicKey);
  });
}

function pcrsOf(parsed: Parsed): Map<number, string> {
  const pcrs = parsed.payload.get('pcrs');
  if (pcrs?.kind !== 'map') throw new Error('pcrs is not a map');
  return new Map(
    pcrs.value.map(([key, value]) => {
      if (key.kind !== 'uint' || value.kind !== 'bytes') throw new Error('pcr entry of the wrong type');
      return [Number(key.value), Buffer.from(value.value).toString('hex')];
    }),
  );
}

describe('CBOR encoder', () => {
  it('uses the shortest heads and definite lengths', () => {
    const hex = (value: Parameters<typeof encodeCbor>[0]) => Buffer.from(encodeCbor(value)).toString('hex');
    expect(hex(0)).toBe('00');
    expect(hex(23)).toBe('17');
    expect(hex(24)).toBe('1818');
    expect(hex(256)).toBe('190100');
    expect(hex(65_536)).toBe('1a00010000');
    expect(hex(1_665_651_482_136)).toBe(`1b${(1_665_651_482_136).toString(16).padStart(16, '0')}`);
    expect(hex(2n ** 64n - 1n)).toBe(`1b${'ff'.repeat(8)}`);
    expect(hex(-35)).toBe('3822');
    expect(hex(null)).toBe('f6');
    expect(hex(new CborMap([[1, -35]]))).toBe('a1013822');
    expect(hex(new Uint8Array(24))).toBe(`5818${'00'.repeat(24)}`);
    expect(hex('SHA384')).toBe('66534841333834');
    expect(hex([new Uint8Array(0), new CborMap([])])).toBe('8240a0');
  });
});

/** Rebuilds an encoder value from a decoded item (to re-encode real documents). */
function toValue(item: Item): CborValue {
  switch (item.kind) {
    case 'array':
      return item.value.map(toValue);
    case 'map':
      return new CborMap(item.value.map(([key, value]) => [toValue(key), toValue(value)] as const));
    case 'simple':
      return item.value === 22 ? null : item.value === 21;
    default:
      return item.value;
  }
}

describe('CBOR encoder on real documents', () => {
  it('re-encodes every real AWS document byte for byte', () => {
    const index = JSON.parse(readFileSync(join(FIXTURES, 'index.json'), 'utf8')) as Record<string, unknown>;
    expect(Object.keys(index).length).toBeGreaterThan(0);
    for (const name of Object.keys(index)) {
      const real = new Uint8Array(Buffer.from(readFileSync(join(FIXTURES, name), 'utf8').trim(), 'base64'));
      const cose = decode(real);
      expect(Buffer.from(encodeCbor(toValue(cose))).equals(Buffer.from(real))).toBe(true);
      const payload = parse(real).payloadBytes;
      expect(Buffer.from(encodeCbor(toValue(decode(payload)))).equals(Buffer.from(payload))).toBe(true);
    }
  });
});

describe('NitroSimulator documents', () => {
  let simulator: NitroSimulator;
  let real: Uint8Array;

  beforeAll(async () => {
    simulator = await NitroSimulator.create();
    real = new Uint8Array(
      Buffer.from(readFileSync(join(FIXTURES, 'prod-2022-10-13.b64'), 'utf8').trim(), 'base64'),
    );
  });

  it('have the byte layout of a real AWS document (same keys, order, types and head widths)', async () => {
    // The real document has a nonce and null public_key/user_data: ask for the same.
    const document = await simulator.attest({
      instanceId: INSTANCE,
      image: IMAGE,
      nonce: new Uint8Array(256),
    });
    const ours = parse(document);
    const theirs = parse(real);
    expect(layout(decode(document))).toEqual(layout(decode(real)));
    expect(layout(ours.payloadItem)).toEqual(layout(theirs.payloadItem));
    expect(Buffer.from(ours.protectedHeader).toString('hex')).toBe('a1013822');
    expect(ours.unprotected).toEqual({ kind: 'map', head: 0xa0, value: [] });
    expect(ours.signature).toHaveLength(96);
    expect([...ours.payload.keys()]).toEqual([
      'module_id',
      'digest',
      'timestamp',
      'pcrs',
      'certificate',
      'cabundle',
      'public_key',
      'user_data',
      'nonce',
    ]);
    expect(chainOf(ours).cabundle).toHaveLength(4);
  });

  it('are signed by the leaf over the COSE Sig_structure, and the chain links are sound', async () => {
    const parsed = parse(await simulator.attest({ instanceId: INSTANCE, image: IMAGE }));
    expect(coseSignatureValid(parsed)).toBe(true);
    expect(chainLinksValid(parsed)).toBe(true);
    const { leaf, cabundle } = chainOf(parsed);
    expect(Buffer.from(cabundle[0]!.raw).equals(Buffer.from(simulator.rootDer))).toBe(true);
    expect(cabundle[0]!.checkIssued(cabundle[0]!)).toBe(true);
    expect(cabundle.every((cert) => cert.ca)).toBe(true);
    expect(leaf.ca).toBe(false);
    expect(leaf.publicKey.asymmetricKeyDetails?.namedCurve).toBe('secp384r1');
    // The leaf lives about 3 hours, like AWS's, and covers the document's timestamp.
    const timestamp = Number((parsed.payload.get('timestamp') as { value: bigint }).value);
    const from = Date.parse(leaf.validFrom);
    const to = Date.parse(leaf.validTo);
    expect(to - from).toBeGreaterThanOrEqual(3 * 3_600_000);
    expect(to - from).toBeLessThan(3 * 3_600_000 + 60_000);
    expect(from).toBeLessThanOrEqual(timestamp);
    expect(timestamp).toBeLessThanOrEqual(to);
    expect(simulator.rootPem).toContain('-----BEGIN CERTIFICATE-----');
    expect(new X509Certificate(simulator.rootPem).raw.equals(Buffer.from(simulator.rootDer))).toBe(true);
  });

  it('carry PCRs derived as AWS does: 16 × 48 bytes, PCR3 from the role, PCR4 from the instance', async () => {
    const parsed = parse(await simulator.attest({ instanceId: INSTANCE, image: IMAGE, iamRoleArn: ROLE }));
    const pcrs = pcrsOf(parsed);
    expect([...pcrs.keys()]).toEqual([...Array(16).keys()]);
    for (const value of pcrs.values()) expect(value).toHaveLength(96);
    const zero48 = Buffer.alloc(48);
    const expected4 = createHash('sha384').update(zero48).update(INSTANCE).digest('hex');
    expect(pcrs.get(4)).toBe(expected4);
    // The real document's PCR4 follows the same rule, from its own instance id.
    expect(pcrsOf(parse(real)).get(4)).toBe(expected4);
    expect(Buffer.from(pcr4ForInstance(INSTANCE)).toString('hex')).toBe(expected4);
    expect(pcrs.get(3)).toBe(createHash('sha384').update(zero48).update(ROLE).digest('hex'));
    expect(pcrs.get(3)).toBe(Buffer.from(pcr3ForRole(ROLE)).toString('hex'));
    const image = imageMeasurements(IMAGE);
    expect([pcrs.get(0), pcrs.get(1), pcrs.get(2)]).toEqual([image.pcr0, image.pcr1, image.pcr2]);
    expect(imageMeasurements(IMAGE)).toEqual(image);
    expect(imageMeasurements({ eif: 'contract-runner:1.0.1' }).pcr0).not.toBe(image.pcr0);
    expect(simulator.expectedPcrs({ instanceId: INSTANCE, image: IMAGE, iamRoleArn: ROLE })).toEqual(
      Object.fromEntries(pcrs),
    );
  });

  it('give module_id as <instance>-enc<16 hex>, stable per enclave, and the NSM leaf serial', async () => {
    const first = parse(await simulator.attest({ instanceId: INSTANCE, image: IMAGE }));
    const second = parse(await simulator.attest({ instanceId: INSTANCE, image: IMAGE }));
    const moduleId = (first.payload.get('module_id') as { value: string }).value;
    expect(moduleId).toMatch(/^i-020b6af9246d90e92-enc[0-9a-f]{16}$/);
    expect((second.payload.get('module_id') as { value: string }).value).toBe(moduleId);
    // per-enclave leaves (the NSM's behaviour): the whole chain is shared by successive documents.
    expect(bytesField(second, 'certificate')).toEqual(bytesField(first, 'certificate'));
    const { leaf } = chainOf(first);
    expect(leaf.subject).toContain(`CN=${moduleId}.us-east-1.aws`);
    expect(leaf.serialNumber.toLowerCase().startsWith(moduleId.slice(-16))).toBe(true);
    const fresh = parse(await simulator.attest({ instanceId: INSTANCE, image: IMAGE, leaf: 'per-document' }));
    expect(bytesField(fresh, 'certificate')).not.toEqual(bytesField(first, 'certificate'));
    expect(coseSignatureValid(fresh)).toBe(true);
  });

  it('carry nonce, user_data and public_key verbatim, as null or omitted when absent', async () => {
    const nonce = new Uint8Array(Buffer.from('cb3dc2eb76c0c1344adf10cc4868591e', 'hex'));
    const userData = new TextEncoder().encode('hello, world!');
    const publicKey = new Uint8Array(1024).fill(7);
    const parsed = parse(
      await simulator.attest({ instanceId: INSTANCE, image: IMAGE, nonce, userData, publicKey }),
    );
    expect(bytesField(parsed, 'nonce')).toEqual(nonce);
    expect(bytesField(parsed, 'user_data')).toEqual(userData);
    expect(bytesField(parsed, 'public_key')).toEqual(publicKey);
    const nulls = parse(await simulator.attest({ instanceId: INSTANCE, image: IMAGE }));
    for (const key of ['nonce', 'user_data', 'public_key']) {
      expect(nulls.payload.get(key)).toEqual({ kind: 'simple', head: 0xf6, value: 22 });
    }
    const omitted = parse(
      await simulator.attest({ instanceId: INSTANCE, image: IMAGE, absentFields: 'omit', nonce }),
    );
    expect([...omitted.payload.keys()]).toEqual([
      'module_id',
      'digest',
      'timestamp',
      'pcrs',
      'certificate',
      'cabundle',
      'nonce',
    ]);
    expect(coseSignatureValid(omitted)).toBe(true);
    await expect(
      simulator.attest({ instanceId: INSTANCE, image: IMAGE, userData: new Uint8Array(1025) }),
    ).rejects.toThrow(RangeError);
  });

  it('follow a fixed clock or an explicit timestamp', async () => {
    const at = new Date('2024-05-01T12:00:00.123Z');
    const fixed = await NitroSimulator.create({ now: at, intermediates: 1 });
    const parsed = parse(await fixed.attest({ instanceId: INSTANCE, image: IMAGE }));
    expect((parsed.payload.get('timestamp') as { value: bigint }).value).toBe(BigInt(at.getTime()));
    expect(chainOf(parsed).cabundle).toHaveLength(2);
    expect(chainLinksValid(parsed)).toBe(true);
    const later = Date.parse('2024-06-15T08:00:00Z');
    const moved = parse(await fixed.attest({ instanceId: INSTANCE, image: IMAGE, timestamp: later }));
    expect((moved.payload.get('timestamp') as { value: bigint }).value).toBe(BigInt(later));
    expect(chainLinksValid(moved)).toBe(true);
    const { leaf, cabundle } = chainOf(moved);
    for (const cert of [leaf, ...cabundle]) {
      expect(Date.parse(cert.validFrom)).toBeLessThanOrEqual(later);
      expect(Date.parse(cert.validTo)).toBeGreaterThanOrEqual(later);
    }
  });

  it('stay consistent when a fresh simulator is asked for many documents at once', async () => {
    const fresh = await NitroSimulator.create();
    const documents = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        fresh.attest({ instanceId: i % 2 === 0 ? INSTANCE : 'i-0fffffffffffffff0', image: IMAGE }),
      ),
    );
    for (const document of documents) {
      const parsed = parse(document);
      expect(chainLinksValid(parsed)).toBe(true);
      expect(coseSignatureValid(parsed)).toBe(true);
      expect(chainOf(parsed).cabundle[0]!.raw.equals(Buffer.from(fresh.rootDer))).toBe(true);
    }
  });

  describe('defects', () => {
    const attest = (defect: (typeof DEFECTS)[number]) =>
      simulator.attest({ instanceId: INSTANCE, image: IMAGE, defects: [defect] });

    it('wrong_signature: the chain is sound, the COSE signature is not', async () => {
      const parsed = parse(await attest('wrong_signature'));
      expect(chainLinksValid(parsed)).toBe(true);
      expect(parsed.signature).toHaveLength(96);
      expect(coseSignatureValid(parsed)).toBe(false);
    });

    it('expired_leaf / not_yet_valid_leaf: the leaf window excludes the timestamp', async () => {
      for (const [defect, expired] of [
        ['expired_leaf', true],
        ['not_yet_valid_leaf', false],
      ] as const) {
        const parsed = parse(await attest(defect));
        expect(coseSignatureValid(parsed)).toBe(true);
        expect(chainLinksValid(parsed)).toBe(true);
        const timestamp = Number((parsed.payload.get('timestamp') as { value: bigint }).value);
        const { leaf } = chainOf(parsed);
        if (expired) expect(Date.parse(leaf.validTo)).toBeLessThan(timestamp);
        else expect(Date.parse(leaf.validFrom)).toBeGreaterThan(timestamp);
      }
    });

    it('foreign_root: a sound chain under a root with the same name and other bytes', async () => {
      const parsed = parse(await attest('foreign_root'));
      expect(coseSignatureValid(parsed)).toBe(true);
      expect(chainLinksValid(parsed)).toBe(true);
      const root = chainOf(parsed).cabundle[0]!;
      expect(root.subject).toBe(new X509Certificate(simulator.rootDer).subject);
      expect(root.raw.equals(Buffer.from(simulator.rootDer))).toBe(false);
    });

    it('debug_mode: PCR0/1/2/8 zero, PCR3/PCR4 still measured', async () => {
      const pcrs = pcrsOf(parse(await attest('debug_mode')));
      for (const index of [0, 1, 2, 8]) expect(pcrs.get(index)).toBe('00'.repeat(48));
      expect(pcrs.get(4)).toBe(Buffer.from(pcr4ForInstance(INSTANCE)).toString('hex'));
      const debug = pcrsOf(
        parse(await simulator.attest({ instanceId: INSTANCE, image: IMAGE, debug: true })),
      );
      expect(debug).toEqual(pcrs);
    });

    it('wrong_pcrs: PCR0/1/2 move, the rest stays', async () => {
      const pcrs = pcrsOf(parse(await attest('wrong_pcrs')));
      const image = imageMeasurements(IMAGE);
      expect(pcrs.get(0)).not.toBe(image.pcr0);
      expect(pcrs.get(1)).not.toBe(image.pcr1);
      expect(pcrs.get(2)).not.toBe(image.pcr2);
      expect(pcrs.get(4)).toBe(Buffer.from(pcr4ForInstance(INSTANCE)).toString('hex'));
    });

    it('broken_chain: the instance CA names its parent but is not signed by it', async () => {
      const parsed = parse(await attest('broken_chain'));
      expect(coseSignatureValid(parsed)).toBe(true);
      const { leaf, cabundle } = chainOf(parsed);
      const [, , zonal, instance] = cabundle;
      expect(instance!.checkIssued(zonal!)).toBe(true);
      expect(instance!.verify(zonal!.publicKey)).toBe(false);
      expect(leaf.verify(instance!.publicKey)).toBe(true);
    });

    it('non_ca_intermediate: the instance CA is correctly signed but is no CA', async () => {
      const parsed = parse(await attest('non_ca_intermediate'));
      const { leaf, cabundle } = chainOf(parsed);
      const [, , zonal, instance] = cabundle;
      expect(instance!.verify(zonal!.publicKey)).toBe(true);
      expect(instance!.ca).toBe(false);
      expect(leaf.verify(instance!.publicKey)).toBe(true);
    });

    it('wrong_algorithm and trailing_bytes break the COSE envelope', async () => {
      const wrongAlgorithm = parse(await attest('wrong_algorithm'));
      expect(Buffer.from(wrongAlgorithm.protectedHeader).toString('hex')).toBe('a10126');
      const trailing = await attest('trailing_bytes');
      expect(() => decode(trailing)).toThrow('trailing bytes');
      expect(() => decode(trailing.subarray(0, -1))).not.toThrow();
    });

    it('refuses unknown defects and malformed identities', async () => {
      await expect(
        simulator.attest({ instanceId: INSTANCE, defects: ['nonsense' as (typeof DEFECTS)[number]] }),
      ).rejects.toThrow(RangeError);
      await expect(simulator.attest({ instanceId: 'i-xyz' })).rejects.toThrow(RangeError);
      await expect(simulator.attest({ instanceId: INSTANCE, enclaveId: 'short' })).rejects.toThrow(
        RangeError,
      );
    });
  });
});
