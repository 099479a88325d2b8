import { ConflictError, UnprocessableError } from '../domain/errors.ts';
import { MAX_LIVE_CHALLENGES, WEBAUTHN_CHALLENGE_TTL_SECONDS } from '../domain/webauthn.ts';
import type { Dependencies } from '../runtime/dependencies.ts';
import { type ChallengeCeremony, type ChallengeState, issueChallenge } from './webauthn-store.ts';

/** The WebAuthn user handle of an identity: the 16 bytes of its uuid, base64url (no personal data). */
export function userHandle(identityId: string): string {
  return Buffer.from(identityId.replaceAll('-', ''), 'hex').toString('base64url');
}

/**
 * Issues `challenge` to the identity for `ceremony`, live for {@link WEBAUTHN_CHALLENGE_TTL_SECONDS}; answers
 * when it expires. 409 `too-many-challenges` while the identity holds {@link MAX_LIVE_CHALLENGES} live ones.
 */
export async function issueOrRefuse(
  deps: Dependencies,
  identityId: string,
  challenge: string,
  ceremony: ChallengeCeremony,
): Promise<string> {
  const now = deps.now();
  const expiresAt = new Date(now.getTime() + WEBAUTHN_CHALLENGE_TTL_SECONDS * 1000).toISOString();
  const issued = await issueChallenge(
    deps.db,
    { challenge, identityId, ceremony, createdAt: now.toISOString(), expiresAt },
    MAX_LIVE_CHALLENGES,
  );
  if (!issued) {
    throw new ConflictError(
      'too-many-challenges',
      'Too many open challenges',
      `The identity holds ${MAX_LIVE_CHALLENGES} unanswered challenges; answer one or wait until they expire (${WEBAUTHN_CHALLENGE_TTL_SECONDS / 60} minutes).`,
    );
  }
  return expiresAt;
}

/** The 422 of a challenge or nonce that cannot be answered (anymore). */
export function challengeRefusal(state: Exclude<ChallengeState, 'live'>, ceremony: ChallengeCeremony) {
  const field = ceremony === 'signature' ? 'nonce' : 'response.response.clientDataJSON';
  const what = ceremony === 'signature' ? 'signature nonce' : 'registration challenge';
  switch (state) {
    case 'consumed':
      return new UnprocessableError(
        'challenge-replayed',
        'Challenge already used',
        `The ${what} was answered already: each is usable once. Ask for new options.`,
        [{ field, message: 'used already' }],
      );
    case 'expired':
      return new UnprocessableError(
        'challenge-expired',
        'Challenge expired',
        `The ${what} expired (${WEBAUTHN_CHALLENGE_TTL_SECONDS / 60} minutes after it was issued). Ask for new options.`,
        [{ field, message: 'expired' }],
      );
    default:
      return new UnprocessableError(
        'challenge-unknown',
        'Unknown challenge',
        `The ${what} was not issued to this identity for this ceremony (or expired long ago). Ask for new options.`,
        [{ field, message: 'not issued to the signer' }],
      );
  }
}
