/**
 * A small, strict DER reader for the two certificate extensions the chain check needs and node:crypto does
 * not expose: basicConstraints (2.5.29.19: cA, pathLenConstraint) and keyUsage (2.5.29.15).
 *
 * It walks `Certificate → TBSCertificate → [3] extensions` and reads nothing else in depth. Strict means
 * DER, not BER: single-byte tags, definite minimal lengths, every element filling its parent exactly, DEFAULT
 * values omitted (an explicit `critical FALSE` or `cA FALSE` is refused), minimal INTEGERs, BOOLEANs 0x00 or
 * 0xFF, named-bit BIT STRINGs without trailing zero bits, and no extension twice (RFC 5280 §4.2).
 *
 * Bounded and total: every read is checked against its parent's end before it happens, lengths are at most
 * four bytes, the nesting is the fixed certificate structure (no recursion), and each loop step consumes at
 * least two bytes. `readCertificateConstraints` never throws: any input yields a value or a reason.
 */

/** basicConstraints as the certificate states it. */
export interface BasicConstraints {
  readonly critical: boolean;
  /** cA = TRUE. */
  readonly ca: boolean;
  /** pathLenConstraint, or null when absent (no limit). Values beyond 2^32 are kept as 2^32. */
  readonly pathLen: number | null;
}

/** keyUsage as the certificate states it. */
export interface KeyUsage {
  readonly critical: boolean;
  /** Bit n of the KeyUsage BIT STRING (RFC 5280 numbering, see `KEY_USAGE`) is `(bits >> n) & 1`. */
  readonly bits: number;
}

/** The constraints read from a certificate; null for an extension the certificate does not carry. */
export interface CertificateConstraints {
  readonly basicConstraints: BasicConstraints | null;
  readonly keyUsage: KeyUsage | null;
}

/** KeyUsage bit numbers (RFC 5280 §4.2.1.3). */
export const KEY_USAGE = {
  digitalSignature: 0,
  nonRepudiation: 1,
  keyEncipherment: 2,
  dataEncipherment: 3,
  keyAgreement: 4,
  keyCertSign: 5,
  cRLSign: 6,
  encipherOnly: 7,
  decipherOnly: 8,
} as const;

/** True when `usage` asserts the bit `bit` (a `KEY_USAGE` value). */
export function hasKeyUsage(usage: KeyUsage, bit: number): boolean {
  return ((usage.bits >> bit) & 1) === 1;
}

export type ConstraintsResult =
  | { readonly ok: true; readonly value: CertificateConstraints }
  | { readonly ok: false; readonly reason: string };

/**
 * Reads basicConstraints and keyUsage from one DER certificate (the bytes must be exactly the certificate).
 * Never throws.
 */
export function readCertificateConstraints(der: Uint8Array): ConstraintsResult {
  try {
    return { ok: true, value: readConstraints(der) };
  } catch (error) {
    if (error instanceof DerError) return { ok: false, reason: error.message };
    // Not reachable by construction; kept so that the promise "never throws" holds even for a bug.
    return { ok: false, reason: 'unreadable certificate structure' };
  }
}

class DerError extends Error {}

const TAG_BOOLEAN = 0x01;
const TAG_INTEGER = 0x02;
const TAG_BIT_STRING = 0x03;
const TAG_OCTET_STRING = 0x04;
const TAG_OID = 0x06;
const TAG_SEQUENCE = 0x30;
const TAG_VERSION = 0xa0; // [0] EXPLICIT Version
const TAG_ISSUER_UID = 0x81; // [1] IMPLICIT UniqueIdentifier (a primitive BIT STRING)
const TAG_SUBJECT_UID = 0x82; // [2] IMPLICIT UniqueIdentifier
const TAG_EXTENSIONS = 0xa3; // [3] EXPLICIT Extensions

// Content octets of the two OIDs: 2.5.29.19 and 2.5.29.15.
const OID_BASIC_CONSTRAINTS = [0x55, 0x1d, 0x13] as const;
const OID_KEY_USAGE = [0x55, 0x1d, 0x0f] as const;
// A saturation bound for pathLenConstraint: no chain comes anywhere near it.
const PATH_LEN_CAP = 2 ** 32;

/** One element: its tag and where its content lies (`[start, end)`) in the input. */
interface Element {
  readonly tag: number;
  readonly start: number;
  readonly end: number;
}

/** Reads the element at `pos`, which must lie entirely before `limit`. */
function element(bytes: Uint8Array, pos: number, limit: number): Element {
  if (pos + 2 > limit) throw new DerError('truncated element');
  const tag = bytes[pos]!;
  if ((tag & 0x1f) === 0x1f) throw new DerError('multi-byte tag');
  const first = bytes[pos + 1]!;
  let length: number;
  let start: number;
  if (first < 0x80) {
    length = first;
    start = pos + 2;
  } else {
    const count = first & 0x7f;
    if (count === 0) throw new DerError('indefinite length');
    if (count > 4) throw new DerError('length too long');
    if (pos + 2 + count > limit) throw new DerError('truncated length');
    if (bytes[pos + 2] === 0) throw new DerError('non-minimal length');
    length = 0;
    for (let i = 0; i < count; i++) length = length * 256 + bytes[pos + 2 + i]!;
    if (length < 0x80) throw new DerError('non-minimal length');
    start = pos + 2 + count;
  }
  if (length > limit - start) throw new DerError('truncated content');
  return { tag, start, end: start + length };
}

function expectTag(item: Element, tag: number, what: string): Element {
  if (item.tag !== tag) throw new DerError(`${what} has tag 0x${item.tag.toString(16)}`);
  return item;
}

function readConstraints(der: Uint8Array): CertificateConstraints {
  // Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue }, exactly the input.
  const certificate = expectTag(element(der, 0, der.length), TAG_SEQUENCE, 'the certificate');
  if (certificate.end !== der.length) throw new DerError('bytes after the certificate');
  const tbs = expectTag(element(der, certificate.start, certificate.end), TAG_SEQUENCE, 'TBSCertificate');
  const algorithm = expectTag(element(der, tbs.end, certificate.end), TAG_SEQUENCE, 'signatureAlgorithm');
  const signature = expectTag(element(der, algorithm.end, certificate.end), TAG_BIT_STRING, 'signatureValue');
  if (signature.end !== certificate.end) throw new DerError('extra fields after signatureValue');

  // TBSCertificate ::= SEQUENCE { [0] version OPTIONAL, serialNumber, signature, issuer, validity, subject,
  //   subjectPublicKeyInfo, [1] issuerUniqueID OPTIONAL, [2] subjectUniqueID OPTIONAL, [3] extensions OPTIONAL }
  let pos = tbs.start;
  let item = element(der, pos, tbs.end);
  if (item.tag === TAG_VERSION) {
    pos = item.end;
    item = element(der, pos, tbs.end);
  }
  const fields: readonly [number, string][] = [
    [TAG_INTEGER, 'serialNumber'],
    [TAG_SEQUENCE, 'signature'],
    [TAG_SEQUENCE, 'issuer'],
    [TAG_SEQUENCE, 'validity'],
    [TAG_SEQUENCE, 'subject'],
    [TAG_SEQUENCE, 'subjectPublicKeyInfo'],
  ];
  for (const [index, [tag, what]] of fields.entries()) {
    if (index > 0) item = element(der, pos, tbs.end);
    expectTag(item, tag, what);
    pos = item.end;
  }
  let extensions: Element | null = null;
  for (const tag of [TAG_ISSUER_UID, TAG_SUBJECT_UID, TAG_EXTENSIONS]) {
    if (pos === tbs.end) break;
    item = element(der, pos, tbs.end);
    if (item.tag !== tag) continue;
    pos = item.end;
    if (tag === TAG_EXTENSIONS) extensions = item;
  }
  if (pos !== tbs.end) throw new DerError('unexpected field in TBSCertificate');
  if (extensions === null) return { basicConstraints: null, keyUsage: null };
  return readExtensions(der, extensions);
}

function readExtensions(der: Uint8Array, explicit: Element): CertificateConstraints {
  // [3] EXPLICIT Extensions ::= SEQUENCE SIZE (1..MAX) OF Extension
  const list = expectTag(element(der, explicit.start, explicit.end), TAG_SEQUENCE, 'extensions');
  if (list.end !== explicit.end) throw new DerError('bytes after the extensions');
  if (list.start === list.end) throw new DerError('empty extensions');
  let basicConstraints: BasicConstraints | null = null;
  let keyUsage: KeyUsage | null = null;
  const seen: Element[] = [];
  for (let pos = list.start; pos < list.end; ) {
    // Extension ::= SEQUENCE { extnID OID, critical BOOLEAN DEFAULT FALSE, extnValue OCTET STRING }
    const extension = expectTag(element(der, pos, list.end), TAG_SEQUENCE, 'an extension');
    pos = extension.end;
    const oid = expectTag(element(der, extension.start, extension.end), TAG_OID, 'extnID');
    checkOid(der, oid);
    for (const other of seen) {
      if (sameContent(der, other, oid)) throw new DerError('an extension appears twice');
    }
    seen.push(oid);
    let next = element(der, oid.end, extension.end);
    let critical = false;
    if (next.tag === TAG_BOOLEAN) {
      // DEFAULT FALSE: DER encodes only TRUE.
      if (!readBoolean(der, next)) throw new DerError('critical FALSE encoded explicitly');
      critical = true;
      next = element(der, next.end, extension.end);
    }
    const value = expectTag(next, TAG_OCTET_STRING, 'extnValue');
    if (value.end !== extension.end) throw new DerError('extra fields in an extension');
    if (isOid(der, oid, OID_BASIC_CONSTRAINTS)) {
      basicConstraints = readBasicConstraints(der, value, critical);
    } else if (isOid(der, oid, OID_KEY_USAGE)) {
      keyUsage = readKeyUsage(der, value, critical);
    }
  }
  return { basicConstraints, keyUsage };
}

function readBasicConstraints(der: Uint8Array, value: Element, critical: boolean): BasicConstraints {
  // BasicConstraints ::= SEQUENCE { cA BOOLEAN DEFAULT FALSE, pathLenConstraint INTEGER (0..MAX) OPTIONAL }
  const sequence = expectTag(element(der, value.start, value.end), TAG_SEQUENCE, 'basicConstraints');
  if (sequence.end !== value.end) throw new DerError('bytes after basicConstraints');
  let pos = sequence.start;
  let ca = false;
  let pathLen: number | null = null;
  if (pos < sequence.end) {
    const item = element(der, pos, sequence.end);
    if (item.tag === TAG_BOOLEAN) {
      if (!readBoolean(der, item)) throw new DerError('basicConstraints cA FALSE encoded explicitly');
      ca = true;
      pos = item.end;
    }
  }
  if (pos < sequence.end) {
    const item = expectTag(element(der, pos, sequence.end), TAG_INTEGER, 'pathLenConstraint');
    pathLen = readPathLen(der, item);
    pos = item.end;
  }
  if (pos !== sequence.end) throw new DerError('extra fields in basicConstraints');
  return { critical, ca, pathLen };
}

function readKeyUsage(der: Uint8Array, value: Element, critical: boolean): KeyUsage {
  // KeyUsage ::= BIT STRING { digitalSignature (0), …, decipherOnly (8) }
  const bits = expectTag(element(der, value.start, value.end), TAG_BIT_STRING, 'keyUsage');
  if (bits.end !== value.end) throw new DerError('bytes after keyUsage');
  const length = bits.end - bits.start;
  if (length === 0) throw new DerError('keyUsage without its unused-bits octet');
  const unused = der[bits.start]!;
  if (unused > 7 || (length === 1 && unused !== 0)) throw new DerError('keyUsage unused-bits count');
  if (length > 3) throw new DerError('keyUsage longer than its named bits');
  let mask = 0; // at most 16 bits: the octets after the unused-bits count, most significant first
  for (let i = bits.start + 1; i < bits.end; i++) mask = (mask << 8) | der[i]!;
  if (length > 1) {
    const last = der[bits.end - 1]!;
    if ((last & ((1 << unused) - 1)) !== 0) throw new DerError('keyUsage unused bits set');
    // A named-bit list drops its trailing zero bits (X.690 §11.2.2): the last bit present is a one.
    if (((last >> unused) & 1) === 0) throw new DerError('keyUsage trailing zero bits');
  }
  // Renumber: bit n of the BIT STRING (from the first octet's most significant bit) becomes bit n of `bits`.
  const width = (length - 1) * 8;
  let result = 0;
  for (let n = 0; n < width; n++) {
    if (((mask >> (width - 1 - n)) & 1) === 1) {
      if (n > KEY_USAGE.decipherOnly) throw new DerError('keyUsage bit beyond decipherOnly');
      result |= 1 << n;
    }
  }
  return { critical, bits: result };
}

function readBoolean(der: Uint8Array, item: Element): boolean {
  if (item.end - item.start !== 1) throw new DerError('BOOLEAN of the wrong length');
  const byte = der[item.start]!;
  if (byte !== 0x00 && byte !== 0xff) throw new DerError('BOOLEAN neither 0x00 nor 0xFF');
  return byte === 0xff;
}

function readPathLen(der: Uint8Array, item: Element): number {
  const length = item.end - item.start;
  if (length === 0) throw new DerError('empty INTEGER');
  const first = der[item.start]!;
  if (length > 1) {
    const second = der[item.start + 1]!;
    if ((first === 0x00 && second < 0x80) || (first === 0xff && second >= 0x80))
      throw new DerError('non-minimal INTEGER');
  }
  if (first >= 0x80) throw new DerError('negative pathLenConstraint');
  let value = 0;
  for (let i = item.start; i < item.end; i++) value = Math.min(value * 256 + der[i]!, PATH_LEN_CAP);
  return value;
}

/** An OBJECT IDENTIFIER's content is non-empty, each subidentifier minimal and terminated. */
function checkOid(der: Uint8Array, oid: Element): void {
  if (oid.start === oid.end) throw new DerError('empty OBJECT IDENTIFIER');
  let atSubidentifierStart = true;
  for (let i = oid.start; i < oid.end; i++) {
    const byte = der[i]!;
    if (atSubidentifierStart && byte === 0x80) throw new DerError('non-minimal OBJECT IDENTIFIER');
    atSubidentifierStart = (byte & 0x80) === 0;
  }
  if (!atSubidentifierStart) throw new DerError('unterminated OBJECT IDENTIFIER');
}

function isOid(der: Uint8Array, oid: Element, expected: readonly number[]): boolean {
  if (oid.end - oid.start !== expected.length) return false;
  for (let i = 0; i < expected.length; i++) if (der[oid.start + i] !== expected[i]) return false;
  return true;
}

function sameContent(der: Uint8Array, a: Element, b: Element): boolean {
  if (a.end - a.start !== b.end - b.start) return false;
  for (let i = 0; i < a.end - a.start; i++) if (der[a.start + i] !== der[b.start + i]) return false;
  return true;
}
