import { type Queryable, type Row, sql } from '../database/database.ts';
import { canonicalJson, sha256Hex } from '../domain/canonical-json.ts';
import { ConflictError, UnprocessableError } from '../domain/errors.ts';

/**
 * Idempotency keys of creating POSTs, kept in PostgreSQL in the write's own statement (the pattern Stripe
 * describes): the key row, with the fingerprint of the request and the response, commits together with the
 * write or not at all, so a retry after a crash can never create twice.
 */
export interface IdempotentRequest {
  readonly key: string;
  /** SHA-256 of the canonical request (route and body). */
  readonly fingerprint: string;
}

export const IDEMPOTENCY_KEY_PATTERN = /^[\x21-\x7e]{1,255}$/;

export function fingerprintOf(routeId: string, body: unknown): string {
  return sha256Hex(canonicalJson({ route: routeId, body: body ?? null }));
}

/**
 * CTEs that take a transaction-scoped advisory lock on (caller, key) and then claim the key. The write
 * that follows must be conditioned on `claimed_key`. When another request with the same key is still in
 * flight, the try-lock fails at once and the caller answers 409 instead of waiting.
 */
export function claimIdempotencyKey(
  callerId: string,
  routeId: string,
  request: IdempotentRequest,
  response: { status: number; body: unknown },
  at: string,
  /** A SQL condition that must also hold for the key to be claimed (the write's own preconditions). */
  condition = 'true',
) {
  return {
    preamble: `key_lock AS (
      SELECT pg_try_advisory_xact_lock(hashtextextended(:idem_caller || ':' || :idem_key, 7261)) AS ok
    ),
    claimed_key AS (
      INSERT INTO idempotency_keys (caller_id, key, route, fingerprint, status_code, response, created_at)
      SELECT :idem_caller, :idem_key, :idem_route, :idem_fingerprint, :idem_status, :idem_response, :idem_at
      FROM key_lock WHERE key_lock.ok AND ${condition}
      ON CONFLICT (caller_id, key) DO NOTHING
      RETURNING 1
    )`,
    extraColumns: '(SELECT ok FROM key_lock) AS key_locked',
    params: {
      idem_caller: sql.uuid(callerId),
      idem_key: sql.text(request.key),
      idem_route: sql.text(routeId),
      idem_fingerprint: sql.text(request.fingerprint),
      idem_status: sql.int(response.status),
      idem_response: sql.json(response.body),
      idem_at: sql.timestamp(at),
    },
  };
}

/** A stored response a retry replays. */
export interface IdempotentReplay<T> {
  readonly status: number;
  readonly body: T;
  readonly replayed: true;
}

/**
 * The response stored under the caller's key, when the key was used before: a retry of the same request
 * replays it, whatever happened since (the contract suspended, the validity window ended), because it is
 * looked up before any business rule runs. Null when the key is new.
 * @throws UnprocessableError `idempotency-key-reused` (422) when the key was used for another request.
 */
export async function findReplay<T>(
  q: Queryable,
  callerId: string,
  routeId: string,
  request: IdempotentRequest,
): Promise<IdempotentReplay<T> | null> {
  const { rows } = await q.query<{ route: string; fingerprint: string; status_code: number; response: T }>(
    `SELECT route, fingerprint, status_code, response FROM idempotency_keys WHERE caller_id = :caller AND key = :key`,
    { caller: sql.uuid(callerId), key: sql.text(request.key) },
  );
  const stored = rows[0];
  if (!stored) return null;
  if (stored.route !== routeId || stored.fingerprint !== request.fingerprint) {
    throw new UnprocessableError(
      'idempotency-key-reused',
      'Idempotency-Key reused',
      'This Idempotency-Key was already used with a different request; use a new key for a new request.',
    );
  }
  return { status: stored.status_code, body: stored.response, replayed: true };
}

/** After a claim that applied nothing: replay the stored response, or say why not. */
export async function replayOrConflict<T>(
  q: Queryable,
  callerId: string,
  routeId: string,
  request: IdempotentRequest,
  extra: Row,
): Promise<IdempotentReplay<T>> {
  if (extra.key_locked === false) {
    throw new ConflictError(
      'idempotency-key-in-use',
      'Request in progress',
      'A request with this Idempotency-Key is still being processed; retry later.',
    );
  }
  const replay = await findReplay<T>(q, callerId, routeId, request);
  if (!replay) {
    throw new ConflictError(
      'idempotency-key-in-use',
      'Request in progress',
      'The Idempotency-Key could not be claimed; retry.',
    );
  }
  return replay;
}

/** How long a key is remembered: a retry later than this is a new request (Stripe keeps keys 24 hours). */
export const IDEMPOTENCY_KEY_RETENTION_MS = 24 * 60 * 60 * 1000;

/** Forgets keys older than the retention window; returns how many were removed. */
export async function purgeIdempotencyKeys(q: Queryable, now: Date): Promise<number> {
  const { rowCount } = await q.query('DELETE FROM idempotency_keys WHERE created_at < :before', {
    before: sql.timestamp(new Date(now.getTime() - IDEMPOTENCY_KEY_RETENTION_MS)),
  });
  return rowCount;
}
