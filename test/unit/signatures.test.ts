import {
  constants,
  createHash,
  createPublicKey,
  generateKeyPairSync,
  generatePrimeSync,
  type JsonWebKey,
  sign,
  verify,
} from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { keyRegistrationStatement, keyThumbprint } from '../../shared/domain/key-registration.ts';
import { D, SQRT_MINUS_ONE } from '../../shared/signing/ed25519-point.ts';
import { derToJose } from '../../shared/signing/kms-signer.ts';
import { LocalSigner } from '../../shared/signing/local-signer.ts';
import {
  checkPublicJwk,
  oddPrimesBelow,
  verifyPartySignature,
  verifyWebAuthnSignature,
} from '../../shared/signing/party-signatures.ts';
import { PartyKey } from '../support/api-client.ts';
import { keyRegistrationProof } from '../support/key-proof.ts';
import { forgeUnderUnitExponent, UNIT_EXPONENT_KEY } from '../support/weak-keys.ts';

describe('party signature verification', () => {
  it.each(['ES256', 'ES384', 'EdDSA', 'PS256'] as const)('%s: accepts the right signature only', (alg) => {
    const key = new PartyKey(alg);
    const other = new PartyKey(alg);
    const message = Buffer.from('{"contentDigest":"ab","contractId":"x","version":1}');
    const signature = key.sign(message.toString());
    expect(checkPublicJwk(alg, key.publicJwk)).toEqual([]);
    expect(verifyPartySignature(alg, key.publicJwk, message, signature)).toBe(true);
    expect(verifyPartySignature(alg, other.publicJwk, message, signature)).toBe(false);
    expect(verifyPartySignature(alg, key.publicJwk, Buffer.from(`${message} `), signature)).toBe(false);
    expect(verifyPartySignature(alg, key.publicJwk, message, 'not-base64!')).toBe(false);
  });

  it('a verification that throws answers false: a key that does not import is never a valid signer', () => {
    const key = new PartyKey('ES256');
    const message = Buffer.from('payload');
    const signature = key.sign('payload');
    const offCurve = { ...key.publicJwk, y: flipLastBit(key.publicJwk.y as string) };
    // node:crypto throws on this key, so the answer comes from the catch
    expect(() => createPublicKey({ key: offCurve as JsonWebKey, format: 'jwk' })).toThrow();
    expect(verifyPartySignature('ES256', offCurve, message, signature)).toBe(false);
  });

  it('EdDSA means Ed25519: an Ed448 key never verifies, even its own valid Ed448 signature', () => {
    const { privateKey, publicKey } = generateKeyPairSync('ed448');
    const jwk = publicKey.export({ format: 'jwk' }) as Record<string, unknown>;
    const message = Buffer.from('payload');
    const signature = sign(null, message, privateKey);
    expect(verify(null, message, publicKey, signature)).toBe(true); // what the type check stands in front of
    expect(verifyPartySignature('EdDSA', jwk, message, signature.toString('base64url'))).toBe(false);
  });

  it('ES384 refuses a P-256 key, at registration and at verification', () => {
    const key = new PartyKey('ES256');
    expect(checkPublicJwk('ES384', key.publicJwk)).toEqual([
      { field: 'jwk.crv', message: 'ES384 needs crv P-384' },
    ]);
    expect(verifyPartySignature('ES384', key.publicJwk, Buffer.from('m'), key.sign('m'))).toBe(false);
  });

  it.each(['x25519', 'ed448'] as const)('EdDSA refuses an OKP key on %s (it needs crv Ed25519)', (type) => {
    const jwk = generateKeyPairSync(type as 'x25519').publicKey.export({ format: 'jwk' });
    expect(checkPublicJwk('EdDSA', jwk as Record<string, unknown>)).toEqual([
      { field: 'jwk.crv', message: 'EdDSA needs crv Ed25519' },
    ]);
  });

  it('ES256 and ES384 take r‖s of exactly 64 and 96 octets: one more or one less never verifies', () => {
    for (const [alg, size] of [
      ['ES256', 64],
      ['ES384', 96],
    ] as const) {
      const key = new PartyKey(alg);
      const signature = Buffer.from(key.sign('m'), 'base64url');
      expect(signature).toHaveLength(size);
      for (const wrong of [
        Buffer.concat([signature, Buffer.from([0])]),
        Buffer.concat([Buffer.from([0]), signature]),
        signature.subarray(0, size - 1),
      ]) {
        expect(verifyPartySignature(alg, key.publicJwk, Buffer.from('m'), wrong.toString('base64url'))).toBe(
          false,
        );
      }
    }
  });

  it('ignores JWK members of other key types (RFC 7517 §4): an RSA key with a crv, an OKP key with a y', () => {
    const rsa = new PartyKey('PS256');
    const withCrv = { ...rsa.publicJwk, crv: 'P-256' };
    expect(checkPublicJwk('PS256', withCrv)).toEqual([]);
    expect(verifyPartySignature('PS256', withCrv, Buffer.from('m'), rsa.sign('m'))).toBe(true);
    const ed = new PartyKey('EdDSA');
    const withY = { ...ed.publicJwk, y: ed.publicJwk.x };
    expect(checkPublicJwk('EdDSA', withY)).toEqual([]);
    expect(verifyPartySignature('EdDSA', withY, Buffer.from('m'), ed.sign('m'))).toBe(true);
  });

  it('refuses keys that do not fit the algorithm', () => {
    expect(checkPublicJwk('ES256', new PartyKey('ES384').publicJwk)).toEqual([
      { field: 'jwk.crv', message: 'ES256 needs crv P-256' },
    ]);
    expect(checkPublicJwk('EdDSA', new PartyKey('ES256').publicJwk)[0]!.field).toBe('jwk.kty');
    expect(checkPublicJwk('PS256', new PartyKey('ES256').publicJwk)[0]!.field).toBe('jwk.kty');
  });
});

/** The JWK `n` of a modulus (Base64urlUInt, RFC 7518 §2: big-endian, no leading zero octets). */
function modulus(n: bigint): string {
  const hex = n.toString(16);
  return Buffer.from(hex.length % 2 ? `0${hex}` : hex, 'hex').toString('base64url');
}
const integerOf = (b64: string) => BigInt(`0x${Buffer.from(b64, 'base64url').toString('hex')}`);
const rsaJwk = (bits: number) =>
  generateKeyPairSync('rsa', { modulusLength: bits }).publicKey.export({ format: 'jwk' }) as {
    kty: 'RSA';
    n: string;
    e: string;
  };
function flipLastBit(b64: string): string {
  const octets = Buffer.from(b64, 'base64url');
  octets[octets.length - 1]! ^= 1;
  return octets.toString('base64url');
}
const nIssue = (n: string, e = 'AQAB') => checkPublicJwk('PS256', { kty: 'RSA', n, e });

describe('WebAuthn signatures (ES256 as DER, EdDSA, RS256 as PKCS#1 v1.5)', () => {
  const message = Buffer.from('authenticatorData ‖ SHA-256(clientDataJSON)');
  const pairs = {
    ES256: generateKeyPairSync('ec', { namedCurve: 'P-256' }),
    EdDSA: generateKeyPairSync('ed25519'),
    RS256: generateKeyPairSync('rsa', { modulusLength: 2048 }),
  };
  const jwkOf = (alg: keyof typeof pairs) =>
    pairs[alg].publicKey.export({ format: 'jwk' }) as Record<string, unknown>;
  const signWith = (alg: keyof typeof pairs, data: Buffer = message) =>
    alg === 'EdDSA' ? sign(null, data, pairs[alg].privateKey) : sign('sha256', data, pairs[alg].privateKey);

  it.each(['ES256', 'EdDSA', 'RS256'] as const)('%s: verifies its own signature, and nothing else', (alg) => {
    const signature = signWith(alg);
    expect(verifyWebAuthnSignature(alg, jwkOf(alg), message, signature)).toBe(true);
    expect(verifyWebAuthnSignature(alg, jwkOf(alg), Buffer.from('another message'), signature)).toBe(false);
    const flipped = Buffer.from(signature);
    flipped[flipped.length - 1]! ^= 1;
    expect(verifyWebAuthnSignature(alg, jwkOf(alg), message, flipped)).toBe(false);
  });

  it('ES256 is DER (X9.62), not r‖s; RS256 is PKCS#1 v1.5, not PSS', () => {
    const raw = sign('sha256', message, { key: pairs.ES256.privateKey, dsaEncoding: 'ieee-p1363' });
    expect(verifyWebAuthnSignature('ES256', jwkOf('ES256'), message, raw)).toBe(false);
    const pss = sign('sha256', message, {
      key: pairs.RS256.privateKey,
      padding: constants.RSA_PKCS1_PSS_PADDING,
    });
    expect(verifyWebAuthnSignature('RS256', jwkOf('RS256'), message, pss)).toBe(false);
  });

  it("refuses a key of another type than the algorithm's, and a key that does not import (never throws)", () => {
    // The EdDSA key's signature under ES256, and the ES256 key named RS256: refused before any verification.
    expect(verifyWebAuthnSignature('ES256', jwkOf('EdDSA'), message, signWith('EdDSA'))).toBe(false);
    expect(verifyWebAuthnSignature('RS256', jwkOf('ES256'), message, signWith('ES256'))).toBe(false);
    const offCurve = { ...jwkOf('ES256'), y: flipLastBit(jwkOf('ES256').y as string) };
    expect(() => createPublicKey({ key: offCurve as JsonWebKey, format: 'jwk' })).toThrow();
    expect(verifyWebAuthnSignature('ES256', offCurve, message, signWith('ES256'))).toBe(false);
  });
});

describe('RSA keys anyone could sign with are refused (PS256)', () => {
  const good = rsaJwk(2048);

  it('the reported key is forgeable by anyone: a PSS encoding made with no private key verifies under e = 1', () => {
    const message = Buffer.from('{"contentDigest":"ab","contractId":"x","version":1}');
    const forged = forgeUnderUnitExponent(message);
    expect(verifyPartySignature('PS256', UNIT_EXPONENT_KEY, message, forged)).toBe(true);
    expect(checkPublicJwk('PS256', UNIT_EXPONENT_KEY)[0]).toMatchObject({ field: 'jwk.e' });
  });

  it('the reported key (e = 1, n = 2^2048 - 1) is refused on its exponent, and its modulus for the factor 3', () => {
    expect(nIssue(modulus(2n ** 2048n - 1n), 'AQ')).toEqual([
      { field: 'jwk.e', message: 'the RSA public exponent must be 65537 (AQAB)' },
    ]);
    expect(nIssue(modulus(2n ** 2048n - 1n))).toEqual([
      { field: 'jwk.n', message: 'the RSA modulus has the small prime factor 3' },
    ]);
  });

  it.each([
    ['1', 'AQ'],
    ['3', 'Aw'],
    ['17', 'EQ'],
    ['2^32 + 1', 'AQAAAAE'],
    ['65537 with a leading zero octet', 'AAEAAQ'],
  ])('the exponent must be exactly 65537 (AQAB): e = %s is refused', (_, e) => {
    expect(nIssue(good.n, e)[0]).toMatchObject({ field: 'jwk.e' });
  });

  it('the modulus must have no leading zero octet (RFC 7518 §6.3.1.1)', () => {
    const padded = Buffer.concat([Buffer.alloc(1), Buffer.from(good.n, 'base64url')]).toString('base64url');
    expect(nIssue(padded)).toEqual([
      { field: 'jwk.n', message: 'the RSA modulus has a leading zero octet (RFC 7518 §6.3.1.1)' },
    ]);
  });

  it('the modulus must be canonical base64url (no characters outside the alphabet, no padding)', () => {
    expect(nIssue(`${good.n}!`)[0]).toEqual({ field: 'jwk.n', message: 'must be canonical base64url' });
    expect(nIssue(`${good.n}==`)[0]).toEqual({ field: 'jwk.n', message: 'must be canonical base64url' });
  });

  it('the modulus must be at least 2048 bits (2047 is refused, 2048 accepted)', () => {
    expect(nIssue(rsaJwk(2047).n)).toEqual([
      { field: 'jwk.n', message: 'the RSA modulus must be at least 2048 bits' },
    ]);
    expect(nIssue(rsaJwk(1024).n)[0]!.message).toMatch(/at least 2048/);
    expect(nIssue(good.n)).toEqual([]);
  });

  it('the modulus must be at most 4096 bits (4096 accepted, 4097 refused)', () => {
    expect(nIssue(rsaJwk(4096).n)).toEqual([]);
    // the size is checked first: 2^4096 + 1 has 4097 bits
    expect(nIssue(modulus(2n ** 4096n + 1n))).toEqual([
      { field: 'jwk.n', message: 'the RSA modulus must be at most 4096 bits' },
    ]);
  });

  it('the modulus must be odd', () => {
    // twice a real 2047-bit modulus: 2048 bits, no odd factor below 2^16, not prime, not a power
    expect(nIssue(modulus(2n * integerOf(rsaJwk(2047).n)))).toEqual([
      { field: 'jwk.n', message: 'the RSA modulus is even' },
    ]);
  });

  it('trial-divides by every odd prime below 2^16: 6541 of them, from 3 to 65521', () => {
    const primes = oddPrimesBelow(1 << 16);
    expect(primes).toHaveLength(6541); // π(2^16) = 6542, less the prime 2
    expect(primes.slice(0, 8)).toEqual([3n, 5n, 7n, 11n, 13n, 17n, 19n, 23n]);
    expect(primes.at(-1)).toBe(65521n);
    expect(oddPrimesBelow(30)).toEqual([3n, 5n, 7n, 11n, 13n, 17n, 19n, 23n, 29n]);
    expect(oddPrimesBelow(3)).toEqual([]);
  });

  it('the modulus must have no prime factor below 2^16 (65521, the largest, is found)', () => {
    const big = generatePrimeSync(2040, { bigint: true });
    expect(nIssue(modulus(65521n * big))).toEqual([
      { field: 'jwk.n', message: 'the RSA modulus has the small prime factor 65521' },
    ]);
  });

  it('the modulus must not be prime (then φ(n) = n - 1 is known to everyone)', () => {
    expect(nIssue(modulus(generatePrimeSync(2048, { bigint: true })))).toEqual([
      { field: 'jwk.n', message: 'the RSA modulus is prime' },
    ]);
  });

  it('the modulus must not be a perfect power: a square p² or a cube q³ is refused', () => {
    const p = generatePrimeSync(1024, { bigint: true });
    const q = generatePrimeSync(683, { bigint: true });
    for (const n of [p * p, q * q * q]) {
      expect(nIssue(modulus(n))).toEqual([{ field: 'jwk.n', message: 'the RSA modulus is a perfect power' }]);
    }
  });

  it('a product of two large primes is accepted', () => {
    const p = generatePrimeSync(1024, { bigint: true });
    const q = generatePrimeSync(1024, { bigint: true });
    expect(nIssue(modulus(p * q))).toEqual([]);
  });
});

describe('EC keys', () => {
  const jwk = new PartyKey('ES256').publicJwk as { x: string; y: string };
  const P256 = 2n ** 256n - 2n ** 224n + 2n ** 192n + 2n ** 96n - 1n;

  it('node:crypto refuses a point off the curve, and a coordinate ≥ p, and checkPublicJwk relies on it', () => {
    const offCurve = { ...jwk, y: flipLastBit(jwk.y) };
    expect(checkPublicJwk('ES256', offCurve)).toEqual([{ field: 'jwk', message: 'not a valid public key' }]);
    // (0, √b) is on P-256; x = p names the same point with an out-of-range coordinate
    const b = 0x5ac635d8aa3a93e7b3ebbd55769886bc651d06b0cc53b0f63bce3c3e27d2604bn;
    let y = 1n;
    for (let base = b, e = (P256 + 1n) / 4n; e > 0n; e >>= 1n, base = (base * base) % P256)
      if (e & 1n) y = (y * base) % P256;
    const coordinate = (v: bigint) =>
      Buffer.from(v.toString(16).padStart(64, '0'), 'hex').toString('base64url');
    const onCurve = { kty: 'EC', crv: 'P-256', x: coordinate(0n), y: coordinate(y) };
    expect(checkPublicJwk('ES256', onCurve)).toEqual([]);
    expect(checkPublicJwk('ES256', { ...onCurve, x: coordinate(P256) })).toEqual([
      { field: 'jwk', message: 'not a valid public key' },
    ]);
  });

  it('coordinates must be full-size canonical base64url (RFC 7518 §6.2.1.2), which node:crypto does not check', () => {
    const padded = Buffer.concat([Buffer.alloc(1), Buffer.from(jwk.x, 'base64url')]).toString('base64url');
    const junk = `${jwk.x}!`;
    for (const x of [padded, junk]) {
      expect(() => createPublicKey({ key: { ...jwk, x } as JsonWebKey, format: 'jwk' })).not.toThrow();
      expect(checkPublicJwk('ES256', { ...jwk, x })).toEqual([
        {
          field: 'jwk.x',
          message: 'must be the 32-octet coordinate in canonical base64url (RFC 7518 §6.2.1.2)',
        },
      ]);
    }
    const { y: _, ...noY } = jwk;
    expect(checkPublicJwk('ES256', { ...noY, kty: 'EC', crv: 'P-256' })).toEqual([
      {
        field: 'jwk.y',
        message: 'must be the 32-octet coordinate in canonical base64url (RFC 7518 §6.2.1.2)',
      },
    ]);
    expect(checkPublicJwk('EdDSA', { kty: 'OKP', crv: 'Ed25519' })[0]!.field).toBe('jwk.x');
    expect(checkPublicJwk('PS256', { kty: 'RSA', e: 'AQAB' })[0]!.field).toBe('jwk.n');
    const shortY = Buffer.from(jwk.y, 'base64url').subarray(1).toString('base64url');
    expect(checkPublicJwk('ES256', { ...jwk, y: shortY })[0]!.field).toBe('jwk.y');
    const p384 = new PartyKey('ES384').publicJwk;
    expect(checkPublicJwk('ES384', p384)).toEqual([]);
    expect(checkPublicJwk('ES384', { ...p384, y: `${p384.y}A` })[0]!.message).toMatch(/48-octet/);
  });
});

describe('Ed25519 keys', () => {
  const ed = (hex: string) => ({
    kty: 'OKP',
    crv: 'Ed25519',
    x: Buffer.from(hex, 'hex').toString('base64url'),
  });
  const issue = (hex: string) => checkPublicJwk('EdDSA', ed(hex));
  const SMALL = 'has small order: [8]A is the identity, so signatures under it can be forged';
  const NON_CANONICAL_Y = 'is not canonical: y ≥ p (RFC 8032 §5.1.3)';
  const NON_CANONICAL_X = 'is not canonical: x = 0 with the sign bit set (RFC 8032 §5.1.3)';
  const ff = 'ff'.repeat(30);
  /** libsodium's small-order blocklist (crypto_core/ed25519/ref10/ed25519_ref10.c), each y with both signs of x. */
  const BLOCKLIST: [string, string, string, string][] = [
    ['0 (order 4)', '00'.repeat(32), SMALL, SMALL],
    ['1 (the identity)', `01${'00'.repeat(31)}`, SMALL, NON_CANONICAL_X],
    ['order 8', '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05', SMALL, SMALL],
    ['order 8', 'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a', SMALL, SMALL],
    ['p - 1 (order 2)', `ec${ff}7f`, SMALL, NON_CANONICAL_X],
    ['p (0 spelled non-canonically)', `ed${ff}7f`, NON_CANONICAL_Y, NON_CANONICAL_Y],
    ['p + 1 (1 spelled non-canonically)', `ee${ff}7f`, NON_CANONICAL_Y, NON_CANONICAL_Y],
  ];

  it.each(BLOCKLIST)('refuses y = %s with either sign of x', (_, hex, positive, negative) => {
    const signed = Buffer.from(hex, 'hex');
    signed[31]! |= 0x80;
    // node:crypto imports every one of them: the refusal is ours
    expect(() => createPublicKey({ key: ed(hex) as JsonWebKey, format: 'jwk' })).not.toThrow();
    expect(issue(hex)).toEqual([{ field: 'jwk.x', message: `the Ed25519 public key ${positive}` }]);
    expect(issue(signed.toString('hex'))).toEqual([
      { field: 'jwk.x', message: `the Ed25519 public key ${negative}` },
    ]);
  });

  it('refuses an encoding that is not a point on the curve (y = 2)', () => {
    expect(issue(`02${'00'.repeat(31)}`)).toEqual([
      { field: 'jwk.x', message: 'the Ed25519 public key is not a point on Ed25519' },
    ]);
  });

  it('refuses a point with a small-order component (y = 3: [L]A is not the identity), which node:crypto imports', () => {
    const hex = `03${'00'.repeat(31)}`;
    expect(() => createPublicKey({ key: ed(hex) as JsonWebKey, format: 'jwk' })).not.toThrow();
    expect(issue(hex)).toEqual([
      {
        field: 'jwk.x',
        message:
          'the Ed25519 public key is not in the prime-order subgroup: [L]A is not the identity (a small-order component)',
      },
    ]);
  });

  it('accepts honest keys: the RFC 8032 §7.1 test 1 key and freshly generated ones', () => {
    expect(issue('d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a')).toEqual([]);
    for (let i = 0; i < 20; i++) expect(checkPublicJwk('EdDSA', new PartyKey('EdDSA').publicJwk)).toEqual([]);
  });

  it('x must be canonical base64url of 32 octets', () => {
    const { x } = new PartyKey('EdDSA').publicJwk as { x: string };
    expect(checkPublicJwk('EdDSA', { kty: 'OKP', crv: 'Ed25519', x: `${x}!` })).toEqual([
      { field: 'jwk.x', message: 'must be canonical base64url' },
    ]);
    expect(
      checkPublicJwk('EdDSA', {
        kty: 'OKP',
        crv: 'Ed25519',
        x: Buffer.from(x, 'base64url').subarray(1).toString('base64url'),
      }),
    ).toEqual([{ field: 'jwk.x', message: 'the Ed25519 public key must be 32 octets (RFC 8037 §2)' }]);
  });
});

describe('key registration statement (proof of possession)', () => {
  it('thumbprints keys as RFC 7638 §3.1 and RFC 8037 Appendix A.3 do', async () => {
    expect(await keyThumbprint(RFC_7638_KEY)).toBe('NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs');
    expect(await keyThumbprint(RFC_8037_KEY)).toBe('kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k');
  });

  it('is the RFC 8785 JSON of the identity id, the key thumbprint and the purpose', () => {
    expect(
      keyRegistrationStatement(
        '11111111-1111-4111-8111-111111111111',
        'kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k',
      ),
    ).toBe(
      '{"identityId":"11111111-1111-4111-8111-111111111111","keyThumbprint":"kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k","purpose":"key-registration"}',
    );
  });

  it('names the identity only in canonical lower-case form (another spelling would never verify)', () => {
    expect(() => keyRegistrationStatement('3F2504E0-4F89-41D3-9A0C-0305E82C3301', 't')).toThrow(TypeError);
  });

  it.each(['ES256', 'ES384', 'EdDSA', 'PS256'] as const)(
    '%s: the test helper proof verifies over the statement for its identity only',
    async (alg) => {
      const key = new PartyKey(alg);
      const id = '11111111-1111-4111-8111-111111111111';
      const proof = await keyRegistrationProof(key.privateKey, alg, id);
      const statement = (who: string) =>
        Buffer.from(
          keyRegistrationStatement(
            who,
            createHash('sha256').update(thumbprintInput(key.publicJwk)).digest('base64url'),
          ),
        );
      expect(verifyPartySignature(alg, key.publicJwk, statement(id), proof)).toBe(true);
      expect(
        verifyPartySignature(alg, key.publicJwk, statement('22222222-2222-4222-8222-222222222222'), proof),
      ).toBe(false);
    },
  );
});

/** RFC 7638 §3.2 by hand (required members, lexicographic order, no whitespace): an independent check of jose. */
function thumbprintInput(jwk: Record<string, unknown>): string {
  const members = { EC: ['crv', 'kty', 'x', 'y'], OKP: ['crv', 'kty', 'x'], RSA: ['e', 'kty', 'n'] }[
    jwk.kty as 'EC'
  ];
  return `{${members.map((m) => `"${m}":"${jwk[m]}"`).join(',')}}`;
}

const RFC_7638_KEY = {
  kty: 'RSA',
  n: '0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw',
  e: 'AQAB',
  alg: 'RS256',
  kid: '2011-04-29',
};
const RFC_8037_KEY = { kty: 'OKP', crv: 'Ed25519', x: '11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo' };

describe('platform signing', () => {
  it('converts DER ECDSA signatures (as KMS returns them) to JWS r‖s', () => {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    for (let i = 0; i < 50; i++) {
      const message = Buffer.from(`message ${i}`);
      const der = sign('sha256', message, privateKey);
      const jose = derToJose(der, 32);
      expect(jose).toHaveLength(64);
      expect(verify('sha256', message, { key: publicKey, dsaEncoding: 'ieee-p1363' }, jose)).toBe(true);
    }
    expect(() => derToJose(Buffer.from([0x31, 0x00]), 32)).toThrow(/malformed/);
  });

  it('countersigns so that the published JWK verifies it as ES256', async () => {
    const signer = await LocalSigner.create();
    const message = Buffer.from('payload');
    const signed = await signer.sign(message);
    const jwk = signed.key.jwk;
    expect(jwk).toMatchObject({ kid: signed.kid, alg: 'ES256', use: 'sig', kty: 'EC', crv: 'P-256' });
    expect(jwk).not.toHaveProperty('d');
    const key = createPublicKey({ key: jwk as import('node:crypto').JsonWebKey, format: 'jwk' });
    expect(
      verify(
        'sha256',
        message,
        { key, dsaEncoding: 'ieee-p1363' },
        Buffer.from(signed.signature, 'base64url'),
      ),
    ).toBe(true);
  });
});

describe('the Ed25519 constants the point checks use', () => {
  const p = 2n ** 255n - 19n;
  const mod = (a: bigint) => ((a % p) + p) % p;

  it('d is -121665/121666 and SQRT_MINUS_ONE squares to -1, modulo 2^255 - 19 (RFC 8032 §5.1)', () => {
    expect(mod(D * 121666n + 121665n)).toBe(0n);
    expect(mod(SQRT_MINUS_ONE * SQRT_MINUS_ONE + 1n)).toBe(0n);
    expect(D).toBeLessThan(p);
    expect(SQRT_MINUS_ONE).toBeLessThan(p);
  });
});
