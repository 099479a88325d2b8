import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  EnvelopeSealer,
  LocalDataKeys,
  type SealedSecret,
  SealerError,
} from '../../shared/signing/secret-sealer.ts';

const KEY_ID = 'arn:aws:kms:eu-central-1:000000000000:key/credential';
const context = { purpose: 'totp-seed', identityId: 'i-1', credentialId: 'c-1' };
const secret = Buffer.from('a 160-bit seed.....', 'utf8');
const sealer = new EnvelopeSealer(LocalDataKeys.create({ keyId: KEY_ID }));

const flip = (b64: string, at = 0) => {
  const bytes = Buffer.from(b64, 'base64');
  bytes[at] = bytes[at]! ^ 1;
  return bytes.toString('base64');
};

describe('envelope sealing (AES-256-GCM under a wrapped data key)', () => {
  it('opens what it sealed, with the same context, and stores nothing of the secret in the clear', async () => {
    const sealed = await sealer.seal(secret, context);
    expect(sealed).toMatchObject({ v: 1, keyId: KEY_ID });
    expect(Buffer.from(sealed.iv, 'base64')).toHaveLength(12);
    expect(Buffer.from(sealed.tag, 'base64')).toHaveLength(16);
    expect(JSON.stringify(sealed)).not.toContain(secret.toString('base64'));
    expect(Buffer.from(await sealer.open(sealed, context)).equals(secret)).toBe(true);
    // The member order of a context does not matter (it is bound as RFC 8785 JSON).
    const reordered = { credentialId: 'c-1', identityId: 'i-1', purpose: 'totp-seed' };
    expect(Buffer.from(await sealer.open(sealed, reordered)).equals(secret)).toBe(true);
  });

  it('draws a fresh data key and IV for every secret', async () => {
    const [a, b] = [await sealer.seal(secret, context), await sealer.seal(secret, context)];
    expect(a.wrappedKey).not.toBe(b.wrappedKey);
    expect(a.iv).not.toBe(b.iv);
    expect(a.ciphertext).not.toBe(b.ciphertext);
  });

  it.each([
    ['another credential', { ...context, credentialId: 'c-2' }],
    ['another identity', { ...context, identityId: 'i-2' }],
    ['another purpose', { ...context, purpose: 'other' }],
    ['a member more', { ...context, extra: 'x' }],
    ['a member less', { purpose: 'totp-seed', identityId: 'i-1' }],
  ])('opens for no other context: %s', async (_name, other) => {
    const sealed = await sealer.seal(secret, context);
    await expect(sealer.open(sealed, other)).rejects.toBeInstanceOf(SealerError);
  });

  it.each([
    ['the ciphertext', (s: SealedSecret) => ({ ...s, ciphertext: flip(s.ciphertext) })],
    ['the tag', (s: SealedSecret) => ({ ...s, tag: flip(s.tag) })],
    ['the IV', (s: SealedSecret) => ({ ...s, iv: flip(s.iv) })],
    ['the wrapped key', (s: SealedSecret) => ({ ...s, wrappedKey: flip(s.wrappedKey, 20) })],
    ['the IV length', (s: SealedSecret) => ({ ...s, iv: Buffer.alloc(8).toString('base64') })],
    ['the key id', (s: SealedSecret) => ({ ...s, keyId: `${KEY_ID}-other` })],
    ['the format', (s: SealedSecret) => ({ ...s, v: 2 as 1 })],
  ])('refuses a sealed secret with %s changed', async (_name, change) => {
    const sealed = await sealer.seal(secret, context);
    await expect(sealer.open(change(sealed), context)).rejects.toBeInstanceOf(SealerError);
  });

  it('opens nothing sealed under another wrapping key', async () => {
    const sealed = await sealer.seal(secret, context);
    const other = new EnvelopeSealer(LocalDataKeys.create({ keyId: KEY_ID }));
    await expect(other.open(sealed, context)).rejects.toBeInstanceOf(SealerError);
  });

  it('keeps the local wrapping key in its file (mode 0600), so sealed secrets survive a restart', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sealer-'));
    try {
      const keyFile = join(dir, 'credential-key');
      const sealed = await new EnvelopeSealer(LocalDataKeys.create({ keyId: KEY_ID, keyFile })).seal(
        secret,
        context,
      );
      expect(statSync(keyFile).mode & 0o777).toBe(0o600);
      const reopened = new EnvelopeSealer(LocalDataKeys.create({ keyId: KEY_ID, keyFile }));
      expect(Buffer.from(await reopened.open(sealed, context)).equals(secret)).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses a wrapping key of the wrong size', () => {
    expect(() => new LocalDataKeys(new Uint8Array(16), KEY_ID)).toThrow(/32 bytes/);
  });
});
