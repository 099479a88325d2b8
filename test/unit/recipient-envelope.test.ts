/**
 * `CiphertextForRecipient` (shared/keys/recipient-envelope.ts): KMS's side seals, the enclave's side opens,
 * and both agree with an independent CMS implementation, OpenSSL's (`openssl cms`, installed by .ci/run):
 * OpenSSL opens what the KMS stand-in seals, and the enclave's reader opens what OpenSSL seals in BER with
 * indefinite lengths (`-stream`), the encoding KMS answers with.
 */
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync, type KeyObject, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
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
