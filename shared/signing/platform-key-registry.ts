import { GENESIS_HASH } from '../audit/audit-chain.ts';
import { auditedWrite } from '../audit/audited-write.ts';
import { type Queryable, sql } from '../database/database.ts';
import { ConflictError, ForbiddenError } from '../domain/errors.ts';
import type { Identity } from '../domain/identity.ts';
import type { Reply } from '../http/reply.ts';
import type { Dependencies } from '../runtime/dependencies.ts';
import {
  type PlatformJwk,
  type PlatformKey,
  type PlatformSignature,
  platformKeyAt,
  SignerError,
} from './signer.ts';

/**
 * The registry of the platform's countersigning keys (migration 0018): every key that ever signed, with its
 * validity window, so that `GET /platform/keys` keeps the old public keys and every countersignature and
 * checkpoint stays verifiable after a rotation.
 *
 * The keys are KMS keys behind one alias. A rotation (an admin's `POST /platform/keys/rotations`) creates a
 * key, registers it, moves the alias to it and retires the key it replaced {@link ALIAS_PROPAGATION_MS}
 * later. {@link countersign} is the only way the platform signs: it registers the key KMS signed with when
 * the registry does not hold it yet (the deployment's first key, or an alias an operator moved by hand) and
 * refuses a signature outside its key's window, so no stored signature ever falls outside it.
 */

/**
 * How long the key a rotation replaced stays valid after the alias moved. KMS applies an alias change
 * eventually ("ABAC for AWS KMS": up to five minutes), so a signature through the alias may still come
 * from the old key that long.
 */
export const ALIAS_PROPAGATION_MS = 5 * 60_000;

/** The audit chain of the platform's keys (rotations), an entity of its own. */
export const PLATFORM_KEYS_ENTITY_ID = '00000000-0000-4000-8000-00000000000b';

/** The advisory lock one rotation holds at a time (two would move the alias past each other). */
const ROTATION_LOCK = 4_610_318;

/** A platform key as `GET /platform/keys` publishes it: its JWK and its validity window. */
export type PublishedPlatformKey = PlatformJwk & { readonly validFrom: string; readonly validUntil?: string };

interface KeyRow {
  jwk: PlatformJwk;
  valid_from: string;
  valid_until: string | null;
  [k: string]: unknown;
}

const published = (r: KeyRow): PublishedPlatformKey => ({
  ...r.jwk,
  validFrom: r.valid_from,
  ...(r.valid_until === null ? {} : { validUntil: r.valid_until }),
});

/** Every registered key, the current one (no end) first, then the most recent first. */
export async function listPlatformKeys(q: Queryable): Promise<PublishedPlatformKey[]> {
  const { rows } = await q.query<KeyRow>(
    `SELECT jwk, valid_from, valid_until FROM platform_keys
     ORDER BY (valid_until IS NULL) DESC, valid_from DESC, kid`,
  );
  return rows.map(published);
}

/**
 * Signs `message` (UTF-8) for a record dated `at` with the platform's current key, and makes sure the
 * registry holds that key with a window that contains `at`: a key seen for the first time is registered
 * from `at`; a signature dated before its key's window (the alias moved after `at` was taken) or after it
 * (a retired key KMS still answered with) is refused as transient, so the caller retries with a fresh time.
 */
export async function countersign(
  deps: Dependencies,
  message: string,
  at: string,
): Promise<PlatformSignature> {
  const signed = await deps.signer.sign(Buffer.from(message, 'utf8'));
  const window = await registerKey(deps.db, signed.key, at);
  const valid = platformKeyAt([published({ jwk: signed.key.jwk, ...window })], signed.kid, at);
  if ('issue' in valid) {
    throw new SignerError(`${valid.issue}: the signing alias is moving`, { transient: true });
  }
  return { kid: signed.kid, alg: signed.alg, signature: signed.signature };
}

/** Registers `key` from `at` unless it is registered; answers its window either way (one statement). */
async function registerKey(
  q: Queryable,
  key: PlatformKey,
  at: string,
): Promise<{ valid_from: string; valid_until: string | null }> {
  const { rows } = await q.query<{ valid_from: string; valid_until: string | null }>(
    `WITH registered AS (
       INSERT INTO platform_keys (kid, key_id, jwk, valid_from) VALUES (:kid, :key_id, :jwk, :at)
       ON CONFLICT (kid) DO NOTHING
       RETURNING valid_from, valid_until
     )
     SELECT valid_from, valid_until FROM registered
     UNION ALL
     SELECT valid_from, valid_until FROM platform_keys WHERE kid = :kid`,
    {
      kid: sql.text(key.jwk.kid),
      key_id: sql.text(key.keyId),
      jwk: sql.json(key.jwk),
      at: sql.timestamp(at),
    },
  );
  const window = rows[0];
  if (!window) throw new Error(`platform key ${key.jwk.kid} is neither registered nor registrable`);
  return window;
}

/** The answer of a rotation: the new current key and the keys it retired. */
export interface PlatformKeyRotation {
  readonly key: PublishedPlatformKey;
  readonly retired: readonly PublishedPlatformKey[];
}

/**
 * `POST /platform/keys/rotations` (admins): creates a signing key, registers it (valid from now, before the
 * alias names it), moves the signing alias to it, and retires every other current key
 * {@link ALIAS_PROPAGATION_MS} from now, audited on the platform keys' chain with its event, all under one
 * transaction-scoped lock: a second rotation meanwhile is a 409. Old keys stay published with their window.
 *
 * When something fails after the alias moved, the new key is still the one KMS signs with, and
 * {@link countersign} registers it on its first signature; the key it replaced then stays current (nothing
 * signs with it) until the next rotation retires it.
 */
export async function rotatePlatformKey(
  deps: Dependencies,
  caller: Identity,
): Promise<Reply<PlatformKeyRotation>> {
  if (!caller.roles.includes('admin')) throw new ForbiddenError('Only an admin may rotate the platform key.');
  const manager = deps.platformKeys;
  if (!manager) throw new Error('this function is not configured to rotate the platform key');
  const rotation = await deps.db.transaction(async (tx) => {
    const { rows: lock } = await tx.query<{ locked: boolean }>(
      'SELECT pg_try_advisory_xact_lock(:lock) AS locked',
      {
        lock: sql.int(ROTATION_LOCK),
      },
    );
    if (!lock[0]?.locked) {
      throw new ConflictError(
        'rotation-in-progress',
        'Rotation in progress',
        'Another rotation of the platform key is under way; retry when it finished.',
      );
    }
    const created = await manager.createSigningKey();
    const from = deps.now().toISOString();
    await registerKey(tx, created, from);
    await manager.moveAlias(created.keyId);
    const moved = deps.now();
    const until = new Date(moved.getTime() + ALIAS_PROPAGATION_MS).toISOString();
    const { rows: current } = await tx.query<KeyRow & { kid: string }>(
      'SELECT kid, jwk, valid_from, valid_until FROM platform_keys WHERE valid_until IS NULL AND kid <> :kid ORDER BY kid',
      { kid: sql.text(created.jwk.kid) },
    );
    const { rows: head } = await tx.query<{ seq: number; hash: string }>(
      'SELECT seq, hash FROM audit_log WHERE entity_id = :id ORDER BY seq DESC LIMIT 1',
      { id: sql.uuid(PLATFORM_KEYS_ENTITY_ID) },
    );
    const retiring = current.map((r) => r.kid);
    const at = moved.toISOString();
    const data = {
      kid: created.jwk.kid,
      keyId: created.keyId,
      validFrom: from,
      retired: retiring,
      retiredAt: until,
    };
    await auditedWrite(tx, {
      preamble: `retired AS (
        UPDATE platform_keys SET valid_until = :until
        WHERE valid_until IS NULL AND kid <> :kid
        RETURNING kid
      )`,
      // One row whether or not a key was retired: the rotation is audited either way.
      mutation: 'SELECT count(*) AS retired FROM retired',
      params: { until: sql.timestamp(until), kid: sql.text(created.jwk.kid) },
      audit: {
        entityType: 'platform-keys',
        entityId: PLATFORM_KEYS_ENTITY_ID,
        seq: (head[0]?.seq ?? 0) + 1,
        action: 'rotate',
        actorId: caller.id,
        occurredAt: at,
        data,
      },
      prevHash: head[0]?.hash ?? GENESIS_HASH,
      event: {
        id: deps.newId(),
        aggregateType: 'platform-keys',
        aggregateId: PLATFORM_KEYS_ENTITY_ID,
        type: 'PlatformKeyRotated',
        occurredAt: at,
        payload: data,
      },
    });
    return {
      key: published({ jwk: created.jwk, valid_from: from, valid_until: null }),
      retired: current.map((r) => published({ ...r, valid_until: until })),
    };
  });
  return { status: 201, body: rotation };
}
