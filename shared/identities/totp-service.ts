import { auditedAttempt } from '../audit/security-refusals.ts';
import { ConflictError, ForbiddenError, NotFoundError } from '../domain/errors.ts';
import type { Identity } from '../domain/identity.ts';
import type { TotpCredential } from '../domain/totp.ts';
import type { Reply } from '../http/reply.ts';
import type { Dependencies } from '../runtime/dependencies.ts';
import { credentialOwner, requireCredentialReader, writeIdentityChange } from './identity-service.ts';
import { findIdentity } from './identity-store.ts';
import { checkedStep } from './second-factor.ts';
import {
  confirmTotpMutation,
  findActiveTotpCredential,
  findTotpCredential,
  listTotpCredentials as listRows,
  revokeTotpMutation,
} from './totp-store.ts';

/** Pending enrolments one identity may hold at once (an abandoned one is revoked to make room). */
export const MAX_PENDING_TOTP = 3;

/**
 * Only the identity itself enrols or confirms its second factor: the seed is its authenticator's alone.
 * Another identity is a 403, none a 404 (existence is no secret: `GET /identities/{id}` answers any caller).
 */
export async function requireSelf(deps: Dependencies, caller: Identity, identityId: string, what: string) {
  if (caller.id === identityId) return;
  if (!(await findIdentity(deps.db, identityId))) throw new NotFoundError(`Identity ${identityId}`);
  throw new ForbiddenError(`Only the identity itself may ${what}.`);
}

/**
 * `POST /identities/{id}/totp/{credentialId}/confirmation`: the first code of a pending credential (the
 * caller's own) makes it the identity's second factor; the one it replaces, if any, is revoked in the same
 * audited change. A wrong code is a 422 `invalid-otp` and changes nothing.
 */
export async function confirmTotp(
  deps: Dependencies,
  caller: Identity,
  identityId: string,
  credentialId: string,
  code: string,
): Promise<Reply<TotpCredential>> {
  await requireSelf(deps, caller, identityId, 'confirm its second factor');
  const credential = await findTotpCredential(deps.db, identityId, credentialId);
  if (!credential) throw new NotFoundError(`TOTP credential ${credentialId} of identity ${identityId}`);
  if (credential.revokedAt !== null || credential.confirmedAt !== null) {
    throw new ConflictError(
      'credential-not-pending',
      'Credential not pending',
      credential.revokedAt !== null
        ? `TOTP credential ${credentialId} was revoked at ${credential.revokedAt}.`
        : `TOTP credential ${credentialId} was confirmed at ${credential.confirmedAt} already.`,
    );
  }
  const now = deps.now();
  const step = await auditedAttempt(
    deps,
    {
      entityType: 'identity',
      entityId: identityId,
      actorId: caller.id,
      action: 'confirm-totp',
      subject: `TOTP credential ${credentialId}`,
    },
    () => checkedStep(deps, credential, code, now),
  );
  const at = now.toISOString();
  // The one it replaces, read under the same identity version the statement requires.
  const replaced = await findActiveTotpCredential(deps.db, identityId);
  await writeIdentityChange(deps, caller, identityId, {
    ...confirmTotpMutation(identityId, credentialId, caller.version, at, step),
    at,
    action: 'confirm-totp',
    actorId: caller.id,
    data: { credentialId, ...(replaced ? { replaces: replaced.id } : {}) },
    event: {
      type: 'TotpConfirmed',
      payload: { identityId, credentialId, ...(replaced ? { replaces: replaced.id } : {}) },
    },
  });
  const { sealed: _sealed, ...shown } = credential;
  return { status: 200, body: { ...shown, confirmedAt: at } };
}

/**
 * `DELETE /identities/{id}/totp/{credentialId}`: revokes a credential at once (the identity or an admin).
 * MFA signatures made with it before stay as they are; none is accepted after.
 */
export async function revokeTotp(
  deps: Dependencies,
  caller: Identity,
  identityId: string,
  credentialId: string,
): Promise<Reply<TotpCredential>> {
  const owner = await credentialOwner(deps, caller, identityId);
  const credential = await findTotpCredential(deps.db, identityId, credentialId);
  if (!credential) throw new NotFoundError(`TOTP credential ${credentialId} of identity ${identityId}`);
  if (credential.revokedAt !== null) {
    throw new ConflictError(
      'credential-not-active',
      'Credential not active',
      `TOTP credential ${credentialId} was revoked at ${credential.revokedAt}.`,
    );
  }
  const at = deps.now().toISOString();
  await writeIdentityChange(deps, owner, identityId, {
    ...revokeTotpMutation(identityId, credentialId, owner.version, at),
    at,
    action: 'revoke-totp',
    actorId: caller.id,
    data: { credentialId },
    event: { type: 'TotpRevoked', payload: { identityId, credentialId } },
  });
  const { sealed: _sealed, ...shown } = credential;
  return { status: 200, body: { ...shown, revokedAt: at } };
}

/** `GET /identities/{id}/totp`: the identity's TOTP credentials (never a seed); itself, admins and auditors. */
export async function listTotpCredentials(
  deps: Dependencies,
  caller: Identity,
  identityId: string,
): Promise<Reply<{ credentials: TotpCredential[] }>> {
  await requireCredentialReader(deps, caller, identityId, 'second factors');
  return { status: 200, body: { credentials: await listRows(deps.db, identityId) } };
}
