import { GENESIS_HASH } from '../audit/audit-chain.ts';
import { loadAuditHead } from '../audit/audit-store.ts';
import { auditedWrite } from '../audit/audited-write.ts';
import { DatabaseError, UNIQUE_VIOLATION } from '../database/database.ts';
import {
  ConflictError,
  DomainError,
  ForbiddenError,
  NotFoundError,
  UnprocessableError,
  ValidationError,
} from '../domain/errors.ts';
import {
  type CreateIdentity,
  type Identity,
  type IdentityKey,
  MAX_KEYS_PER_IDENTITY,
  type RegisterKey,
  type Role,
  type RotateKey,
  type SetIdentityStatus,
} from '../domain/identity.ts';
import { keyRegistrationStatement, keyThumbprint } from '../domain/key-registration.ts';
import { pageOf } from '../http/cursor.ts';
import { etagOf } from '../http/preconditions.ts';
import type { Reply } from '../http/reply.ts';
import {
  claimIdempotencyKey,
  findReplay,
  type IdempotentReplay,
  type IdempotentRequest,
  replayOrConflict,
} from '../idempotency/idempotency-store.ts';
import type { Dependencies } from '../runtime/dependencies.ts';
import { checkPublicJwk, verifyPartySignature } from '../signing/party-signatures.ts';
import {
  findIdentity,
  findIdentityBySubject,
  findKey,
  findKeyConflicts,
  insertIdentityMutation,
  insertKeyMutation,
  listKeys as listKeyRows,
  listIdentities as listRows,
  revokeKeyMutation,
  rotateKeyMutation,
  setIdentityStatusMutation,
} from './identity-store.ts';

/** The identity behind a verified token subject; a token for no identity is refused (403, not 500). */
export async function resolveCaller(deps: Dependencies, subject: string): Promise<Identity> {
  const cache = callerCaches.get(deps.db) ?? new CallerCache();
  callerCaches.set(deps.db, cache);
  const cached = cache.get(subject, deps.now().getTime());
  if (cached) return cached;
  const identity = await findIdentityBySubject(deps.db, subject);
  if (!identity)
    throw new ForbiddenError('The token is valid but no identity is registered for its subject.');
  requireActive(identity);
  cache.set(subject, identity, deps.now().getTime());
  return identity;
}

/**
 * Refuses an identity that is not active: a suspended or revoked identity signs, approves and acts on
 * nothing (403 `identity-suspended` or `identity-revoked`, with the admin's reason).
 */
export function requireActive(identity: Pick<Identity, 'status' | 'statusReason'>): void {
  if (identity.status === 'active') return;
  throw new DomainError(
    403,
    `identity-${identity.status}`,
    identity.status === 'suspended' ? 'Identity suspended' : 'Identity revoked',
    `This identity is ${identity.status}${identity.statusReason ? ` (${identity.statusReason})` : ''}: it may not act until an admin makes it active${identity.status === 'revoked' ? ', which a revocation never allows' : ''}.`,
  );
}

/**
 * `PUT /identities/{id}/status` (admins): suspends an identity, makes it active again, or revokes it for
 * good, audited with the reason. An admin cannot change its own status (another admin must), a revoked
 * identity stays revoked, and setting the status it has is a 409.
 */
export async function setIdentityStatus(
  deps: Dependencies,
  caller: Identity,
  identityId: string,
  input: SetIdentityStatus,
): Promise<Reply<Identity>> {
  if (!isAdmin(caller)) throw new ForbiddenError("Only an admin may change an identity's status.");
  const owner = await findIdentity(deps.db, identityId);
  if (!owner) throw new NotFoundError(`Identity ${identityId}`);
  if (owner.id === caller.id)
    throw new ConflictError(
      'own-status',
      'Own status',
      'An admin cannot change its own status: another admin must.',
    );
  if (owner.status === 'revoked')
    throw new ConflictError(
      'identity-revoked',
      'Identity revoked',
      `Identity ${identityId} was revoked: a revocation is final.`,
    );
  if (owner.status === input.status)
    throw new ConflictError(
      'status-unchanged',
      'Status unchanged',
      `Identity ${identityId} is ${owner.status} already.`,
    );
  const at = deps.now().toISOString();
  await writeIdentityChange(deps, owner, identityId, {
    ...setIdentityStatusMutation(identityId, owner.version, {
      from: owner.status,
      to: input.status,
      reason: input.reason,
      at,
    }),
    at,
    action: 'set-status',
    actorId: caller.id,
    data: { from: owner.status, to: input.status, reason: input.reason },
    event: {
      type: 'IdentityStatusChanged',
      payload: { identityId, from: owner.status, to: input.status, reason: input.reason },
    },
  });
  return {
    status: 200,
    body: {
      ...owner,
      status: input.status,
      statusReason: input.reason,
      version: owner.version + 1,
      updatedAt: at,
    },
    etag: etagOf(owner.version + 1),
  };
}

/**
 * Identities by token subject, kept per container for a few seconds: every authenticated request needs
 * its caller, and this saves a database round trip on the hot path. The window is the same idea as API
 * Gateway's authorizer result cache, much shorter; unknown subjects are never cached.
 */
export const CALLER_CACHE_TTL_MS = 15_000;
const CALLER_CACHE_MAX = 10_000;

class CallerCache {
  private readonly entries = new Map<string, { identity: Identity; expires: number }>();

  get(subject: string, now: number): Identity | undefined {
    const entry = this.entries.get(subject);
    if (!entry) return undefined;
    if (entry.expires <= now) {
      this.entries.delete(subject);
      return undefined;
    }
    return entry.identity;
  }

  set(subject: string, identity: Identity, now: number): void {
    if (this.entries.size >= CALLER_CACHE_MAX) this.entries.delete(this.entries.keys().next().value!);
    this.entries.set(subject, { identity, expires: now + CALLER_CACHE_TTL_MS });
  }

  forget(identityId: string): void {
    for (const [subject, entry] of this.entries)
      if (entry.identity.id === identityId) this.entries.delete(subject);
  }
}

const callerCaches = new WeakMap<object, CallerCache>();

/** Drops a changed identity from this container's cache (its own writes are seen at once). */
function forgetCaller(deps: Dependencies, identityId: string): void {
  callerCaches.get(deps.db)?.forget(identityId);
}

export const isAdmin = (i: Identity) => i.roles.includes('admin');

export async function createIdentity(
  deps: Dependencies,
  caller: Identity,
  input: CreateIdentity,
  idempotency?: IdempotentRequest,
): Promise<Reply<Identity>> {
  if (!isAdmin(caller)) throw new ForbiddenError('Only an admin may create identities.');
  const id = deps.newId();
  const identity = newIdentity(deps, {
    ...input,
    id,
    subject: input.subject ?? id,
    email: input.email ?? null,
  });
  const outcome = await insertIdentity(deps, caller.id, identity, idempotency);
  if (outcome === 'exists')
    throw new ConflictError(
      'identity-exists',
      'Identity exists',
      'An identity with this name or subject already exists.',
    );
  if (outcome !== 'inserted') return { ...outcome, etag: etagOf(outcome.body.version) };
  return { status: 201, body: identity, etag: etagOf(1) };
}

/** A new identity as `POST /identities` and the seed store it (version 1). */
export function newIdentity(
  deps: Dependencies,
  input: Pick<Identity, 'id' | 'subject' | 'name' | 'displayName' | 'email' | 'roles'>,
): Identity {
  const at = deps.now().toISOString();
  return {
    id: input.id,
    subject: input.subject,
    name: input.name,
    displayName: input.displayName,
    email: input.email,
    roles: input.roles,
    status: 'active',
    statusReason: null,
    version: 1,
    createdAt: at,
    updatedAt: at,
  };
}

/**
 * Inserts an identity with its first audit record, and claims the Idempotency-Key (caller `actorId`) in the
 * same statement when one is given. `exists` when the id, name or subject is taken; the stored response
 * when the key was claimed by an earlier request. `actorId` is null for the platform's own provisioning
 * (seeding), which never sends a key.
 */
export async function insertIdentity(
  deps: Dependencies,
  actorId: string | null,
  identity: Identity,
  idempotency?: IdempotentRequest,
): Promise<'inserted' | 'exists' | IdempotentReplay<Identity>> {
  const at = identity.createdAt;
  // The platform's own provisioning (no actor) never claims a key: there is no caller to scope it to.
  const keyed = idempotency !== undefined && actorId !== null;
  const insert = insertIdentityMutation(identity, keyed ? 'EXISTS (SELECT 1 FROM claimed_key)' : 'true');
  // The key is claimed only where the insert will apply, so a stored response always names a stored identity.
  const claim =
    keyed && idempotency
      ? claimIdempotencyKey(
          actorId,
          'createIdentity',
          idempotency,
          { status: 201, body: identity },
          at,
          insert.identityFree,
        )
      : undefined;
  let written: Awaited<ReturnType<typeof auditedWrite>>;
  try {
    written = await auditedWrite(deps.db, {
      ...(claim ? { preamble: claim.preamble, extraColumns: claim.extraColumns } : {}),
      mutation: insert.mutation,
      params: { ...insert.params, ...claim?.params },
      audit: {
        entityType: 'identity',
        entityId: identity.id,
        seq: 1,
        action: 'create',
        actorId,
        occurredAt: at,
        data: { name: identity.name, roles: identity.roles },
      },
      prevHash: GENESIS_HASH,
      event: {
        id: deps.newId(),
        aggregateType: 'identity',
        aggregateId: identity.id,
        type: 'IdentityCreated',
        occurredAt: at,
        payload: { identityId: identity.id, roles: identity.roles },
      },
    });
  } catch (error) {
    // A concurrent insert of the same name or subject won the race: the whole statement was refused.
    if (error instanceof DatabaseError && error.code === UNIQUE_VIOLATION) return 'exists';
    throw error;
  }
  if (written.applied) return 'inserted';
  if (!claim || !idempotency || actorId === null) return 'exists';
  if (written.extra.key_locked === false) {
    return replayOrConflict<Identity>(deps.db, actorId, 'createIdentity', idempotency, written.extra);
  }
  return (await findReplay<Identity>(deps.db, actorId, 'createIdentity', idempotency)) ?? 'exists';
}

/**
 * An identity, for itself, an admin or an auditor. Anyone else learns nothing, not even that it exists: 404.
 * @throws NotFoundError (404)
 */
export async function getIdentity(
  deps: Dependencies,
  caller: Identity,
  id: string,
): Promise<Reply<Identity>> {
  const mayRead = caller.id === id || isAdmin(caller) || caller.roles.includes('auditor');
  const identity = mayRead ? await findIdentity(deps.db, id) : undefined;
  if (!identity) throw new NotFoundError(`Identity ${id}`);
  return { status: 200, body: identity };
}

export async function listIdentities(
  deps: Dependencies,
  caller: Identity,
  query: { role?: Role | undefined; limit: number; cursor?: { readonly name: string } | undefined },
): Promise<Reply<{ items: Identity[]; nextCursor: string | null }>> {
  if (!isAdmin(caller) && !caller.roles.includes('auditor'))
    throw new ForbiddenError('Only admins and auditors may list identities.');
  const rows = await listRows(deps.db, { role: query.role, limit: query.limit + 1, after: query.cursor });
  return { status: 200, body: pageOf(rows, query.limit, (i) => ({ name: i.name })) };
}

/** The members a public key is made of, per key type (RFC 7638 §3.2; RFC 8037 §2): all that is stored. */
const PUBLIC_MEMBERS: Record<string, readonly string[]> = {
  EC: ['kty', 'crv', 'x', 'y'],
  OKP: ['kty', 'crv', 'x'],
  RSA: ['kty', 'n', 'e'],
};

/**
 * Registers a public key for `identityId` (the identity itself, or an admin for it). The key must be sound
 * for its algorithm (400), `input.proof` must be the key's own signature over the key registration
 * statement naming this identity (422), and its material must not be bound already, to this identity or
 * any other, nor its kid taken in this identity (409). A refusal stores nothing.
 */
export async function registerKey(
  deps: Dependencies,
  caller: Identity,
  identityId: string,
  input: RegisterKey,
): Promise<Reply<IdentityKey>> {
  const { owner, key, thumbprint } = await checkedNewKey(deps, caller, identityId, input);
  await writeKeyChange(deps, owner, identityId, {
    ...insertKeyMutation(key, thumbprint, owner.version, MAX_KEYS_PER_IDENTITY),
    at: key.createdAt,
    action: 'register-key',
    actorId: caller.id,
    data: { kid: key.kid, alg: key.alg, thumbprint },
    event: { type: 'IdentityKeyRegistered', payload: { identityId, kid: key.kid, alg: key.alg } },
    kid: key.kid,
  });
  return { status: 201, body: key };
}

/** How long a rotated key stays valid after its successor's registration, unless the rotation says. */
export const DEFAULT_ROTATION_GRACE_SECONDS = 24 * 3600;

/**
 * `POST /identities/{id}/keys/{kid}/rotate`: registers the successor (checked as any registration, with its
 * proof of possession) and retires key `kid` at the end of a grace period (`graceSeconds`, default one
 * day: signatures in flight may still be made with it), in one audited statement. Only a key that is
 * neither revoked nor retired already is rotated (409 `key-not-active`).
 */
export async function rotateKey(
  deps: Dependencies,
  caller: Identity,
  identityId: string,
  kid: string,
  input: RotateKey,
): Promise<Reply<{ successor: IdentityKey; retiring: IdentityKey }>> {
  const { graceSeconds = DEFAULT_ROTATION_GRACE_SECONDS, ...registration } = input;
  const { owner, key, thumbprint } = await checkedNewKey(deps, caller, identityId, registration);
  const old = await activeKey(deps, identityId, kid, { retired: true });
  const notAfter = new Date(Date.parse(key.createdAt) + graceSeconds * 1000).toISOString();
  await writeKeyChange(deps, owner, identityId, {
    ...rotateKeyMutation(key, thumbprint, owner.version, MAX_KEYS_PER_IDENTITY, { kid, notAfter }),
    at: key.createdAt,
    action: 'rotate-key',
    actorId: caller.id,
    data: { kid, successor: key.kid, alg: key.alg, thumbprint, notAfter },
    event: {
      type: 'IdentityKeyRotated',
      payload: { identityId, kid, successor: key.kid, notAfter },
    },
    kid,
  });
  return { status: 201, body: { successor: key, retiring: { ...old, notAfter } } };
}

/**
 * `DELETE /identities/{id}/keys/{kid}`: revokes the key at once (the identity itself or an admin). Its
 * signatures made before stay verifiable; none is accepted after. A key revoked already is a 409.
 */
export async function revokeKey(
  deps: Dependencies,
  caller: Identity,
  identityId: string,
  kid: string,
): Promise<Reply<IdentityKey>> {
  const owner = await credentialOwner(deps, caller, identityId);
  const key = await activeKey(deps, identityId, kid, { retired: false });
  const at = deps.now().toISOString();
  await writeKeyChange(deps, owner, identityId, {
    ...revokeKeyMutation(identityId, kid, owner.version, at),
    at,
    action: 'revoke-key',
    actorId: caller.id,
    data: { kid },
    event: { type: 'IdentityKeyRevoked', payload: { identityId, kid } },
    kid,
  });
  return { status: 200, body: { ...key, revokedAt: at } };
}

/**
 * The identity whose keys and second factors `caller` manages: itself, or any for an admin (403 otherwise,
 * 404 if none).
 */
export async function credentialOwner(
  deps: Dependencies,
  caller: Identity,
  identityId: string,
): Promise<Identity> {
  // 403, not 404: GET on the same path answers any authenticated caller, so existence is no secret.
  if (caller.id !== identityId && !isAdmin(caller))
    throw new ForbiddenError('Only the identity itself or an admin may manage its keys and second factors.');
  const owner = caller.id === identityId ? caller : await findIdentity(deps.db, identityId);
  if (!owner) throw new NotFoundError(`Identity ${identityId}`);
  return owner;
}

/**
 * Who may list an identity's second factors and passkeys: the identity itself, admins and auditors (403
 * otherwise, 404 if there is no such identity).
 */
export async function requireCredentialReader(
  deps: Dependencies,
  caller: Identity,
  identityId: string,
  what: string,
): Promise<void> {
  if (caller.id === identityId) return;
  if (!(await findIdentity(deps.db, identityId))) throw new NotFoundError(`Identity ${identityId}`);
  if (!isAdmin(caller) && !caller.roles.includes('auditor'))
    throw new ForbiddenError(`Only the identity itself, an admin or an auditor may list its ${what}.`);
}

/**
 * Key `kid` of the identity, which must not be revoked (nor retired, with `retired: true`): 404 for a key
 * it does not have, 409 `key-not-active` for one it may no longer use.
 */
async function activeKey(
  deps: Dependencies,
  identityId: string,
  kid: string,
  refuse: { retired: boolean },
): Promise<IdentityKey> {
  const key = await findKey(deps.db, identityId, kid);
  if (!key) throw new NotFoundError(`Key ${kid} of identity ${identityId}`);
  if (key.revokedAt !== null || (refuse.retired && key.notAfter !== null)) {
    throw new ConflictError(
      'key-not-active',
      'Key not active',
      key.revokedAt !== null
        ? `Key ${kid} was revoked at ${key.revokedAt}.`
        : `Key ${kid} is being retired (not after ${key.notAfter}): it was rotated already.`,
    );
  }
  return key;
}

/**
 * A new key for `identityId`, checked: the caller may manage its keys, the key is sound for its algorithm
 * (400), `input.proof` is the key's own signature over the key registration statement naming this
 * identity (422), and its material is not bound already, to this identity or any other, nor its kid taken
 * in this identity (409).
 */
async function checkedNewKey(
  deps: Dependencies,
  caller: Identity,
  identityId: string,
  input: RegisterKey,
): Promise<{ owner: Identity; key: IdentityKey; thumbprint: string }> {
  const owner = await credentialOwner(deps, caller, identityId);
  const issues = checkPublicJwk(input.alg, input.jwk);
  if (issues.length) throw new ValidationError(`The JWK is not a usable ${input.alg} public key.`, issues);
  const publicMembers = Object.fromEntries(
    PUBLIC_MEMBERS[input.jwk.kty]!.map((member) => [member, input.jwk[member]]),
  );
  const thumbprint = await keyThumbprint(publicMembers);
  const statement = keyRegistrationStatement(identityId, thumbprint);
  if (!verifyPartySignature(input.alg, publicMembers, Buffer.from(statement, 'utf8'), input.proof)) {
    throw new UnprocessableError(
      'invalid-proof',
      'Invalid proof of possession',
      `The proof is not a ${input.alg} signature by this key over ${statement}.`,
      [{ field: 'proof', message: "must be the key's signature over the key registration statement" }],
    );
  }
  const kid = input.kid ?? thumbprint;
  const conflicts = await findKeyConflicts(deps.db, identityId, kid, thumbprint);
  if (conflicts.boundTo) {
    throw new ConflictError(
      'key-exists',
      'Key already registered',
      conflicts.boundTo.identityId === identityId
        ? `This key material is already registered for this identity as kid ${conflicts.boundTo.kid}.`
        : 'This key material is already registered for another identity; a key belongs to one identity.',
    );
  }
  if (conflicts.kidTaken)
    throw new ConflictError('kid-exists', 'Kid in use', `This identity already has a key with kid ${kid}.`);
  const key: IdentityKey = {
    kid,
    identityId,
    alg: input.alg,
    jwk: publicMembers,
    createdAt: deps.now().toISOString(),
    notAfter: null,
    revokedAt: null,
  };
  return { owner, key, thumbprint };
}

/** A change of an identity's keys or credentials: its statement, audit record and event. */
export interface IdentityChange {
  readonly mutation: string;
  readonly followUp?: string;
  readonly extraColumns?: string;
  readonly params: Record<string, unknown>;
  readonly at: string;
  readonly action: string;
  readonly actorId: string;
  readonly data: Record<string, unknown>;
  readonly event: { readonly type: string; readonly payload: Record<string, unknown> };
}

/**
 * One change of an identity's keys or credentials, written with its audit record and event in one
 * statement that bumps the identity's version. A statement that changed nothing lost a race (409) unless
 * `refusal` names why (from the statement's extra columns); a unique violation is `conflict`'s.
 */
export async function writeIdentityChange(
  deps: Dependencies,
  owner: Identity,
  identityId: string,
  change: IdentityChange,
  explain: {
    readonly refusal?: (extra: Record<string, unknown>) => Error | undefined;
    readonly conflict?: () => Error;
  } = {},
): Promise<void> {
  const head = await loadAuditHead(deps.db, identityId, owner.version);
  try {
    const { applied, extra } = await auditedWrite(deps.db, {
      mutation: change.mutation,
      ...(change.followUp ? { followUp: change.followUp } : {}),
      ...(change.extraColumns ? { extraColumns: change.extraColumns } : {}),
      params: change.params as never,
      audit: {
        entityType: 'identity',
        entityId: identityId,
        seq: owner.version + 1,
        action: change.action,
        actorId: change.actorId,
        occurredAt: change.at,
        data: change.data,
      },
      prevHash: head,
      event: {
        id: deps.newId(),
        aggregateType: 'identity',
        aggregateId: identityId,
        type: change.event.type,
        occurredAt: change.at,
        payload: change.event.payload,
      },
    });
    forgetCaller(deps, identityId);
    if (!applied) {
      throw (
        explain.refusal?.(extra) ??
        new ConflictError(
          'concurrent-modification',
          'Concurrent modification',
          'The identity or its credential changed concurrently; retry.',
        )
      );
    }
  } catch (error) {
    if (explain.conflict && error instanceof DatabaseError && error.code === UNIQUE_VIOLATION) {
      throw explain.conflict();
    }
    throw error;
  }
}

/** {@link writeIdentityChange} for a key: too many keys, or the same material or kid registered concurrently. */
function writeKeyChange(
  deps: Dependencies,
  owner: Identity,
  identityId: string,
  change: IdentityChange & { kid: string },
): Promise<void> {
  const { kid, ...rest } = change;
  return writeIdentityChange(deps, owner, identityId, rest, {
    refusal: (extra) =>
      Number(extra.keys_held) >= MAX_KEYS_PER_IDENTITY
        ? new ConflictError(
            'too-many-keys',
            'Too many keys',
            `The identity already holds ${MAX_KEYS_PER_IDENTITY} keys, the most one identity may hold.`,
          )
        : undefined,
    // A concurrent registration of the same material (for any identity) or kid won the race.
    conflict: () =>
      new ConflictError(
        'key-exists',
        'Key already registered',
        `This key material, or kid ${kid} for this identity, was registered concurrently.`,
      ),
  });
}

/** Public keys are public: any authenticated identity may fetch them to verify a party's signature. */
export async function listKeys(
  deps: Dependencies,
  _caller: Identity,
  identityId: string,
): Promise<Reply<{ keys: IdentityKey[] }>> {
  const owner = await findIdentity(deps.db, identityId);
  if (!owner) throw new NotFoundError(`Identity ${identityId}`);
  return { status: 200, body: { keys: await listKeyRows(deps.db, identityId) } };
}

/**
 * Checks that `signature` (base64url, JWS encoding) over `payload` was made by one of the caller's own
 * active keys; returns that key. `what` names the payload in the refusal.
 * @throws UnprocessableError `unknown-key` or `invalid-signature` (422)
 */
export async function verifyCallerSignature(
  deps: Dependencies,
  caller: Identity,
  input: { kid: string; signature: string },
  payload: string,
  what: string,
): Promise<IdentityKey> {
  // The caller's status as it is now, not as a container cached it: a suspension stops signing at once.
  const [current, key] = await Promise.all([
    findIdentity(deps.db, caller.id),
    findKey(deps.db, caller.id, input.kid),
  ]);
  if (current) requireActive(current);
  const now = deps.now().getTime();
  if (!key || key.revokedAt !== null || (key.notAfter !== null && now >= Date.parse(key.notAfter))) {
    throw new UnprocessableError(
      'unknown-key',
      'Unknown signing key',
      `Key ${input.kid} is not an active key registered by the signer${key?.revokedAt ? ` (revoked at ${key.revokedAt})` : key?.notAfter ? ` (retired at ${key.notAfter})` : ''}.`,
      [{ field: 'kid', message: 'not an active key of the signer' }],
    );
  }
  // Keys registered before the registration checks of issue 8 may be unsound (an RSA exponent of 1, a
  // small-order Ed25519 point): anyone could have made a signature under them, so none is accepted.
  const unsound = checkPublicJwk(key.alg, key.jwk);
  if (unsound.length) {
    throw new UnprocessableError(
      'unsound-key',
      'Unsound signing key',
      `Key ${key.kid} fails today's key checks (${unsound[0]!.field}: ${unsound[0]!.message}); register a new key.`,
      [{ field: 'kid', message: 'names a key that fails the key checks' }],
    );
  }
  if (!verifyPartySignature(key.alg, key.jwk, Buffer.from(payload, 'utf8'), input.signature)) {
    throw new UnprocessableError(
      'invalid-signature',
      'Invalid signature',
      `The signature does not verify with key ${key.kid} (${key.alg}) over ${what}.`,
      [{ field: 'signature', message: 'does not verify over the current signingPayload' }],
    );
  }
  return key;
}
