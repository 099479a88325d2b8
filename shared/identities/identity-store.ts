import { type Queryable, sql } from '../database/database.ts';
import type { Identity, IdentityKey, IdentityStatus, Role, SignatureAlgorithm } from '../domain/identity.ts';

/** SQL for identities and their keys; the only module that knows these tables. */
const IDENTITY_COLUMNS = `id, subject, name, display_name, email, roles, status, status_reason, version, created_at, updated_at`;

interface IdentityRow {
  id: string;
  subject: string;
  name: string;
  display_name: string;
  email: string | null;
  roles: Role[];
  status: IdentityStatus;
  status_reason: string | null;
  version: number;
  created_at: string;
  updated_at: string;
  [k: string]: unknown;
}

function toIdentity(r: IdentityRow): Identity {
  return {
    id: r.id,
    subject: r.subject,
    name: r.name,
    displayName: r.display_name,
    email: r.email,
    roles: r.roles,
    status: r.status,
    statusReason: r.status_reason,
    version: r.version,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

export async function findIdentityBySubject(q: Queryable, subject: string): Promise<Identity | null> {
  const { rows } = await q.query<IdentityRow>(
    `SELECT ${IDENTITY_COLUMNS} FROM identities WHERE subject = :subject`,
    {
      subject: sql.text(subject),
    },
  );
  return rows[0] ? toIdentity(rows[0]) : null;
}

export async function findIdentity(q: Queryable, id: string): Promise<Identity | null> {
  const { rows } = await q.query<IdentityRow>(`SELECT ${IDENTITY_COLUMNS} FROM identities WHERE id = :id`, {
    id: sql.uuid(id),
  });
  return rows[0] ? toIdentity(rows[0]) : null;
}

export async function findIdentityByName(q: Queryable, name: string): Promise<Identity | null> {
  const { rows } = await q.query<IdentityRow>(
    `SELECT ${IDENTITY_COLUMNS} FROM identities WHERE name = :name`,
    {
      name: sql.text(name),
    },
  );
  return rows[0] ? toIdentity(rows[0]) : null;
}

export async function listIdentities(
  q: Queryable,
  filter: { role?: Role | undefined; limit: number; after?: { name: string } | undefined },
): Promise<Identity[]> {
  const { rows } = await q.query<IdentityRow>(
    `SELECT ${IDENTITY_COLUMNS} FROM identities
     WHERE (:role::text IS NULL OR :role = ANY (roles))
       AND (:after_name::text IS NULL OR name > :after_name)
     ORDER BY name
     LIMIT :limit`,
    {
      role: sql.text(filter.role ?? null),
      after_name: sql.text(filter.after?.name ?? null),
      limit: sql.int(filter.limit),
    },
  );
  return rows.map(toIdentity);
}

/**
 * The INSERT an audited write runs to create an identity (roles go in as JSON: no array parameters). It
 * applies only when no identity holds the id, name or subject and `condition` holds; `identityFree` is that
 * first test, for a key claim that must apply only with the insert. A concurrent insert of the same name
 * or subject fails the whole statement with a unique violation (nothing of it is written).
 */
export function insertIdentityMutation(identity: Identity, condition = 'true') {
  const identityFree =
    'NOT EXISTS (SELECT 1 FROM identities WHERE id = :id OR name = :name OR subject = :subject)';
  return {
    identityFree,
    mutation: `INSERT INTO identities (id, subject, name, display_name, email, roles, version, created_at, updated_at)
      SELECT :id, :subject, :name, :display_name, :email,
             ARRAY(SELECT jsonb_array_elements_text(:roles)), :version, :created_at, :updated_at
      WHERE ${identityFree} AND ${condition}
      RETURNING 1`,
    params: {
      id: sql.uuid(identity.id),
      subject: sql.text(identity.subject),
      name: sql.text(identity.name),
      display_name: sql.text(identity.displayName),
      email: sql.text(identity.email),
      roles: sql.json(identity.roles),
      version: sql.int(identity.version),
      created_at: sql.timestamp(identity.createdAt),
      updated_at: sql.timestamp(identity.updatedAt),
    },
  };
}

interface KeyRow {
  kid: string;
  identity_id: string;
  alg: SignatureAlgorithm;
  jwk: Record<string, unknown>;
  created_at: string;
  not_after: string | null;
  revoked_at: string | null;
  [k: string]: unknown;
}

function toKey(r: KeyRow): IdentityKey {
  return {
    kid: r.kid,
    identityId: r.identity_id,
    alg: r.alg,
    jwk: r.jwk,
    createdAt: r.created_at,
    notAfter: r.not_after,
    revokedAt: r.revoked_at,
  };
}

/** The key `kid` of one identity: kids are unique per identity only (migration 0008). */
export async function findKey(q: Queryable, identityId: string, kid: string): Promise<IdentityKey | null> {
  const { rows } = await q.query<KeyRow>(
    `SELECT kid, identity_id, alg, jwk, created_at, not_after, revoked_at FROM identity_keys
     WHERE identity_id = :identity_id AND kid = :kid`,
    { identity_id: sql.uuid(identityId), kid: sql.text(kid) },
  );
  return rows[0] ? toKey(rows[0]) : null;
}

/**
 * What stands in the way of registering a key: the row that binds the same material (thumbprint), to any
 * identity, and whether `identityId` already has a key named `kid`.
 */
export async function findKeyConflicts(
  q: Queryable,
  identityId: string,
  kid: string,
  thumbprint: string,
): Promise<{ boundTo: { identityId: string; kid: string } | null; kidTaken: boolean }> {
  const { rows } = await q.query<{ identity_id: string; kid: string; same_material: boolean }>(
    `SELECT identity_id, kid, thumbprint = :thumbprint AND binds_material AS same_material FROM identity_keys
     WHERE (thumbprint = :thumbprint AND binds_material) OR (identity_id = :identity_id AND kid = :kid)`,
    { identity_id: sql.uuid(identityId), kid: sql.text(kid), thumbprint: sql.text(thumbprint) },
  );
  const bound = rows.find((r) => r.same_material);
  return {
    boundTo: bound ? { identityId: bound.identity_id, kid: bound.kid } : null,
    kidTaken: rows.some((r) => r.identity_id === identityId && r.kid === kid),
  };
}

export async function listKeys(q: Queryable, identityId: string): Promise<IdentityKey[]> {
  const { rows } = await q.query<KeyRow>(
    `SELECT kid, identity_id, alg, jwk, created_at, not_after, revoked_at FROM identity_keys
     WHERE identity_id = :identity_id ORDER BY created_at, kid`,
    { identity_id: sql.uuid(identityId) },
  );
  return rows.map(toKey);
}

/**
 * Registering a key bumps the identity's version (its key set is part of its state, and its audit chain
 * is numbered by version) and inserts the key in the same statement. A kid the identity already uses, or
 * material another row binds (`thumbprint`, the RFC 7638 thumbprint), fails the whole statement with a
 * unique violation, so a race between two registrations can never bind one key to two identities.
 */
export function insertKeyMutation(
  key: IdentityKey,
  thumbprint: string,
  identityVersion: number,
  maxKeys: number,
  /** A further condition on the identity's row (SQL over the statement's parameters). */
  condition = 'true',
) {
  return {
    // The version check serialises an identity's registrations, so the count below cannot be outrun.
    mutation: `UPDATE identities SET version = version + 1, updated_at = :key_created_at
      WHERE id = :key_identity_id AND version = :identity_version
        AND (SELECT count(*) FROM identity_keys WHERE identity_id = :key_identity_id) < :max_keys
        AND (${condition})
      RETURNING id`,
    extraColumns:
      '(SELECT count(*) FROM identity_keys WHERE identity_id = :key_identity_id)::int AS keys_held',
    followUp: `key_inserted AS (
      INSERT INTO identity_keys (kid, identity_id, alg, jwk, thumbprint, created_at)
      SELECT :kid, changed.id, :alg, :jwk, :thumbprint, :key_created_at FROM changed
    )`,
    params: {
      kid: sql.text(key.kid),
      key_identity_id: sql.uuid(key.identityId),
      identity_version: sql.int(identityVersion),
      alg: sql.text(key.alg),
      jwk: sql.json(key.jwk),
      thumbprint: sql.text(thumbprint),
      key_created_at: sql.timestamp(key.createdAt),
      max_keys: sql.int(maxKeys),
    },
  };
}

/**
 * Revoking a key bumps the identity's version and sets the key's `revoked_at` in the same statement, only
 * while it is not revoked (a concurrent revocation finds nothing to change: `applied` false).
 */
export function revokeKeyMutation(identityId: string, kid: string, identityVersion: number, at: string) {
  return {
    mutation: `UPDATE identities SET version = version + 1, updated_at = :revoked_at
      WHERE id = :key_identity_id AND version = :identity_version
        AND EXISTS (SELECT 1 FROM identity_keys
                    WHERE identity_id = :key_identity_id AND kid = :kid AND revoked_at IS NULL)
      RETURNING id`,
    followUp: `key_revoked AS (
      UPDATE identity_keys SET revoked_at = :revoked_at FROM changed
      WHERE identity_keys.identity_id = changed.id AND identity_keys.kid = :kid
    )`,
    params: {
      kid: sql.text(kid),
      key_identity_id: sql.uuid(identityId),
      identity_version: sql.int(identityVersion),
      revoked_at: sql.timestamp(at),
    },
  };
}

/**
 * Rotating a key registers its successor (as {@link insertKeyMutation}) and retires the old key at
 * `notAfter`, in one statement, only while the old key is neither revoked nor retired already.
 */
export function rotateKeyMutation(
  successor: IdentityKey,
  thumbprint: string,
  identityVersion: number,
  maxKeys: number,
  retiring: { kid: string; notAfter: string },
) {
  const insert = insertKeyMutation(
    successor,
    thumbprint,
    identityVersion,
    maxKeys,
    `EXISTS (SELECT 1 FROM identity_keys WHERE identity_id = :key_identity_id AND kid = :retiring_kid
             AND revoked_at IS NULL AND not_after IS NULL)`,
  );
  return {
    ...insert,
    followUp: `${insert.followUp},
    key_retired AS (
      UPDATE identity_keys SET not_after = :retiring_not_after FROM changed
      WHERE identity_keys.identity_id = changed.id AND identity_keys.kid = :retiring_kid
    )`,
    params: {
      ...insert.params,
      retiring_kid: sql.text(retiring.kid),
      retiring_not_after: sql.timestamp(retiring.notAfter),
    },
  };
}

/**
 * An admin's status change: the identity's status and reason set and its version bumped, only from the
 * status read (`from`), so a concurrent change makes it apply nothing.
 */
export function setIdentityStatusMutation(
  identityId: string,
  identityVersion: number,
  change: { from: IdentityStatus; to: IdentityStatus; reason: string; at: string },
) {
  return {
    mutation: `UPDATE identities SET status = :status_to, status_reason = :status_reason, version = version + 1,
        updated_at = :status_at
      WHERE id = :status_identity_id AND version = :identity_version AND status = :status_from
      RETURNING id`,
    params: {
      status_identity_id: sql.uuid(identityId),
      identity_version: sql.int(identityVersion),
      status_from: sql.text(change.from),
      status_to: sql.text(change.to),
      status_reason: sql.text(change.reason),
      status_at: sql.timestamp(change.at),
    },
  };
}
