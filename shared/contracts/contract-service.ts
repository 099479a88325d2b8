import { GENESIS_HASH } from '../audit/audit-chain.ts';
import { auditedWrite } from '../audit/audited-write.ts';
import { auditedAttempt } from '../audit/security-refusals.ts';
import { sha256Hex } from '../domain/canonical-json.ts';
import {
  assertContentFits,
  type ContractData,
  type ContractSignature,
  type ContractSummary,
  type CreateContract,
  contentDigest,
  countersignPayload,
  currentPartySignatures,
  partyRoleOf,
  type SignContract,
  signingPayload,
  stateOfSummary,
  type UpdateContract,
} from '../domain/contract.ts';
import {
  type Actor,
  applyTransition,
  availableActions,
  type ContractAction,
} from '../domain/contract-lifecycle.ts';
import {
  ConflictError,
  type FieldIssue,
  ForbiddenError,
  NotFoundError,
  PreconditionFailedError,
  PreconditionRequiredError,
  UnprocessableError,
} from '../domain/errors.ts';
import type { Identity } from '../domain/identity.ts';
import { pageOf } from '../http/cursor.ts';
import { checkIfMatch, etagOf } from '../http/preconditions.ts';
import type { Reply } from '../http/reply.ts';
import {
  claimIdempotencyKey,
  findReplay,
  type IdempotentRequest,
  replayOrConflict,
} from '../idempotency/idempotency-store.ts';
import {
  attemptedCredential,
  signatureAuditData,
  type VerifiedPartySignature,
  verifyPartyInput,
} from '../identities/party-signing.ts';
import type { Dependencies } from '../runtime/dependencies.ts';
import { countersign } from '../signing/platform-key-registry.ts';
import {
  type ContractFilter,
  deleteContractMutation,
  insertContractMutation,
  type LoadedContract,
  listContracts as listContractRows,
  loadContract,
  updateContractMutation,
} from './contract-store.ts';

/** A contract as the API shows it to one caller: with the exact payload to sign and what they may do. */
export type ContractView = ContractData & {
  readonly signingPayload: string;
  readonly availableActions: string[];
};

export function actorOf(identity: Identity): Actor {
  return { kind: 'identity', id: identity.id, roles: identity.roles };
}

export function viewOf(c: ContractData, caller: Identity, now: Date): ContractView {
  return {
    ...c,
    signingPayload: signingPayload(c),
    availableActions: availableActions(c, actorOf(caller), now),
  };
}

function canSee(c: ContractData, caller: Identity): boolean {
  return (
    partyRoleOf(c, caller.id) !== null || caller.roles.includes('admin') || caller.roles.includes('auditor')
  );
}

/** Loads a contract the caller may see; anyone else learns nothing, not even that it exists (404). */
export async function loadVisible(deps: Dependencies, caller: Identity, id: string): Promise<LoadedContract> {
  const loaded = await loadContract(deps.db, id);
  if (!loaded || !canSee(loaded.contract, caller)) throw new NotFoundError(`Contract ${id}`);
  return loaded;
}

export async function getContract(
  deps: Dependencies,
  caller: Identity,
  id: string,
): Promise<Reply<ContractView>> {
  const { contract } = await loadVisible(deps, caller, id);
  return { status: 200, body: viewOf(contract, caller, deps.now()), etag: etagOf(contract.version) };
}

export interface ListQuery {
  readonly status?: ContractFilter['status'];
  readonly role?: ContractFilter['role'];
  readonly counterpartyId?: string | undefined;
  readonly limit: number;
  /** Where the previous page ended (its decoded nextCursor). */
  readonly cursor?: { readonly createdAt: string; readonly id: string } | undefined;
}

/** A summary as the API lists it for one caller: with what they may do. */
export type ContractSummaryView = ContractSummary & { readonly availableActions: string[] };

/**
 * The caller's contracts as summaries, newest first (the whole contract is `GET /contracts/{id}`): a page
 * is bounded in bytes by its item count alone, whatever the contracts hold.
 */
export async function listContracts(
  deps: Dependencies,
  caller: Identity,
  query: ListQuery,
): Promise<Reply<{ items: ContractSummaryView[]; nextCursor: string | null }>> {
  const seesAll = caller.roles.includes('admin') || caller.roles.includes('auditor');
  const rows = await listContractRows(deps.db, {
    // Admins and auditors see every contract; a role filter always means "where the caller is that party".
    partyId: seesAll && !query.role ? undefined : caller.id,
    role: query.role,
    counterpartyId: query.counterpartyId,
    status: query.status,
    limit: query.limit + 1,
    after: query.cursor,
  });
  const { items, nextCursor } = pageOf(rows, query.limit, (c) => ({ createdAt: c.createdAt, id: c.id }));
  const now = deps.now();
  return {
    status: 200,
    body: {
      items: items.map((c) => ({
        ...c,
        availableActions: availableActions(stateOfSummary(c), actorOf(caller), now),
      })),
      nextCursor,
    },
  };
}

const EVENT_OF: Record<ContractAction | 'create', string> = {
  create: 'ContractCreated',
  edit: 'ContractUpdated',
  sign: 'ContractSigned',
  activate: 'ContractActivated',
  suspend: 'ContractSuspended',
  resume: 'ContractResumed',
  terminate: 'ContractTerminated',
  expire: 'ContractExpired',
  delete: 'ContractDeleted',
};

function eventFor(
  deps: Dependencies,
  action: ContractAction | 'create',
  c: ContractData,
  at: string,
  extra = {},
) {
  return {
    id: deps.newId(),
    aggregateType: 'contract',
    aggregateId: c.id,
    type: EVENT_OF[action],
    occurredAt: at,
    payload: {
      contractId: c.id,
      status: c.status,
      version: c.version,
      providerId: c.providerId,
      consumerId: c.consumerId,
      ...extra,
    },
  };
}

/** Terms whose validity window has already ended could never be signed: refuse them up front. */
function requireOpenValidity(terms: CreateContract['terms'], now: Date): void {
  if (Date.parse(terms.validity.end) <= now.getTime()) {
    throw new UnprocessableError(
      'validity-ended',
      'Validity window ended',
      'terms.validity.end is in the past.',
      [{ field: 'terms.validity.end', message: 'must be in the future' }],
    );
  }
}

function invalidParties(issues: FieldIssue[]): UnprocessableError {
  return new UnprocessableError(
    'invalid-parties',
    'Invalid parties',
    'The contract must name a provider identity and a different consumer identity.',
    issues,
  );
}

export async function createContract(
  deps: Dependencies,
  caller: Identity,
  input: CreateContract,
  idempotency?: IdempotentRequest,
): Promise<Reply<ContractView>> {
  const isAdmin = caller.roles.includes('admin');
  if (!isAdmin && !caller.roles.includes('provider')) {
    throw new ForbiddenError('Only a provider (or an admin on behalf of one) may create a contract.');
  }
  if (input.providerId !== undefined && input.providerId !== caller.id && !isAdmin) {
    throw new ForbiddenError(
      'A provider creates contracts as itself; only an admin may name another provider.',
    );
  }
  const providerId = input.providerId ?? caller.id;
  if (providerId === input.consumerId) {
    throw invalidParties([{ field: 'consumerId', message: 'must differ from the provider' }]);
  }
  assertContentFits(input);
  requireOpenValidity(input.terms, deps.now());
  const at = deps.now().toISOString();
  const base = {
    id: deps.newId(),
    title: input.title,
    description: input.description,
    providerId,
    consumerId: input.consumerId,
    terms: input.terms,
  };
  const contract: ContractData = {
    ...base,
    status: 'Draft',
    signatures: [],
    version: 1,
    contentVersion: 1,
    contentDigest: contentDigest(base),
    everSigned: false,
    statusReason: null,
    suspendedBy: null,
    createdAt: at,
    updatedAt: at,
  };
  const body = viewOf(contract, caller, deps.now());
  // One statement: the parties' roles are checked, the key claimed, the row, audit and event written.
  const insert = insertContractMutation(
    contract,
    idempotency ? 'EXISTS (SELECT 1 FROM claimed_key)' : 'true',
  );
  const claim = idempotency
    ? claimIdempotencyKey(
        caller.id,
        'createContract',
        idempotency,
        { status: 201, body },
        at,
        insert.partiesHold,
      )
    : undefined;
  const { applied, extra } = await auditedWrite(deps.db, {
    preamble: claim ? `${insert.partiesCheck}, ${claim.preamble}` : insert.partiesCheck,
    extraColumns: claim ? `${insert.partiesColumns}, ${claim.extraColumns}` : insert.partiesColumns,
    mutation: insert.mutation,
    params: { ...insert.params, ...claim?.params },
    audit: {
      entityType: 'contract',
      entityId: contract.id,
      seq: 1,
      action: 'create',
      actorId: caller.id,
      occurredAt: at,
      data: {
        status: 'Draft',
        providerId,
        consumerId: contract.consumerId,
        contentDigest: contract.contentDigest,
      },
    },
    prevHash: GENESIS_HASH,
    event: eventFor(deps, 'create', contract, at),
  });
  if (!applied) {
    // A key claimed by an earlier request replays its response, whatever happened since.
    if (claim && idempotency && extra.key_locked !== false) {
      const replay = await findReplay<ContractView>(deps.db, caller.id, 'createContract', idempotency);
      if (replay) return { ...replay, etag: etagOf(replay.body.version) };
    }
    const issues: FieldIssue[] = [];
    if (extra.provider_ok !== true) issues.push({ field: 'providerId', message: 'not a provider identity' });
    if (extra.consumer_ok !== true) issues.push({ field: 'consumerId', message: 'not a consumer identity' });
    if (issues.length) throw invalidParties(issues);
    if (!claim || !idempotency) throw new Error('contract insert applied no row');
    const replay = await replayOrConflict<ContractView>(
      deps.db,
      caller.id,
      'createContract',
      idempotency,
      extra,
    );
    return { ...replay, etag: etagOf(replay.body.version) };
  }
  return { status: 201, body, etag: etagOf(contract.version) };
}

/** The platform's own automation (the expiry sweep), which acts on no identity's behalf. */
export const SYSTEM = Symbol('system');
export type SystemCaller = typeof SYSTEM;

interface MutationOptions {
  readonly ifMatch?: string | undefined;
  /** PUT and DELETE must state which version they change (428 otherwise). */
  readonly requireIfMatch?: boolean;
}

/**
 * Applies one lifecycle action: load, check visibility, precondition and transition, compute the next
 * state, write it with its audit record and event in one statement guarded by the loaded version. Without
 * If-Match a lost race is retried from a fresh load (the guards are checked again); with If-Match it is 412.
 */
async function mutate(
  deps: Dependencies,
  caller: Identity | SystemCaller,
  id: string,
  action: ContractAction,
  options: MutationOptions,
  next: (
    c: ContractData,
    at: string,
  ) => Promise<{ state: ContractData | null; data: Record<string, unknown> }>,
): Promise<Reply<ContractView | null>> {
  if (options.requireIfMatch && options.ifMatch === undefined) {
    throw new PreconditionRequiredError(
      `${action} requires an If-Match header with the contract's current ETag.`,
    );
  }
  for (let attempt = 1; ; attempt++) {
    const loaded = caller === SYSTEM ? await loadContract(deps.db, id) : await loadVisible(deps, caller, id);
    if (!loaded) throw new NotFoundError(`Contract ${id}`);
    const { contract, auditHead } = loaded;
    checkIfMatch(options.ifMatch, contract.version);
    const now = deps.now();
    const actor: Actor = caller === SYSTEM ? { kind: 'system' } : actorOf(caller);
    applyTransition(contract, action, actor, now);
    const at = now.toISOString();
    const { state, data } = await next(contract, at);
    const write =
      state === null
        ? deleteContractMutation(contract.id, contract.version)
        : updateContractMutation(state, contract.version);
    const after = state ?? { ...contract, version: contract.version + 1, updatedAt: at };
    const { applied } = await auditedWrite(deps.db, {
      ...write,
      audit: {
        entityType: 'contract',
        entityId: contract.id,
        seq: contract.version + 1,
        action,
        actorId: caller === SYSTEM ? null : caller.id,
        occurredAt: at,
        data: { from: contract.status, to: state?.status ?? null, ...data },
      },
      prevHash: auditHead,
      event: eventFor(
        deps,
        action,
        after,
        at,
        typeof data.reason === 'string' ? { reason: data.reason } : {},
      ),
    });
    if (applied) {
      return state === null
        ? { status: 204, body: null }
        : {
            status: 200,
            body:
              caller === SYSTEM
                ? { ...state, signingPayload: signingPayload(state), availableActions: [] }
                : viewOf(state, caller, deps.now()),
            etag: etagOf(state.version),
          };
    }
    if (options.ifMatch !== undefined && options.ifMatch.trim() !== '*') {
      throw new PreconditionFailedError(
        'The contract changed while this request was applied; fetch it again.',
      );
    }
    if (attempt >= 3)
      throw new ConflictError(
        'concurrent-modification',
        'Concurrent modification',
        'The contract is being changed concurrently; retry.',
      );
  }
}

function advanced(c: ContractData, at: string, changes: Partial<ContractData>): ContractData {
  return { ...c, ...changes, version: c.version + 1, updatedAt: at };
}

export async function updateContract(
  deps: Dependencies,
  caller: Identity,
  id: string,
  patch: UpdateContract,
  ifMatch: string | undefined,
) {
  if (patch.terms) requireOpenValidity(patch.terms, deps.now());
  return mutate(deps, caller, id, 'edit', { ifMatch, requireIfMatch: true }, async (c, at) => {
    const content = {
      id: c.id,
      title: patch.title ?? c.title,
      description: patch.description ?? c.description,
      providerId: c.providerId,
      consumerId: c.consumerId,
      terms: patch.terms ?? c.terms,
    };
    assertContentFits(content);
    const digest = contentDigest(content);
    const state = advanced(c, at, {
      ...content,
      status: 'Draft',
      signatures: [],
      contentVersion: c.version + 1,
      contentDigest: digest,
    });
    const changed = (['title', 'description', 'terms'] as const).filter((k) => patch[k] !== undefined);
    return { state, data: { changed, contentDigest: digest, discardedSignatures: c.signatures.length } };
  });
}

export async function deleteContract(
  deps: Dependencies,
  caller: Identity,
  id: string,
  ifMatch: string | undefined,
) {
  return mutate(deps, caller, id, 'delete', { ifMatch, requireIfMatch: true }, async () => ({
    state: null,
    data: {},
  }));
}

export async function signContract(
  deps: Dependencies,
  caller: Identity,
  id: string,
  input: SignContract,
  ifMatch: string | undefined,
) {
  // Verified once per payload: a retry after a lost race keeps what was used up (a TOTP code, a nonce).
  let verified: { payload: string; signature: VerifiedPartySignature } | undefined;
  return mutate(deps, caller, id, 'sign', { ifMatch }, async (c, at) => {
    const role = partyRoleOf(c, caller.id)!;
    if (currentPartySignatures(c).some((s) => s.role === role)) {
      throw new ConflictError(
        'already-signed',
        'Already signed',
        `The ${role} has already signed version ${c.contentVersion}.`,
      );
    }
    const payload = signingPayload(c);
    if (verified?.payload !== payload) {
      // A refused attempt is recorded in the signer's refusal chain (shared/audit/security-refusals.ts).
      const signature = await auditedAttempt(
        deps,
        {
          entityType: 'identity',
          entityId: caller.id,
          actorId: caller.id,
          action: `sign-contract-${input.type}`,
          subject: `contract ${c.id} version ${c.contentVersion} (${attemptedCredential(input)})`,
        },
        () =>
          verifyPartyInput(
            deps,
            caller,
            input,
            payload,
            `the current signing payload (digest ${c.contentDigest}, version ${c.contentVersion})`,
            at,
          ),
      );
      verified = { payload, signature };
    }
    const { signature: v } = verified;
    const signature: ContractSignature = {
      role,
      identityId: caller.id,
      type: v.type,
      ...(v.secondFactor ? { secondFactor: v.secondFactor } : {}),
      ...(v.assertion ? { assertion: v.assertion } : {}),
      kid: v.kid,
      alg: v.alg,
      signature: v.signature,
      contentDigest: c.contentDigest,
      contentVersion: c.contentVersion,
      signedAt: at,
    };
    const state = advanced(c, at, {
      status: 'PendingSignature',
      signatures: [...c.signatures, signature],
      everSigned: true,
    });
    return {
      state,
      data: {
        role,
        kid: v.kid,
        contentDigest: c.contentDigest,
        contentVersion: c.contentVersion,
        ...signatureAuditData(v),
      },
    };
  });
}

export async function activateContract(
  deps: Dependencies,
  caller: Identity,
  id: string,
  ifMatch: string | undefined,
) {
  return mutate(deps, caller, id, 'activate', { ifMatch }, async (c, at) => {
    const parties = currentPartySignatures(c);
    const payload = countersignPayload(c, parties);
    const signed = await countersign(deps, payload, at);
    const platform: ContractSignature = {
      role: 'platform',
      identityId: null,
      type: 'digital',
      kid: signed.kid,
      alg: signed.alg,
      signature: signed.signature,
      contentDigest: c.contentDigest,
      contentVersion: c.contentVersion,
      signedAt: at,
      signedPayload: payload,
    };
    const state = advanced(c, at, {
      status: 'Active',
      signatures: [...c.signatures, platform],
      statusReason: null,
    });
    return { state, data: { countersignedBy: signed.kid, payloadDigest: sha256Hex(payload) } };
  });
}

export async function suspendContract(
  deps: Dependencies,
  caller: Identity,
  id: string,
  reason: string,
  ifMatch: string | undefined,
) {
  return mutate(deps, caller, id, 'suspend', { ifMatch }, async (c, at) => ({
    state: advanced(c, at, { status: 'Suspended', statusReason: reason, suspendedBy: caller.id }),
    data: { reason },
  }));
}

export async function resumeContract(
  deps: Dependencies,
  caller: Identity,
  id: string,
  reason: string | undefined,
  ifMatch: string | undefined,
) {
  return mutate(deps, caller, id, 'resume', { ifMatch }, async (c, at) => ({
    state: advanced(c, at, { status: 'Active', statusReason: reason ?? null, suspendedBy: null }),
    data: reason ? { reason } : {},
  }));
}

/** The expiry sweep's step for one contract: Active or Suspended past its validity → Expired. */
export async function expireContract(deps: Dependencies, id: string) {
  return mutate(deps, SYSTEM, id, 'expire', {}, async (c, at) => ({
    state: advanced(c, at, { status: 'Expired', statusReason: 'validity window ended', suspendedBy: null }),
    data: { validUntil: c.terms.validity.end },
  }));
}

export async function terminateContract(
  deps: Dependencies,
  caller: Identity,
  id: string,
  reason: string,
  ifMatch: string | undefined,
) {
  return mutate(deps, caller, id, 'terminate', { ifMatch }, async (c, at) => ({
    state: advanced(c, at, { status: 'Terminated', statusReason: reason, suspendedBy: null }),
    data: { reason },
  }));
}
