import { randomBytes } from 'node:crypto';
import { auditedAttempt } from '../audit/security-refusals.ts';
import { ConflictError, NotFoundError, UnprocessableError } from '../domain/errors.ts';
import type { Identity } from '../domain/identity.ts';
import {
  CHALLENGE_BYTES,
  MAX_WEBAUTHN_CREDENTIALS,
  type RegisterPasskey,
  WEBAUTHN_CHALLENGE_TTL_SECONDS,
  WEBAUTHN_COSE_ALGORITHMS,
  type WebAuthnCredential,
} from '../domain/webauthn.ts';
import type { Reply } from '../http/reply.ts';
import { type Dependencies, relyingParty } from '../runtime/dependencies.ts';
import { verifyRegistration } from '../signing/webauthn.ts';
import { credentialOwner, requireCredentialReader, writeIdentityChange } from './identity-service.ts';
import { requireSelf } from './totp-service.ts';
import { challengeRefusal, issueOrRefuse, userHandle } from './webauthn-challenges.ts';
import {
  challengeState,
  findPasskey,
  insertPasskeyMutation,
  listPasskeys as listRows,
  revokePasskeyMutation,
} from './webauthn-store.ts';

/**
 * Passkeys (WebAuthn credentials), the credentials of biometric signatures: registration, listing and
 * revocation. The signature itself is shared/identities/passkey-signature.ts.
 */

/** `PublicKeyCredentialCreationOptionsJSON` (WebAuthn §5.4), what `@simplewebauthn/browser` takes. */
export interface RegistrationOptions {
  readonly challenge: string;
  readonly rp: { readonly id: string; readonly name: string };
  readonly user: { readonly id: string; readonly name: string; readonly displayName: string };
  readonly pubKeyCredParams: readonly { readonly type: 'public-key'; readonly alg: number }[];
  readonly timeout: number;
  readonly attestation: 'none';
  readonly authenticatorSelection: {
    readonly residentKey: 'preferred';
    readonly userVerification: 'required';
  };
  readonly excludeCredentials: readonly {
    readonly type: 'public-key';
    readonly id: string;
    readonly transports: readonly string[];
  }[];
}

/**
 * `POST /identities/{id}/webauthn/registration-options`: a fresh challenge (256 bits, live for 5 minutes,
 * usable once) and the options to create a passkey with: user verification required, attestation none,
 * the identity's passkeys excluded. The identity itself only.
 */
export async function registrationOptions(
  deps: Dependencies,
  caller: Identity,
  identityId: string,
): Promise<Reply<{ publicKey: RegistrationOptions; expiresAt: string }>> {
  await requireSelf(deps, caller, identityId, 'register a passkey');
  const rp = relyingParty(deps);
  const challenge = randomBytes(CHALLENGE_BYTES).toString('base64url');
  const expiresAt = await issueOrRefuse(deps, caller.id, challenge, 'registration');
  const existing = (await listRows(deps.db, identityId)).filter((c) => c.revokedAt === null);
  return {
    status: 200,
    body: {
      expiresAt,
      publicKey: {
        challenge,
        rp: { id: rp.id, name: rp.name },
        user: { id: userHandle(identityId), name: caller.email ?? caller.name, displayName: caller.name },
        pubKeyCredParams: WEBAUTHN_COSE_ALGORITHMS.map((alg) => ({ type: 'public-key' as const, alg })),
        timeout: WEBAUTHN_CHALLENGE_TTL_SECONDS * 1000,
        attestation: 'none',
        authenticatorSelection: { residentKey: 'preferred', userVerification: 'required' },
        excludeCredentials: existing.map((c) => ({
          type: 'public-key' as const,
          id: c.credentialId,
          transports: c.transports,
        })),
      },
    },
  };
}

/** The challenge a registration response answers, read from its clientDataJSON (checked after). */
function answeredChallenge(clientDataJSON: string): string {
  try {
    const { challenge } = JSON.parse(Buffer.from(clientDataJSON, 'base64url').toString('utf8'));
    if (typeof challenge === 'string' && challenge.length > 0 && challenge.length <= 128) return challenge;
  } catch {
    // refused below
  }
  throw new UnprocessableError(
    'malformed-webauthn-response',
    'Malformed WebAuthn response',
    'clientDataJSON is not JSON with a challenge.',
    [{ field: 'response.response.clientDataJSON', message: 'not JSON with a challenge' }],
  );
}

/**
 * `POST /identities/{id}/webauthn/registrations`: the authenticator's answer to a registration challenge
 * (the identity's own, live, unused) is verified (shared/signing/webauthn.ts) and the passkey stored, the
 * challenge consumed in the same audited statement. Refusals are 422s with a stable `type`, recorded in the
 * identity's refusal chain; a credential id registered before (by anyone) is a 409.
 */
export async function registerPasskey(
  deps: Dependencies,
  caller: Identity,
  identityId: string,
  input: RegisterPasskey,
): Promise<Reply<WebAuthnCredential>> {
  await requireSelf(deps, caller, identityId, 'register a passkey');
  const rp = relyingParty(deps);
  const now = deps.now().toISOString();
  const { response } = input;
  const verified = await auditedAttempt(
    deps,
    {
      entityType: 'identity',
      entityId: identityId,
      actorId: caller.id,
      action: 'register-passkey',
      subject: `passkey ${response.id.slice(0, 64)}`,
    },
    async () => {
      const challenge = answeredChallenge(response.response.clientDataJSON);
      const state = await challengeState(deps.db, challenge, identityId, 'registration', now);
      if (state !== 'live') throw challengeRefusal(state, 'registration');
      return { challenge, ...verifyRegistration(response, challenge, rp) };
    },
  );
  const credential: WebAuthnCredential = {
    id: deps.newId(),
    identityId,
    credentialId: verified.credentialId,
    name: input.name ?? 'passkey',
    alg: verified.alg,
    jwk: verified.jwk,
    cose: verified.cose,
    rpId: rp.id,
    aaguid: verified.aaguid,
    signCount: verified.signCount,
    backupEligible: verified.backupEligible,
    transports: response.response.transports ?? [],
    createdAt: now,
    lastUsedAt: null,
    notAfter: null,
    revokedAt: null,
  };
  await writeIdentityChange(
    deps,
    caller,
    identityId,
    {
      ...insertPasskeyMutation(credential, verified.challenge, caller.version, MAX_WEBAUTHN_CREDENTIALS),
      at: now,
      action: 'register-passkey',
      actorId: caller.id,
      data: {
        passkeyId: credential.id,
        credentialId: credential.credentialId,
        alg: credential.alg,
        aaguid: credential.aaguid,
      },
      event: { type: 'PasskeyRegistered', payload: { identityId, passkeyId: credential.id } },
    },
    {
      refusal: (extra) =>
        extra.challenge_state !== 'live'
          ? challengeRefusal((extra.challenge_state as never) ?? 'unknown', 'registration')
          : Number(extra.passkeys_held) >= MAX_WEBAUTHN_CREDENTIALS
            ? new ConflictError(
                'too-many-passkeys',
                'Too many passkeys',
                `The identity holds ${MAX_WEBAUTHN_CREDENTIALS} passkeys (revoked ones included), the most it may.`,
              )
            : undefined,
      conflict: () =>
        new ConflictError(
          'credential-registered',
          'Credential already registered',
          'This authenticator credential is registered already (WebAuthn §7.1: a credential id is registered once).',
        ),
    },
  );
  return { status: 201, body: credential };
}

/**
 * `DELETE /identities/{id}/webauthn/credentials/{credentialId}`: revokes a passkey at once (the identity or an
 * admin). Signatures made with it before stay verifiable; none is accepted after.
 */
export async function revokePasskey(
  deps: Dependencies,
  caller: Identity,
  identityId: string,
  id: string,
): Promise<Reply<WebAuthnCredential>> {
  const owner = await credentialOwner(deps, caller, identityId);
  const credential = await findPasskey(deps.db, identityId, id);
  if (!credential) throw new NotFoundError(`Passkey ${id} of identity ${identityId}`);
  if (credential.revokedAt !== null) {
    throw new ConflictError(
      'credential-not-active',
      'Credential not active',
      `Passkey ${id} was revoked at ${credential.revokedAt}.`,
    );
  }
  const at = deps.now().toISOString();
  await writeIdentityChange(deps, owner, identityId, {
    ...revokePasskeyMutation(identityId, id, owner.version, at),
    at,
    action: 'revoke-passkey',
    actorId: caller.id,
    data: { passkeyId: id },
    event: { type: 'PasskeyRevoked', payload: { identityId, passkeyId: id } },
  });
  return { status: 200, body: { ...credential, revokedAt: at } };
}

/** `GET /identities/{id}/webauthn/credentials`: the identity's passkeys (public keys); itself, admins, auditors. */
export async function listPasskeys(
  deps: Dependencies,
  caller: Identity,
  identityId: string,
): Promise<Reply<{ credentials: WebAuthnCredential[] }>> {
  await requireCredentialReader(deps, caller, identityId, 'passkeys');
  return { status: 200, body: { credentials: await listRows(deps.db, identityId) } };
}
