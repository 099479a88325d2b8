import { createHash } from 'node:crypto';

/**
 * Keys anyone can sign with, as a hostile party would register them, and the forgeries they allow. The
 * reported case: PS256 with e = 1 and n = 2^2048 - 1, under which s^e mod n = s, so a "signature" is the
 * message's own EMSA-PSS encoding, computed without any private key.
 */
export const UNIT_EXPONENT_MODULUS = 2n ** 2048n - 1n;

export const UNIT_EXPONENT_KEY = {
  kty: 'RSA',
  n: Buffer.from(UNIT_EXPONENT_MODULUS.toString(16), 'hex').toString('base64url'),
  e: 'AQ',
} as const;

/** MGF1 with SHA-256 (RFC 8017 §B.2.1). */
function mgf1(seed: Buffer, length: number): Buffer {
  const blocks: Buffer[] = [];
  for (let counter = 0; blocks.length * 32 < length; counter++) {
    const c = Buffer.alloc(4);
    c.writeUInt32BE(counter);
    blocks.push(createHash('sha256').update(seed).update(c).digest());
  }
  return Buffer.concat(blocks).subarray(0, length);
}

/**
 * A PS256 "signature" of `message` under {@link UNIT_EXPONENT_KEY}: EMSA-PSS-ENCODE (RFC 8017 §9.1.1,
 * SHA-256, MGF1, 32-byte salt) with emBits = 2047, taken as the signature itself (since s^1 = s).
 */
export function forgeUnderUnitExponent(message: Uint8Array): string {
  const emLen = 256;
  const salt = Buffer.alloc(32, 7);
  const mHash = createHash('sha256').update(message).digest();
  const h = createHash('sha256').update(Buffer.alloc(8)).update(mHash).update(salt).digest();
  const db = Buffer.concat([Buffer.alloc(emLen - 32 - 32 - 2), Buffer.from([1]), salt]);
  const mask = mgf1(h, emLen - 32 - 1);
  const maskedDb = Buffer.from(db.map((b, i) => b ^ mask[i]!));
  maskedDb[0]! &= 0x7f; // 8·emLen - emBits = 1 leftmost bit cleared
  return Buffer.concat([maskedDb, h, Buffer.from([0xbc])]).toString('base64url');
}
