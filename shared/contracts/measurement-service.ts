import { GENESIS_HASH } from '../audit/audit-chain.ts';
import { auditedWrite } from '../audit/audited-write.ts';
import { auditedAttempt } from '../audit/security-refusals.ts';
import type { ContractData } from '../domain/contract.ts';
import { partyRoleOf } from '../domain/contract.ts';
import { validityWindowAt } from '../domain/contract-lifecycle.ts';
import { ConflictError, ForbiddenError, NotFoundError, UnprocessableError } from '../domain/errors.ts';
import type { Identity } from '../domain/identity.ts';
import {
  type ApproveMeasurements,
  MAX_MEASUREMENT_SETS_PER_CONTRACT,
  type MeasurementApproval,
  type MeasurementSet,
  measurementSigningPayload,
  type ProposeMeasurements,
  statusAfter,
} from '../domain/measurement-set.ts';
import { etagOf } from '../http/preconditions.ts';
import type { Reply } from '../http/reply.ts';
import { attemptedCredential, signatureAuditData, verifyPartyInput } from '../identities/party-signing.ts';
import type { Dependencies } from '../runtime/dependencies.ts';
import { loadVisible } from './contract-service.ts';
import {
  insertMeasurementSetMutation,
  listMeasurementSets as listRows,
  loadMeasurementSet,
  updateMeasurementSetMutation,
} from './measurement-store.ts';

/**
 * Image measurements an enclave may run under a contract. Either party proposes a set; each party approves
 * it by signing its canonical JSON with a registered key; only a set approved by BOTH parties may enter an
 * attestation policy. Anyone who cannot see the contract gets 404; admins and auditors may read but not act.
 */
export type MeasurementSetView = MeasurementSet & { readonly signingPayload: string };

const viewOf = (m: MeasurementSet): MeasurementSetView => ({
  ...m,
  signingPayload: measurementSigningPayload(m),
});

const CLOSED = new Set(['Terminated', 'Expired']);

function requireOpenParty(contract: ContractData, caller: Identity, action: string) {
  const role = partyRoleOf(contract, caller.id);
  if (!role) throw new ForbiddenError(`Only the parties of the contract may ${action} image measurements.`);
  if (CLOSED.has(contract.status)) {
    throw new ConflictError(
      'contract-closed',
      'Contract closed',
      `The contract is ${contract.status}: its measurements are frozen.`,
    );
  }
  return role;
}

function event(deps: Dependencies, type: string, m: MeasurementSet, at: string) {
  return {
    id: deps.newId(),
    aggregateType: 'measurement-set',
    aggregateId: m.id,
    type,
    occurredAt: at,
    payload: { measurementSetId: m.id, contractId: m.contractId, status: m.status, version: m.version },
  };
}

export async function proposeMeasurementSet(
  deps: Dependencies,
  caller: Identity,
  contractId: string,
  input: ProposeMeasurements,
): Promise<Reply<MeasurementSetView>> {
  const { contract } = await loadVisible(deps, caller, contractId);
  requireOpenParty(contract, caller, 'propose');
  const at = deps.now().toISOString();
  const set: MeasurementSet = {
    id: deps.newId(),
    contractId,
    pcr0: input.pcr0,
    pcr1: input.pcr1,
    pcr2: input.pcr2,
    pcr8: input.pcr8 ?? null,
    // Absent and {} are one set: no pins beyond PCR0/1/2/8 (and the same signed payload).
    additionalPcrs: input.additionalPcrs ?? {},
    status: 'Proposed',
    approvals: [],
    proposedBy: caller.id,
    version: 1,
    createdAt: at,
    updatedAt: at,
  };
  const { applied, extra } = await auditedWrite(deps.db, {
    ...insertMeasurementSetMutation(set, MAX_MEASUREMENT_SETS_PER_CONTRACT),
    audit: {
      entityType: 'measurement-set',
      entityId: set.id,
      seq: 1,
      action: 'propose',
      actorId: caller.id,
      occurredAt: at,
      // the parties travel with the chain so they can read it (see audit-service mayRead)
      data: {
        contractId,
        providerId: contract.providerId,
        consumerId: contract.consumerId,
        pcr0: set.pcr0,
        pcr1: set.pcr1,
        pcr2: set.pcr2,
        pcr8: set.pcr8,
        additionalPcrs: set.additionalPcrs,
      },
    },
    prevHash: GENESIS_HASH,
    event: event(deps, 'MeasurementSetProposed', set, at),
  });
  if (!applied && extra.set_exists !== true) {
    throw new ConflictError(
      'too-many-measurement-sets',
      'Too many measurement sets',
      `The contract already holds ${MAX_MEASUREMENT_SETS_PER_CONTRACT} measurement sets, the most one contract may hold.`,
    );
  }
  if (!applied) {
    throw new ConflictError(
      'measurements-exist',
      'Measurements already proposed',
      'This exact measurement set was already proposed for the contract.',
    );
  }
  return { status: 201, body: viewOf(set), etag: etagOf(1) };
}

export async function listMeasurementSets(
  deps: Dependencies,
  caller: Identity,
  contractId: string,
): Promise<Reply<{ items: MeasurementSetView[] }>> {
  await loadVisible(deps, caller, contractId);
  return { status: 200, body: { items: (await listRows(deps.db, contractId)).map(viewOf) } };
}

/**
 * The caller's party approves a measurement set with its signature over the set's `signingPayload`; the
 * set is Approved once both parties have. Only inside the contract's validity window: an approval admits an
 * image into attestation policies, so none is given before the window opens or from its end on, even
 * while the expiry sweep has not yet marked the contract Expired.
 * @throws NotFoundError (404) when the caller cannot see the contract or the set does not exist;
 *   ForbiddenError (403) for a non-party; ConflictError (409) when the contract is closed, the party has
 *   already approved, or the set changed concurrently; UnprocessableError (422, `contract-outside-validity`)
 *   outside the validity window; the signature's own refusals (`verifyPartyInput`).
 */
export async function approveMeasurementSet(
  deps: Dependencies,
  caller: Identity,
  contractId: string,
  setId: string,
  input: ApproveMeasurements,
): Promise<Reply<MeasurementSetView>> {
  const { contract } = await loadVisible(deps, caller, contractId);
  const role = requireOpenParty(contract, caller, 'approve');
  // One instant for the window and the approval's time, so the recorded approvedAt is inside the window.
  const now = deps.now();
  const window = validityWindowAt(contract.terms.validity, now);
  if (window.reason) {
    throw new UnprocessableError(
      'contract-outside-validity',
      'Outside the validity window',
      `Cannot approve image measurements: ${window.reason}.`,
    );
  }
  const loaded = await loadMeasurementSet(deps.db, contractId, setId);
  if (!loaded) throw new NotFoundError(`Measurement set ${setId}`);
  const { set, auditHead } = loaded;
  if (set.approvals.some((a) => a.role === role)) {
    throw new ConflictError(
      'already-approved',
      'Already approved',
      `The ${role} has already approved this measurement set.`,
    );
  }
  const at = now.toISOString();
  const verified = await auditedAttempt(
    deps,
    {
      entityType: 'identity',
      entityId: caller.id,
      actorId: caller.id,
      action: `approve-measurements-${input.type ?? 'digital'}`,
      subject: `measurement set ${set.id} of contract ${contractId} (${attemptedCredential(input)})`,
    },
    () =>
      verifyPartyInput(
        deps,
        caller,
        input,
        measurementSigningPayload(set),
        "the measurement set's signingPayload",
        at,
      ),
  );
  const approval: MeasurementApproval = {
    role,
    identityId: caller.id,
    kid: verified.kid,
    alg: verified.alg,
    signature: verified.signature,
    approvedAt: at,
    ...(verified.type === 'digital' ? {} : { type: verified.type }),
    ...(verified.secondFactor ? { secondFactor: verified.secondFactor } : {}),
    ...(verified.assertion ? { assertion: verified.assertion } : {}),
  };
  const approvals = [...set.approvals, approval];
  const next: MeasurementSet = {
    ...set,
    approvals,
    status: statusAfter(approvals),
    version: set.version + 1,
    updatedAt: at,
  };
  const { applied } = await auditedWrite(deps.db, {
    ...updateMeasurementSetMutation(next, set.version),
    audit: {
      entityType: 'measurement-set',
      entityId: set.id,
      seq: next.version,
      action: 'approve',
      actorId: caller.id,
      occurredAt: at,
      data: {
        role,
        kid: verified.kid,
        status: next.status,
        ...signatureAuditData(verified),
      },
    },
    prevHash: auditHead,
    event: event(
      deps,
      next.status === 'Approved' ? 'MeasurementSetApproved' : 'MeasurementSetApprovalAdded',
      next,
      at,
    ),
  });
  if (!applied) {
    throw new ConflictError(
      'concurrent-modification',
      'Concurrent modification',
      'The measurement set changed concurrently; retry.',
    );
  }
  return { status: 200, body: viewOf(next), etag: etagOf(next.version) };
}
