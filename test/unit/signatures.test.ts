import { createPublicKey, generateKeyPairSync, sign, verify } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { derToJose } from '../../shared/signing/kms-signer.ts';
import { LocalSigner } from '../../shared/signing/local-signer.ts';
import { checkPublicJwk, verifyPartySignature } from '../../shared/signing/party-signatures.ts';
import { PartyKey } from '../support/api-client.ts';

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

  it('refuses keys that do not fit the algorithm', () => {
    expect(checkPublicJwk('ES256', new PartyKey('ES384').publicJwk)).toEqual([
      { field: 'jwk.crv', message: 'ES256 needs crv P-256' },
    ]);
    expect(checkPublicJwk('EdDSA', new PartyKey('ES256').publicJwk)[0]!.field).toBe('jwk.kty');
    const small = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({
      format: 'jwk',
    }) as Record<string, unknown>;
    expect(checkPublicJwk('PS256', small)[0]!.message).toMatch(/2048/);
    expect(checkPublicJwk('ES256', { kty: 'EC', crv: 'P-256', x: 'AAAA', y: 'AAAA' })[0]!.message).toBe(
      'not a valid public key',
    );
  });
});

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
    const [jwk] = await signer.publicKeys();
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
