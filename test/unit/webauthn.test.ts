import { randomBytes } from 'node:crypto';
import { verifyAuthenticationResponse, verifyRegistrationResponse } from '@simplewebauthn/server';
import { Encoder } from 'cbor-x';
import * as fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DomainError } from '../../shared/domain/errors.ts';
import { signatureChallenge } from '../../shared/domain/webauthn.ts';
import {
  coseToJwk,
  originIssue,
  parseAuthenticatorData,
  type RelyingParty,
  verifyAssertion,
  verifyRegistration,
} from '../../shared/signing/webauthn.ts';
import { type AuthenticatorAlgorithm, SoftwareAuthenticator } from '../support/webauthn-authenticator.ts';

const RP: RelyingParty = { id: 'localhost', name: 'Enclave Contracts', origins: ['http://localhost:3000'] };
const ORIGIN = 'http://localhost:3000';
const cbor = new Encoder({ mapsAsObjects: false, useRecords: false, tagUint8Array: false });

/** The refusal's problem type, or 'accepted'. */
function outcome(run: () => unknown): string {
  try {
    run();
    return 'accepted';
  } catch (error) {
    if (error instanceof DomainError && error.status === 422) return error.type;
    throw error;
  }
}

function registered(alg: AuthenticatorAlgorithm = 'ES256') {
  const authenticator = new SoftwareAuthenticator({ origin: ORIGIN, rpId: RP.id }, { alg });
  const challenge = randomBytes(32).toString('base64url');
  const stored = verifyRegistration(authenticator.register(challenge), challenge, RP);
  return { authenticator, credential: { ...stored, rpId: RP.id } };
}

describe('WebAuthn registration (§7.1)', () => {
  it.each(['ES256', 'EdDSA', 'RS256'] as const)(
    'accepts a %s passkey and keeps its key as a JWK and as COSE',
    (alg) => {
      const authenticator = new SoftwareAuthenticator({ origin: ORIGIN, rpId: RP.id }, { alg });
      const challenge = randomBytes(32).toString('base64url');
      const verified = verifyRegistration(authenticator.register(challenge), challenge, RP);
      expect(verified.alg).toBe(alg);
      expect(verified.credentialId).toBe(authenticator.credentialId.toString('base64url'));
      expect(verified.cose).toBe(authenticator.coseKey().toString('base64url'));
      const { kty, crv, x, y, n, e } = authenticator.publicKey.export({ format: 'jwk' });
      expect(verified.jwk).toEqual(JSON.parse(JSON.stringify({ kty, crv, x, y, n, e })));
      expect(verified.aaguid).toBe('00000000-0000-0000-0000-000000000000');
      expect(verified.backupEligible).toBe(true);
    },
  );

  it('accepts packed self-attestation and refuses one signed by another key', () => {
    const a = new SoftwareAuthenticator({ origin: ORIGIN, rpId: RP.id });
    const challenge = randomBytes(32).toString('base64url');
    expect(outcome(() => verifyRegistration(a.register(challenge, { fmt: 'packed' }), challenge, RP))).toBe(
      'accepted',
    );
    const other = new SoftwareAuthenticator(
      { origin: ORIGIN, rpId: RP.id },
      { credentialId: a.credentialId },
    );
    // The statement is other's signature, the key in the authenticator data a's.
    const response = other.register(challenge, { fmt: 'packed', cose: a.coseKey() });
    expect(outcome(() => verifyRegistration(response, challenge, RP))).toBe('invalid-attestation');
  });

  it.each([
    ['another challenge', { challenge: 'other' }, 'challenge-mismatch'],
    ['an assertion', { type: 'webauthn.get' }, 'wrong-ceremony'],
    ['another origin', { origin: 'https://evil.example' }, 'origin-not-allowed'],
    ['a cross-origin frame', { crossOrigin: true }, 'origin-not-allowed'],
    ['another relying party', { rpId: 'evil.example' }, 'rp-id-mismatch'],
    ['no user verification', { uv: false }, 'user-not-verified'],
    ['no user presence', { up: false }, 'user-not-present'],
    ['a certificate chain', { fmt: 'packed-x5c' }, 'unsupported-attestation'],
    ['a TPM attestation', { fmt: 'tpm' }, 'unsupported-attestation'],
  ] as const)('refuses %s', (_what, change, type) => {
    const a = new SoftwareAuthenticator({ origin: ORIGIN, rpId: RP.id });
    const challenge = randomBytes(32).toString('base64url');
    const { challenge: answered, ...ceremony } = { challenge, ...change };
    expect(outcome(() => verifyRegistration(a.register(answered, ceremony as never), challenge, RP))).toBe(
      type,
    );
  });

  it.each([
    [
      'an ES256 key on P-384',
      new Map<number, unknown>([
        [1, 2],
        [3, -7],
        [-1, 2],
        [-2, Buffer.alloc(48, 1)],
        [-3, Buffer.alloc(48, 1)],
      ]),
      'malformed-cose-key',
    ],
    [
      'a point off the curve',
      new Map<number, unknown>([
        [1, 2],
        [3, -7],
        [-1, 1],
        [-2, Buffer.alloc(32, 1)],
        [-3, Buffer.alloc(32, 2)],
      ]),
      'malformed-cose-key',
    ],
    [
      'an EdDSA key with a short point',
      new Map<number, unknown>([
        [1, 1],
        [3, -8],
        [-1, 6],
        [-2, Buffer.alloc(31, 1)],
      ]),
      'malformed-cose-key',
    ],
    [
      'a small-order Ed25519 point',
      new Map<number, unknown>([
        [1, 1],
        [3, -8],
        [-1, 6],
        [-2, Buffer.alloc(32, 0)],
      ]),
      'malformed-cose-key',
    ],
    [
      'an RSA key of 1024 bits',
      new Map<number, unknown>([
        [1, 3],
        [3, -257],
        [-1, Buffer.alloc(128, 0xff)],
        [-2, Buffer.from([1, 0, 1])],
      ]),
      'malformed-cose-key',
    ],
    [
      'ES384',
      new Map<number, unknown>([
        [1, 2],
        [3, -35],
        [-1, 2],
      ]),
      'unsupported-algorithm',
    ],
    ['no algorithm', new Map<number, unknown>([[1, 2]]), 'unsupported-algorithm'],
    ['not a map', [1, 2], 'malformed-cose-key'],
  ] as const)('refuses a COSE key: %s', (_what, key, type) => {
    expect(outcome(() => coseToJwk(cbor.encode(key)))).toBe(type);
  });

  it('refuses authenticator data that is truncated, trails bytes or claims backup without eligibility', () => {
    const a = new SoftwareAuthenticator({ origin: ORIGIN, rpId: RP.id });
    const { response } = a.assert('c');
    const data = Buffer.from(response.authenticatorData, 'base64url');
    expect(outcome(() => parseAuthenticatorData(data.subarray(0, 36)))).toBe('malformed-webauthn-response');
    expect(outcome(() => parseAuthenticatorData(Buffer.concat([data, Buffer.from([0])])))).toBe(
      'malformed-webauthn-response',
    );
    const flags = Buffer.from(data);
    flags[32] = (flags[32]! & ~0x08) | 0x10;
    expect(outcome(() => parseAuthenticatorData(flags))).toBe('malformed-webauthn-response');
    expect(parseAuthenticatorData(data).signCount).toBe(1);
  });
});

describe('every registration check holds', () => {
  const decoder = new Encoder({ mapsAsObjects: false, useRecords: false, tagUint8Array: false });
  /** A registration whose attestation object `change` rewrote (decoded, changed, encoded again). */
  function rewritten(change: (attestation: Map<string, unknown>, authData: Buffer) => unknown) {
    const a = new SoftwareAuthenticator({ origin: ORIGIN, rpId: RP.id });
    const challenge = randomBytes(32).toString('base64url');
    const response = a.register(challenge);
    const attestation = decoder.decode(Buffer.from(response.response.attestationObject, 'base64url')) as Map<
      string,
      unknown
    >;
    const authData = Buffer.from(attestation.get('authData') as Uint8Array);
    // `change` edits the attestation map, the authenticator data in place, or answers new data.
    const replaced = change(attestation, authData);
    attestation.set('authData', replaced instanceof Buffer ? replaced : authData);
    const body = {
      ...response,
      response: {
        ...response.response,
        attestationObject: Buffer.from(cbor.encode(attestation)).toString('base64url'),
      },
    };
    return outcome(() => verifyRegistration(body, challenge, RP));
  }

  it('refuses an attestation object without its parts, a none statement with content, or a packed one of another algorithm', () => {
    expect(rewritten(() => {})).toBe('accepted');
    expect(rewritten((m) => void m.delete('fmt'))).toBe('malformed-webauthn-response');
    expect(rewritten((m) => void m.set('attStmt', new Map([['sig', Buffer.alloc(8)]])))).toBe(
      'invalid-attestation',
    );
    expect(
      rewritten((m) => {
        m.set('fmt', 'packed');
        m.set(
          'attStmt',
          new Map<string, unknown>([
            ['alg', -8],
            ['sig', Buffer.alloc(64)],
          ]),
        );
      }),
    ).toBe('invalid-attestation');
    expect(rewritten((m) => void m.set('fmt', 'fido-u2f'))).toBe('unsupported-attestation');
  });

  it('refuses authenticator data without a credential, with a credential id of a bad length, or another id than rawId', () => {
    // No AT flag: the attested data is then trailing bytes, or absent.
    expect(
      rewritten((_m, d) =>
        Buffer.concat([d.subarray(0, 32), Buffer.from([d[32]! & ~0x40]), d.subarray(33, 37)]),
      ),
    ).toBe('malformed-webauthn-response');
    expect(
      rewritten((_m, d) => {
        d.writeUInt16BE(15, 53); // the credential id's length, below 16
      }),
    ).toBe('malformed-webauthn-response');
    expect(
      rewritten((_m, d) => {
        d[55] = d[55]! ^ 1; // a byte of the credential id: no longer the response's rawId
      }),
    ).toBe('malformed-webauthn-response');
  });

  it('reads extensions after the key, and refuses extensions that are not a map', () => {
    const withExtensions = (extensions: unknown) =>
      rewritten((_m, d) => {
        const flagged = Buffer.from(d);
        flagged[32] = flagged[32]! | 0x80;
        return Buffer.concat([flagged, Buffer.from(cbor.encode(extensions))]);
      });
    expect(withExtensions(new Map([['credProtect', 2]]))).toBe('accepted');
    expect(withExtensions([1, 2])).toBe('malformed-webauthn-response');
  });

  it('refuses a response whose id is not its rawId, and an id not in canonical base64url', () => {
    const a = new SoftwareAuthenticator({ origin: ORIGIN, rpId: RP.id });
    const challenge = randomBytes(32).toString('base64url');
    const response = a.register(challenge);
    expect(
      outcome(() => verifyRegistration({ ...response, id: 'AAAAAAAAAAAAAAAAAAAAAA' }, challenge, RP)),
    ).toBe('malformed-webauthn-response');
    const loose = `${response.response.clientDataJSON.slice(0, -1)}${response.response.clientDataJSON.endsWith('A') ? 'B' : 'A'}`;
    const bad = { ...response, response: { ...response.response, clientDataJSON: loose } };
    expect(outcome(() => verifyRegistration(bad, challenge, RP))).not.toBe('accepted');
  });
});

describe('WebAuthn assertions (§7.2)', () => {
  it.each(['ES256', 'EdDSA', 'RS256'] as const)(
    'verifies a %s assertion over the derived challenge',
    (alg) => {
      const { authenticator, credential } = registered(alg);
      const challenge = signatureChallenge('{"contractId":"c"}', 'n');
      const verified = verifyAssertion(authenticator.assert(challenge), challenge, credential, {
        origins: RP.origins,
      });
      expect(verified).toEqual({ signCount: 1, backedUp: true, origin: ORIGIN });
    },
  );

  it('binds the challenge to the exact payload and nonce', () => {
    expect(signatureChallenge('a', 'n')).not.toBe(signatureChallenge('b', 'n'));
    expect(signatureChallenge('a', 'n')).not.toBe(signatureChallenge('a', 'm'));
    expect(signatureChallenge('a', 'n')).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });

  it.each([
    ['another payload', {}, 'challenge-mismatch'],
    ['a registration', { type: 'webauthn.create' }, 'wrong-ceremony'],
    ['another origin', { origin: 'https://evil.example' }, 'origin-not-allowed'],
    ['another relying party', { rpId: 'evil.example' }, 'rp-id-mismatch'],
    ['no user verification', { uv: false }, 'user-not-verified'],
    ['no user presence', { up: false }, 'user-not-present'],
    ['another user', { userHandle: 'b3RoZXI' }, 'unknown-credential'],
  ] as const)('refuses %s', (what, change, type) => {
    const { authenticator, credential } = registered();
    const challenge = signatureChallenge('payload', 'n');
    const answered = what === 'another payload' ? signatureChallenge('other payload', 'n') : challenge;
    const assertion = authenticator.assert(answered, change);
    expect(
      outcome(() =>
        verifyAssertion(assertion, challenge, credential, { origins: RP.origins, userHandle: 'b3duZXI' }),
      ),
    ).toBe(type);
  });

  it('refuses an assertion by another credential, or with any signed byte changed', () => {
    const { authenticator, credential } = registered();
    const other = registered().authenticator;
    expect(outcome(() => verifyAssertion(other.assert('c'), 'c', credential, { origins: RP.origins }))).toBe(
      'unknown-credential',
    );
    const assertion = authenticator.assert('c');
    const data = Buffer.from(assertion.response.authenticatorData, 'base64url');
    data[36] = data[36]! ^ 1; // the counter
    const tampered = {
      ...assertion,
      response: { ...assertion.response, authenticatorData: data.toString('base64url') },
    };
    expect(outcome(() => verifyAssertion(tampered, 'c', credential, { origins: RP.origins }))).toBe(
      'invalid-signature',
    );
  });

  it('checks origins offline by the relying party id', () => {
    expect(originIssue('https://app.example.com', 'example.com')).toBeNull();
    expect(originIssue('https://example.com', 'example.com')).toBeNull();
    expect(originIssue('http://localhost:3000', 'localhost')).toBeNull();
    expect(originIssue('http://app.example.com', 'example.com')).toMatch(/not a secure origin/);
    expect(originIssue('https://badexample.com', 'example.com')).toMatch(/outside relying party/);
    expect(originIssue('nonsense', 'example.com')).toMatch(/not an origin/);
  });
});

/**
 * The verifier against @simplewebauthn/server, the reference relying-party library: over random ceremonies,
 * good and broken, both accept the same ones.
 */
describe('agrees with @simplewebauthn/server', () => {
  const change = fc.record({
    uv: fc.boolean(),
    up: fc.boolean(),
    wrongOrigin: fc.boolean(),
    wrongRp: fc.boolean(),
    wrongChallenge: fc.boolean(),
    alg: fc.constantFrom<AuthenticatorAlgorithm>('ES256', 'EdDSA', 'RS256'),
    flipByte: fc.option(fc.nat(), { nil: undefined }),
  });

  it('on registrations', async () => {
    await fc.assert(
      fc.asyncProperty(change, async (c) => {
        const a = new SoftwareAuthenticator({ origin: ORIGIN, rpId: RP.id }, { alg: c.alg });
        const challenge = randomBytes(32).toString('base64url');
        const response = a.register(c.wrongChallenge ? 'x' : challenge, {
          uv: c.uv,
          up: c.up,
          ...(c.wrongOrigin ? { origin: 'https://evil.example' } : {}),
          ...(c.wrongRp ? { rpId: 'evil.example' } : {}),
        });
        const ours = outcome(() => verifyRegistration(response, challenge, RP)) === 'accepted';
        const theirs = await verifyRegistrationResponse({
          response,
          expectedChallenge: challenge,
          expectedOrigin: RP.origins as string[],
          expectedRPID: RP.id,
          requireUserVerification: true,
        }).then(
          (r) => r.verified,
          () => false,
        );
        expect(ours).toBe(theirs);
      }),
      { numRuns: 40 },
    );
  });

  it('on assertions', async () => {
    const keys = Object.fromEntries(
      (['ES256', 'EdDSA', 'RS256'] as const).map((alg) => {
        const { authenticator, credential } = registered(alg);
        return [alg, { authenticator, credential }];
      }),
    );
    await fc.assert(
      fc.asyncProperty(change, async (c) => {
        const { authenticator, credential } = keys[c.alg]!;
        const challenge = randomBytes(32).toString('base64url');
        const assertion = authenticator.assert(c.wrongChallenge ? 'x' : challenge, {
          uv: c.uv,
          up: c.up,
          ...(c.wrongOrigin ? { origin: 'https://evil.example' } : {}),
          ...(c.wrongRp ? { rpId: 'evil.example' } : {}),
        });
        if (c.flipByte !== undefined) {
          const sig = Buffer.from(assertion.response.signature, 'base64url');
          sig[c.flipByte % sig.length] = sig[c.flipByte % sig.length]! ^ 0x01;
          assertion.response.signature = sig.toString('base64url');
        }
        const ours =
          outcome(() => verifyAssertion(assertion, challenge, credential, { origins: RP.origins })) ===
          'accepted';
        const theirs = await verifyAuthenticationResponse({
          response: assertion,
          expectedChallenge: challenge,
          expectedOrigin: RP.origins as string[],
          expectedRPID: RP.id,
          credential: {
            id: credential.credentialId,
            publicKey: Buffer.from(credential.cose, 'base64url'),
            counter: 0,
          },
          requireUserVerification: true,
        }).then(
          (r) => r.verified,
          () => false,
        );
        expect(ours).toBe(theirs);
      }),
      { numRuns: 60 },
    );
  });
});
