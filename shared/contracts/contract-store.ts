import { type Queryable, type SqlParams, sql } from '../database/database.ts';
import {
  CONTRACT_STATUSES,
  type ContractData,
  type ContractSignature,
  type ContractStatus,
  type ContractSummary,
} from '../domain/contract.ts';
import type { ContractTerms } from '../domain/contract-terms.ts';

/** SQL for contracts; the only module that knows the `contracts` table. */
const COLUMNS = `c.id, c.title, c.description, c.provider_id, c.consumer_id, c.status, c.terms, c.signatures,
  c.version, c.content_version, c.content_digest, c.ever_signed, c.status_reason, c.suspended_by,
  c.created_at, c.updated_at`;

/** The columns a whole contract row and a summary row share. */
interface SharedRow {
  id: string;
  title: string;
  provider_id: string;
  consumer_id: string;
  status: ContractStatus;
  version: number;
  content_version: number;
  content_digest: string;
  ever_signed: boolean;
  status_reason: string | null;
  suspended_by: string | null;
  created_at: string;
  updated_at: string;
  [k: string]: unknown;
}

interface ContractRow extends SharedRow {
  description: string;
  terms: ContractTerms;
  signatures: ContractSignature[];
}

/** The fields a whole contract and a summary share, from the columns they share. */
function sharedFields(r: SharedRow) {
  return {
    id: r.id,
    title: r.title,
    providerId: r.provider_id,
    consumerId: r.consumer_id,
    status: r.status,
    version: r.version,
    contentVersion: r.content_version,
    contentDigest: r.content_digest,
    everSigned: r.ever_signed,
    statusReason: r.status_reason,
    suspendedBy: r.suspended_by,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

function toContract(r: ContractRow): ContractData {
  return { ...sharedFields(r), description: r.description, terms: r.terms, signatures: r.signatures };
}

/** A contract with the hash of its latest audit record (seq = version), which the next write chains to. */
export interface LoadedContract {
  readonly contract: ContractData;
  readonly auditHead: string;
}

export async function loadContract(q: Queryable, id: string): Promise<LoadedContract | null> {
  const { rows } = await q.query<ContractRow & { audit_head: string }>(
    `SELECT ${COLUMNS}, a.hash AS audit_head
     FROM contracts c JOIN audit_log a ON a.entity_id = c.id AND a.seq = c.version
     WHERE c.id = :id`,
    { id: sql.uuid(id) },
  );
  const row = rows[0];
  return row ? { contract: toContract(row), auditHead: row.audit_head } : null;
}

export interface ContractFilter {
  /** Restrict to contracts this identity is party to; undefined for admins and auditors (all). */
  readonly partyId?: string | undefined;
  readonly role?: 'provider' | 'consumer' | undefined;
  readonly counterpartyId?: string | undefined;
  readonly status?: ContractStatus | undefined;
  readonly limit: number;
  /** Keyset position: strictly older than this (created_at, id). */
  readonly after?: { createdAt: string; id: string } | undefined;
}

/** What a summary row holds: no description, no terms but their validity, only who signed. */
const SUMMARY_COLUMNS = `c.id, c.title, c.provider_id, c.consumer_id, c.status, c.terms -> 'validity' AS validity,
  (SELECT coalesce(jsonb_agg(s -> 'role'), '[]'::jsonb) FROM jsonb_array_elements(c.signatures) AS s
    WHERE s ->> 'contentDigest' = c.content_digest AND (s ->> 'contentVersion')::int = c.content_version) AS signed_by,
  c.version, c.content_version, c.content_digest, c.ever_signed, c.status_reason, c.suspended_by,
  c.created_at, c.updated_at`;

interface SummaryRow extends SharedRow {
  validity: ContractTerms['validity'];
  signed_by: ContractSummary['signedBy'];
}

function toSummary(r: SummaryRow): ContractSummary {
  return { ...sharedFields(r), validity: r.validity, signedBy: r.signed_by };
}

/**
 * Contract summaries, newest first, stable order (created_at DESC, id DESC), keyset-paginated. Every page
 * reads index ranges already in that order and stops after `limit` rows, so its cost does not grow with the
 * table (migration 0012): each (party side, status) or (status) is one range, and a list spanning several
 * (both sides of a party, every status) merges the newest `limit` of each. An `OR` of the sides, or a
 * status left to a filter, would read every contract of the party or skip thousands of other statuses. A
 * contract names two different parties, so merging its sides never yields one twice.
 */
export async function listContracts(q: Queryable, f: ContractFilter): Promise<ContractSummary[]> {
  const where: string[] = [];
  const params: Record<string, SqlParams[string]> = { limit: sql.int(f.limit) };
  let sides: string[] = [];
  if (f.counterpartyId !== undefined) params.counterparty = sql.uuid(f.counterpartyId);
  if (f.partyId !== undefined) {
    params.party = sql.uuid(f.partyId);
    if (f.role !== 'consumer') sides.push('c.provider_id = :party');
    if (f.role !== 'provider') sides.push('c.consumer_id = :party');
    if (f.counterpartyId !== undefined) {
      where.push('(c.provider_id = :counterparty OR c.consumer_id = :counterparty)');
    }
  } else if (f.counterpartyId !== undefined) {
    // Everyone's contracts with this party (admins, auditors): the party's two sides.
    sides = ['c.provider_id = :counterparty', 'c.consumer_id = :counterparty'];
  }
  if (f.after !== undefined) {
    params.after_created_at = sql.timestamp(f.after.createdAt);
    params.after_id = sql.uuid(f.after.id);
    where.push('(c.created_at, c.id) < (:after_created_at, :after_id)');
  }
  if (f.status !== undefined) params.status = sql.text(f.status);
  const statuses = f.status !== undefined ? [':status'] : CONTRACT_STATUSES.map((s) => `'${s}'`);
  const pages = (sides.length ? sides : [null]).flatMap((side) =>
    statuses.map(
      (status) => `SELECT ${SUMMARY_COLUMNS} FROM contracts c
     WHERE ${[...(side ? [side] : []), `c.status = ${status}`, ...where].join(' AND ')}
     ORDER BY c.created_at DESC, c.id DESC
     LIMIT :limit`,
    ),
  );
  const statement =
    pages.length === 1
      ? pages[0]!
      : `SELECT * FROM (${pages.map((page) => `(${page})`).join('\n     UNION ALL ')}) AS c
     ORDER BY c.created_at DESC, c.id DESC
     LIMIT :limit`;
  const { rows } = await q.query<SummaryRow>(statement, params);
  return rows.map(toSummary);
}

function rowParams(c: ContractData): SqlParams {
  return {
    id: sql.uuid(c.id),
    title: sql.text(c.title),
    description: sql.text(c.description),
    provider_id: sql.uuid(c.providerId),
    consumer_id: sql.uuid(c.consumerId),
    status: sql.text(c.status),
    terms: sql.json(c.terms),
    signatures: sql.json(c.signatures),
    version: sql.int(c.version),
    content_version: sql.int(c.contentVersion),
    content_digest: sql.text(c.contentDigest),
    ever_signed: sql.bool(c.everSigned),
    status_reason: sql.text(c.statusReason),
    suspended_by: sql.uuid(c.suspendedBy),
    valid_until: sql.timestamp(c.terms.validity.end),
    created_at: sql.timestamp(c.createdAt),
    updated_at: sql.timestamp(c.updatedAt),
  };
}

const INSERT_VALUES = `:id, :title, :description, :provider_id, :consumer_id, :status, :terms, :signatures, :version,
  :content_version, :content_digest, :ever_signed, :status_reason, :suspended_by, :valid_until, :created_at, :updated_at`;
const INSERT_COLUMNS = `id, title, description, provider_id, consumer_id, status, terms, signatures, version,
  content_version, content_digest, ever_signed, status_reason, suspended_by, valid_until, created_at, updated_at`;

/**
 * INSERT of a new contract, applied only when both parties hold their roles (checked in the same
 * statement, so no extra round trip) and `condition` holds. The final SELECT can read `parties`.
 */
export function insertContractMutation(c: ContractData, condition = 'true') {
  return {
    partiesCheck: `parties AS (
      SELECT EXISTS (SELECT 1 FROM identities WHERE id = :provider_id AND 'provider' = ANY (roles)) AS provider_ok,
             EXISTS (SELECT 1 FROM identities WHERE id = :consumer_id AND 'consumer' = ANY (roles)) AS consumer_ok
    )`,
    partiesHold: '(SELECT provider_ok AND consumer_ok FROM parties)',
    partiesColumns:
      '(SELECT provider_ok FROM parties) AS provider_ok, (SELECT consumer_ok FROM parties) AS consumer_ok',
    mutation: `INSERT INTO contracts (${INSERT_COLUMNS})
      SELECT ${INSERT_VALUES}
      WHERE (SELECT provider_ok AND consumer_ok FROM parties) AND ${condition}
      RETURNING 1`,
    params: rowParams(c),
  };
}

/** UPDATE to the `next` state, applied only if the row is still at `expectedVersion`. */
export function updateContractMutation(next: ContractData, expectedVersion: number) {
  return {
    mutation: `UPDATE contracts SET
        title = :title, description = :description, status = :status, terms = :terms, signatures = :signatures,
        version = :version, content_version = :content_version, content_digest = :content_digest,
        ever_signed = :ever_signed, status_reason = :status_reason, suspended_by = :suspended_by,
        valid_until = :valid_until, updated_at = :updated_at
      WHERE id = :id AND version = :expected_version
      RETURNING 1`,
    params: { ...rowParams(next), expected_version: sql.int(expectedVersion) },
  };
}

export function deleteContractMutation(id: string, expectedVersion: number) {
  return {
    mutation: `DELETE FROM contracts WHERE id = :id AND version = :expected_version AND NOT ever_signed
      RETURNING 1`,
    params: { id: sql.uuid(id), expected_version: sql.int(expectedVersion) },
  };
}

/**
 * The earliest end of validity among the live (Active and Suspended) contracts, ISO-8601, or null when no
 * contract is live: when the expirer next has work without any write in between.
 */
export async function findNextValidityEnd(q: Queryable): Promise<string | null> {
  const { rows } = await q.query<{ next: string | null }>(
    "SELECT min(valid_until) AS next FROM contracts WHERE status IN ('Active', 'Suspended')",
  );
  return rows[0]?.next ?? null;
}

/** Live contracts whose validity ended before `now`, for the expiry sweep. */
export async function findExpiredLiveContractIds(
  q: Queryable,
  now: string,
  limit: number,
): Promise<string[]> {
  const { rows } = await q.query<{ id: string }>(
    `SELECT id FROM contracts WHERE status IN ('Active', 'Suspended') AND valid_until <= :now
     ORDER BY valid_until LIMIT :limit`,
    { now: sql.timestamp(now), limit: sql.int(limit) },
  );
  return rows.map((r) => r.id);
}
