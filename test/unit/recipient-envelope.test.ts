/**
 * `CiphertextForRecipient` (shared/keys/recipient-envelope.ts): KMS's side seals, the enclave's side opens,
 * and both agree with an independent CMS implementation, OpenSSL's (`openssl cms`, installed by .ci/run):
 * OpenSSL opens what the KMS stand-in seals, and the enclave's reader opens what OpenSSL seals in BER with
 * indefinite lengths (`-stream`), the encoding KMS answers with.
 */
import { execFileSync } from 'node:child_process';
import {
  constants,
  createCipheriv,
  generateKeyPairSync,
  type KeyObject,
  publicEncrypt,
  randomBytes,
} from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import {
  EnvelopeError,
  MAX_ENVELOPE_BYTES,
  openForRecipient,
  sealForRecipient,
  subjectKeyIdentifier,
} from '../../shared/keys/recipient-envelope.ts';

const dir = mkdtempSync(join(tmpdir(), 'recipient-envelope-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const rsa = () => generateKeyPairSync('rsa', { modulusLength: 2048 });
const { privateKey, publicKey } = rsa();
const openssl = (...args: string[]) => execFileSync('openssl', args, { stdio: ['ignore', 'pipe', 'pipe'] });

/** A self-signed certificate for `key` (OpenSSL's `cms -encrypt` names its recipient by a certificate). */
function certificateFor(key: KeyObject, name: string): { keyPath: string; certPath: string } {
  const keyPath = join(dir, `${name}.key.pem`);
  const certPath = join(dir, `${name}.cert.pem`);
  writeFileSync(keyPath, key.export({ type: 'pkcs8', format: 'pem' }));
  openssl('req', '-x509', '-new', '-key', keyPath, '-out', certPath, '-subj', `/CN=${name}`, '-days', '1');
  return { keyPath, certPath };
}

/** OpenSSL's envelope of `plaintext` for the certificate's key, BER with indefinite lengths. */
function opensslSeal(plaintext: Uint8Array, certPath: string, oaepHash = 'sha256'): Buffer {
  const input = join(dir, 'plaintext');
  writeFileSync(input, plaintext);
  return openssl(
    'cms',
    '-encrypt',
    '-binary',
    '-stream',
    '-aes256',
    '-recip',
    certPath,
    '-keyid',
    '-keyopt',
    'rsa_padding_mode:oaep',
    '-keyopt',
    `rsa_oaep_md:${oaepHash}`,
    '-keyopt',
    `rsa_mgf1_md:${oaepHash}`,
    '-outform',
    'DER',
    '-in',
    input,
  );
}

const refusal = (envelope: Uint8Array, key: KeyObject = privateKey) => {
  try {
    openForRecipient(envelope, key);
  } catch (error) {
    expect(error).toBeInstanceOf(EnvelopeError);
    return (error as Error).message;
  }
  return 'opened';
};

describe('CiphertextForRecipient', () => {
  const { keyPath, certPath } = certificateFor(privateKey, 'enclave');

  it('opens what it seals, for every plaintext size KMS answers', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 4096 }), (plaintext) => {
        expect(openForRecipient(sealForRecipient(plaintext, publicKey), privateKey)).toEqual(
          Buffer.from(plaintext),
        );
      }),
      { numRuns: 40 },
    );
    // The attestation document carries the key as DER SubjectPublicKeyInfo: that form seals the same.
    const spki = publicKey.export({ type: 'spki', format: 'der' });
    expect(openForRecipient(sealForRecipient(Buffer.from('data key'), spki), privateKey).toString()).toBe(
      'data key',
    );
  });

  it('seals as KMS does: BER with indefinite lengths, EnvelopedData v2, the recipient by its key identifier, OAEP SHA-256, AES-256-CBC', () => {
    const envelope = sealForRecipient(randomBytes(32), publicKey);
    expect(envelope.subarray(0, 2)).toEqual(Buffer.from([0x30, 0x80]));
    const printed = openssl(
      'cms',
      '-cmsout',
      '-print',
      '-inform',
      'DER',
      '-in',
      writeTemp('sealed.ber', envelope),
    ).toString();
    expect(printed).toContain('pkcs7-envelopedData');
    expect(printed).toMatch(/d\.envelopedData: \n\s+version: 2/);
    expect(printed).toContain('d.subjectKeyIdentifier');
    expect(printed).toContain('rsaesOaep');
    expect(printed.match(/:sha256/g)).toHaveLength(2); // the OAEP hash and MGF1's
    expect(printed).toContain('aes-256-cbc');
  });

  it('is opened by OpenSSL, and opens what OpenSSL seals', () => {
    const plaintext = randomBytes(32);
    const sealed = writeTemp('for-openssl.ber', sealForRecipient(plaintext, publicKey));
    expect(openssl('cms', '-decrypt', '-binary', '-inform', 'DER', '-in', sealed, '-inkey', keyPath)).toEqual(
      plaintext,
    );
    for (const size of [0, 1, 15, 16, 32, 1000, 4096]) {
      const message = randomBytes(size);
      expect(openForRecipient(opensslSeal(message, certPath), privateKey)).toEqual(message);
    }
    // The identifier is RFC 5280's method 1, as OpenSSL puts in the certificate it names.
    const certificateSki = openssl(
      'x509',
      '-in',
      certPath,
      '-noout',
      '-ext',
      'subjectKeyIdentifier',
    ).toString();
    expect(certificateSki.replace(/[^0-9A-F]/g, '').slice(-40)).toBe(
      subjectKeyIdentifier(publicKey).toString('hex').toUpperCase(),
    );
  });

  it('refuses an envelope for another key, another padding or a tampered key, saying which', () => {
    const other = rsa();
    expect(refusal(sealForRecipient(randomBytes(32), other.publicKey))).toBe(
      'the envelope is for another key',
    );
    expect(refusal(opensslSeal(randomBytes(32), certPath, 'sha1'))).toBe(
      'the content key is not wrapped with RSAES-OAEP, SHA-256 and MGF1-SHA-256',
    );
    const envelope = sealForRecipient(randomBytes(32), publicKey);
    const wrappedKeyAt = envelope.indexOf(Buffer.from([0x04, 0x82, 0x01, 0x00])) + 4; // the 256-byte OCTET STRING
    const tampered = Buffer.from(envelope);
    tampered[wrappedKeyAt + 100]! ^= 1;
    expect(refusal(tampered)).toBe('the content key does not unwrap with this private key');
    expect(refusal(Buffer.concat([envelope, Buffer.from([0])]))).toBe(
      'the envelope has bytes after its ContentInfo',
    );
    expect(refusal(Buffer.alloc(MAX_ENVELOPE_BYTES + 1))).toBe(
      `the envelope is larger than ${MAX_ENVELOPE_BYTES} bytes`,
    );
  });

  it('answers anything else with an EnvelopeError, never another failure (truncations, bit flips, random bytes)', () => {
    const envelope = sealForRecipient(Buffer.from('data key'), publicKey);
    fc.assert(
      fc.property(fc.nat({ max: envelope.length - 1 }), (cut) => {
        expect(refusal(envelope.subarray(0, cut))).not.toBe('opened');
      }),
      { numRuns: 100 },
    );
    fc.assert(
      fc.property(fc.nat({ max: envelope.length - 1 }), fc.integer({ min: 1, max: 255 }), (at, flip) => {
        const changed = Buffer.from(envelope);
        changed[at]! ^= flip;
        const outcome = refusal(changed);
        // A flip inside the ciphertext's first block or the IV can still decrypt (CBC has no integrity, as
        // AWS's envelope has none): it then yields other bytes, never the data key.
        if (outcome === 'opened')
          expect(openForRecipient(changed, privateKey).toString()).not.toBe('data key');
      }),
      { numRuns: 200 },
    );
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), (bytes) => {
        expect(refusal(bytes)).not.toBe('opened');
      }),
    );
  });
});

function writeTemp(name: string, bytes: Uint8Array): string {
  const path = join(dir, name);
  writeFileSync(path, bytes);
  return path;
}

// ------------------------------------------------------------------ each check, on envelopes built by hand

/** A DER element: tag, definite length (short or long form), content. */
function tlv(tag: number, ...content: Uint8Array[]): Buffer {
  const body = Buffer.concat(content);
  const n = body.length;
  const length = n < 0x80 ? [n] : n < 0x100 ? [0x81, n] : [0x82, n >> 8, n & 0xff];
  return Buffer.concat([Buffer.from([tag, ...length]), body]);
}
/** A BER constructed element with an indefinite length. */
const ind = (tag: number, ...children: Uint8Array[]) =>
  Buffer.concat([Buffer.from([tag, 0x80]), ...children, Buffer.from([0, 0])]);
function oid(dotted: string): Buffer {
  const [a, b, ...rest] = dotted.split('.').map(Number);
  const out = [a! * 40 + b!];
  for (const arc of rest) {
    const septets = [];
    for (let v = arc; ; v = Math.floor(v / 128)) {
      septets.unshift(v & 0x7f);
      if (v < 128) break;
    }
    out.push(...septets.map((s, i) => (i < septets.length - 1 ? s | 0x80 : s)));
  }
  return tlv(0x06, Buffer.from(out));
}
const int = (n: number) => tlv(0x02, Buffer.from([n]));
const NULL = tlv(0x05);
const SHA256 = '2.16.840.1.101.3.4.2.1';
const sha256Id = tlv(0x30, oid(SHA256), NULL);

interface Parts {
  plaintext: Buffer;
  contentKey: Buffer;
  version: Buffer;
  originatorInfo: Buffer | null;
  recipientInfo: Buffer | null;
  recipients: number;
  recipientsTag: number;
  withEncryptedContentInfo: boolean;
  recipientVersion: Buffer;
  rid: Buffer | null;
  oaepParams: Buffer;
  wrapped: Buffer | null;
  recipientExtra: Buffer[];
  contentType: Buffer;
  iv: Buffer;
  ivElement: Buffer | null;
  content: ((ciphertext: Buffer) => Buffer) | null;
  contents: number;
  outerTag: number;
  contentInfoType: Buffer;
}

/** KMS's layout, written independently of the module, with any part replaced. */
function envelope(overrides: Partial<Parts> = {}): Buffer {
  const p: Parts = {
    plaintext: Buffer.from('the data key, 32 bytes of it....'),
    contentKey: randomBytes(32),
    version: int(2),
    originatorInfo: null,
    recipientInfo: null,
    recipients: 1,
    recipientsTag: 0x31,
    withEncryptedContentInfo: true,
    recipientVersion: int(2),
    rid: tlv(0x80, subjectKeyIdentifier(publicKey)),
    oaepParams: tlv(0x30, tlv(0xa0, sha256Id), tlv(0xa1, tlv(0x30, oid('1.2.840.113549.1.1.8'), sha256Id))),
    wrapped: null,
    recipientExtra: [],
    contentType: oid('1.2.840.113549.1.7.1'),
    iv: randomBytes(16),
    ivElement: null,
    content: (ciphertext) => ind(0xa0, tlv(0x04, ciphertext)),
    contents: 1,
    outerTag: 0x30,
    contentInfoType: oid('1.2.840.113549.1.7.3'),
    ...overrides,
  };
  const cipher = createCipheriv(`aes-${p.contentKey.length * 8}-cbc`, p.contentKey, p.iv.subarray(0, 16));
  const ciphertext = Buffer.concat([cipher.update(p.plaintext), cipher.final()]);
  const wrapped =
    p.wrapped ??
    publicEncrypt(
      { key: publicKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' },
      p.contentKey,
    );
  const recipient =
    p.recipientInfo ??
    tlv(
      0x30,
      p.recipientVersion,
      ...(p.rid ? [p.rid] : []),
      tlv(0x30, oid('1.2.840.113549.1.1.7'), p.oaepParams),
      tlv(0x04, wrapped),
      ...p.recipientExtra,
    );
  const encryptedContentInfo = ind(
    0x30,
    p.contentType,
    tlv(0x30, oid('2.16.840.1.101.3.4.1.42'), p.ivElement ?? tlv(0x04, p.iv)),
    ...(p.content ? [p.content(ciphertext)] : []),
  );
  const enveloped = ind(
    0x30,
    p.version,
    ...(p.originatorInfo ? [p.originatorInfo] : []),
    tlv(p.recipientsTag, ...Array(p.recipients).fill(recipient)),
    ...(p.withEncryptedContentInfo ? [encryptedContentInfo] : []),
  );
  return ind(p.outerTag, p.contentInfoType, ind(0xa0, ...Array(p.contents).fill(enveloped)));
}

const OAEP_REFUSED = 'the content key is not wrapped with RSAES-OAEP, SHA-256 and MGF1-SHA-256';
const mgf = tlv(0xa1, tlv(0x30, oid('1.2.840.113549.1.1.8'), sha256Id));
const nested = (levels: number): Buffer => (levels === 0 ? int(0) : ind(0x30, nested(levels - 1)));

describe('each check of the reader refuses with its own reason', () => {
  const keyPath = join(dir, 'reader.key.pem');
  writeFileSync(keyPath, privateKey.export({ type: 'pkcs8', format: 'pem' }));
  it('opens the hand-built layout, with or without the optional parts BER allows', () => {
    const plaintext = Buffer.from('the data key, 32 bytes of it....');
    expect(openForRecipient(envelope(), privateKey)).toEqual(plaintext);
    // originatorInfo ([0]) is skipped; the content primitive ([0] IMPLICIT) or in several segments; the
    // hash's NULL parameters absent; the OAEP parameters in another order.
    for (const parts of [
      { originatorInfo: tlv(0xa0, tlv(0x04, Buffer.from('unused'))) },
      { content: (c: Buffer) => tlv(0x80, c) },
      { content: (c: Buffer) => ind(0xa0, tlv(0x04, c.subarray(0, 5)), tlv(0x04, c.subarray(5))) },
      { oaepParams: tlv(0x30, tlv(0xa0, tlv(0x30, oid(SHA256))), mgf) },
      { oaepParams: tlv(0x30, mgf, tlv(0xa0, sha256Id)) },
    ] as Partial<Parts>[]) {
      expect(openForRecipient(envelope(parts), privateKey)).toEqual(plaintext);
    }
  });

  it.each<[string, Partial<Parts>, string]>([
    ['a ContentInfo that is a SET', { outerTag: 0x31 }, 'the envelope has no ContentInfo where CMS puts it'],
    ['an empty explicit content', { contents: 0 }, 'the envelope has no EnvelopedData where CMS puts it'],
    ['two contents', { contents: 2 }, 'the envelope holds more than one content'],
    [
      'another content type',
      { contentInfoType: oid('1.2.840.113549.1.7.1') },
      'the envelope is not EnvelopedData',
    ],
    ['an empty content type', { contentInfoType: tlv(0x06) }, 'the content type is empty'],
    [
      'a content type arc beyond 2^53',
      // Eight septets: past 2^53 once multiplied by 128, far below the bound a wrong check would set.
      { contentInfoType: tlv(0x06, Buffer.from([0x2a, ...Array(7).fill(0xff), 0x7f])) },
      'the content type has an arc out of range',
    ],
    ['version 0', { version: int(0) }, 'the EnvelopedData is not version 2'],
    [
      'a version of two octets',
      { version: tlv(0x02, Buffer.from([0, 2])) },
      'the EnvelopedData version is not a small integer',
    ],
    ['two recipients', { recipients: 2 }, 'the envelope has 2 recipients, not one'],
    [
      'recipients in a SEQUENCE',
      { recipientsTag: 0x30 },
      'the envelope has no RecipientInfos where CMS puts it',
    ],
    [
      'no encrypted content info',
      { withEncryptedContentInfo: false },
      'the envelope has no EncryptedContentInfo where CMS puts it',
    ],
    ['no recipient', { recipients: 0 }, 'the envelope has 0 recipients, not one'],
    [
      'a recipient that is no SEQUENCE',
      { recipientInfo: tlv(0x31, int(2)) },
      'the envelope has no KeyTransRecipientInfo where CMS puts it',
    ],
    [
      'a recipient of version 0',
      { recipientVersion: int(0) },
      'the recipient is not a version 2 KeyTransRecipientInfo',
    ],
    [
      'a recipient with a field more',
      { recipientExtra: [int(0)] },
      'the recipient is not a version 2 KeyTransRecipientInfo',
    ],
    [
      'a recipient named by issuer and serial',
      { rid: tlv(0x30, int(1)) },
      'the envelope has no subjectKeyIdentifier where CMS puts it',
    ],
    ['OAEP with no parameters', { oaepParams: NULL }, OAEP_REFUSED],
    ['OAEP parameters as a SET', { oaepParams: tlv(0x31, tlv(0xa0, sha256Id), mgf) }, OAEP_REFUSED],
    ['OAEP with the default hash (SHA-1)', { oaepParams: tlv(0x30, mgf) }, OAEP_REFUSED],
    [
      'OAEP with a label source',
      { oaepParams: tlv(0x30, tlv(0xa0, sha256Id), mgf, tlv(0xa2, NULL)) },
      OAEP_REFUSED,
    ],
    [
      'a hash algorithm as a SET',
      { oaepParams: tlv(0x30, tlv(0xa0, tlv(0x31, oid(SHA256))), mgf) },
      OAEP_REFUSED,
    ],
    [
      'a hash algorithm with a field more',
      { oaepParams: tlv(0x30, tlv(0xa0, tlv(0x30, oid(SHA256), NULL, NULL)), mgf) },
      OAEP_REFUSED,
    ],
    [
      'hash parameters that are an empty OCTET STRING, not NULL',
      { oaepParams: tlv(0x30, tlv(0xa0, tlv(0x30, oid(SHA256), tlv(0x04))), mgf) },
      OAEP_REFUSED,
    ],
    [
      'hash parameters that are a non-empty NULL',
      { oaepParams: tlv(0x30, tlv(0xa0, tlv(0x30, oid(SHA256), tlv(0x05, Buffer.from([0])))), mgf) },
      OAEP_REFUSED,
    ],
    [
      'a content that is not data',
      { contentType: oid('1.2.840.113549.1.7.3') },
      'the encrypted content is not data',
    ],
    ['an IV of 8 bytes', { ivElement: tlv(0x04, randomBytes(8)) }, 'the IV is not 16 bytes'],
    ['an IV that is no OCTET STRING', { ivElement: NULL }, 'the envelope has no IV where CMS puts it'],
    ['no encrypted content', { content: null }, 'the envelope carries no encrypted content'],
    [
      'an encrypted content tagged one, context-specific',
      { content: (c) => tlv(0x81, c) },
      'the envelope carries no encrypted content',
    ],
    [
      'segments nested in a constructed segment',
      { content: (c) => ind(0xa0, ind(0x24, tlv(0x04, c))) },
      'a segmented octet string holds something else',
    ],
    ['an AES-128 content key', { contentKey: randomBytes(16) }, 'the content key is not an AES-256 key'],
  ])('%s', (_, parts, reason) => {
    expect(refusal(envelope(parts))).toBe(reason);
  });

  it.each<[string, number[], string]>([
    ['one byte', [0x30], 'the envelope ends inside an element header'],
    ['a multi-byte tag', [0x3f, 0x81, 0x00], 'the envelope uses a multi-byte tag, which CMS does not'],
    ['a primitive of indefinite length', [0x04, 0x80, 0, 0], 'a primitive element has an indefinite length'],
    [
      'an indefinite length never ended',
      [0x30, 0x80, 0x02, 0x01, 0x00],
      'an indefinite-length element is not terminated',
    ],
    [
      'an indefinite length ended by one zero',
      [0x30, 0x80, 0x00],
      'an indefinite-length element is not terminated',
    ],
    ['a four-byte length', [0x30, 0x84, 0, 0, 0, 1, 0], 'an element length is not one to three bytes long'],
    ['a length cut short', [0x30, 0x82, 0x01], 'the envelope ends inside an element length'],
    // The length octets end exactly where the envelope does: read, and what they announce is missing.
    ['a length that ends the envelope', [0x30, 0x82, 0x01, 0x00], 'an element is longer than what holds it'],
    [
      'a length longer than the envelope',
      [0x30, 0x05, 0x02, 0x01],
      'an element is longer than what holds it',
    ],
    [
      'no explicit content',
      [...ind(0x30, oid('1.2.840.113549.1.7.3'))],
      'the envelope has no content where CMS puts it',
    ],
    // A three-byte length is read (BER does not require the shortest); what it holds is then refused.
    [
      'a three-byte length',
      [0x30, 0x83, 0, 0, 3, 0x02, 0x01, 0x00],
      'the envelope has no content type where CMS puts it',
    ],
  ])('%s', (_, bytes, reason) => {
    expect(refusal(Buffer.from(bytes))).toBe(reason);
  });

  it('reads nine levels of nesting and refuses ten, however the outer levels are encoded', () => {
    // Nine levels (depths 0 to 8; CMS's deepest is 5) are read, then refused for what they hold.
    expect(refusal(nested(8))).toBe('the envelope has no content type where CMS puts it');
    expect(refusal(nested(9))).toBe('the envelope nests deeper than CMS does');
    // An outer definite length: its children are read one level down.
    expect(refusal(tlv(0x30, nested(7)))).toBe('the envelope has no content type where CMS puts it');
    expect(refusal(tlv(0x30, nested(8)))).toBe('the envelope nests deeper than CMS does');
  });

  it('takes an envelope of exactly 16384 bytes and refuses one byte more', () => {
    const base = envelope().length;
    // originatorInfo is skipped by the reader: it pads the envelope to the size wanted.
    const padded = (size: number) => {
      for (let fill = size - base - 4; fill > 0; fill--) {
        const candidate = envelope({ originatorInfo: tlv(0xa0, tlv(0x04, Buffer.alloc(fill))) });
        if (candidate.length === size) return candidate;
      }
      throw new Error(`no padding gives ${size} bytes`);
    };
    expect(openForRecipient(padded(MAX_ENVELOPE_BYTES), privateKey).toString()).toBe(
      'the data key, 32 bytes of it....',
    );
    expect(refusal(padded(MAX_ENVELOPE_BYTES + 1))).toBe(
      `the envelope is larger than ${MAX_ENVELOPE_BYTES} bytes`,
    );
  });

  it('is an EnvelopeError by name, and refuses to seal for a key that is not RSA', () => {
    expect(new EnvelopeError('x').name).toBe('EnvelopeError');
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey;
    expect(() => sealForRecipient(randomBytes(32), ec)).toThrow(
      new EnvelopeError('the recipient key is not an RSA key'),
    );
  });

  it('seals every length form: short, one, two and three length octets, at each boundary', () => {
    // AES-CBC pads to the next block: 111 → 112 (short), 120 → 128 (0x81 0x80), 255 → 256 (0x82 0x01 0x00),
    // 65519 → 65520 (0x82), 65520 → 65536 (0x83 0x01 0x00 0x00).
    const cases: [number, number[]][] = [
      [111, [0x04, 0x70]],
      [120, [0x04, 0x81, 0x80]],
      [255, [0x04, 0x82, 0x01, 0x00]],
      [65_519, [0x04, 0x82, 0xff, 0xf0]],
      [65_520, [0x04, 0x83, 0x01, 0x00, 0x00]],
    ];
    for (const [size, header] of cases) {
      const plaintext = randomBytes(size);
      const sealed = sealForRecipient(plaintext, publicKey);
      expect(sealed.includes(Buffer.from(header))).toBe(true);
      // OpenSSL reads every form (the platform's reader stops at 16 KB, more than KMS's 4 KB plaintexts).
      const input = writeTemp(`sealed-${size}.ber`, sealed);
      const out = join(dir, `opened-${size}`);
      openssl('cms', '-decrypt', '-binary', '-inform', 'DER', '-in', input, '-inkey', keyPath, '-out', out);
      expect(readFileSync(out).equals(plaintext)).toBe(true);
      if (sealed.length <= MAX_ENVELOPE_BYTES)
        expect(openForRecipient(sealed, privateKey)).toEqual(plaintext);
    }
  });
});
