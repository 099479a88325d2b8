import { sql } from '../database/database.ts';
import type { Dependencies } from '../runtime/dependencies.ts';

/**
 * The rotation-age report: which credentials are older than the deployment allows (`CREDENTIAL_MAX_AGE_DAYS`
 * for the identities' signing keys, passkeys and confirmed TOTP factors; `PLATFORM_KEY_MAX_AGE_DAYS` for the
 * platform's current countersigning key), counted per kind, with the oldest listed. A scheduled job runs it:
 * the counts become metrics, and a `CredentialsDueForRotation` event goes out through the outbox when any
 * credential is due, so that an EventBridge rule can open a ticket or notify the owners.
 *
 * A credential counts while it can still sign: not revoked, not past its retirement, of an identity that is
 * not revoked (a pending TOTP enrolment signs nothing yet). Its age is from its registration (a platform key:
 * from when it became valid).
 */

/** The kinds of credentials the report counts, in the order it lists them. */
export const CREDENTIAL_KINDS = ['signing-key', 'passkey', 'totp', 'platform-key'] as const;
export type CredentialKind = (typeof CREDENTIAL_KINDS)[number];

/** How old a credential may get before it is due for rotation. */
export interface RotationPolicy {
  readonly maxAgeDays: number;
  readonly platformKeyMaxAgeDays: number;
}

/** A year each, unless the deployment says otherwise. */
export const DEFAULT_ROTATION_POLICY: RotationPolicy = { maxAgeDays: 365, platformKeyMaxAgeDays: 365 };

/** The most credentials the report (and its event, at most 256 KB on EventBridge) lists by name. */
export const REPORT_LISTED = 50;

/** The aggregate the report's events are published under (a fixed id: the report is the platform's). */
export const CREDENTIAL_REPORT_ID = '00000000-0000-4000-8000-00000000000c';

export interface DueCredential {
  readonly kind: CredentialKind;
  /** The identity holding it (null for the platform's key). */
  readonly owner: string | null;
  /** Its id: a signing key's kid, a passkey's or TOTP factor's platform id, the platform key's kid. */
  readonly credential: string;
  readonly createdAt: string;
}

export interface RotationReport {
  readonly asOf: string;
  readonly maxAgeDays: number;
  readonly platformKeyMaxAgeDays: number;
  /** How many credentials of each kind are due (every kind, 0 included). */
  readonly counts: Readonly<Record<CredentialKind, number>>;
  readonly total: number;
  /** The oldest due credentials, at most {@link REPORT_LISTED}, oldest first. */
  readonly oldest: readonly DueCredential[];
}

const DAY_MS = 86_400_000;

/**
 * Counts the credentials due for rotation at `deps.now()` and, when any is, writes the
 * `CredentialsDueForRotation` event to the outbox in the same statement. Answers the report and whether
 * the event was written.
 */
export async function reportCredentialsDueForRotation(
  deps: Dependencies,
): Promise<{ report: RotationReport; published: boolean }> {
  const policy = deps.rotationPolicy ?? DEFAULT_ROTATION_POLICY;
  const now = deps.now();
  const asOf = now.toISOString();
  const { rows } = await deps.db.query<{
    counts: Record<string, number>;
    total: number;
    oldest: DueCredential[];
    published: number;
  }>(
    `WITH due AS (
       SELECT 'signing-key' AS kind, k.identity_id::text AS owner, k.kid AS credential, k.created_at
       FROM identity_keys k JOIN identities i ON i.id = k.identity_id
       WHERE i.status <> 'revoked' AND k.revoked_at IS NULL AND (k.not_after IS NULL OR k.not_after > :now)
         AND k.created_at <= :cutoff
       UNION ALL
       SELECT 'passkey', p.identity_id::text, p.id::text, p.created_at
       FROM webauthn_credentials p JOIN identities i ON i.id = p.identity_id
       WHERE i.status <> 'revoked' AND p.revoked_at IS NULL AND (p.not_after IS NULL OR p.not_after > :now)
         AND p.created_at <= :cutoff
       UNION ALL
       SELECT 'totp', t.identity_id::text, t.id::text, t.created_at
       FROM totp_credentials t JOIN identities i ON i.id = t.identity_id
       WHERE i.status <> 'revoked' AND t.confirmed_at IS NOT NULL AND t.revoked_at IS NULL
         AND (t.not_after IS NULL OR t.not_after > :now) AND t.created_at <= :cutoff
       UNION ALL
       SELECT 'platform-key', NULL, kid, valid_from FROM platform_keys
       WHERE valid_until IS NULL AND valid_from <= :platform_cutoff
     ),
     report AS (
       SELECT
         (SELECT coalesce(jsonb_object_agg(kind, n), '{}'::jsonb)
          FROM (SELECT kind, count(*)::int AS n FROM due GROUP BY kind) AS c) AS counts,
         (SELECT count(*)::int FROM due) AS total,
         (SELECT coalesce(jsonb_agg(jsonb_build_object(
                   'kind', kind, 'owner', owner, 'credential', credential,
                   'createdAt', to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))
                 ORDER BY created_at, kind, credential), '[]'::jsonb)
          FROM (SELECT * FROM due ORDER BY created_at, kind, credential LIMIT :listed) AS o) AS oldest
     ),
     published AS (
       INSERT INTO outbox (id, aggregate_type, aggregate_id, event_type, payload, occurred_at)
       SELECT :event_id, 'credentials', :aggregate_id, 'CredentialsDueForRotation',
              jsonb_build_object('asOf', :as_of_text, 'maxAgeDays', :max_age, 'platformKeyMaxAgeDays', :platform_max_age,
                                 'counts', counts, 'total', total, 'oldest', oldest),
              :now
       FROM report WHERE total > 0
       RETURNING 1
     )
     SELECT counts, total, oldest, (SELECT count(*) FROM published)::int AS published FROM report`,
    {
      now: sql.timestamp(asOf),
      cutoff: sql.timestamp(new Date(now.getTime() - policy.maxAgeDays * DAY_MS).toISOString()),
      platform_cutoff: sql.timestamp(
        new Date(now.getTime() - policy.platformKeyMaxAgeDays * DAY_MS).toISOString(),
      ),
      listed: sql.int(REPORT_LISTED),
      event_id: sql.uuid(deps.newId()),
      aggregate_id: sql.uuid(CREDENTIAL_REPORT_ID),
      as_of_text: sql.text(asOf),
      max_age: sql.int(policy.maxAgeDays),
      platform_max_age: sql.int(policy.platformKeyMaxAgeDays),
    },
  );
  const row = rows[0]!;
  const counts = Object.fromEntries(CREDENTIAL_KINDS.map((k) => [k, Number(row.counts[k] ?? 0)])) as Record<
    CredentialKind,
    number
  >;
  return {
    report: { asOf, ...policy, counts, total: row.total, oldest: row.oldest },
    published: row.published > 0,
  };
}
