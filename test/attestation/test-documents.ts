/**
 * Locally signed attestation documents for tests that real documents cannot cover (absent vs null fields,
 * indefinite-length payloads, non-CA intermediates, CA-constraint violations, P-256 leaves …): a minimal
 * DER X.509 writer over node:crypto, a P-384 chain root → intermediate(s) → leaf, and a COSE_Sign1 builder.
 * The chain's root is trusted only when a test passes it as `trustedRoots`.
 */
import { createHash, generateKeyPairSync, type KeyObject, sign } from 'node:crypto';
import { type Encodable, type EncodeStyle, encodeCbor, RawCbor, Tagged } from './cbor-encoder.ts';

// ---- DER ----------------------------------------------------------------------------------------------

/** One DER element (tag, minimal definite length, content). */
export function tlv(tag: number, content: Uint8Array): Uint8Array {
  const length = content.length;
  let lengthBytes: number[];
  if (length < 0x80) lengthBytes = [length];
  else if (length < 0x100) lengthBytes = [0x81, length];
  else lengthBytes = [0x82, length >> 8, length & 0xff];
  return Buffer.concat([Buffer.from([tag, ...lengthBytes]), content]);
}

export const seq = (...items: Uint8Array[]) => tlv(0x30, Buffer.concat(items));
const set = (...items: Uint8Array[]) => tlv(0x31, Buffer.concat(items));
const explicit = (n: number, content: Uint8Array) => tlv(0xa0 | n, content);
export const bool = (value: boolean) => tlv(0x01, Buffer.from([value ? 0xff : 0x00]));
export const octets = (content: Uint8Array) => tlv(0x04, content);
const utf8 = (text: string) => tlv(0x0c, Buffer.from(text, 'utf8'));
const OID_ECDSA_SHA384 = Buffer.from([0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03]);
const OID_COMMON_NAME = Buffer.from([0x06, 0x03, 0x55, 0x04, 0x03]);
export const OID_BASIC_CONSTRAINTS = Buffer.from([0x06, 0x03, 0x55, 0x1d, 0x13]);
export const OID_KEY_USAGE = Buffer.from([0x06, 0x03, 0x55, 0x1d, 0x0f]);

/** A DER INTEGER (non-negative). */
export function integer(value: number): Uint8Array {
  const bytes: number[] = [];
  let n = value;
  do {
    bytes.unshift(n & 0xff);
    n = Math.floor(n / 256);
  } while (n > 0);
  if (bytes[0]! & 0x80) bytes.unshift(0);
  return tlv(0x02, Buffer.from(bytes));
}

function utcTime(date: Date): Uint8Array {
  const iso = date.toISOString(); // 2022-10-13T08:57:59.000Z
  const text = `${iso.slice(2, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}${iso.slice(11, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}Z`;
  return tlv(0x17, Buffer.from(text, 'ascii'));
}

const name = (commonName: string) => seq(set(seq(OID_COMMON_NAME, utf8(commonName))));

let serial = 1;

/** What a test certificate says about itself. */
export interface CertificateSpec {
  readonly subject: string;
  readonly issuer: string;
  readonly publicKey: KeyObject;
  /** The key that signs it (the issuer's; the subject's own for a root). */
  readonly signingKey: KeyObject;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly ca: boolean;
  /** basicConstraints pathLenConstraint (written even when `ca` is false). */
  readonly pathLen?: number;
  /** KeyUsage bit numbers (0 digitalSignature … 5 keyCertSign … 8 decipherOnly); absent: no keyUsage. */
  readonly keyUsage?: readonly number[];
  /** Omit basicConstraints altogether (`ca` and `pathLen` are then ignored). */
  readonly noBasicConstraints?: boolean;
  /** Replace all the extensions by these DER `Extension` elements (e.g. from `extension`), written as is. */
  readonly rawExtensions?: readonly Uint8Array[];
}

/** One DER `Extension`: `SEQUENCE { extnID, critical (only when TRUE), extnValue OCTET STRING }`. */
export function extension(oid: Uint8Array, critical: boolean, value: Uint8Array): Uint8Array {
  return critical ? seq(oid, bool(true), octets(value)) : seq(oid, octets(value));
}

/** A DER named-bit BIT STRING of these bit numbers (trailing zero bits dropped, as DER requires). */
export function namedBits(bits: readonly number[]): Uint8Array {
  if (bits.length === 0) return tlv(0x03, Buffer.from([0]));
  const width = Math.max(...bits) + 1;
  const content = new Uint8Array(Math.ceil(width / 8));
  for (const bit of bits) content[bit >> 3]! |= 0x80 >> (bit & 7);
  return tlv(0x03, Buffer.from([content.length * 8 - width, ...content]));
}

/** The extensions a spec asks for: basicConstraints (critical), then keyUsage (critical) when given. */
function extensionsOf(spec: CertificateSpec): Uint8Array[] {
  if (spec.rawExtensions !== undefined) return [...spec.rawExtensions];
  const extensions: Uint8Array[] = [];
  if (!spec.noBasicConstraints) {
    const fields = [
      ...(spec.ca ? [bool(true)] : []),
      ...(spec.pathLen === undefined ? [] : [integer(spec.pathLen)]),
    ];
    extensions.push(extension(OID_BASIC_CONSTRAINTS, true, seq(...fields)));
  }
  if (spec.keyUsage !== undefined) extensions.push(extension(OID_KEY_USAGE, true, namedBits(spec.keyUsage)));
  return extensions;
}

/** A DER X.509 v3 certificate signed with ECDSA-SHA384. */
export function certificate(spec: CertificateSpec): Uint8Array {
  const algorithm = seq(OID_ECDSA_SHA384);
  const extensions = extensionsOf(spec);
  const tbs = seq(
    explicit(0, integer(2)),
    integer(serial++),
    algorithm,
    name(spec.issuer),
    seq(utcTime(spec.notBefore), utcTime(spec.notAfter)),
    name(spec.subject),
    spec.publicKey.export({ type: 'spki', format: 'der' }),
    ...(extensions.length === 0 ? [] : [explicit(3, seq(...extensions))]),
  );
  const signature = sign('sha384', tbs, spec.signingKey); // DER ECDSA-Sig-Value
  return seq(tbs, algorithm, tlv(0x03, Buffer.concat([Buffer.from([0]), signature])));
}

// ---- Chains -------------------------------------------------------------------------------------------

/** A root → intermediate(s) → leaf chain, all P-384 unless said otherwise. */
export interface TestChain {
  readonly root: Uint8Array;
  /** The intermediates above `intermediate`, root first (none unless `intermediateCount` > 1). */
  readonly upperIntermediates?: readonly Uint8Array[];
  /** The intermediate that issues the leaf. */
  readonly intermediate: Uint8Array;
  readonly leaf: Uint8Array;
  readonly leafKey: KeyObject;
  /** The private key of `intermediate`, to issue other leaves under it. */
  readonly issuerKey: KeyObject;
  /** PEM of the root, for `trustedRoots`. */
  readonly rootPem: string;
}

/** What a chain test may change in a certificate's extensions. */
export type ExtensionOverrides = Partial<
  Pick<CertificateSpec, 'ca' | 'pathLen' | 'keyUsage' | 'noBasicConstraints' | 'rawExtensions'>
>;

export interface ChainOptions {
  /** Leaf validity (default: a 3-hour window around `at`). */
  readonly leafNotBefore?: Date;
  readonly leafNotAfter?: Date;
  /** basicConstraints cA of the intermediate that issues the leaf. */
  readonly intermediateIsCa?: boolean;
  readonly leafCurve?: 'secp384r1' | 'prime256v1';
  /** How many intermediates (default 1). */
  readonly intermediateCount?: number;
  readonly rootExtensions?: ExtensionOverrides;
  /** Per intermediate, root first (the last one issues the leaf). */
  readonly intermediateExtensions?: readonly (ExtensionOverrides | undefined)[];
  readonly leafExtensions?: ExtensionOverrides;
}

const p384 = () => generateKeyPairSync('ec', { namedCurve: 'secp384r1' });

/** A fresh chain; `at` is the instant the leaf is valid around. */
export function testChain(at: Date, options: ChainOptions = {}): TestChain {
  const rootKeys = p384();
  const leafKeys = generateKeyPairSync('ec', { namedCurve: options.leafCurve ?? 'secp384r1' });
  const years = (n: number) => new Date(at.getTime() + n * 365 * 86_400_000);
  const root = certificate({
    subject: 'test-root',
    issuer: 'test-root',
    publicKey: rootKeys.publicKey,
    signingKey: rootKeys.privateKey,
    notBefore: years(-5),
    notAfter: years(20),
    ca: true,
    ...options.rootExtensions,
  });
  const count = options.intermediateCount ?? 1;
  if (!Number.isInteger(count) || count < 1) throw new RangeError('intermediateCount must be at least 1');
  const intermediates: Uint8Array[] = [];
  let issuer = { name: 'test-root', key: rootKeys.privateKey };
  for (let i = 0; i < count; i++) {
    const keys = p384();
    const subject = i === count - 1 ? 'test-intermediate' : `test-intermediate-${i}`;
    intermediates.push(
      certificate({
        subject,
        issuer: issuer.name,
        publicKey: keys.publicKey,
        signingKey: issuer.key,
        notBefore: years(-1),
        notAfter: years(1),
        ca: i === count - 1 ? (options.intermediateIsCa ?? true) : true,
        ...options.intermediateExtensions?.[i],
      }),
    );
    issuer = { name: subject, key: keys.privateKey };
  }
  const leaf = certificate({
    subject: 'test-leaf',
    issuer: issuer.name,
    publicKey: leafKeys.publicKey,
    signingKey: issuer.key,
    notBefore: options.leafNotBefore ?? new Date(at.getTime() - 60_000),
    notAfter: options.leafNotAfter ?? new Date(at.getTime() + 3 * 3_600_000),
    ca: false,
    ...options.leafExtensions,
  });
  const rootPem = `-----BEGIN CERTIFICATE-----\n${Buffer.from(root).toString('base64')}\n-----END CERTIFICATE-----\n`;
  return {
    root,
    upperIntermediates: intermediates.slice(0, -1),
    intermediate: intermediates.at(-1)!,
    leaf,
    leafKey: leafKeys.privateKey,
    issuerKey: issuer.key,
    rootPem,
  };
}

// ---- Documents ----------------------------------------------------------------------------------------

/** PCR value = SHA-384 of a label (a stand-in for a measured image). */
export const pcrValue = (label: string): Uint8Array => createHash('sha384').update(label).digest();

export const testPcrs = (): Map<number, Uint8Array> =>
  new Map(
    Array.from({ length: 16 }, (_, i) => [i, i <= 4 || i === 8 ? pcrValue(`pcr${i}`) : new Uint8Array(48)]),
  );

/** The payload fields; set a field to `ABSENT` to leave it out. */
export const ABSENT = Symbol('absent');
export type Field = Encodable | typeof ABSENT;

export interface DocumentSpec {
  readonly chain: TestChain;
  readonly timestamp: number;
  readonly fields?: Record<string, Field>;
  /** Encoding of the payload map. */
  readonly payloadStyle?: EncodeStyle;
  /** Encoding of the COSE envelope (unsigned parts: array head, header/payload/signature string heads). */
  readonly envelopeStyle?: EncodeStyle;
  readonly protectedHeader?: Uint8Array;
  readonly tag18?: boolean;
  /** Sign these payload bytes instead of encoding `fields` (for payloads no encoder would produce). */
  readonly rawPayload?: Uint8Array;
  /** Replace the signature (e.g. pad a P-256 signature to 96 bytes). */
  readonly signature?: (signature: Uint8Array) => Uint8Array;
}

/** The payload map a real document would carry, before `fields` overrides. */
export function defaultFields(spec: DocumentSpec): Record<string, Field> {
  return {
    module_id: 'i-0123456789abcdef0-enc0123456789abcdef',
    digest: 'SHA384',
    timestamp: spec.timestamp,
    pcrs: testPcrs(),
    certificate: spec.chain.leaf,
    cabundle: [spec.chain.root, ...(spec.chain.upperIntermediates ?? []), spec.chain.intermediate],
    public_key: null,
    user_data: null,
    nonce: null,
  };
}

/** A COSE_Sign1 document signed by the chain's leaf key. */
export function buildDocument(spec: DocumentSpec): Uint8Array {
  const fields = { ...defaultFields(spec), ...spec.fields };
  const payloadMap = new Map<string, Encodable>();
  for (const [key, value] of Object.entries(fields))
    if (value !== ABSENT) payloadMap.set(key, value as Encodable);
  const payload = spec.rawPayload ?? encodeCbor(payloadMap, spec.payloadStyle);
  const protectedHeader = spec.protectedHeader ?? encodeCbor(new Map([[1, -35]]));
  const toBeSigned = encodeCbor(['Signature1', protectedHeader, new Uint8Array(0), payload]);
  const signature = sign('sha384', toBeSigned, { key: spec.chain.leafKey, dsaEncoding: 'ieee-p1363' });
  const finalSignature = spec.signature
    ? spec.signature(new Uint8Array(signature))
    : new Uint8Array(signature);
  const envelope: Encodable = [protectedHeader, new Map(), payload, finalSignature];
  const document = encodeCbor(envelope, spec.envelopeStyle);
  return spec.tag18 ? encodeCbor(new Tagged(18, new RawCbor(document))) : document;
}
