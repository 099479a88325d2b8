import { type Queryable, sql } from '../database/database.ts';
import type { WebAuthnCredential } from '../domain/webauthn.ts';

/** SQL for passkeys and their challenges (migration 0017); the only module that knows their tables. */
const COLUMNS = `id, identity_id, credential_id, name, alg, jwk, cose, rp_id, aaguid, sign_count, backup_eligible,
  transports, created_at, last_used_at, not_after, revoked_at`;

interface CredentialRow {
  id: string;
  identity_id: string;
  credential_id: string;
  name: string;
  alg: WebAuthnCredential['alg'];
  jwk: Record<string, unknown>;
  cose: string;
  rp_id: string;
  aaguid: string;
  sign_count: number | string;
  backup_eligible: boolean;
  transports: string[];
  created_at: string;
  last_used_at: string | null;
  not_after: string | null;
  revoked_at: string | null;
  [k: string]: unknown;
}

function toCredential(r: CredentialRow): WebAuthnCredential {
  return {
    id: r.id,
    identityId: r.identity_id,
    credentialId: r.credential_id,
    name: r.name,
    alg: r.alg,
    jwk: r.jwk,
    cose: r.cose,
    rpId: r.rp_id,
    aaguid: r.aaguid,
    signCount: Number(r.sign_count),
    backupEligible: r.backup_eligible,
    transports: r.transports,
    createdAt: r.created_at,
    lastUsedAt: r.last_used_at,
    notAfter: r.not_after,
    revokedAt: r.revoked_at,
  };
}

/** The identity's passkey by the authenticator's credential id, or null. */
export function findPasskeyByCredentialId(q: Queryable, identityId: string, credentialId: string) {
  return findOne(q, identityId, 'credential_id', sql.text(credentialId));
}

/** The identity's passkey `id` (the platform's uuid), or null. */
export function findPasskey(q: Queryable, identityId: string, id: string) {
  return findOne(q, identityId, 'id', sql.uuid(id));
}

async function findOne(
  q: Queryable,
  identityId: string,
  column: 'id' | 'credential_id',
  value: ReturnType<typeof sql.text>,
): Promise<WebAuthnCredential | null> {
  const { rows } = await q.query<CredentialRow>(
    `SELECT ${COLUMNS} FROM webauthn_credentials WHERE identity_id = :identity_id AND ${column} = :value`,
    { identity_id: sql.uuid(identityId), value },
  );
  return rows[0] ? toCredential(rows[0]) : null;
}

export async function listPasskeys(q: Queryable, identityId: string): Promise<WebAuthnCredential[]> {
  const { rows } = await q.query<CredentialRow>(
    `SELECT ${COLUMNS} FROM webauthn_credentials WHERE identity_id = :identity_id ORDER BY created_at, id`,
    { identity_id: sql.uuid(identityId) },
  );
  return rows.map(toCredential);
}

export type ChallengeCeremony = 'registration' | 'signature';

/**
 * Issues `challenge` to `identityId` for `ceremony` until `expiresAt`, removing the identity's expired
 * challenges in the same statement; only while it holds fewer than `maxLive` live ones. False when it
 * holds that many already.
 */
export async function issueChallenge(
  q: Queryable,
  c: {
    challenge: string;
    identityId: string;
    ceremony: ChallengeCeremony;
    createdAt: string;
    expiresAt: string;
  },
  maxLive: number,
): Promise<boolean> {
  const { rows } = await q.query(
    `WITH pruned AS (
       DELETE FROM webauthn_challenges WHERE identity_id = :identity_id AND expires_at <= :created_at
     ),
     live AS (
       SELECT count(*) AS n FROM webauthn_challenges
       WHERE identity_id = :identity_id AND expires_at > :created_at AND consumed_at IS NULL
     )
     INSERT INTO webauthn_challenges (challenge, identity_id, ceremony, created_at, expires_at)
     SELECT :challenge, :identity_id, :ceremony, :created_at, :expires_at FROM live WHERE live.n < :max_live
     RETURNING challenge`,
    {
      challenge: sql.text(c.challenge),
      identity_id: sql.uuid(c.identityId),
      ceremony: sql.text(c.ceremony),
      created_at: sql.timestamp(c.createdAt),
      expires_at: sql.timestamp(c.expiresAt),
      max_live: sql.int(maxLive),
    },
  );
  return rows.length === 1;
}

/** Why a challenge is not answerable: never issued to this identity for this ceremony, used, or expired. */
export type ChallengeState = 'live' | 'unknown' | 'consumed' | 'expired';

/** What a challenge of `identityId` for `ceremony` is at `now`. */
export async function challengeState(
  q: Queryable,
  challenge: string,
  identityId: string,
  ceremony: ChallengeCeremony,
  now: string,
): Promise<ChallengeState> {
  const { rows } = await q.query<{ state: ChallengeState }>(
    `SELECT ${STATE} AS state FROM webauthn_challenges
     WHERE challenge = :challenge AND identity_id = :identity_id AND ceremony = :ceremony`,
    {
      challenge: sql.text(challenge),
      identity_id: sql.uuid(identityId),
      ceremony: sql.text(ceremony),
      now: sql.timestamp(now),
    },
  );
  return rows[0]?.state ?? 'unknown';
}

const STATE = `CASE WHEN consumed_at IS NOT NULL THEN 'consumed' WHEN expires_at <= :now THEN 'expired' ELSE 'live' END`;

/**
 * Consumes a live challenge: of any number of concurrent calls, one answers `live` (it consumed it); the
 * others say why not.
 */
export async function consumeChallenge(
  q: Queryable,
  challenge: string,
  identityId: string,
  ceremony: ChallengeCeremony,
  now: string,
): Promise<ChallengeState> {
  const { rows } = await q.query(
    `UPDATE webauthn_challenges SET consumed_at = :now
     WHERE challenge = :challenge AND identity_id = :identity_id AND ceremony = :ceremony
       AND consumed_at IS NULL AND expires_at > :now
     RETURNING challenge`,
    {
      challenge: sql.text(challenge),
      identity_id: sql.uuid(identityId),
      ceremony: sql.text(ceremony),
      now: sql.timestamp(now),
    },
  );
  if (rows.length === 1) return 'live';
  const state = await challengeState(q, challenge, identityId, ceremony, now);
  return state === 'live' ? 'consumed' : state;
}

/**
 * Registration: bumps the identity's version, consumes its registration challenge and inserts the passkey,
 * in one statement; only while the challenge is live and the identity holds fewer than `maxCredentials`
 * passkeys. `challenge_state` and `passkeys_held` say why it did not apply.
 */
export function insertPasskeyMutation(
  credential: WebAuthnCredential,
  challenge: string,
  identityVersion: number,
  maxCredentials: number,
) {
  const held = '(SELECT count(*) FROM webauthn_credentials WHERE identity_id = :wa_identity_id)';
  const live = `EXISTS (SELECT 1 FROM webauthn_challenges WHERE challenge = :wa_challenge
      AND identity_id = :wa_identity_id AND ceremony = 'registration' AND consumed_at IS NULL AND expires_at > :now)`;
  return {
    mutation: `UPDATE identities SET version = version + 1, updated_at = :now
      WHERE id = :wa_identity_id AND version = :identity_version AND ${live} AND ${held} < :max_credentials
      RETURNING id`,
    extraColumns: `${held}::int AS passkeys_held,
      (SELECT ${STATE} FROM webauthn_challenges WHERE challenge = :wa_challenge AND identity_id = :wa_identity_id
         AND ceremony = 'registration') AS challenge_state`,
    followUp: `wa_consumed AS (
      UPDATE webauthn_challenges SET consumed_at = :now FROM changed WHERE webauthn_challenges.challenge = :wa_challenge
    ),
    wa_inserted AS (
      INSERT INTO webauthn_credentials (id, identity_id, credential_id, name, alg, jwk, cose, rp_id, aaguid,
        sign_count, backup_eligible, transports, created_at)
      SELECT :wa_id, changed.id, :wa_credential_id, :wa_name, :wa_alg, :wa_jwk, :wa_cose, :wa_rp_id, :wa_aaguid,
        :wa_sign_count, :wa_backup_eligible, :wa_transports, :now FROM changed
    )`,
    params: {
      wa_id: sql.uuid(credential.id),
      wa_identity_id: sql.uuid(credential.identityId),
      identity_version: sql.int(identityVersion),
      wa_challenge: sql.text(challenge),
      wa_credential_id: sql.text(credential.credentialId),
      wa_name: sql.text(credential.name),
      wa_alg: sql.text(credential.alg),
      wa_jwk: sql.json(credential.jwk),
      wa_cose: sql.text(credential.cose),
      wa_rp_id: sql.text(credential.rpId),
      wa_aaguid: sql.uuid(credential.aaguid),
      wa_sign_count: sql.int(credential.signCount),
      wa_backup_eligible: sql.bool(credential.backupEligible),
      wa_transports: sql.json(credential.transports),
      now: sql.timestamp(credential.createdAt),
      max_credentials: sql.int(maxCredentials),
    },
  };
}

/** Revocation: `revoked_at` set, with the identity's version bump, only while it is not revoked. */
export function revokePasskeyMutation(identityId: string, id: string, identityVersion: number, at: string) {
  return {
    mutation: `UPDATE identities SET version = version + 1, updated_at = :wa_at
      WHERE id = :wa_identity_id AND version = :identity_version
        AND EXISTS (SELECT 1 FROM webauthn_credentials WHERE identity_id = :wa_identity_id AND id = :wa_id
                    AND revoked_at IS NULL)
      RETURNING id`,
    followUp: `wa_revoked AS (
      UPDATE webauthn_credentials SET revoked_at = :wa_at FROM changed
      WHERE webauthn_credentials.identity_id = changed.id AND webauthn_credentials.id = :wa_id
    )`,
    params: {
      wa_id: sql.uuid(id),
      wa_identity_id: sql.uuid(identityId),
      identity_version: sql.int(identityVersion),
      wa_at: sql.timestamp(at),
    },
  };
}

/**
 * Records a signature by passkey `id` with counter `signCount`: only while it is not revoked and the counter
 * moved forward (or the authenticator keeps none: 0 both before and now). False otherwise: a counter that
 * did not move forward is the sign of a cloned authenticator (WebAuthn §6.1.1).
 */
export async function usePasskey(q: Queryable, id: string, signCount: number, at: string): Promise<boolean> {
  const { rows } = await q.query(
    `UPDATE webauthn_credentials SET sign_count = :sign_count, last_used_at = :at
     WHERE id = :id AND revoked_at IS NULL AND (sign_count < :sign_count OR (sign_count = 0 AND :sign_count = 0))
     RETURNING id`,
    { id: sql.uuid(id), sign_count: sql.int(signCount), at: sql.timestamp(at) },
  );
  return rows.length === 1;
}
