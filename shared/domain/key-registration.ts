import { calculateJwkThumbprint, type JWK } from 'jose';
import { canonicalJson } from './canonical-json.ts';
import { isCanonicalId } from './identifiers.ts';

/**
 * Proof of possession for key registration: registering a public key proves control of its private key by
 * a signature, made with that key, over a statement that names the identity the key is registered for.
 * Naming the identity makes one party's proof useless to any other (a copied key with a copied proof is
 * refused), and the statement needs no server state (no challenge to fetch first).
 */
export const KEY_REGISTRATION_PURPOSE = 'key-registration';

/**
 * The RFC 7638 thumbprint of a public JWK: SHA-256 over the JSON of its type's required members (RFC 7638
 * §3.2, RFC 8037 §2 for OKP), base64url without padding. It identifies the key material whatever its kid.
 * @example
 * await keyThumbprint({ kty: 'OKP', crv: 'Ed25519', x: '11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo' });
 * // 'kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k' (RFC 8037 Appendix A.3)
 */
export function keyThumbprint(jwk: Record<string, unknown>): Promise<string> {
  return calculateJwkThumbprint(jwk as JWK, 'sha256');
}

/**
 * What the `proof` of `POST /identities/{identityId}/keys` signs: the UTF-8 bytes of the RFC 8785 JSON of
 * `{ identityId, keyThumbprint, purpose: "key-registration" }`, the id in its canonical lower-case form.
 * @example
 * keyRegistrationStatement('11111111-1111-4111-8111-111111111111', 'kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k');
 * // '{"identityId":"11111111-1111-4111-8111-111111111111","keyThumbprint":"kPrK_…","purpose":"key-registration"}'
 * @throws TypeError when `identityId` is not a canonical (lower-case) UUID: a proof over another spelling
 *   would never verify.
 */
export function keyRegistrationStatement(identityId: string, keyThumbprint: string): string {
  if (!isCanonicalId(identityId))
    throw new TypeError(`${identityId} is not an identity id in canonical lower-case form`);
  return canonicalJson({ identityId, keyThumbprint, purpose: KEY_REGISTRATION_PURPOSE });
}
