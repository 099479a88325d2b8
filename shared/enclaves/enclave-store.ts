import { type Queryable, type SqlParams, sql } from '../database/database.ts';
import type {
  EnclaveAttestation,
  EnclaveConfiguration,
  EnclaveData,
  EnclaveMetrics,
  EnclaveStatus,
  EnclaveSummary,
} from '../domain/enclave.ts';
import { provisioningIdOf } from '../domain/enclave.ts';

/**
 * SQL for enclaves; the only module that knows the `enclaves` table (migration `0006-enclaves.sql`).
 * Rows decode to `EnclaveData` identically on every adapter (jsonb → parsed JSON, timestamptz → ISO-8601
 * UTC with milliseconds, SQL NULL → null); the stored JSON is the API's own validated output, so it is
 * trusted as written, as contracts are.
 */
const COLUMNS = `e.id, e.name, e.contract_id, e.provider_id, e.status, e.attestation, e.configuration, e.metrics,
  e.region, e.version, e.instance_id, e.execution_arn, e.status_reason, e.created_at, e.updated_at`;

/** The columns a whole enclave row and a summary row share. */
interface SharedRow {
  id: string;
  name: string;
  contract_id: string;
  provider_id: string;
  status: EnclaveStatus;
  region: string;
  version: number;
  instance_id: string | null;
  execution_arn: string | null;
  status_reason: string | null;
  created_at: string;
  updated_at: string;
  [k: string]: unknown;
}

interface EnclaveRow extends SharedRow {
  attestation: EnclaveAttestation | null;
  configuration: EnclaveConfiguration;
  metrics: EnclaveMetrics | null;
}

/** The fields a whole enclave and a summary share (the execution as stored), from their shared columns. */
function sharedFields(r: SharedRow) {
  return {
    id: r.id,
    name: r.name,
    providerId: r.provider_id,
    contractId: r.contract_id,
    status: r.status,
    region: r.region,
    version: r.version,
    instanceId: r.instance_id,
    statusReason: r.status_reason,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

function toEnclave(r: EnclaveRow): EnclaveData {
  return {
    ...sharedFields(r),
    attestation: r.attestation,
    configuration: r.configuration,
    metrics: r.metrics,
    executionArn: r.execution_arn,
  };
}

/** An enclave with the hash of its latest audit record (seq = version), which the next write chains to. */
export interface LoadedEnclave {
  readonly enclave: EnclaveData;
  readonly auditHead: string;
}

const LOAD = `SELECT ${COLUMNS}, a.hash AS audit_head
  FROM enclaves e JOIN audit_log a ON a.entity_id = e.id AND a.seq = e.version`;

function loaded(rows: (EnclaveRow & { audit_head: string })[]): LoadedEnclave | null {
  const row = rows[0];
  return row ? { enclave: toEnclave(row), auditHead: row.audit_head } : null;
}

/**
 * The enclave `id` with its audit head, or null when there is none. Visibility is the caller's business
 * (a use case answers 404 to non-parties, as for contracts).
 */
export async function loadEnclave(q: Queryable, id: string): Promise<LoadedEnclave | null> {
  const { rows } = await q.query<EnclaveRow & { audit_head: string }>(`${LOAD} WHERE e.id = :id`, {
    id: sql.uuid(id),
  });
  return loaded(rows);
}

/**
 * The enclave whose parent is EC2 instance `instanceId` (for the parent agent's submissions and EC2
 * state-change events), with its audit head; null when no enclave claims that instance.
 */
export async function findEnclaveByInstance(q: Queryable, instanceId: string): Promise<LoadedEnclave | null> {
  // `enclaves_of_instance` is partial (instance_id IS NOT NULL); the equality implies it, so it is used.
  const { rows } = await q.query<EnclaveRow & { audit_head: string }>(
    `${LOAD} WHERE e.instance_id = :instance_id`,
    { instance_id: sql.text(instanceId) },
  );
  return loaded(rows);
}

export interface EnclaveFilter {
  /**
   * Only enclaves under contracts this identity is party to (provider or consumer); undefined for admins
   * and auditors (all).
   */
  readonly partyId?: string | undefined;
  readonly contractId?: string | undefined;
  readonly status?: EnclaveStatus | undefined;
  readonly limit: number;
  /** Keyset position: strictly older than this (created_at, id). */
  readonly after?: { createdAt: string; id: string } | undefined;
}

/** What a summary row holds: the image's identity instead of the configuration, the attestation's verdict. */
const SUMMARY_COLUMNS = `e.id, e.name, e.contract_id, e.provider_id, e.status, e.region,
  (e.configuration -> 'image') - 'source' AS image, e.attestation ->> 'verdict' AS attestation_verdict,
  e.version, e.instance_id, e.execution_arn, e.status_reason, e.created_at, e.updated_at`;

interface SummaryRow extends SharedRow {
  image: EnclaveSummary['image'];
  attestation_verdict: EnclaveSummary['attestationVerdict'];
}

function toSummary(r: SummaryRow): EnclaveSummary {
  return {
    ...sharedFields(r),
    image: r.image,
    attestationVerdict: r.attestation_verdict,
    provisioningId: provisioningIdOf(r.execution_arn),
  };
}

/**
 * Enclave summaries newest first, in a stable order (created_at DESC, id DESC), keyset-paginated. The
 * party filter joins the enclave's contract in the same query, so a consumer sees the enclaves of its
 * contracts without a second round trip and without the enclave row having to copy the consumer.
 */
export async function listEnclaves(q: Queryable, f: EnclaveFilter): Promise<EnclaveSummary[]> {
  const where: string[] = [];
  const params: Record<string, SqlParams[string]> = { limit: sql.int(f.limit) };
  let from = 'enclaves e';
  if (f.partyId !== undefined) {
    from = 'enclaves e JOIN contracts c ON c.id = e.contract_id';
    params.party = sql.uuid(f.partyId);
    where.push('(c.provider_id = :party OR c.consumer_id = :party)');
  }
  if (f.contractId !== undefined) {
    params.contract_id = sql.uuid(f.contractId);
    where.push('e.contract_id = :contract_id');
  }
  if (f.status !== undefined) {
    params.status = sql.text(f.status);
    where.push('e.status = :status');
  }
  if (f.after !== undefined) {
    params.after_created_at = sql.timestamp(f.after.createdAt);
    params.after_id = sql.uuid(f.after.id);
    where.push('(e.created_at, e.id) < (:after_created_at, :after_id)');
  }
  const { rows } = await q.query<SummaryRow>(
    `SELECT ${SUMMARY_COLUMNS} FROM ${from}
     ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
     ORDER BY e.created_at DESC, e.id DESC
     LIMIT :limit`,
    params,
  );
  return rows.map(toSummary);
}

function rowParams(e: EnclaveData): SqlParams {
  return {
    id: sql.uuid(e.id),
    name: sql.text(e.name),
    contract_id: sql.uuid(e.contractId),
    provider_id: sql.uuid(e.providerId),
    status: sql.text(e.status),
    attestation: sql.json(e.attestation),
    configuration: sql.json(e.configuration),
    metrics: sql.json(e.metrics),
    region: sql.text(e.region),
    version: sql.int(e.version),
    instance_id: sql.text(e.instanceId),
    execution_arn: sql.text(e.executionArn),
    status_reason: sql.text(e.statusReason),
    created_at: sql.timestamp(e.createdAt),
    updated_at: sql.timestamp(e.updatedAt),
  };
}

export interface InsertEnclaveOptions {
  /**
   * Insert only while the enclave's contract is Active, checked in the same statement: the create use case
   * checked the contract when it loaded it, but the contract may have been suspended since.
   */
  readonly requireActiveContract?: boolean;
  /** A further SQL condition, e.g. `EXISTS (SELECT 1 FROM claimed_key)` for an idempotency claim. */
  readonly condition?: string;
}

/**
 * INSERT of a new enclave, for `auditedWrite`; it returns its row only when every condition holds (so a
 * refused insert writes no audit record and no event either).
 * @example
 * await auditedWrite(deps.db, { ...insertEnclaveMutation(enclave, { requireActiveContract: true }), audit, prevHash: GENESIS_HASH, event });
 */
export function insertEnclaveMutation(e: EnclaveData, options: InsertEnclaveOptions = {}) {
  const conditions = [options.condition ?? 'true'];
  if (options.requireActiveContract) {
    conditions.push(
      "EXISTS (SELECT 1 FROM contracts WHERE id = :contract_id AND provider_id = :provider_id AND status = 'Active')",
    );
  }
  return {
    mutation: `INSERT INTO enclaves (id, name, contract_id, provider_id, status, attestation, configuration, metrics,
        region, version, instance_id, execution_arn, status_reason, created_at, updated_at)
      SELECT :id, :name, :contract_id, :provider_id, :status, :attestation, :configuration, :metrics, :region,
        :version, :instance_id, :execution_arn, :status_reason, :created_at, :updated_at
      WHERE ${conditions.join(' AND ')}
      RETURNING 1`,
    params: rowParams(e),
  };
}

/**
 * UPDATE to the `next` state, for `auditedWrite`, applied only if the row is still at `expectedVersion`.
 * The contract, provider, region and creation time never change, so they are not written.
 * @throws Error when `next.version` is not `expectedVersion + 1`: the audit chain's seq is the version, so
 *   any other step would break the chain (a programming error, not a client's).
 */
export function updateEnclaveMutation(
  next: EnclaveData,
  expectedVersion: number,
  options: {
    /**
     * Apply only while the contract is Active and its validity window has not ended at `next.updatedAt`
     * (`valid_until` is `validity.end`), checked in the write itself. Activation and resume must not win
     * against a suspension, nor land at or after the window's end before the expiry sweep has marked the
     * contract Expired. (The start needs no SQL: a window found open at `updatedAt` has already started,
     * and time only moves on.)
     */
    readonly requireActiveContract?: boolean;
  } = {},
) {
  if (next.version !== expectedVersion + 1) {
    throw new Error(`enclave version must advance by one (from ${expectedVersion}, got ${next.version})`);
  }
  const activeContract = options.requireActiveContract
    ? `AND EXISTS (SELECT 1 FROM contracts
          WHERE id = :contract_id AND status = 'Active' AND valid_until > :updated_at)`
    : '';
  return {
    mutation: `UPDATE enclaves SET
        name = :name, status = :status, attestation = :attestation, configuration = :configuration,
        metrics = :metrics, version = :version, instance_id = :instance_id, execution_arn = :execution_arn,
        status_reason = :status_reason, updated_at = :updated_at
      WHERE id = :id AND version = :expected_version ${activeContract}
      RETURNING 1`,
    params: { ...rowParams(next), expected_version: sql.int(expectedVersion) },
  };
}
