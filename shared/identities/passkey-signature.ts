import { randomBytes } from 'node:crypto';
import type { PasskeyAssertion } from '../domain/contract.ts';
import { UnprocessableError } from '../domain/errors.ts';
import type { Identity } from '../domain/identity.ts';
import {
  type AuthenticationResponse,
  CHALLENGE_BYTES,
  signatureChallenge,
  WEBAUTHN_CHALLENGE_TTL_SECONDS,
  type WebAuthnCredential,
} from '../domain/webauthn.ts';
import type { Reply } from '../http/reply.ts';
import { type Dependencies, relyingParty } from '../runtime/dependencies.ts';
import { verifyAssertion } from '../signing/webauthn.ts';
import { requireActive } from './identity-service.ts';
import { findIdentity } from './identity-store.ts';
import { requireSelf } from './totp-service.ts';
import { challengeRefusal, issueOrRefuse, userHandle } from './webauthn-challenges.ts';
import { consumeChallenge, findPasskeyByCredentialId, listPasskeys, usePasskey } from './webauthn-store.ts';

/**
 * Biometric signatures: a WebAuthn assertion, by a passkey of the signer's that verified the user, over a
 * challenge derived from the exact signing payload and a server nonce (`signatureChallenge`). Apart from
 * the passkey registration (webauthn-service.ts), so that the signing routes bundle only this.
 */

/** `PublicKeyCredentialRequestOptionsJSON` (WebAuthn §5.5), what `@simplewebauthn/browser` takes. */
export interface AuthenticationOptions {
  readonly challenge: string;
  readonly rpId: string;
  readonly timeout: number;
  readonly userVerification: 'required';
  readonly allowCredentials: readonly {
    readonly type: 'public-key';
    readonly id: string;
    readonly transports: readonly string[];
  }[];
}

/**
 * `POST /identities/{id}/webauthn/authentication-options`: a nonce (live for 5 minutes, usable once) and the
 * options to sign `signingPayload` with one of the identity's passkeys; the challenge is derived from both,
 * so the assertion signs exactly that payload. The identity itself only; 422 `passkey-not-registered`
 * when it has no active passkey.
 */
export async function authenticationOptions(
  deps: Dependencies,
  caller: Identity,
  identityId: string,
  signingPayload: string,
): Promise<Reply<{ nonce: string; expiresAt: string; publicKey: AuthenticationOptions }>> {
  await requireSelf(deps, caller, identityId, 'sign with its passkeys');
  const rp = relyingParty(deps);
  const now = deps.now().getTime();
  const passkeys = (await listPasskeys(deps.db, identityId)).filter((c) => usable(c, now));
  if (passkeys.length === 0) {
    throw new UnprocessableError(
      'passkey-not-registered',
      'No passkey',
      'The identity has no active passkey: register one first (POST /identities/{id}/webauthn/registration-options).',
      [{ field: 'signingPayload', message: 'the signer has no passkey' }],
    );
  }
  const nonce = randomBytes(CHALLENGE_BYTES).toString('base64url');
  const expiresAt = await issueOrRefuse(deps, identityId, nonce, 'signature');
  return {
    status: 200,
    body: {
      nonce,
      expiresAt,
      publicKey: {
        challenge: signatureChallenge(signingPayload, nonce),
        rpId: rp.id,
        timeout: WEBAUTHN_CHALLENGE_TTL_SECONDS * 1000,
        userVerification: 'required',
        allowCredentials: passkeys.map((c) => ({
          type: 'public-key' as const,
          id: c.credentialId,
          transports: c.transports,
        })),
      },
    },
  };
}

function usable(c: WebAuthnCredential, now: number) {
  return c.revokedAt === null && (c.notAfter === null || now < Date.parse(c.notAfter));
}

/**
 * Checks a biometric signature of `payload` by the caller and uses it up: the caller is active (read now,
 * not from a cache), the passkey is its own and active, the assertion verifies over the challenge of
 * `payload` and `nonce` with the user verified, the nonce was issued to the caller and is consumed now
 * (once), and the counter moved forward (recorded). Returns the passkey and what the signature stores.
 * @throws UnprocessableError (422): `unknown-credential`, the assertion's refusals
 *   (shared/signing/webauthn.ts), `challenge-unknown`/`-expired`/`-replayed`, `counter-regressed`
 */
export async function verifyBiometric(
  deps: Dependencies,
  caller: Identity,
  input: { nonce: string; assertion: AuthenticationResponse },
  payload: string,
  at: string,
): Promise<{ passkey: WebAuthnCredential; assertion: PasskeyAssertion }> {
  const rp = relyingParty(deps);
  const [current, passkey] = await Promise.all([
    findIdentity(deps.db, caller.id),
    findPasskeyByCredentialId(deps.db, caller.id, input.assertion.rawId),
  ]);
  if (current) requireActive(current);
  if (!passkey || !usable(passkey, Date.parse(at))) {
    throw new UnprocessableError(
      'unknown-credential',
      'Unknown passkey',
      `The assertion's credential is not an active passkey of the signer${passkey?.revokedAt ? ` (revoked at ${passkey.revokedAt})` : ''}.`,
      [{ field: 'assertion.rawId', message: 'not an active passkey of the signer' }],
    );
  }
  const verified = verifyAssertion(input.assertion, signatureChallenge(payload, input.nonce), passkey, {
    origins: rp.origins,
    userHandle: userHandle(caller.id),
  });
  // After the assertion verified, so that a bad one never uses up the nonce.
  const state = await consumeChallenge(deps.db, input.nonce, caller.id, 'signature', at);
  if (state !== 'live') throw challengeRefusal(state, 'signature');
  if (!(await usePasskey(deps.db, passkey.id, verified.signCount, at))) {
    throw new UnprocessableError(
      'counter-regressed',
      'Signature counter went back',
      `Passkey ${passkey.id} reported signature counter ${verified.signCount}, not above the ${passkey.signCount} it reported before: the authenticator may have been cloned. The signature is refused; revoke the passkey if this was not you.`,
      [
        {
          field: 'assertion.response.authenticatorData',
          message: 'the signature counter did not move forward',
        },
      ],
    );
  }
  return {
    passkey,
    assertion: {
      credentialId: passkey.credentialId,
      authenticatorData: input.assertion.response.authenticatorData,
      clientDataJSON: input.assertion.response.clientDataJSON,
      nonce: input.nonce,
      signCount: verified.signCount,
    },
  };
}
