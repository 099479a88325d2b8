import {
  constants,
  createCipheriv,
  createDecipheriv,
  createHash,
  createPublicKey,
  type KeyObject,
  privateDecrypt,
  publicEncrypt,
  randomBytes,
} from 'node:crypto';

/**
 * `CiphertextForRecipient`: what KMS answers an attested call (`Decrypt` or `GenerateDataKey` with
 * `Recipient`) instead of the plaintext. It is a CMS (RFC 5652) `ContentInfo` holding `EnvelopedData`, BER
 * encoded with indefinite lengths, as AWS's Nitro Enclaves SDK parses it (`aws_cms_parse_enveloped_data`):
 * - EnvelopedData version 2, one `KeyTransRecipientInfo` (version 2, the recipient named by a
 *   `subjectKeyIdentifier`, since the enclave's key has no certificate);
 * - the content key wrapped with RSAES-OAEP, SHA-256 and MGF1-SHA-256 (RFC 3560; `RSAES_OAEP_SHA_256`, the
 *   only `KeyEncryptionAlgorithm` KMS takes) under the public key of the recipient's attestation document;
 * - the content (the plaintext) encrypted with AES-256-CBC, PKCS#7 padding, a random IV.
 *
 * {@link sealForRecipient} is KMS's side (the local KMS stand-in answers with it); {@link openForRecipient}
 * is the enclave's side, with the private key that never left it. The reader takes BER and DER alike
 * (definite or indefinite lengths, the content primitive or in segments), bounded: nesting, lengths and
 * sizes are checked against their parent before they are used, and every failure is an
 * {@link EnvelopeError} saying what was wrong.
 */

const OID = {
  data: '1.2.840.113549.1.7.1',
  envelopedData: '1.2.840.113549.1.7.3',
  rsaesOaep: '1.2.840.113549.1.1.7',
  mgf1: '1.2.840.113549.1.1.8',
  sha256: '2.16.840.1.101.3.4.2.1',
  aes256Cbc: '2.16.840.1.101.3.4.1.42',
} as const;

/** The largest envelope read (KMS's plaintexts are at most 4096 bytes; a data key is 32). */
export const MAX_ENVELOPE_BYTES = 16_384;

export class EnvelopeError extends Error {
  override readonly name = 'EnvelopeError';
}

// ---------------------------------------------------------------------------------------------- writing

const SEQUENCE = 0x30;
const SET = 0x31;
const OCTET_STRING = 0x04;
const INTEGER = 0x02;
const OBJECT_IDENTIFIER = 0x06;
const NULL = 0x05;
const BIT_STRING = 0x03;

function definite(tag: number, content: Uint8Array): Buffer {
  const n = content.length;
  const length =
    n < 0x80
      ? [n]
      : n < 0x100
        ? [0x81, n]
        : n < 0x10000
          ? [0x82, n >> 8, n & 0xff]
          : [0x83, n >> 16, (n >> 8) & 0xff, n & 0xff];
  return Buffer.concat([Buffer.from([tag, ...length]), content]);
}

/** A constructed element with an indefinite length (0x80 … end-of-contents), as KMS writes its envelopes. */
function indefinite(tag: number, ...children: Uint8Array[]): Buffer {
  return Buffer.concat([Buffer.from([tag, 0x80]), ...children, Buffer.from([0, 0])]);
}

function oid(dotted: string): Buffer {
  const [first, second, ...rest] = dotted.split('.').map(Number);
  const bytes: number[] = [first! * 40 + second!];
  for (const arc of rest) {
    const septets: number[] = [];
    let value = arc;
    do {
      septets.unshift(value & 0x7f);
      value = Math.floor(value / 128);
    } while (value > 0);
    bytes.push(...septets.map((s, i) => (i < septets.length - 1 ? s | 0x80 : s)));
  }
  return definite(OBJECT_IDENTIFIER, Buffer.from(bytes));
}

const sha256Algorithm = () =>
  definite(SEQUENCE, Buffer.concat([oid(OID.sha256), definite(NULL, Buffer.alloc(0))]));

/** RSAES-OAEP-params with SHA-256 and MGF1-SHA-256 (RFC 4055 §4.1; pSourceFunc left at its default). */
function oaepSha256Algorithm(): Buffer {
  const params = definite(
    SEQUENCE,
    Buffer.concat([
      definite(0xa0, sha256Algorithm()),
      definite(0xa1, definite(SEQUENCE, Buffer.concat([oid(OID.mgf1), sha256Algorithm()]))),
    ]),
  );
  return definite(SEQUENCE, Buffer.concat([oid(OID.rsaesOaep), params]));
}

/**
 * The subject key identifier of `publicKey` (RFC 5280 §4.2.1.2, method 1): SHA-1 of the subjectPublicKey
 * bits of its SubjectPublicKeyInfo. It names the recipient in the envelope.
 */
export function subjectKeyIdentifier(publicKey: KeyObject): Buffer {
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  const info = readElement(spki, 0, spki.length, 0);
  const children = readChildren(spki, info, 0);
  const bits = children[1];
  // Unreachable for a KeyObject (node:crypto always exports a BIT STRING here); the check keeps the reading
  // of the shape honest.
  // Stryker disable next-line ConditionalExpression: equivalent (unreachable, above)
  if (!bits || bits.tag !== BIT_STRING)
    throw new EnvelopeError('the public key is not a SubjectPublicKeyInfo');
  // Skip the BIT STRING's unused-bits octet.
  return createHash('sha1')
    .update(spki.subarray(bits.start + 1, bits.end))
    .digest();
}

/**
 * Encrypts `plaintext` for the holder of `recipient` (an RSA public key: the attestation document's
 * `public_key`, DER SubjectPublicKeyInfo, or a KeyObject) as KMS's `CiphertextForRecipient`.
 */
export function sealForRecipient(plaintext: Uint8Array, recipient: KeyObject | Uint8Array): Buffer {
  const key =
    recipient instanceof Uint8Array
      ? createPublicKey({ key: Buffer.from(recipient), format: 'der', type: 'spki' })
      : recipient;
  if (key.asymmetricKeyType !== 'rsa') throw new EnvelopeError('the recipient key is not an RSA key');
  const contentKey = randomBytes(32);
  const iv = randomBytes(16);
  const cipher = createCipheriv('aes-256-cbc', contentKey, iv);
  const encrypted = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  const wrapped = publicEncrypt(
    { key, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' },
    contentKey,
  );
  // Erased once used: hygiene, no outcome a test can see (here and in openForRecipient).
  // Stryker disable next-line all: equivalent (an erasure, above)
  contentKey.fill(0);
  const recipientInfo = definite(
    SEQUENCE,
    Buffer.concat([
      definite(INTEGER, Buffer.from([2])),
      definite(0x80, subjectKeyIdentifier(key)), // [0] IMPLICIT SubjectKeyIdentifier
      oaepSha256Algorithm(),
      definite(OCTET_STRING, wrapped),
    ]),
  );
  const encryptedContentInfo = indefinite(
    SEQUENCE,
    oid(OID.data),
    definite(SEQUENCE, Buffer.concat([oid(OID.aes256Cbc), definite(OCTET_STRING, iv)])),
    // [0] IMPLICIT OCTET STRING, constructed: the ciphertext in one segment.
    indefinite(0xa0, definite(OCTET_STRING, encrypted)),
  );
  const envelopedData = indefinite(
    SEQUENCE,
    definite(INTEGER, Buffer.from([2])),
    definite(SET, recipientInfo),
    encryptedContentInfo,
  );
  return indefinite(SEQUENCE, oid(OID.envelopedData), indefinite(0xa0, envelopedData));
}

// ---------------------------------------------------------------------------------------------- reading

interface Element {
  readonly tag: number;
  readonly constructed: boolean;
  /** Where the content starts and ends (for an indefinite length: before the end-of-contents octets). */
  readonly start: number;
  readonly end: number;
  /** Where the next element starts. */
  readonly next: number;
}

const MAX_DEPTH = 8;

function readElement(bytes: Uint8Array, at: number, limit: number, depth: number): Element {
  if (depth > MAX_DEPTH) throw new EnvelopeError('the envelope nests deeper than CMS does');
  if (at + 2 > limit) throw new EnvelopeError('the envelope ends inside an element header');
  const tag = bytes[at]!;
  if ((tag & 0x1f) === 0x1f)
    throw new EnvelopeError('the envelope uses a multi-byte tag, which CMS does not');
  const constructed = (tag & 0x20) !== 0;
  const first = bytes[at + 1]!;
  let start = at + 2;
  if (first === 0x80) {
    if (!constructed) throw new EnvelopeError('a primitive element has an indefinite length');
    // Indefinite: the children run up to the end-of-contents octets.
    let cursor = start;
    for (;;) {
      if (cursor + 2 > limit) throw new EnvelopeError('an indefinite-length element is not terminated');
      if (bytes[cursor] === 0 && bytes[cursor + 1] === 0)
        return { tag, constructed, start, end: cursor, next: cursor + 2 };
      cursor = readElement(bytes, cursor, limit, depth + 1).next;
    }
  }
  let length = first;
  if (first & 0x80) {
    const count = first & 0x7f;
    // (0x80 itself, no length octets, is the indefinite form handled above.)
    if (count > 3) throw new EnvelopeError('an element length is not one to three bytes long');
    if (start + count > limit) throw new EnvelopeError('the envelope ends inside an element length');
    length = 0;
    for (let i = 0; i < count; i++) length = length * 256 + bytes[start + i]!;
    start += count;
  }
  if (start + length > limit) throw new EnvelopeError('an element is longer than what holds it');
  return { tag, constructed, start, end: start + length, next: start + length };
}

function readChildren(bytes: Uint8Array, parent: Element, depth: number): Element[] {
  // Unreachable today (every caller checks a constructed tag first); the check keeps a future caller from
  // reading a primitive's bytes as elements.
  // Stryker disable next-line ConditionalExpression: equivalent (unreachable, above)
  if (!parent.constructed) throw new EnvelopeError('a structure is encoded as a primitive element');
  const children: Element[] = [];
  for (let at = parent.start; at < parent.end; ) {
    const child = readElement(bytes, at, parent.end, depth + 1);
    children.push(child);
    at = child.next;
  }
  return children;
}

function expectTag(element: Element | undefined, tag: number, what: string): Element {
  if (!element || element.tag !== tag)
    throw new EnvelopeError(`the envelope has no ${what} where CMS puts it`);
  return element;
}

function readOid(bytes: Uint8Array, element: Element | undefined, what: string): string {
  const e = expectTag(element, OBJECT_IDENTIFIER, what);
  const content = bytes.subarray(e.start, e.end);
  if (content.length === 0) throw new EnvelopeError(`the ${what} is empty`);
  const arcs: number[] = [Math.min(2, Math.floor(content[0]! / 40)), 0];
  arcs[1] = content[0]! - arcs[0]! * 40;
  let value = 0;
  for (let i = 1; i < content.length; i++) {
    value = value * 128 + (content[i]! & 0x7f);
    // Stryker disable next-line EqualityOperator: equivalent, the bound is no integer, so no value equals it.
    if (value > Number.MAX_SAFE_INTEGER / 128) throw new EnvelopeError(`the ${what} has an arc out of range`);
    if (!(content[i]! & 0x80)) {
      arcs.push(value);
      value = 0;
    }
  }
  return arcs.join('.');
}

function readInteger(bytes: Uint8Array, element: Element | undefined, what: string): number {
  const e = expectTag(element, INTEGER, what);
  if (e.end - e.start !== 1) throw new EnvelopeError(`the ${what} is not a small integer`);
  return bytes[e.start]!;
}

/**
 * An OCTET STRING's content, primitive or in constructed segments (BER), each segment a primitive OCTET
 * STRING (segments nested in segments, which BER allows and KMS never writes, are refused).
 */
function readOctets(bytes: Uint8Array, element: Element, depth: number): Buffer {
  const content = (e: Element) => Buffer.from(bytes.subarray(e.start, e.end));
  if (!element.constructed) return content(element);
  return Buffer.concat(
    readChildren(bytes, element, depth).map((segment) => {
      if (segment.tag !== OCTET_STRING)
        throw new EnvelopeError('a segmented octet string holds something else');
      return content(segment);
    }),
  );
}

/** True when `algorithm` is an AlgorithmIdentifier of SHA-256 (parameters absent or NULL). */
function isSha256(bytes: Uint8Array, algorithm: Element | undefined): boolean {
  if (!algorithm || algorithm.tag !== SEQUENCE) return false;
  const [id, params, ...extra] = readChildren(bytes, algorithm, 0);
  if (extra.length > 0 || readOid(bytes, id, 'hash algorithm') !== OID.sha256) return false;
  return params === undefined || (params.tag === NULL && params.end === params.start);
}

/** Checks that a key encryption AlgorithmIdentifier is RSAES-OAEP with SHA-256 and MGF1-SHA-256. */
function checkOaepSha256(bytes: Uint8Array, algorithm: Element | undefined): void {
  const refuse = () => {
    throw new EnvelopeError('the content key is not wrapped with RSAES-OAEP, SHA-256 and MGF1-SHA-256');
  };
  const [id, params] = readChildren(bytes, expectTag(algorithm, SEQUENCE, 'key encryption algorithm'), 1);
  if (readOid(bytes, id, 'key encryption algorithm') !== OID.rsaesOaep || !params || params.tag !== SEQUENCE)
    refuse();
  const fields = readChildren(bytes, params!, 2);
  const hash = fields.find((f) => f.tag === 0xa0);
  const mgf = fields.find((f) => f.tag === 0xa1);
  // pSourceFunc ([2]) must be the default (an empty label): KMS sets none.
  if (fields.some((f) => f.tag !== 0xa0 && f.tag !== 0xa1) || !hash || !mgf) refuse();
  if (!isSha256(bytes, readChildren(bytes, hash!, 3)[0])) refuse();
  const [mgfAlgorithm] = readChildren(bytes, mgf!, 3);
  const [mgfId, mgfHash] = readChildren(
    bytes,
    expectTag(mgfAlgorithm, SEQUENCE, 'mask generation function'),
    4,
  );
  if (readOid(bytes, mgfId, 'mask generation function') !== OID.mgf1 || !isSha256(bytes, mgfHash)) refuse();
}

/**
 * Opens a `CiphertextForRecipient` with the private key of the enclave's attestation document: answers the
 * plaintext (KMS's data key, for a data key).
 * @throws EnvelopeError when the envelope is not the CMS KMS writes, names another key, or does not open.
 */
export function openForRecipient(envelope: Uint8Array, privateKey: KeyObject): Buffer {
  if (envelope.length > MAX_ENVELOPE_BYTES)
    throw new EnvelopeError(`the envelope is larger than ${MAX_ENVELOPE_BYTES} bytes`);
  const contentInfo = expectTag(readElement(envelope, 0, envelope.length, 0), SEQUENCE, 'ContentInfo');
  if (contentInfo.next !== envelope.length)
    throw new EnvelopeError('the envelope has bytes after its ContentInfo');
  const [type, explicit] = readChildren(envelope, contentInfo, 0);
  if (readOid(envelope, type, 'content type') !== OID.envelopedData)
    throw new EnvelopeError('the envelope is not EnvelopedData');
  const [enveloped, ...rest] = readChildren(envelope, expectTag(explicit, 0xa0, 'content'), 1);
  if (rest.length > 0) throw new EnvelopeError('the envelope holds more than one content');
  const fields = readChildren(envelope, expectTag(enveloped, SEQUENCE, 'EnvelopedData'), 2);
  if (readInteger(envelope, fields[0], 'EnvelopedData version') !== 2)
    throw new EnvelopeError('the EnvelopedData is not version 2');
  // originatorInfo ([0]) is optional and unused by KMS: skip it when present.
  let index = 1;
  if (fields[index]?.tag === 0xa0) index++;
  const recipients = readChildren(envelope, expectTag(fields[index], SET, 'RecipientInfos'), 3);
  const encryptedContentInfo = expectTag(fields[index + 1], SEQUENCE, 'EncryptedContentInfo');
  if (recipients.length !== 1)
    throw new EnvelopeError(`the envelope has ${recipients.length} recipients, not one`);
  const [version, rid, keyAlgorithm, encryptedKey, ...extra] = readChildren(
    envelope,
    expectTag(recipients[0], SEQUENCE, 'KeyTransRecipientInfo'),
    4,
  );
  if (extra.length > 0 || readInteger(envelope, version, 'recipient version') !== 2) {
    throw new EnvelopeError('the recipient is not a version 2 KeyTransRecipientInfo');
  }
  const ski = Buffer.from(envelope.subarray(expectTag(rid, 0x80, 'subjectKeyIdentifier').start, rid!.end));
  const ours = subjectKeyIdentifier(createPublicKey(privateKey));
  if (!ski.equals(ours)) throw new EnvelopeError('the envelope is for another key');
  checkOaepSha256(envelope, keyAlgorithm);
  const wrapped = expectTag(encryptedKey, OCTET_STRING, 'encrypted key');

  const [contentType, contentAlgorithm, content] = readChildren(envelope, encryptedContentInfo, 3);
  if (readOid(envelope, contentType, 'encrypted content type') !== OID.data)
    throw new EnvelopeError('the encrypted content is not data');
  const [algorithmId, ivElement] = readChildren(
    envelope,
    expectTag(contentAlgorithm, SEQUENCE, 'content encryption algorithm'),
    4,
  );
  if (readOid(envelope, algorithmId, 'content encryption algorithm') !== OID.aes256Cbc) {
    throw new EnvelopeError('the content is not encrypted with AES-256-CBC');
  }
  const iv = Buffer.from(envelope.subarray(expectTag(ivElement, OCTET_STRING, 'IV').start, ivElement!.end));
  if (iv.length !== 16) throw new EnvelopeError('the IV is not 16 bytes');
  if (!content || (content.tag !== 0x80 && content.tag !== 0xa0))
    throw new EnvelopeError('the envelope carries no encrypted content');
  const ciphertext = readOctets(envelope, content, 4);

  let contentKey: Buffer;
  try {
    contentKey = privateDecrypt(
      { key: privateKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' },
      envelope.subarray(wrapped.start, wrapped.end),
    );
  } catch {
    throw new EnvelopeError('the content key does not unwrap with this private key');
  }
  if (contentKey.length !== 32) throw new EnvelopeError('the content key is not an AES-256 key');
  const decipher = createDecipheriv('aes-256-cbc', contentKey, iv);
  // Erased once the decipher holds it: hygiene, no outcome a test can see.
  // Stryker disable next-line all: equivalent (above)
  contentKey.fill(0);
  try {
    return Buffer.concat([decipher.update(ciphertext), decipher.final()]);
  } catch {
    throw new EnvelopeError('the content does not decrypt with the unwrapped key');
  }
}
