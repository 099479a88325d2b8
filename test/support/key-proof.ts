import { createPrivateKey, createPublicKey, type JsonWebKey, KeyObject, sign } from 'node:crypto';
import type { SignatureAlgorithm } from '../../shared/domain/identity.ts';
import { keyRegistrationStatement, keyThumbprint } from '../../shared/domain/key-registration.ts';

/**
 * A party's signature as the API takes it: base64url without padding, encoded as in JWS (RFC 7518 §3.4:
 * ECDSA as r‖s; PS256 = RSA-PSS, SHA-256, MGF1, 32-byte salt; EdDSA = Ed25519).
 */
export function signAs(alg: SignatureAlgorithm, privateKey: KeyObject, data: Uint8Array): string {
  switch (alg) {
    case 'ES256':
      return sign('sha256', data, { key: privateKey, dsaEncoding: 'ieee-p1363' }).toString('base64url');
    case 'ES384':
      return sign('sha384', data, { key: privateKey, dsaEncoding: 'ieee-p1363' }).toString('base64url');
    case 'EdDSA':
      return sign(null, data, privateKey).toString('base64url');
    case 'PS256':
      return sign('sha256', data, { key: privateKey, padding: 6, saltLength: 32 }).toString('base64url');
  }
}

/**
 * The `proof` of `POST /identities/{identityId}/keys` for the key pair of `privateKey`: its signature over
 * the key registration statement (the identity id and the RFC 7638 thumbprint of the public key).
 */
export async function keyRegistrationProof(
  privateKey: KeyObject | JsonWebKey,
  alg: SignatureAlgorithm,
  identityId: string,
): Promise<string> {
  const key =
    privateKey instanceof KeyObject ? privateKey : createPrivateKey({ key: privateKey, format: 'jwk' });
  const publicJwk = createPublicKey(key).export({ format: 'jwk' }) as Record<string, unknown>;
  const statement = keyRegistrationStatement(identityId, await keyThumbprint(publicJwk));
  return signAs(alg, key, Buffer.from(statement, 'utf8'));
}
