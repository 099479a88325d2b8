import { GENESIS_HASH } from '../audit/audit-chain.ts';
import { auditedWrite, type DomainEvent } from '../audit/audited-write.ts';
import { loadVisible } from '../contracts/contract-service.ts';
import { type Queryable, sql } from '../database/database.ts';
import { ConflictError, ForbiddenError, NotFoundError } from '../domain/errors.ts';
import type { Identity } from '../domain/identity.ts';
import * as z from '../domain/zod.ts';
import { failEnclave } from '../enclaves/enclave-steps.ts';
import { etagOf } from '../http/preconditions.ts';
import type { Reply } from '../http/reply.ts';
import type { Dependencies } from '../runtime/dependencies.ts';
import {
  type KeyedEnclave,
  type KeyedMeasurementSet,
  KeyPolicyTooLargeError,
  MAX_KEY_POLICY_BYTES,
  type RenderedKeyPolicy,
  renderContractKeyPolicy,
} from './contract-key-policy.ts';
import { ContractKeyError, KEY_DELETION_WINDOW_DAYS } from './contract-key-port.ts';

/**
 * Each contract's data key: a customer-managed symmetric KMS key created when the contract became Active,
 * whose key policy ({@link renderContractKeyPolicy}) admits only the approved images of the contract's
 * Running enclaves, on their own parents. The provider encrypts its datasets under data keys wrapped by it
 * (`POST /contracts/{id}/data-keys`); an enclave unwraps one with KMS `Decrypt` and its attestation
 * document, and KMS, not this platform's bookkeeping, decides.
 *
 * {@link syncContractKey} is the one place the key is changed: it reads the contract's state, renders the
 * policy, and brings the key there, each change an audited write on the key's own chain with the policy's
 * digest:
 * - the contract Active: the key exists (created on the first sync, with a policy admitting nobody, then
 *   its alias, then the real policy, so a key orphaned by a failure between the steps admits nothing), is
 *   enabled, and its policy admits the Running enclaves;
 * - Suspended: the policy admits no enclave and the key is disabled (resumed: enabled, then admitted);
 * - Terminated or Expired: admits none, disabled, and when `terms.retention.deleteOnTermination` holds,
 *   scheduled for deletion after KMS's shortest waiting period (7 days): crypto-shredding, its date
 *   recorded. The platform never cancels a deletion.
 * Revocation writes the policy before disabling; a grant enables before writing the policy. Syncs of one
 * contract run one at a time (a transaction-scoped advisory lock), so two events cannot undo each other.
 */

export {
  CONTRACT_ID_TAG_KEY,
  CONTRACT_KEY_TAG_KEY,
  ContractKeyError,
  type ContractKeyManager,
  type ContractKeys,
  KEY_DELETION_WINDOW_DAYS,
} from './contract-key-port.ts';

/** The seed of the advisory lock (a hash of the contract id) that serialises one contract's syncs. */
const SYNC_LOCK = 4_610_319;

export type ContractKeyState = 'Enabled' | 'Disabled' | 'PendingDeletion';

/** What `contract_keys` holds of a key. */
export interface ContractKeyRecord {
  readonly id: string;
  readonly contractId: string;
  readonly keyArn: string;
  readonly alias: string;
  readonly state: ContractKeyState;
  readonly policyDigest: string;
  readonly policyVersion: number;
  readonly admitted: Pick<RenderedKeyPolicy, 'admittedMeasurementSets' | 'admittedEnclaves'>;
  readonly deletionDate: string | null;
  readonly version: number;
  readonly createdAt: string;
  readonly updatedAt: string;
}

interface KeyRow {
  id: string;
  contract_id: string;
  key_arn: string;
  alias: string;
  state: ContractKeyState;
  policy: string;
  policy_digest: string;
  policy_version: number;
  admitted: ContractKeyRecord['admitted'];
  deletion_date: string | null;
  version: number;
  created_at: string;
  updated_at: string;
  [k: string]: unknown;
}

const recordOf = (r: KeyRow): ContractKeyRecord => ({
  id: r.id,
  contractId: r.contract_id,
  keyArn: r.key_arn,
  alias: r.alias,
  state: r.state,
  policyDigest: r.policy_digest,
  policyVersion: r.policy_version,
  admitted: r.admitted,
  deletionDate: r.deletion_date,
  version: r.version,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
});

const KEY_COLUMNS =
  'id, contract_id, key_arn, alias, state, policy, policy_digest, policy_version, admitted, deletion_date, version, created_at, updated_at';

/** The key of `contractId`, or undefined before its contract was first Active. */
export async function findContractKey(
  q: Queryable,
  contractId: string,
): Promise<ContractKeyRecord | undefined> {
  const { rows } = await q.query<KeyRow>(`SELECT ${KEY_COLUMNS} FROM contract_keys WHERE contract_id = :id`, {
    id: sql.uuid(contractId),
  });
  return rows[0] && recordOf(rows[0]);
}

/** What a sync did: the key's record after it, and the changes it made, in order. */
export interface ContractKeySync {
  readonly contractId: string;
  readonly key?: ContractKeyRecord;
  readonly changes: readonly ('create' | 'policy' | 'enable' | 'disable' | 'schedule-deletion')[];
  /** Running enclaves the key's policy could not admit (over KMS's 32 KB): failed, their parents stopped. */
  readonly refused: readonly string[];
}

/** Why an enclave the key cannot admit is failed (its statusReason's code). */
export const KEY_POLICY_FULL = 'key_policy_full';

/** The key's state a contract's status calls for. */
function desiredState(status: string, deleteOnTermination: boolean): ContractKeyState {
  if (status === 'Active') return 'Enabled';
  if ((status === 'Terminated' || status === 'Expired') && deleteOnTermination) return 'PendingDeletion';
  return 'Disabled';
}

/**
 * Brings `contractId`'s key to what the contract's state calls for (see the module comment), auditing each
 * change. Idempotent: a sync with nothing to change changes nothing and audits nothing.
 * @throws ContractKeyError (transient ones are retried by the caller, the event's asynchronous invocation)
 */
export async function syncContractKey(deps: Dependencies, contractId: string): Promise<ContractKeySync> {
  const synced = await syncInTransaction(deps, contractId);
  // After the commit (the policy already leaves them out): each is failed, audited and announced, and the
  // enforcement terminates its parent. Its EnclaveFailed event syncs the key again, which then fits.
  for (const enclaveId of synced.refused) {
    await failEnclave(deps, {
      enclaveId,
      reason: {
        code: KEY_POLICY_FULL,
        message: `the contract key's policy cannot admit more Running enclaves of this contract within KMS's ${MAX_KEY_POLICY_BYTES} bytes`,
      },
    });
  }
  return synced;
}

async function syncInTransaction(deps: Dependencies, contractId: string): Promise<ContractKeySync> {
  const keys = deps.contractKeys;
  if (!keys?.sync) throw new Error('this function is not configured to manage contract keys');
  const { manager } = keys;
  const { principals, aliasPrefix } = keys.sync;
  return deps.db.transaction(async (tx) => {
    await tx.query('SELECT pg_advisory_xact_lock(hashtextextended(:id, :lock))', {
      lock: sql.int(SYNC_LOCK),
      id: sql.text(contractId),
    });
    const { rows: contracts } = await tx.query<{
      status: string;
      delete_on_termination: boolean | null;
      provider_id: string;
      consumer_id: string;
    }>(
      `SELECT status, provider_id, consumer_id,
              (terms->'retention'->>'deleteOnTermination')::boolean AS delete_on_termination
       FROM contracts WHERE id = :id`,
      { id: sql.uuid(contractId) },
    );
    const contract = contracts[0];
    const changes: ContractKeySync['changes'][number][] = [];
    let key = await findContractKey(tx, contractId);
    // A contract that never was Active while a key could be made has nothing to protect.
    if (!contract || (!key && contract.status !== 'Active')) return { contractId, changes, refused: [] };
    if (key?.state === 'PendingDeletion') return { contractId, key, changes, refused: [] };

    const sets = await approvedSets(tx, contractId);
    const render = (running: readonly KeyedEnclave[]) =>
      renderContractKeyPolicy({ contractId, principals, measurementSets: sets, runningEnclaves: running });
    const state = desiredState(contract.status, contract.delete_on_termination === true);
    const { policy, refused } = admitWhatFits(
      render,
      state === 'Enabled' ? await runningEnclaves(tx, contractId) : [],
    );
    const write = (action: ContractKeySync['changes'][number], next: Partial<KeyRow>) =>
      recordChange(deps, tx, key!, action, next).then((updated) => {
        key = updated;
        changes.push(action);
      });

    if (!key) {
      const alias = `${aliasPrefix}${contractId}`;
      const opening = render([]);
      const keyArn = await manager.createKey({ contractId, alias, policy: opening.text });
      key = await insertKey(deps, tx, {
        contractId,
        keyArn,
        alias,
        policy: opening,
        parties: { providerId: contract.provider_id, consumerId: contract.consumer_id },
      });
      changes.push('create');
    }
    const rewrite = async () => {
      if (policy.digest === key!.policyDigest) return;
      await manager.putPolicy(key!.keyArn, policy.text);
      await write('policy', {
        policy: policy.text,
        policy_digest: policy.digest,
        policy_version: key!.policyVersion + 1,
        admitted: admittedOf(policy),
      });
    };
    if (state === 'Enabled') {
      if (key.state === 'Disabled') {
        await manager.setEnabled(key.keyArn, true);
        await write('enable', { state: 'Enabled' });
      }
      await rewrite();
    } else {
      await rewrite();
      if (key.state === 'Enabled') {
        await manager.setEnabled(key.keyArn, false);
        await write('disable', { state: 'Disabled' });
      }
      if (state === 'PendingDeletion') {
        const date = await manager.scheduleDeletion(key.keyArn, KEY_DELETION_WINDOW_DAYS);
        await write('schedule-deletion', { state: 'PendingDeletion', deletion_date: date.toISOString() });
      }
    }
    return { contractId, key, changes, refused };
  });
}

/**
 * The policy admitting as many of `running` (oldest first) as fit in KMS's 32 KB, and those that do not.
 * A Running enclave the key cannot admit would run without its data: it is refused instead.
 */
export function admitWhatFits(
  render: (running: readonly KeyedEnclave[]) => RenderedKeyPolicy,
  running: readonly KeyedEnclave[],
): { policy: RenderedKeyPolicy; refused: string[] } {
  try {
    return { policy: render(running), refused: [] };
  } catch (error) {
    if (!(error instanceof KeyPolicyTooLargeError)) throw error;
  }
  // The largest prefix that fits (a policy grows with each enclave admitted).
  let low = 0;
  let high = running.length - 1;
  while (low < high) {
    const middle = Math.ceil((low + high) / 2);
    try {
      render(running.slice(0, middle));
      low = middle;
    } catch (error) {
      if (!(error instanceof KeyPolicyTooLargeError)) throw error;
      high = middle - 1;
    }
  }
  return { policy: render(running.slice(0, low)), refused: running.slice(low).map((e) => e.id) };
}

const admittedOf = (policy: RenderedKeyPolicy): ContractKeyRecord['admitted'] => ({
  admittedMeasurementSets: policy.admittedMeasurementSets,
  admittedEnclaves: policy.admittedEnclaves,
});

async function approvedSets(q: Queryable, contractId: string): Promise<KeyedMeasurementSet[]> {
  const { rows } = await q.query<{
    id: string;
    pcr0: string;
    pcr1: string;
    pcr2: string;
    pcr8: string | null;
    additional_pcrs: Record<string, string>;
  }>(
    `SELECT id, pcr0, pcr1, pcr2, pcr8, additional_pcrs FROM measurement_sets
     WHERE contract_id = :id AND status = 'Approved'`,
    { id: sql.uuid(contractId) },
  );
  return rows.map((r) => ({
    id: r.id,
    pcr0: r.pcr0,
    pcr1: r.pcr1,
    pcr2: r.pcr2,
    pcr8: r.pcr8,
    additionalPcrs: r.additional_pcrs,
  }));
}

/** The contract's Running enclaves whose verified attestation matched a set, with their parents. */
async function runningEnclaves(q: Queryable, contractId: string): Promise<KeyedEnclave[]> {
  const { rows } = await q.query<{ id: string; instance_id: string; measurement_set_id: string }>(
    `SELECT id, instance_id, attestation->>'measurementSetId' AS measurement_set_id FROM enclaves
     WHERE contract_id = :id AND status = 'Running' AND instance_id IS NOT NULL
       AND attestation->>'verdict' = 'verified' AND attestation->>'measurementSetId' IS NOT NULL
     ORDER BY created_at, id`,
    { id: sql.uuid(contractId) },
  );
  return rows.map((r) => ({ id: r.id, instanceId: r.instance_id, measurementSetId: r.measurement_set_id }));
}

function keyEvent(deps: Dependencies, key: ContractKeyRecord, action: string, at: string): DomainEvent {
  return {
    id: deps.newId(),
    aggregateType: 'contract-key',
    aggregateId: key.id,
    type: 'ContractKeyChanged',
    occurredAt: at,
    payload: {
      contractId: key.contractId,
      keyArn: key.keyArn,
      change: action,
      state: key.state,
      policyDigest: key.policyDigest,
      policyVersion: key.policyVersion,
      version: key.version,
    },
  };
}

/** The audit record's data: the key, its state and policy digest after the change. */
const auditData = (key: ContractKeyRecord) => ({
  contractId: key.contractId,
  keyArn: key.keyArn,
  state: key.state,
  policyDigest: key.policyDigest,
  policyVersion: key.policyVersion,
  admitted: key.admitted,
  ...(key.deletionDate ? { deletionDate: key.deletionDate } : {}),
});

async function insertKey(
  deps: Dependencies,
  tx: Queryable,
  input: {
    contractId: string;
    keyArn: string;
    alias: string;
    policy: RenderedKeyPolicy;
    /** In the first record, as contracts and enclaves carry them: the parties may read the key's chain. */
    parties: { providerId: string; consumerId: string };
  },
): Promise<ContractKeyRecord> {
  const at = deps.now().toISOString();
  const key: ContractKeyRecord = {
    id: deps.newId(),
    contractId: input.contractId,
    keyArn: input.keyArn,
    alias: input.alias,
    state: 'Enabled',
    policyDigest: input.policy.digest,
    policyVersion: 1,
    admitted: admittedOf(input.policy),
    deletionDate: null,
    version: 1,
    createdAt: at,
    updatedAt: at,
  };
  await auditedWrite(tx, {
    mutation: `INSERT INTO contract_keys (${KEY_COLUMNS})
      VALUES (:id, :contract_id, :key_arn, :alias, 'Enabled', :policy, :digest, 1, :admitted, NULL, 1, :at, :at)
      RETURNING id`,
    params: {
      id: sql.uuid(key.id),
      contract_id: sql.uuid(key.contractId),
      key_arn: sql.text(key.keyArn),
      alias: sql.text(key.alias),
      policy: sql.text(input.policy.text),
      digest: sql.text(key.policyDigest),
      admitted: sql.json(key.admitted),
      at: sql.timestamp(at),
    },
    audit: {
      entityType: 'contract-key',
      entityId: key.id,
      seq: 1,
      action: 'create',
      actorId: null,
      occurredAt: at,
      data: { ...auditData(key), ...input.parties },
    },
    prevHash: GENESIS_HASH,
    event: keyEvent(deps, key, 'create', at),
  });
  return key;
}

/** One audited change of the key's row (its version is the audit chain's seq). */
async function recordChange(
  deps: Dependencies,
  tx: Queryable,
  key: ContractKeyRecord,
  action: string,
  next: Partial<KeyRow>,
): Promise<ContractKeyRecord> {
  const at = deps.now().toISOString();
  const updated: ContractKeyRecord = {
    ...key,
    ...(next.state ? { state: next.state } : {}),
    ...(next.policy_digest ? { policyDigest: next.policy_digest } : {}),
    ...(next.policy_version ? { policyVersion: next.policy_version } : {}),
    ...(next.admitted ? { admitted: next.admitted } : {}),
    ...(next.deletion_date ? { deletionDate: next.deletion_date } : {}),
    version: key.version + 1,
    updatedAt: at,
  };
  const { rows: head } = await tx.query<{ hash: string }>(
    'SELECT hash FROM audit_log WHERE entity_id = :id AND seq = :seq',
    { id: sql.uuid(key.id), seq: sql.int(key.version) },
  );
  if (!head[0]) throw new Error(`the audit chain of contract key ${key.id} has no record ${key.version}`);
  const { applied } = await auditedWrite(tx, {
    mutation: `UPDATE contract_keys SET state = :state, policy = COALESCE(:policy, policy),
        policy_digest = :digest, policy_version = :policy_version, admitted = :admitted,
        deletion_date = :deletion_date, version = :version, updated_at = :at
      WHERE contract_id = :contract_id AND version = :previous
      RETURNING id`,
    params: {
      state: sql.text(updated.state),
      policy: sql.text(next.policy ?? null),
      digest: sql.text(updated.policyDigest),
      policy_version: sql.int(updated.policyVersion),
      admitted: sql.json(updated.admitted),
      deletion_date: sql.timestamp(updated.deletionDate),
      version: sql.int(updated.version),
      at: sql.timestamp(at),
      contract_id: sql.uuid(key.contractId),
      previous: sql.int(key.version),
    },
    audit: {
      entityType: 'contract-key',
      entityId: key.id,
      seq: updated.version,
      action,
      actorId: null,
      occurredAt: at,
      data: auditData(updated),
    },
    prevHash: head[0].hash,
    event: keyEvent(deps, updated, action, at),
  });
  if (!applied) throw new ContractKeyError(`contract key ${key.id} changed meanwhile`, { transient: true });
  return updated;
}

/** A contract key as `GET /contracts/{id}/key` shows it to the parties and auditors. */
export interface ContractKeyView {
  /** The key's audit chain (`GET /audit?entityId=`). */
  readonly id: string;
  readonly contractId: string;
  readonly keyArn: string;
  readonly alias: string;
  readonly state: ContractKeyState;
  readonly policyDigest: string;
  readonly policyVersion: number;
  readonly admits: {
    readonly measurementSets: readonly string[];
    readonly enclaves: readonly { readonly id: string; readonly instanceId: string; readonly pcr4: string }[];
  };
  readonly deletionDate?: string;
  readonly version: number;
  readonly createdAt: string;
  readonly updatedAt: string;
}

export function viewOfKey(key: ContractKeyRecord): ContractKeyView {
  return {
    id: key.id,
    contractId: key.contractId,
    keyArn: key.keyArn,
    alias: key.alias,
    state: key.state,
    policyDigest: key.policyDigest,
    policyVersion: key.policyVersion,
    admits: {
      measurementSets: key.admitted.admittedMeasurementSets,
      enclaves: key.admitted.admittedEnclaves,
    },
    ...(key.deletionDate ? { deletionDate: key.deletionDate } : {}),
    version: key.version,
    createdAt: key.createdAt,
    updatedAt: key.updatedAt,
  };
}

/**
 * `GET /contracts/{id}/key`: the contract's key as the platform last applied it, to whoever may see the
 * contract (its parties, admins, auditors); 404 for anyone else, and before the contract first became Active.
 */
export async function getContractKey(
  deps: Dependencies,
  caller: Identity,
  contractId: string,
): Promise<Reply<ContractKeyView>> {
  await loadVisible(deps, caller, contractId);
  const key = await findContractKey(deps.db, contractId);
  if (!key) throw new NotFoundError(`The data key of contract ${contractId}`);
  return { status: 200, body: viewOfKey(key), etag: etagOf(key.version) };
}

/** A data key wrapped under the contract's key, as `POST /contracts/{id}/data-keys` answers it. */
export interface WrappedDataKey {
  readonly contractId: string;
  readonly keyArn: string;
  readonly keySpec: 'AES_256';
  readonly encryptionContext: { readonly contractId: string };
  /** KMS's `CiphertextBlob`, base64: what the provider stores beside the data it encrypted with the key. */
  readonly ciphertextBlob: string;
}

/**
 * `POST /contracts/{id}/data-keys`: the contract's provider gets a new data key wrapped under the contract's
 * key for the contract's encryption context (KMS `GenerateDataKeyWithoutPlaintext`: nobody, not this
 * platform, sees its plaintext). The provider unwraps it, on its side, only through an approved enclave,
 * or encrypts its datasets with a data key it then has an enclave unwrap. Only under an Active contract
 * whose key is enabled; KMS records each call (CloudTrail).
 */
export async function createDataKey(
  deps: Dependencies,
  caller: Identity,
  contractId: string,
): Promise<Reply<WrappedDataKey>> {
  const { contract } = await loadVisible(deps, caller, contractId);
  if (contract.providerId !== caller.id) {
    throw new ForbiddenError("Only the contract's provider may request data keys for its datasets.");
  }
  if (contract.status !== 'Active') {
    throw new ConflictError(
      'contract-not-active',
      'Contract not Active',
      `The contract is ${contract.status}: data keys are issued only under an Active contract.`,
    );
  }
  const key = await findContractKey(deps.db, contractId);
  if (key?.state !== 'Enabled') {
    throw new ConflictError(
      'key-not-ready',
      'Contract key not ready',
      "The contract's data key is being set up after its activation; retry in a few seconds.",
    );
  }
  const manager = deps.contractKeys?.manager;
  if (!manager) throw new Error('this function is not configured for the contract keys');
  const wrapped = await manager.wrapDataKey(key.keyArn, contractId);
  return {
    // Nothing is stored: the answer is the key, not a resource with an address.
    status: 200,
    body: {
      contractId,
      keyArn: wrapped.keyArn,
      keySpec: 'AES_256',
      encryptionContext: { contractId },
      ciphertextBlob: wrapped.ciphertextBlob,
    },
  };
}

/** The domain events after which a contract's key may need to change, and where each names the contract. */
export const CONTRACT_KEY_DETAIL_TYPES = [
  'ContractActivated',
  'ContractSuspended',
  'ContractResumed',
  'ContractTerminated',
  'ContractExpired',
  'MeasurementSetApproved',
  'EnclaveActivated',
  'EnclaveSuspended',
  'EnclaveTerminated',
  'EnclaveFailed',
  'EnclaveUpdated',
] as const;

/** The contract whose key an event may change, or null for any other event. */
export function contractOfKeyEvent(detailType: string, detail: unknown): string | null {
  if (!(CONTRACT_KEY_DETAIL_TYPES as readonly string[]).includes(detailType)) return null;
  // Built here, not at module load: a bundle that imports this module for a type builds no schema.
  return z.parse(z.object({ contractId: z.uuid() }), detail).contractId;
}
