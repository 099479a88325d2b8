import { createHash, timingSafeEqual } from 'node:crypto';
import type { CborMap, CborValue } from '../attestation/cbor.ts';
import { decodeCbor, decodeCborPrefix } from '../attestation/cbor.ts';
import { UnprocessableError } from '../domain/errors.ts';
import type { AuthenticationResponse, RegistrationResponse } from '../domain/webauthn.ts';
import {
  checkPublicJwk,
  decodeBase64url,
  verifyWebAuthnSignature,
  type WebAuthnAlgorithm,
} from './party-signatures.ts';

/**
 * The platform's WebAuthn relying party (W3C WebAuthn Level 3): the registration ceremony (§7.1) and the
 * verification of an assertion (§7.2), the one verifier of passkey signatures: the signing routes use it,
 * and so does the offline evidence check, so what a third party accepts is what the server accepted.
 *
 * Written on `node:crypto` and the project's strict CBOR decoder rather than on `@simplewebauthn/server`,
 * whose bundle (over 400 KB, about 100 ms to load) would have tripled the signing routes' cold start; the
 * test suite checks this verifier against that library on every ceremony it runs (test/unit/webauthn.test.ts).
 *
 * Attestation: the platform asks for none (`attestation: "none"`), as passkey providers answer; it accepts
 * the `none` format and packed self-attestation (signed by the credential itself), and refuses formats it
 * cannot verify rather than trusting them unchecked.
 */

/** Where the ceremonies may run: the relying party id and the exact origins allowed (configuration). */
export interface RelyingParty {
  readonly id: string;
  readonly name: string;
  readonly origins: readonly string[];
}

/** The authenticator data (WebAuthn §6.1), parsed. */
export interface AuthenticatorData {
  readonly rpIdHash: Buffer;
  readonly userPresent: boolean;
  readonly userVerified: boolean;
  readonly backupEligible: boolean;
  readonly backedUp: boolean;
  readonly signCount: number;
  /** Present when the AT flag is set (a registration). */
  readonly attested?: { readonly aaguid: string; readonly credentialId: Buffer; readonly cose: Buffer };
}

/** A credential public key converted from COSE: its algorithm and its JWK. */
export interface CredentialKey {
  readonly alg: WebAuthnAlgorithm;
  readonly jwk: Record<string, unknown>;
}

/** A registration that passed every check: what is stored. */
export interface VerifiedRegistration extends CredentialKey {
  readonly credentialId: string;
  readonly cose: string;
  readonly aaguid: string;
  readonly signCount: number;
  readonly backupEligible: boolean;
}

/** An assertion that passed every check (the counter is the caller's to compare with the stored one). */
export interface VerifiedAssertion {
  readonly signCount: number;
  readonly backedUp: boolean;
  readonly origin: string;
}

function refuse(type: string, title: string, detail: string, field = 'response'): never {
  throw new UnprocessableError(type, title, detail, [{ field, message: detail }]);
}

function malformed(detail: string, field = 'response'): never {
  refuse('malformed-webauthn-response', 'Malformed WebAuthn response', detail, field);
}

/** Octets of a canonical base64url string (the schema checked the alphabet; this checks the padding bits). */
function octets(value: string, field: string): Buffer {
  return decodeBase64url(value) ?? malformed('not canonical base64url', field);
}

const sha256 = (data: Uint8Array | string) => createHash('sha256').update(data).digest();

const FLAG_UP = 0x01;
const FLAG_UV = 0x04;
const FLAG_BE = 0x08;
const FLAG_BS = 0x10;
const FLAG_AT = 0x40;
const FLAG_ED = 0x80;

/** Parses authenticator data (WebAuthn §6.1); anything malformed is a 422 naming the field. */
export function parseAuthenticatorData(
  data: Buffer,
  field = 'response.authenticatorData',
): AuthenticatorData {
  if (data.length < 37) malformed(`authenticator data is ${data.length} bytes, at least 37 expected`, field);
  const flags = data[32]!;
  const backupEligible = (flags & FLAG_BE) !== 0;
  const backedUp = (flags & FLAG_BS) !== 0;
  // §6.1.3: a credential that is backed up is backup eligible.
  if (backedUp && !backupEligible)
    malformed('the backup state flag is set without backup eligibility', field);
  let offset = 37;
  let attested: AuthenticatorData['attested'];
  if (flags & FLAG_AT) {
    if (data.length < offset + 18) malformed('attested credential data is truncated', field);
    const aaguid = data.subarray(offset, offset + 16).toString('hex');
    const idLength = data.readUInt16BE(offset + 16);
    offset += 18;
    if (idLength < 16 || idLength > 1023) malformed(`a credential id of ${idLength} bytes`, field);
    if (data.length < offset + idLength) malformed('the credential id is truncated', field);
    const credentialId = data.subarray(offset, offset + idLength);
    offset += idLength;
    let length: number;
    try {
      ({ length } = decodeCborPrefix(data.subarray(offset), { maxDepth: 4, maxItems: 16 }));
    } catch (error) {
      refuse(
        'malformed-cose-key',
        'Malformed COSE key',
        `the credential public key: ${(error as Error).message}`,
        field,
      );
    }
    attested = {
      aaguid: `${aaguid.slice(0, 8)}-${aaguid.slice(8, 12)}-${aaguid.slice(12, 16)}-${aaguid.slice(16, 20)}-${aaguid.slice(20)}`,
      credentialId: Buffer.from(credentialId),
      cose: Buffer.from(data.subarray(offset, offset + length)),
    };
    offset += length;
  }
  if (flags & FLAG_ED) {
    try {
      const { value, length } = decodeCborPrefix(data.subarray(offset), { maxDepth: 8, maxItems: 64 });
      if (value.type !== 'map') malformed('the extensions are not a CBOR map', field);
      offset += length;
    } catch (error) {
      if (error instanceof UnprocessableError) throw error;
      malformed(`the extensions: ${(error as Error).message}`, field);
    }
  }
  if (offset !== data.length) malformed(`${data.length - offset} unexpected trailing byte(s)`, field);
  return {
    rpIdHash: Buffer.from(data.subarray(0, 32)),
    userPresent: (flags & FLAG_UP) !== 0,
    userVerified: (flags & FLAG_UV) !== 0,
    backupEligible,
    backedUp,
    signCount: data.readUInt32BE(33),
    ...(attested ? { attested } : {}),
  };
}

function mapGet(map: CborMap, key: number | string): CborValue | undefined {
  return map.entries.get(key);
}

function integer(value: CborValue | undefined): number | undefined {
  return value?.type === 'integer' && typeof value.value === 'number' ? value.value : undefined;
}

function bytes(value: CborValue | undefined): Buffer | undefined {
  return value?.type === 'bytes' ? Buffer.from(value.value) : undefined;
}

/**
 * A COSE_Key (RFC 9052 §7, RFC 9053) of an algorithm the platform accepts, as a JWK, checked as every party
 * key is (on the curve, not of small order, RSA of 2048–4096 bits with a sound modulus). 422
 * `unsupported-algorithm` or `malformed-cose-key` otherwise.
 */
export function coseToJwk(cose: Uint8Array, field = 'response.attestationObject'): CredentialKey {
  const bad = (detail: string): never =>
    refuse('malformed-cose-key', 'Malformed COSE key', `The credential public key ${detail}.`, field);
  let value: CborValue;
  try {
    value = decodeCbor(cose, { maxDepth: 4, maxItems: 16 });
  } catch (error) {
    return bad(`is not CBOR (${(error as Error).message})`);
  }
  if (value.type !== 'map') return bad('is not a CBOR map');
  const kty = integer(mapGet(value, 1));
  const alg = integer(mapGet(value, 3));
  let key: CredentialKey;
  if (alg === -7) {
    const [crv, x, y] = [integer(mapGet(value, -1)), bytes(mapGet(value, -2)), bytes(mapGet(value, -3))];
    if (kty !== 2 || crv !== 1) return bad('is not an EC2 key on P-256 (COSE kty 2, crv 1) as ES256 needs');
    if (x?.length !== 32 || y?.length !== 32) return bad('has no 32-byte x and y coordinates');
    key = {
      alg: 'ES256',
      jwk: { kty: 'EC', crv: 'P-256', x: x.toString('base64url'), y: y.toString('base64url') },
    };
  } else if (alg === -8) {
    const [crv, x] = [integer(mapGet(value, -1)), bytes(mapGet(value, -2))];
    if (kty !== 1 || crv !== 6) return bad('is not an OKP key on Ed25519 (COSE kty 1, crv 6) as EdDSA needs');
    if (x?.length !== 32) return bad('has no 32-byte Ed25519 point');
    key = { alg: 'EdDSA', jwk: { kty: 'OKP', crv: 'Ed25519', x: x.toString('base64url') } };
  } else if (alg === -257) {
    const [n, e] = [bytes(mapGet(value, -1)), bytes(mapGet(value, -2))];
    if (kty !== 3 || !n || !e) return bad('is not an RSA key with n and e (COSE kty 3) as RS256 needs');
    key = { alg: 'RS256', jwk: { kty: 'RSA', n: n.toString('base64url'), e: e.toString('base64url') } };
  } else {
    return refuse(
      'unsupported-algorithm',
      'Unsupported credential algorithm',
      `COSE algorithm ${String(alg)} is not one the platform accepts (EdDSA -8, ES256 -7, RS256 -257).`,
      field,
    );
  }
  const issues = checkPublicJwk(key.alg === 'RS256' ? 'PS256' : key.alg, key.jwk);
  if (issues.length) bad(`fails the key checks (${issues[0]!.field}: ${issues[0]!.message})`);
  return key;
}

interface ClientData {
  readonly type: string;
  readonly challenge: string;
  readonly origin: string;
  readonly crossOrigin?: boolean;
}

/** Parses `clientDataJSON` and checks its ceremony, challenge and origin (§7.1 steps 7-10, §7.2 11-14). */
function checkClientData(
  json: Buffer,
  ceremony: 'webauthn.create' | 'webauthn.get',
  expectedChallenge: string,
  origins: readonly string[] | ((origin: string) => string | null),
): ClientData {
  let data: ClientData;
  try {
    data = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(json));
  } catch {
    return malformed('clientDataJSON is not UTF-8 JSON', 'response.clientDataJSON');
  }
  if (typeof data !== 'object' || data === null || typeof data.type !== 'string')
    malformed('clientDataJSON has no type', 'response.clientDataJSON');
  if (typeof data.challenge !== 'string' || typeof data.origin !== 'string')
    malformed('clientDataJSON has no challenge or origin', 'response.clientDataJSON');
  if (data.type !== ceremony) {
    refuse(
      'wrong-ceremony',
      'Wrong WebAuthn ceremony',
      `The response is of a ${data.type} ceremony, not ${ceremony}.`,
      'response.clientDataJSON',
    );
  }
  if (data.challenge !== expectedChallenge) {
    refuse(
      'challenge-mismatch',
      'Challenge mismatch',
      ceremony === 'webauthn.get'
        ? 'The assertion answers another challenge: it was made for another payload (another contract, version or measurement set) or another nonce.'
        : 'The registration answers another challenge than the one issued.',
      'response.clientDataJSON',
    );
  }
  const originIssue =
    typeof origins === 'function'
      ? origins(data.origin)
      : origins.includes(data.origin)
        ? null
        : `origin ${data.origin} is not one of the relying party's (${origins.join(', ')})`;
  if (originIssue)
    refuse(
      'origin-not-allowed',
      'Origin not allowed',
      `The ceremony ran at ${originIssue}.`,
      'response.clientDataJSON',
    );
  // §7.2 step 14 leaves cross-origin iframes to the relying party: the platform allows none.
  if (data.crossOrigin === true)
    refuse(
      'origin-not-allowed',
      'Origin not allowed',
      'The ceremony ran in a cross-origin frame.',
      'response.clientDataJSON',
    );
  return data;
}

function checkFlags(auth: AuthenticatorData, rpId: string, field: string) {
  if (!timingSafeEqual(auth.rpIdHash, sha256(rpId))) {
    refuse(
      'rp-id-mismatch',
      'Relying party mismatch',
      `The authenticator data is not scoped to relying party ${rpId}.`,
      field,
    );
  }
  if (!auth.userPresent)
    refuse(
      'user-not-present',
      'User not present',
      'The authenticator did not test user presence (UP flag).',
      field,
    );
  if (!auth.userVerified) {
    refuse(
      'user-not-verified',
      'User not verified',
      'The authenticator did not verify the user (UV flag): a biometric signature needs a fingerprint, face or device PIN.',
      field,
    );
  }
}

/**
 * The registration ceremony (§7.1): the response answers `challenge`, at one of the relying party's
 * origins, scoped to its id, with the user present and verified, a credential key the platform accepts,
 * and an attestation statement it can verify (`none`, or packed self-attestation).
 * @throws UnprocessableError (422) naming what failed
 */
export function verifyRegistration(
  response: RegistrationResponse,
  challenge: string,
  rp: RelyingParty,
): VerifiedRegistration {
  if (response.id !== response.rawId) malformed('id and rawId differ', 'response.id');
  const clientDataJSON = octets(response.response.clientDataJSON, 'response.clientDataJSON');
  checkClientData(clientDataJSON, 'webauthn.create', challenge, rp.origins);
  let attestation: CborValue;
  try {
    attestation = decodeCbor(octets(response.response.attestationObject, 'response.attestationObject'), {
      maxDepth: 6,
      maxItems: 64,
    });
  } catch (error) {
    if (error instanceof UnprocessableError) throw error;
    return malformed(
      `the attestation object is not CBOR (${(error as Error).message})`,
      'response.attestationObject',
    );
  }
  if (attestation.type !== 'map')
    return malformed('the attestation object is not a map', 'response.attestationObject');
  const fmt = mapGet(attestation, 'fmt');
  const attStmt = mapGet(attestation, 'attStmt');
  const authDataBytes = bytes(mapGet(attestation, 'authData'));
  if (fmt?.type !== 'text' || attStmt?.type !== 'map' || !authDataBytes)
    return malformed('the attestation object lacks fmt, attStmt or authData', 'response.attestationObject');
  const auth = parseAuthenticatorData(authDataBytes, 'response.attestationObject');
  checkFlags(auth, rp.id, 'response.attestationObject');
  if (!auth.attested)
    return malformed('the authenticator data carries no credential (AT flag)', 'response.attestationObject');
  const credentialId = auth.attested.credentialId.toString('base64url');
  if (credentialId !== response.rawId)
    malformed("the credential id in the authenticator data is not the response's rawId", 'response.rawId');
  const key = coseToJwk(auth.attested.cose);
  const signed = Buffer.concat([authDataBytes, sha256(clientDataJSON)]);
  if (fmt.value === 'none') {
    if (attStmt.entries.size !== 0)
      refuse(
        'invalid-attestation',
        'Invalid attestation',
        'A none attestation with a statement.',
        'response.attestationObject',
      );
  } else if (fmt.value === 'packed') {
    // §8.2: with no x5c the statement is self-attestation, signed by the credential key with its algorithm.
    if (mapGet(attStmt, 'x5c') !== undefined) {
      refuse(
        'unsupported-attestation',
        'Unsupported attestation',
        'Packed attestation with a certificate chain is not verified by the platform, which asks for none: register with attestation "none".',
        'response.attestationObject',
      );
    }
    const alg = integer(mapGet(attStmt, 'alg'));
    const sig = bytes(mapGet(attStmt, 'sig'));
    const expectedAlg = { ES256: -7, EdDSA: -8, RS256: -257 }[key.alg];
    if (alg !== expectedAlg || !sig || !verifyWebAuthnSignature(key.alg, key.jwk, signed, sig)) {
      refuse(
        'invalid-attestation',
        'Invalid attestation',
        'The packed self-attestation does not verify with the credential key.',
        'response.attestationObject',
      );
    }
  } else {
    refuse(
      'unsupported-attestation',
      'Unsupported attestation',
      `Attestation format ${fmt.value} is not verified by the platform, which asks for none.`,
      'response.attestationObject',
    );
  }
  return {
    ...key,
    credentialId,
    cose: auth.attested.cose.toString('base64url'),
    aaguid: auth.attested.aaguid,
    signCount: auth.signCount,
    backupEligible: auth.backupEligible,
  };
}

/** The credential an assertion is checked against. */
export interface AssertingCredential extends CredentialKey {
  readonly credentialId: string;
  readonly rpId: string;
}

/**
 * An assertion (§7.2): made with `credential`, answering `challenge`, at an allowed origin, scoped to the
 * credential's relying party, the user present and verified, its signature over the authenticator data
 * and the hash of clientDataJSON valid. `userHandle`, when the authenticator returns one, must be the
 * owner's. The signature counter is returned for the caller to compare with the stored one.
 * @throws UnprocessableError (422) naming what failed
 */
export function verifyAssertion(
  assertion: AuthenticationResponse,
  challenge: string,
  credential: AssertingCredential,
  options: {
    /** The allowed origins, or a rule that names why an origin is not (the offline check's). */
    readonly origins: readonly string[] | ((origin: string) => string | null);
    /** The owner's user handle (base64url): what the authenticator returns for a discoverable credential. */
    readonly userHandle?: string;
  },
): VerifiedAssertion {
  if (assertion.id !== assertion.rawId) malformed('id and rawId differ', 'assertion.id');
  if (assertion.rawId !== credential.credentialId)
    refuse(
      'unknown-credential',
      'Unknown credential',
      'The assertion is made with another credential.',
      'assertion.rawId',
    );
  const { userHandle } = assertion.response;
  if (userHandle && options.userHandle !== undefined && userHandle !== options.userHandle)
    refuse(
      'unknown-credential',
      'Unknown credential',
      'The assertion names another user.',
      'assertion.response.userHandle',
    );
  const clientDataJSON = octets(assertion.response.clientDataJSON, 'assertion.response.clientDataJSON');
  const data = checkClientData(clientDataJSON, 'webauthn.get', challenge, options.origins);
  const authData = octets(assertion.response.authenticatorData, 'assertion.response.authenticatorData');
  const auth = parseAuthenticatorData(authData, 'assertion.response.authenticatorData');
  checkFlags(auth, credential.rpId, 'assertion.response.authenticatorData');
  const signature = octets(assertion.response.signature, 'assertion.response.signature');
  const signed = Buffer.concat([authData, sha256(clientDataJSON)]);
  if (!verifyWebAuthnSignature(credential.alg, credential.jwk, signed, signature)) {
    refuse(
      'invalid-signature',
      'Invalid signature',
      `The assertion's signature does not verify with passkey ${credential.credentialId} (${credential.alg}).`,
      'assertion.response.signature',
    );
  }
  return { signCount: auth.signCount, backedUp: auth.backedUp, origin: data.origin };
}

/**
 * Whether an origin may serve relying party `rpId` (WebAuthn §5.1.4.1, §13.4.9): `https` (or `http` on
 * localhost) with a host that is `rpId` or one of its subdomains. The offline evidence check's rule, where
 * the deployment's list of origins is not at hand. Null when it may, else why not.
 */
export function originIssue(origin: string, rpId: string): string | null {
  let url: URL;
  try {
    url = new URL(origin);
  } catch {
    return `${origin}, not an origin`;
  }
  const local = url.hostname === 'localhost';
  if (url.protocol !== 'https:' && !(local && url.protocol === 'http:'))
    return `${origin}, not a secure origin`;
  if (url.hostname !== rpId && !url.hostname.endsWith(`.${rpId}`))
    return `${origin}, outside relying party ${rpId}`;
  return null;
}
