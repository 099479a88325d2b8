import { type Queryable, sql } from '../database/database.ts';
import type { TotpCredential } from '../domain/totp.ts';
import type { SealedSecret } from '../signing/secret-sealer.ts';

/** SQL for the TOTP second factors (migration 0015); the only module that knows their table. */
const COLUMNS = 'id, identity_id, created_at, confirmed_at, not_after, revoked_at';

interface CredentialRow {
  id: string;
  identity_id: string;
  created_at: string;
  confirmed_at: string | null;
  not_after: string | null;
  revoked_at: string | null;
  [k: string]: unknown;
}

function toCredential(r: CredentialRow): TotpCredential {
  return {
    id: r.id,
    identityId: r.identity_id,
    createdAt: r.created_at,
    confirmedAt: r.confirmed_at,
    notAfter: r.not_after,
    revokedAt: r.revoked_at,
  };
}

/** Credential `id` of `identityId` with its sealed seed, or null. */
export async function findTotpCredential(
  q: Queryable,
  identityId: string,
  id: string,
): Promise<(TotpCredential & { sealed: SealedSecret }) | null> {
  const { rows } = await q.query<CredentialRow & { sealed_secret: SealedSecret }>(
    `SELECT ${COLUMNS}, sealed_secret FROM totp_credentials WHERE identity_id = :identity_id AND id = :id`,
    { identity_id: sql.uuid(identityId), id: sql.uuid(id) },
  );
  const row = rows[0];
  return row ? { ...toCredential(row), sealed: row.sealed_secret } : null;
}

/** The identity's confirmed credential that is not revoked (its second factor), with its sealed seed. */
export async function findActiveTotpCredential(
  q: Queryable,
  identityId: string,
): Promise<(TotpCredential & { sealed: SealedSecret }) | null> {
  const { rows } = await q.query<CredentialRow & { sealed_secret: SealedSecret }>(
    `SELECT ${COLUMNS}, sealed_secret FROM totp_credentials
     WHERE identity_id = :identity_id AND confirmed_at IS NOT NULL AND revoked_at IS NULL
     ORDER BY confirmed_at DESC LIMIT 1`,
    { identity_id: sql.uuid(identityId) },
  );
  const row = rows[0];
  return row ? { ...toCredential(row), sealed: row.sealed_secret } : null;
}

export async function listTotpCredentials(q: Queryable, identityId: string): Promise<TotpCredential[]> {
  const { rows } = await q.query<CredentialRow>(
    `SELECT ${COLUMNS} FROM totp_credentials WHERE identity_id = :identity_id ORDER BY created_at, id`,
    { identity_id: sql.uuid(identityId) },
  );
  return rows.map(toCredential);
}

/**
 * Enrolment: bumps the identity's version and inserts the pending credential in the same statement, only
 * while the identity holds fewer than `maxPending` pending credentials (`pending_held` says how many).
 */
export function insertTotpMutation(
  credential: TotpCredential,
  sealed: SealedSecret,
  identityVersion: number,
  maxPending: number,
) {
  const pending = `(SELECT count(*) FROM totp_credentials
      WHERE identity_id = :totp_identity_id AND confirmed_at IS NULL AND revoked_at IS NULL)`;
  return {
    mutation: `UPDATE identities SET version = version + 1, updated_at = :totp_created_at
      WHERE id = :totp_identity_id AND version = :identity_version AND ${pending} < :max_pending
      RETURNING id`,
    extraColumns: `${pending}::int AS pending_held`,
    followUp: `totp_inserted AS (
      INSERT INTO totp_credentials (id, identity_id, sealed_secret, created_at)
      SELECT :totp_id, changed.id, :sealed_secret, :totp_created_at FROM changed
    )`,
    params: {
      totp_id: sql.uuid(credential.id),
      totp_identity_id: sql.uuid(credential.identityId),
      identity_version: sql.int(identityVersion),
      sealed_secret: sql.json(sealed),
      totp_created_at: sql.timestamp(credential.createdAt),
      max_pending: sql.int(maxPending),
    },
  };
}

/**
 * Confirmation: the pending credential becomes the identity's second factor (its first code's step used)
 * and the one it replaces, if any, is revoked, with the identity's version bump, in one statement.
 */
export function confirmTotpMutation(
  identityId: string,
  id: string,
  identityVersion: number,
  at: string,
  step: number,
) {
  return {
    mutation: `UPDATE identities SET version = version + 1, updated_at = :totp_at
      WHERE id = :totp_identity_id AND version = :identity_version
        AND EXISTS (SELECT 1 FROM totp_credentials WHERE identity_id = :totp_identity_id AND id = :totp_id
                    AND confirmed_at IS NULL AND revoked_at IS NULL)
      RETURNING id`,
    followUp: `totp_confirmed AS (
      UPDATE totp_credentials SET confirmed_at = :totp_at, last_used_step = :totp_step FROM changed
      WHERE totp_credentials.identity_id = changed.id AND totp_credentials.id = :totp_id
    ),
    totp_replaced AS (
      UPDATE totp_credentials SET revoked_at = :totp_at FROM changed
      WHERE totp_credentials.identity_id = changed.id AND totp_credentials.id <> :totp_id
        AND totp_credentials.confirmed_at IS NOT NULL AND totp_credentials.revoked_at IS NULL
    )`,
    params: {
      totp_id: sql.uuid(id),
      totp_identity_id: sql.uuid(identityId),
      identity_version: sql.int(identityVersion),
      totp_at: sql.timestamp(at),
      totp_step: sql.int(step),
    },
  };
}

/** Revocation: `revoked_at` set, with the identity's version bump, only while it is not revoked. */
export function revokeTotpMutation(identityId: string, id: string, identityVersion: number, at: string) {
  return {
    mutation: `UPDATE identities SET version = version + 1, updated_at = :totp_at
      WHERE id = :totp_identity_id AND version = :identity_version
        AND EXISTS (SELECT 1 FROM totp_credentials WHERE identity_id = :totp_identity_id AND id = :totp_id
                    AND revoked_at IS NULL)
      RETURNING id`,
    followUp: `totp_revoked AS (
      UPDATE totp_credentials SET revoked_at = :totp_at FROM changed
      WHERE totp_credentials.identity_id = changed.id AND totp_credentials.id = :totp_id
    )`,
    params: {
      totp_id: sql.uuid(id),
      totp_identity_id: sql.uuid(identityId),
      identity_version: sql.int(identityVersion),
      totp_at: sql.timestamp(at),
    },
  };
}

/**
 * Uses the code of `step`: only a credential still active whose last used step is earlier, so a code (or
 * any older one) is accepted once, even by two requests at the same instant. False when it was used.
 */
export async function useTotpStep(q: Queryable, id: string, step: number): Promise<boolean> {
  const { rows } = await q.query(
    `UPDATE totp_credentials SET last_used_step = :step
     WHERE id = :id AND confirmed_at IS NOT NULL AND revoked_at IS NULL AND last_used_step < :step
     RETURNING id`,
    { id: sql.uuid(id), step: sql.int(step) },
  );
  return rows.length === 1;
}
