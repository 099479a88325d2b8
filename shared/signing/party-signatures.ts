import { constants, createPublicKey, type KeyObject, verify } from 'node:crypto';
import type { FieldIssue } from '../domain/errors.ts';
import type { SignatureAlgorithm } from '../domain/identity.ts';

/**
 * Verification of parties' signatures with their registered public JWKs (JWS algorithms, RFC 7518):
 * ES256/ES384 as r‖s, EdDSA (Ed25519), PS256 (RSA-PSS, SHA-256, MGF1, 32-byte salt).
 */
const CURVE_OF: Partial<Record<SignatureAlgorithm, { kty: string; crv?: string }>> = {
  ES256: { kty: 'EC', crv: 'P-256' },
  ES384: { kty: 'EC', crv: 'P-384' },
  EdDSA: { kty: 'OKP', crv: 'Ed25519' },
  PS256: { kty: 'RSA' },
};

/** Checks that `jwk` is a usable public key for `alg`; returns the problems found (empty when fine). */
export function checkPublicJwk(alg: SignatureAlgorithm, jwk: Record<string, unknown>): FieldIssue[] {
  const expected = CURVE_OF[alg]!;
  if (jwk.kty !== expected.kty) return [{ field: 'jwk.kty', message: `${alg} needs kty ${expected.kty}` }];
  if (expected.crv && jwk.crv !== expected.crv)
    return [{ field: 'jwk.crv', message: `${alg} needs crv ${expected.crv}` }];
  let key: KeyObject;
  try {
    key = importJwk(jwk);
  } catch {
    return [{ field: 'jwk', message: 'not a valid public key' }];
  }
  if (alg === 'PS256') {
    const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
    if (bits < 2048) return [{ field: 'jwk.n', message: 'RSA keys must be at least 2048 bits' }];
  }
  return [];
}

function importJwk(jwk: Record<string, unknown>): KeyObject {
  const { kty, crv, x, y, n, e } = jwk;
  const material = kty === 'RSA' ? { kty, n, e } : kty === 'EC' ? { kty, crv, x, y } : { kty, crv, x };
  return createPublicKey({ key: material as import('node:crypto').JsonWebKey, format: 'jwk' });
}

/** True only when `signature` (base64url) is `alg`'s valid signature of `message` under `jwk`. Never throws. */
export function verifyPartySignature(
  alg: SignatureAlgorithm,
  jwk: Record<string, unknown>,
  message: Uint8Array,
  signature: string,
): boolean {
  try {
    const key = importJwk(jwk);
    const sig = Buffer.from(signature, 'base64url');
    switch (alg) {
      case 'ES256':
        return sig.length === 64 && verify('sha256', message, { key, dsaEncoding: 'ieee-p1363' }, sig);
      case 'ES384':
        return sig.length === 96 && verify('sha384', message, { key, dsaEncoding: 'ieee-p1363' }, sig);
      case 'EdDSA':
        return verify(null, message, key, sig);
      case 'PS256':
        return verify(
          'sha256',
          message,
          { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST },
          sig,
        );
    }
  } catch {
    return false;
  }
}
