/**
 * The data sets of `npm run bench:scale`: identities with their keys, contracts in every status, measurement
 * sets, enclaves, and the hash-chained audit record of every change, as the application would have written
 * them over five years, loaded with COPY into a database the repository's own `migrate` created.
 *
 * - Same schema: the migrations run first; for the load, the tables' keys, indexes and foreign keys are
 *   dropped and then rebuilt from the catalog's own definitions, and the rebuilt catalog is compared with
 *   the migrated one (any difference is an error). Triggers are off for the load session
 *   (`session_replication_role = replica`): no trigger has anything to do for rows written as they are here
 *   (the append-only guards fire on UPDATE and DELETE, and the queue of unanchored heads of migration 0011
 *   rightly stays empty: every chain head is anchored, see below).
 * - Rows the domain code reads back: statuses, versions and every JSON column as the services write them;
 *   content digests and countersigning payloads computed by `shared/domain/contract.ts`; one audit chain per
 *   entity with `seq` = the entity's version, hashed and linked by `shared/audit/audit-chain.ts`, written in
 *   the order the changes happened (so an entity's records are spread over the table as in production);
 *   the parties' Ed25519 keys registered with their RFC 7638 thumbprints; and signed checkpoints (the
 *   `signer` given, RFC 6962 trees of `shared/audit`) anchoring the head of every chain, as the checkpoint
 *   job leaves a database between two runs.
 * - Not real: the parties' signatures and approvals and the platform's countersignatures are well-formed
 *   (base64url, 64 bytes) but sign nothing (no measured path verifies them, and signing ~2 M of them takes
 *   this machine longer than everything else together); the outbox holds nothing (every event was published
 *   and purged); no idempotency keys or metrics samples.
 *
 * Deterministic: the same spec gives the same ids, statuses and instants (only checkpoint signatures differ,
 * ECDSA being randomised).
 */
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { createPrivateKey, createPublicKey } from 'node:crypto';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { type AuditEntry, chainRecord, GENESIS_HASH } from '../../shared/audit/audit-chain.ts';
import {
  type CheckpointLeaf,
  type CheckpointStatement,
  leafOf,
} from '../../shared/audit/audit-checkpoints.ts';
import { treeRoot } from '../../shared/audit/merkle-tree.ts';
import { type Database, sql } from '../../shared/database/database.ts';
import { loadMigrations, migrate } from '../../shared/database/migrate.ts';
import { canonicalJson, sha256Hex } from '../../shared/domain/canonical-json.ts';
import {
  type ContractData,
  type ContractSignature,
  type ContractStatus,
  contentDigest,
  countersignPayload,
} from '../../shared/domain/contract.ts';
import type { ContractTerms } from '../../shared/domain/contract-terms.ts';
import type { EnclaveAttestation, EnclaveStatus } from '../../shared/domain/enclave.ts';
import { keyThumbprint } from '../../shared/domain/key-registration.ts';
import type { MeasurementApproval } from '../../shared/domain/measurement-set.ts';
import type { Signer } from '../../shared/signing/signer.ts';

/** Bump whenever the rows this module writes change: the benchmark keys its stored data sets with it. */
export const GENERATOR_VERSION = 1;

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const YEAR = 365 * DAY;
/** Every record is older than this instant ("the data as of"); the benchmark's sweeps run after it. */
export const DATA_AS_OF = Date.parse('2026-01-01T00:00:00.000Z');
const HISTORY_START = Date.parse('2021-01-01T00:00:00.000Z');
/** Where the sort keys' minutes count from (identities are created before the history starts). */
const KEY_EPOCH = HISTORY_START - YEAR;
/** The validity end of the contracts the benchmark measures: no sweep reaches it. */
const FAR_END = Date.parse('2090-01-01T00:00:00.000Z');

export interface ScaleSpec {
  readonly contracts: number;
  readonly enclaves: number;
  /** Audit records to aim at; the total lands within a few percent of it. */
  readonly auditRecords: number;
  readonly providers: number;
  readonly consumers: number;
  /** The busy provider's share of all contracts (the catalogue the benchmark lists). */
  readonly busyProviderShare: number;
  /** Records of the one long audit chain (a contract suspended and resumed many times). */
  readonly longChainRecords: number;
  /** Enclaves of the one busy contract. */
  readonly busyContractEnclaves: number;
  readonly seed: number;
}

/** The proportions: 1 000 providers and 1 000 consumers, an enclave per 10 contracts, 10 audit records per contract. */
export function scaleSpec(contracts: number, overrides: Partial<ScaleSpec> = {}): ScaleSpec {
  return {
    contracts,
    enclaves: Math.round(contracts / 10),
    auditRecords: contracts * 10,
    providers: 1000,
    consumers: 1000,
    busyProviderShare: 0.05,
    longChainRecords: 10_000,
    busyContractEnclaves: 100,
    seed: 20_260_101,
    ...overrides,
  };
}

/** What the benchmark needs to find in a data set, and what it holds. */
export interface ScaleDataSet {
  readonly generatorVersion: number;
  readonly spec: ScaleSpec;
  /** The provider with the busy catalogue (`busyProviderShare` of all contracts). */
  readonly busyProviderId: string;
  /** An Active contract of the busy provider whose audit chain holds `longChainRecords` records. */
  readonly longChainContractId: string;
  /** An Active contract of the busy provider with `busyContractEnclaves` enclaves. */
  readonly busyEnclaveContractId: string;
  readonly counts: Readonly<Record<string, number>>;
  /** Seconds the generation took, by phase. */
  readonly seconds: Readonly<Record<string, number>>;
}

// ---------------------------------------------------------------------------------------------------------
// Deterministic randomness

class Random {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }
  /** mulberry32: uniform in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  hex8(): string {
    return Math.floor(this.next() * 4_294_967_296)
      .toString(16)
      .padStart(8, '0');
  }
  /** A random (version 4) UUID, lower case. */
  uuid(): string {
    const h = this.hex8() + this.hex8() + this.hex8() + this.hex8();
    const variant = ((Number.parseInt(h[16]!, 16) & 0x3) | 0x8).toString(16);
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-${variant}${h.slice(17, 20)}-${h.slice(20)}`;
  }
  /** 64 bytes, base64url: the shape of an Ed25519 or ES256 (r‖s) signature. */
  signature(): string {
    let h = '';
    for (let i = 0; i < 16; i++) h += this.hex8();
    return Buffer.from(h, 'hex').toString('base64url');
  }
}

const iso = (ms: number) => new Date(ms).toISOString();

// ---------------------------------------------------------------------------------------------------------
// The entities and their histories

interface Entity {
  readonly id: string;
  /** How many audit records (changes) its chain holds: its version. */
  readonly events: number;
  /** When change `s` (0-based) happened, in ms. */
  time(s: number): number;
  /** The audit entry of change `s` (seq s + 1). */
  entry(s: number): AuditEntry;
}

const fixtures = {
  contract: JSON.parse(
    readFileSync(new URL('../fixtures/contract-create.json', import.meta.url), 'utf8'),
  ) as {
    title: string;
    description: string;
    terms: ContractTerms;
  },
  enclave: JSON.parse(readFileSync(new URL('../fixtures/enclave-create.json', import.meta.url), 'utf8')) as {
    region: string;
    configuration: { image: { pcr0: string; pcr1: string; pcr2: string } & Record<string, unknown> };
  },
};
const IMAGE = fixtures.enclave.configuration.image;

interface Party {
  readonly id: string;
  readonly name: string;
  readonly roles: readonly ('provider' | 'consumer' | 'admin' | 'auditor')[];
  readonly kid: string | null;
}

class IdentityPlan implements Entity {
  readonly events: number;
  constructor(
    readonly id: string,
    readonly name: string,
    readonly subject: string,
    readonly displayName: string,
    readonly email: string | null,
    readonly roles: readonly string[],
    readonly created: number,
    readonly createdBy: string | null,
    readonly key: { kid: string; jwk: Record<string, unknown>; thumbprint: string } | null,
  ) {
    this.events = key ? 2 : 1;
  }
  time(s: number): number {
    return this.created + s * HOUR;
  }
  entry(s: number): AuditEntry {
    const base = { entityType: 'identity', entityId: this.id, seq: s + 1, occurredAt: iso(this.time(s)) };
    if (s === 0)
      return {
        ...base,
        action: 'create',
        actorId: this.createdBy,
        data: { name: this.name, roles: this.roles },
      };
    const key = this.key!;
    return {
      ...base,
      action: 'register-key',
      actorId: this.id,
      data: { kid: key.kid, alg: 'EdDSA', thumbprint: key.thumbprint },
    };
  }
}

type ContractStep =
  | { kind: 'create' }
  | { kind: 'sign'; role: 'provider' | 'consumer' }
  | { kind: 'activate' }
  | { kind: 'suspend'; by: 'provider' | 'consumer'; final: boolean }
  | { kind: 'resume'; by: 'provider' | 'consumer' }
  | { kind: 'terminate' }
  | { kind: 'expire' };

const SUSPEND_REASONS = ['audit finding', 'data review', 'invoice overdue', 'security review'];
const TERMINATE_REASONS = ['project ended', 'replaced by a new agreement', 'breach of terms'];

class ContractPlan implements Entity {
  /** Activation, and the end of the active life (the final event, or the data's end for live contracts). */
  readonly activatedAt: number;
  readonly lifeEnd: number;
  cycles = 0;
  terms!: ContractTerms;
  digest = '';
  payloadDigest = '';
  measurementSetId: string | null = null;
  enclaves = 0;
  constructor(
    readonly id: string,
    readonly index: number,
    readonly title: string,
    readonly provider: Party,
    readonly consumer: Party,
    readonly status: ContractStatus,
    readonly created: number,
    readonly validityEnd: number,
    lifeEnd: number,
    readonly reasonIndex: number,
  ) {
    this.activatedAt = created + 3 * HOUR;
    this.lifeEnd = lifeEnd;
  }
  get events(): number {
    return this.version;
  }
  get everActive(): boolean {
    return !['Draft', 'PendingSignature'].includes(this.status);
  }
  /** The number of changes, once `cycles` is set. */
  get version(): number {
    if (this.status === 'Draft') return 1;
    if (this.status === 'PendingSignature') return 2;
    return 4 + 2 * this.cycles + (this.status === 'Active' ? 0 : 1);
  }
  /** Suspend/resume cycles take place in the first 5%–60% of the active life, enclaves start after them. */
  private get cycleStart(): number {
    return this.activatedAt + 0.05 * (this.lifeEnd - this.activatedAt);
  }
  private get cycleStep(): number {
    return (0.55 * (this.lifeEnd - this.activatedAt)) / Math.max(this.cycles, 1);
  }
  enclaveWindow(): [number, number] {
    const span = this.lifeEnd - this.activatedAt;
    return [this.activatedAt + 0.62 * span, this.activatedAt + 0.8 * span];
  }
  step(s: number): ContractStep {
    if (s === 0) return { kind: 'create' };
    if (s === 1) return { kind: 'sign', role: 'provider' };
    if (s === 2) return { kind: 'sign', role: 'consumer' };
    if (s === 3) return { kind: 'activate' };
    const c = s - 4;
    if (c < 2 * this.cycles) {
      const by = Math.floor(c / 2) % 2 === 0 ? 'provider' : 'consumer';
      return c % 2 === 0 ? { kind: 'suspend', by, final: false } : { kind: 'resume', by };
    }
    if (this.status === 'Suspended') return { kind: 'suspend', by: 'provider', final: true };
    return this.status === 'Terminated' ? { kind: 'terminate' } : { kind: 'expire' };
  }
  time(s: number): number {
    if (s <= 3) return this.created + s * HOUR;
    const c = s - 4;
    if (c < 2 * this.cycles)
      return this.cycleStart + Math.floor(c / 2) * this.cycleStep + (c % 2) * (this.cycleStep / 2);
    return this.lifeEnd;
  }
  private party(role: 'provider' | 'consumer'): Party {
    return role === 'provider' ? this.provider : this.consumer;
  }
  entry(s: number): AuditEntry {
    const base = { entityType: 'contract', entityId: this.id, seq: s + 1, occurredAt: iso(this.time(s)) };
    const step = this.step(s);
    switch (step.kind) {
      case 'create':
        return {
          ...base,
          action: 'create',
          actorId: this.provider.id,
          data: {
            status: 'Draft',
            providerId: this.provider.id,
            consumerId: this.consumer.id,
            contentDigest: this.digest,
          },
        };
      case 'sign': {
        const party = this.party(step.role);
        return {
          ...base,
          action: 'sign',
          actorId: party.id,
          data: {
            from: step.role === 'provider' ? 'Draft' : 'PendingSignature',
            to: 'PendingSignature',
            role: step.role,
            kid: party.kid,
            contentDigest: this.digest,
            contentVersion: 1,
          },
        };
      }
      case 'activate':
        return {
          ...base,
          action: 'activate',
          actorId: this.consumer.id,
          data: {
            from: 'PendingSignature',
            to: 'Active',
            countersignedBy: PLATFORM_KID.value,
            payloadDigest: this.payloadDigest,
          },
        };
      case 'suspend':
        return {
          ...base,
          action: 'suspend',
          actorId: this.party(step.by).id,
          data: { from: 'Active', to: 'Suspended', reason: this.suspendReason(s) },
        };
      case 'resume':
        return {
          ...base,
          action: 'resume',
          actorId: this.party(step.by).id,
          data: { from: 'Suspended', to: 'Active' },
        };
      case 'terminate':
        return {
          ...base,
          action: 'terminate',
          actorId: this.consumer.id,
          data: { from: 'Active', to: 'Terminated', reason: this.terminateReason },
        };
      case 'expire':
        return {
          ...base,
          action: 'expire',
          actorId: null,
          data: { from: 'Active', to: 'Expired', validUntil: this.terms.validity.end },
        };
    }
  }
  suspendReason(s: number): string {
    return SUSPEND_REASONS[(this.reasonIndex + s) % SUSPEND_REASONS.length]!;
  }
  get terminateReason(): string {
    return TERMINATE_REASONS[this.reasonIndex % TERMINATE_REASONS.length]!;
  }
}

/** The platform key's id, known once the signer is (the activation records name it). */
const PLATFORM_KID = { value: '' };

class MeasurementPlan implements Entity {
  readonly events = 3;
  constructor(
    readonly id: string,
    readonly contract: ContractPlan,
  ) {}
  time(s: number): number {
    return this.contract.activatedAt + (s + 1) * 10 * MINUTE;
  }
  approval(role: 'provider' | 'consumer', rng: Random): MeasurementApproval {
    const party = role === 'provider' ? this.contract.provider : this.contract.consumer;
    return {
      role,
      identityId: party.id,
      kid: party.kid!,
      alg: 'EdDSA',
      signature: rng.signature(),
      approvedAt: iso(this.time(role === 'provider' ? 1 : 2)),
    };
  }
  entry(s: number): AuditEntry {
    const c = this.contract;
    const base = {
      entityType: 'measurement-set',
      entityId: this.id,
      seq: s + 1,
      occurredAt: iso(this.time(s)),
    };
    if (s === 0) {
      return {
        ...base,
        action: 'propose',
        actorId: c.provider.id,
        data: {
          contractId: c.id,
          providerId: c.provider.id,
          consumerId: c.consumer.id,
          pcr0: IMAGE.pcr0,
          pcr1: IMAGE.pcr1,
          pcr2: IMAGE.pcr2,
          pcr8: null,
          additionalPcrs: {},
        },
      };
    }
    const party = s === 1 ? c.provider : c.consumer;
    return {
      ...base,
      action: 'approve',
      actorId: party.id,
      data: {
        role: s === 1 ? 'provider' : 'consumer',
        kid: party.kid,
        status: s === 1 ? 'Proposed' : 'Approved',
      },
    };
  }
}

type EnclaveEnd =
  | { kind: 'none' }
  | { kind: 'fail' }
  | { kind: 'terminate'; at: number; reason: string; byProvider: boolean }
  | { kind: 'suspend'; at: number; reason: string };

class EnclavePlan implements Entity {
  readonly events: number;
  constructor(
    readonly id: string,
    readonly index: number,
    readonly contract: ContractPlan,
    readonly created: number,
    readonly end: EnclaveEnd,
  ) {
    this.events = end.kind === 'none' || end.kind === 'fail' ? 3 : 4;
  }
  get name(): string {
    return `training-run-${this.index + 1}`;
  }
  get instanceId(): string {
    return `i-${(0x10000000000000000n + BigInt(this.index) * 7919n).toString(16).slice(-17)}`;
  }
  get executionArn(): string {
    return `arn:aws:states:${fixtures.enclave.region}:123456789012:execution:enclave-provisioning:${this.id}-1`;
  }
  get moduleId(): string {
    return `${this.instanceId}-enc${this.id.replaceAll('-', '').slice(0, 16)}`;
  }
  get status(): EnclaveStatus {
    const byEnd: Record<EnclaveEnd['kind'], EnclaveStatus> = {
      none: 'Running',
      fail: 'Failed',
      terminate: 'Terminated',
      suspend: 'Suspended',
    };
    return byEnd[this.end.kind];
  }
  time(s: number): number {
    if (s === 0) return this.created;
    if (s === 1) return this.created + MINUTE;
    if (s === 2) return this.created + (this.end.kind === 'fail' ? 15 : 3) * MINUTE;
    return (this.end as { at: number }).at;
  }
  get failure() {
    return { code: 'attestation_timeout', message: 'no attestation document arrived within 900 s' };
  }
  attestation(): EnclaveAttestation | null {
    if (this.end.kind === 'fail') return null;
    if (this.end.kind === 'terminate' || this.end.kind === 'suspend') {
      return { verdict: 'voided', voidedAt: iso(this.end.at), reason: this.end.reason };
    }
    const at = this.time(2);
    return {
      verdict: 'verified',
      verifiedAt: iso(at),
      moduleId: this.moduleId,
      documentTimestamp: iso(at - 2000),
      pcrs: {
        '0': IMAGE.pcr0,
        '1': IMAGE.pcr1,
        '2': IMAGE.pcr2,
        '4': sha256Hex(this.instanceId).repeat(2).slice(0, 96),
      },
      measurementSetId: this.contract.measurementSetId,
    };
  }
  entry(s: number): AuditEntry {
    const c = this.contract;
    const base = { entityType: 'enclave', entityId: this.id, seq: s + 1, occurredAt: iso(this.time(s)) };
    if (s === 0) {
      return {
        ...base,
        action: 'create',
        actorId: c.provider.id,
        data: {
          status: 'Initializing',
          name: this.name,
          contractId: c.id,
          providerId: c.provider.id,
          consumerId: c.consumer.id,
          region: fixtures.enclave.region,
          image: IMAGE,
        },
      };
    }
    if (s === 1) {
      return {
        ...base,
        action: 'provision',
        actorId: null,
        data: { provisioningId: `${this.id}-1`, restart: false },
      };
    }
    if (s === 2 && this.end.kind === 'fail') {
      return {
        ...base,
        action: 'fail',
        actorId: null,
        data: { from: 'Initializing', ...this.failure, instanceId: this.instanceId },
      };
    }
    if (s === 2) {
      return {
        ...base,
        action: 'activate',
        actorId: null,
        data: {
          instanceId: this.instanceId,
          moduleId: this.moduleId,
          matchedMeasurementSet: c.measurementSetId,
        },
      };
    }
    const end = this.end as Extract<EnclaveEnd, { at: number }>;
    return {
      ...base,
      action: end.kind,
      actorId: end.kind === 'terminate' && end.byProvider ? c.provider.id : null,
      data: {
        from: 'Running',
        to: end.kind === 'terminate' ? 'Terminated' : 'Suspended',
        reason: end.reason,
        instanceId: this.instanceId,
      },
    };
  }
}

// ---------------------------------------------------------------------------------------------------------
// Planning

const STATUS_MIX: readonly [ContractStatus, number][] = [
  ['Draft', 0.1],
  ['PendingSignature', 0.1],
  ['Active', 0.35],
  ['Suspended', 0.1],
  ['Terminated', 0.15],
  ['Expired', 0.2],
];

const ED25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

async function partyIdentity(
  rng: Random,
  role: 'provider' | 'consumer',
  n: number,
  created: number,
  adminId: string,
) {
  const id = rng.uuid();
  const seed = Buffer.from(sha256Hex(`${role}:${n}`), 'hex');
  const key = createPrivateKey({
    key: Buffer.concat([ED25519_PKCS8_PREFIX, seed]),
    format: 'der',
    type: 'pkcs8',
  });
  const { kty, crv, x } = createPublicKey(key).export({ format: 'jwk' });
  const jwk = { kty, crv, x } as Record<string, unknown>;
  const thumbprint = await keyThumbprint(jwk);
  const name = `${role}-${String(n + 1).padStart(4, '0')}`;
  const display = `${role === 'provider' ? 'Data provider' : 'Model builder'} ${n + 1}`;
  return new IdentityPlan(id, name, id, display, null, [role], created, adminId, {
    kid: thumbprint,
    jwk,
    thumbprint,
  });
}

interface Plan {
  readonly identities: IdentityPlan[];
  readonly contracts: ContractPlan[];
  readonly measurementSets: MeasurementPlan[];
  readonly enclaves: EnclavePlan[];
  readonly busyProvider: Party;
  readonly longChain: ContractPlan;
  readonly busyEnclaveContract: ContractPlan;
}

const SEEDED = [
  {
    name: 'provider',
    id: '11111111-1111-4111-8111-111111111111',
    roles: ['provider'],
    display: 'Acme Data Ltd (provider)',
  },
  {
    name: 'consumer',
    id: '22222222-2222-4222-8222-222222222222',
    roles: ['consumer'],
    display: 'Model Works Inc (consumer)',
  },
  { name: 'admin', id: '33333333-3333-4333-8333-333333333333', roles: ['admin'], display: 'Platform admin' },
  {
    name: 'auditor',
    id: '44444444-4444-4444-8444-444444444444',
    roles: ['auditor'],
    display: 'Independent auditor',
  },
  {
    name: 'outsider',
    id: '55555555-5555-4555-8555-555555555555',
    roles: ['consumer'],
    display: 'Unrelated consumer',
  },
] as const;

async function plan(spec: ScaleSpec): Promise<Plan> {
  const rng = new Random(spec.seed);
  // The seeded identities of the local stack (infra/local/seed.ts), so its tokens work on these data too.
  const identities: IdentityPlan[] = SEEDED.map(
    (s, i) =>
      new IdentityPlan(
        s.id,
        s.name,
        `local|${s.name}`,
        s.display,
        `${s.name}@example.test`,
        s.roles,
        HISTORY_START - 60 * DAY + i * MINUTE,
        null,
        null,
      ),
  );
  const adminId = SEEDED[2].id;
  const asParty = (p: IdentityPlan): Party => ({
    id: p.id,
    name: p.name,
    roles: p.roles as Party['roles'],
    kid: p.key?.kid ?? null,
  });
  const providers: Party[] = [];
  const consumers: Party[] = [];
  for (let i = 0; i < spec.providers; i++) {
    const p = await partyIdentity(rng, 'provider', i, HISTORY_START - 30 * DAY + i * 10_000, adminId);
    identities.push(p);
    providers.push(asParty(p));
  }
  for (let i = 0; i < spec.consumers; i++) {
    const p = await partyIdentity(rng, 'consumer', i, HISTORY_START - 20 * DAY + i * 10_000, adminId);
    identities.push(p);
    consumers.push(asParty(p));
  }
  const busyProvider = providers[0]!;

  const contracts: ContractPlan[] = [];
  const newContract = (
    provider: Party,
    status: ContractStatus,
    created: number,
    validityEnd: number,
    lifeEnd: number,
  ) => {
    const c = new ContractPlan(
      rng.uuid(),
      contracts.length,
      `${fixtures.contract.title} #${contracts.length + 1}`,
      provider,
      consumers[rng.int(consumers.length)]!,
      status,
      created,
      validityEnd,
      lifeEnd,
      rng.int(12),
    );
    contracts.push(c);
    return c;
  };
  // The two contracts the benchmark reads, created first, live until 2090.
  const longChain = newContract(busyProvider, 'Active', HISTORY_START + DAY, FAR_END, DATA_AS_OF - HOUR);
  longChain.cycles = (spec.longChainRecords - 4) / 2;
  const busyEnclaveContract = newContract(
    busyProvider,
    'Active',
    HISTORY_START + 2 * DAY,
    FAR_END,
    DATA_AS_OF - HOUR,
  );

  const regular = spec.contracts - contracts.length;
  const span = DATA_AS_OF - 7 * DAY - HISTORY_START;
  for (let i = 0; i < regular; i++) {
    const created = Math.floor(HISTORY_START + ((i + rng.next()) * span) / regular);
    const provider =
      rng.next() < spec.busyProviderShare ? busyProvider : providers[rng.int(providers.length)]!;
    let draw = rng.next();
    let status: ContractStatus = 'Active';
    for (const [s, p] of STATUS_MIX) {
      if (draw < p) {
        status = s;
        break;
      }
      draw -= p;
    }
    // Too young to have expired: still active.
    if (status === 'Expired' && created > DATA_AS_OF - 40 * DAY) status = 'Active';
    const activated = created + 3 * HOUR;
    const r = rng.next();
    const liveEnd = DATA_AS_OF + DAY + r * 4 * YEAR;
    const anyEnd = created + YEAR + r * 4 * YEAR;
    switch (status) {
      case 'Draft':
      case 'PendingSignature':
        newContract(provider, status, created, anyEnd, created);
        break;
      case 'Active':
        newContract(provider, status, created, liveEnd, DATA_AS_OF - HOUR);
        break;
      case 'Suspended':
        newContract(
          provider,
          status,
          created,
          liveEnd,
          activated + (0.85 + 0.13 * rng.next()) * (DATA_AS_OF - HOUR - activated),
        );
        break;
      case 'Terminated': {
        const limit = Math.min(anyEnd, DATA_AS_OF) - HOUR;
        newContract(
          provider,
          status,
          created,
          anyEnd,
          activated + (0.3 + 0.65 * rng.next()) * (limit - activated),
        );
        break;
      }
      case 'Expired': {
        const end = created + 30 * DAY + r * (DATA_AS_OF - DAY - created - 30 * DAY);
        newContract(provider, status, created, end, end + MINUTE + rng.next() * 9 * MINUTE);
        break;
      }
    }
  }
  for (const c of contracts) {
    const created = Math.floor(c.created);
    c.terms = {
      ...fixtures.contract.terms,
      validity: { start: iso(created), end: iso(Math.floor(c.validityEnd)) },
    };
    c.digest = contentDigest({
      id: c.id,
      title: c.title,
      description: fixtures.contract.description,
      providerId: c.provider.id,
      consumerId: c.consumer.id,
      terms: c.terms,
    });
  }

  // Enclaves: the busy contract's, then the rest on contracts that were ever Active for at least two days.
  const enclaves: EnclavePlan[] = [];
  const measurementSets: MeasurementPlan[] = [];
  const addEnclave = (c: ContractPlan) => {
    if (c.measurementSetId === null) {
      const set = new MeasurementPlan(rng.uuid(), c);
      c.measurementSetId = set.id;
      measurementSets.push(set);
    }
    c.enclaves++;
    const [from, to] = c.enclaveWindow();
    const created = Math.floor(from + rng.next() * (to - from));
    let end: EnclaveEnd;
    if (rng.next() < 0.1) end = { kind: 'fail' };
    else if (c.status === 'Terminated' || c.status === 'Expired') {
      const reason = c.status === 'Terminated' ? 'contract terminated' : 'contract expired';
      end = { kind: 'terminate', at: Math.floor(c.lifeEnd + 2 * MINUTE), reason, byProvider: false };
    } else if (c.status === 'Suspended') {
      end = { kind: 'suspend', at: Math.floor(c.lifeEnd + 2 * MINUTE), reason: 'contract suspended' };
    } else if (rng.next() < 0.3) {
      const at = Math.floor(created + (0.1 + 0.8 * rng.next()) * (DATA_AS_OF - HOUR - created));
      end = { kind: 'terminate', at, reason: 'training finished', byProvider: true };
    } else end = { kind: 'none' };
    enclaves.push(new EnclavePlan(rng.uuid(), enclaves.length, c, created, end));
  };
  for (let i = 0; i < spec.busyContractEnclaves; i++) addEnclave(busyEnclaveContract);
  const eligible = contracts.filter(
    (c) =>
      c.everActive && c !== longChain && c !== busyEnclaveContract && c.lifeEnd - c.activatedAt >= 2 * DAY,
  );
  for (let i = enclaves.length; i < spec.enclaves; i++) addEnclave(eligible[rng.int(eligible.length)]!);

  // Suspend/resume cycles make up the audit records still missing.
  const cyclable = contracts.filter((c) => c.everActive && c !== longChain);
  const planned =
    identities.reduce((n, e) => n + e.events, 0) +
    contracts.reduce((n, c) => n + c.version, 0) +
    measurementSets.length * 3 +
    enclaves.reduce((n, e) => n + e.events, 0);
  const mean = Math.max(0, (spec.auditRecords - planned) / (2 * Math.max(cyclable.length, 1)));
  for (const c of cyclable) c.cycles = rng.int(Math.round(2 * mean) + 1);
  return {
    identities,
    contracts,
    measurementSets,
    enclaves,
    busyProvider,
    longChain,
    busyEnclaveContract,
  };
}

// ---------------------------------------------------------------------------------------------------------
// Rows

/** One value in COPY's text format. */
function copyValue(value: string | number | boolean | null): string {
  if (value === null) return '\\N';
  if (typeof value !== 'string') return String(value);
  return /[\\\t\n\r]/.test(value)
    ? value.replaceAll('\\', '\\\\').replaceAll('\t', '\\t').replaceAll('\n', '\\n').replaceAll('\r', '\\r')
    : value;
}
const copyRow = (values: readonly (string | number | boolean | null)[]) =>
  `${values.map(copyValue).join('\t')}\n`;
const json = (value: unknown) => (value === null ? null : JSON.stringify(value));

function contractRow(c: ContractPlan, rng: Random): string {
  const sign = (party: Party, role: 'provider' | 'consumer'): ContractSignature => ({
    role,
    identityId: party.id,
    type: 'digital',
    kid: party.kid!,
    alg: 'EdDSA',
    signature: rng.signature(),
    contentDigest: c.digest,
    contentVersion: 1,
    signedAt: iso(c.time(role === 'provider' ? 1 : 2)),
  });
  const signatures: ContractSignature[] = [];
  if (c.status !== 'Draft') signatures.push(sign(c.provider, 'provider'));
  if (c.everActive) {
    signatures.push(sign(c.consumer, 'consumer'));
    const data = {
      id: c.id,
      contentDigest: c.digest,
      contentVersion: 1,
    } as ContractData;
    const payload = countersignPayload(data, signatures);
    c.payloadDigest = sha256Hex(payload);
    signatures.push({
      role: 'platform',
      identityId: null,
      type: 'digital',
      kid: PLATFORM_KID.value,
      alg: 'ES256',
      signature: rng.signature(),
      contentDigest: c.digest,
      contentVersion: 1,
      signedAt: iso(c.time(3)),
      signedPayload: payload,
    });
  }
  const last = c.version - 1;
  let statusReason: string | null = null;
  let suspendedBy: string | null = null;
  if (c.status === 'Suspended') {
    statusReason = c.suspendReason(last);
    suspendedBy = c.provider.id;
  } else if (c.status === 'Terminated') statusReason = c.terminateReason;
  else if (c.status === 'Expired') statusReason = 'validity window ended';
  return copyRow([
    c.id,
    c.title,
    fixtures.contract.description,
    c.provider.id,
    c.consumer.id,
    c.status,
    json(c.terms),
    json(signatures),
    iso(c.created),
    iso(c.time(last)),
    c.version,
    1,
    c.digest,
    c.status !== 'Draft',
    statusReason,
    suspendedBy,
    c.terms.validity.end,
    c.measurementSetId ? 1 : 0,
  ]);
}

function enclaveRow(e: EnclavePlan): string {
  const end = e.end;
  const statusReason =
    end.kind === 'fail'
      ? `${e.failure.code}: ${e.failure.message}`
      : end.kind === 'terminate' || end.kind === 'suspend'
        ? end.reason
        : null;
  return copyRow([
    e.id,
    e.name,
    e.contract.id,
    e.contract.provider.id,
    e.status,
    json(e.attestation()),
    json(fixtures.enclave.configuration),
    null,
    fixtures.enclave.region,
    e.events,
    e.instanceId,
    e.executionArn,
    statusReason,
    iso(e.created),
    iso(e.time(e.events - 1)),
  ]);
}

function measurementRow(m: MeasurementPlan, rng: Random): string {
  const approvals = [m.approval('provider', rng), m.approval('consumer', rng)];
  return copyRow([
    m.id,
    m.contract.id,
    IMAGE.pcr0,
    IMAGE.pcr1,
    IMAGE.pcr2,
    null,
    '{}',
    'Approved',
    json(approvals),
    m.contract.provider.id,
    3,
    iso(m.time(0)),
    iso(m.time(2)),
  ]);
}

// ---------------------------------------------------------------------------------------------------------
// Loading

/** `COPY table (columns) FROM STDIN` through psql, fed in chunks with back-pressure. */
class CopyIn {
  private readonly child: ChildProcessWithoutNullStreams;
  private readonly exited: Promise<void>;
  private chunks: string[] = [];
  private size = 0;
  rows = 0;
  constructor(psql: string, url: string, table: string, columns: readonly string[]) {
    this.child = spawn(
      psql,
      [
        '-X',
        '-q',
        '-v',
        'ON_ERROR_STOP=1',
        '-d',
        url,
        '-c',
        'SET session_replication_role = replica',
        '-c',
        `COPY ${table} (${columns.join(', ')}) FROM STDIN`,
      ],
      { stdio: ['pipe', 'pipe', 'pipe'] },
    );
    let stderr = '';
    this.child.stderr.on('data', (d) => {
      stderr += d;
    });
    this.child.stdout.resume();
    this.exited = new Promise((resolve, reject) => {
      this.child.on('error', reject);
      this.child.on('close', (code) =>
        code === 0
          ? resolve()
          : reject(new Error(`COPY ${table} failed (psql exit ${code}): ${stderr.trim()}`)),
      );
    });
    this.exited.catch(() => undefined);
  }
  /** Adds a row; true when the buffer should be flushed (await `flush()`). */
  add(row: string): boolean {
    this.chunks.push(row);
    this.size += row.length;
    this.rows++;
    return this.size >= 1 << 20;
  }
  async flush(): Promise<void> {
    if (this.chunks.length === 0) return;
    const data = this.chunks.join('');
    this.chunks = [];
    this.size = 0;
    if (!this.child.stdin.write(data)) await Promise.race([once(this.child.stdin, 'drain'), this.exited]);
  }
  async end(): Promise<number> {
    await this.flush();
    this.child.stdin.end();
    await this.exited;
    return this.rows;
  }
}

interface SchemaObject {
  readonly table: string;
  readonly name: string;
  readonly def: string;
  readonly type: string;
}

/** The keys, unique constraints, foreign keys and indexes of the application's tables, from the catalog. */
async function schemaObjects(db: Database): Promise<SchemaObject[]> {
  const { rows: constraints } = await db.query<SchemaObject & Record<string, unknown>>(
    `SELECT r.relname AS table, c.conname AS name, pg_get_constraintdef(c.oid) AS def, c.contype::text AS type
     FROM pg_constraint c JOIN pg_class r ON r.oid = c.conrelid JOIN pg_namespace n ON n.oid = r.relnamespace
     WHERE n.nspname = 'public' AND r.relname <> 'schema_migrations' AND c.contype IN ('p', 'u', 'f')`,
  );
  const { rows: indexes } = await db.query<SchemaObject & Record<string, unknown>>(
    `SELECT r.relname AS table, x.relname AS name, pg_get_indexdef(i.indexrelid) AS def, 'i' AS type
     FROM pg_index i JOIN pg_class x ON x.oid = i.indexrelid JOIN pg_class r ON r.oid = i.indrelid
       JOIN pg_namespace n ON n.oid = r.relnamespace
     WHERE n.nspname = 'public' AND r.relname <> 'schema_migrations'
       AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid AND c.contype IN ('p', 'u', 'x'))`,
  );
  return [...constraints, ...indexes].sort((a, b) =>
    `${a.table}.${a.name}`.localeCompare(`${b.table}.${b.name}`),
  );
}

export interface GenerateOptions {
  /** The psql binary (COPY goes through it). */
  readonly psql: string;
  /** Signs the checkpoints (the benchmark's platform key, kept with the data). */
  readonly signer: Signer;
  readonly progress?: (line: string) => void;
}

/**
 * Migrates the empty database `db` (at `url`) and fills it as `spec` says. Returns what the benchmark reads.
 * @throws Error when the database is not empty, a COPY fails, or the rebuilt schema differs from the migrated one.
 */
export async function generateScaleData(
  db: Database,
  url: string,
  spec: ScaleSpec,
  options: GenerateOptions,
): Promise<ScaleDataSet> {
  const say = options.progress ?? (() => undefined);
  const seconds: Record<string, number> = {};
  let phaseStarted = performance.now();
  const phase = (name: string) => {
    const now = performance.now();
    seconds[name] = Math.round((now - phaseStarted) / 100) / 10;
    phaseStarted = now;
  };
  const { rows: existing } = await db.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM pg_tables WHERE schemaname = 'public'`,
  );
  if (existing[0]!.n > 0) throw new Error('generateScaleData needs an empty database');
  await migrate(db, await loadMigrations());
  const migrated = await schemaObjects(db);
  const platformKey = (await options.signer.sign(Buffer.from('kid'))).key;
  PLATFORM_KID.value = platformKey.jwk.kid;
  // Published as the platform's key since before the history starts (migration 0018's registry), as the
  // first countersignature of a real deployment would have registered it.
  await db.query(
    'INSERT INTO platform_keys (kid, key_id, jwk, valid_from) VALUES (:kid, :key_id, :jwk, :from)',
    {
      kid: sql.text(platformKey.jwk.kid),
      key_id: sql.text(platformKey.keyId),
      jwk: sql.json(platformKey.jwk),
      from: sql.timestamp(iso(KEY_EPOCH)),
    },
  );

  say(`planning ${spec.contracts} contracts, ${spec.enclaves} enclaves, ~${spec.auditRecords} audit records`);
  const p = await plan(spec);
  const entities: Entity[] = [...p.identities, ...p.contracts, ...p.measurementSets, ...p.enclaves];
  phase('plan');

  say('dropping keys, foreign keys and indexes for the load');
  // Foreign keys go first and come back last; indexes (one is a foreign key's target) before keys.
  const rank: Record<string, number> = { f: 0, i: 1, u: 2, p: 2 };
  const order = (t: string) => rank[t] ?? 3;
  for (const o of [...migrated].sort((a, b) => order(a.type) - order(b.type))) {
    await db.query(
      o.type === 'i' ? `DROP INDEX ${o.name}` : `ALTER TABLE ${o.table} DROP CONSTRAINT ${o.name}`,
    );
  }

  const rng = new Random(spec.seed ^ 0x5eed);
  const copy = (table: string, columns: string) =>
    new CopyIn(options.psql, url, table, columns.split(/,\s*/));
  const counts: Record<string, number> = {};
  const load = async <T>(name: string, table: CopyIn, items: readonly T[], row: (item: T) => string) => {
    for (const item of items) if (table.add(row(item))) await table.flush();
    counts[name] = await table.end();
  };

  say(`COPY ${p.identities.length} identities and their keys`);
  await load(
    'identities',
    copy('identities', 'id, subject, name, display_name, email, roles, version, created_at, updated_at'),
    p.identities,
    (i) =>
      copyRow([
        i.id,
        i.subject,
        i.name,
        i.displayName,
        i.email,
        `{${i.roles.join(',')}}`,
        i.events,
        iso(i.created),
        iso(i.time(i.events - 1)),
      ]),
  );
  await load(
    'identity_keys',
    copy('identity_keys', 'kid, identity_id, alg, jwk, created_at, revoked_at, thumbprint, binds_material'),
    p.identities.filter((i) => i.key),
    (i) =>
      copyRow([i.key!.kid, i.id, 'EdDSA', json(i.key!.jwk), iso(i.time(1)), null, i.key!.thumbprint, true]),
  );
  say(`COPY ${p.contracts.length} contracts`);
  await load(
    'contracts',
    copy(
      'contracts',
      `id, title, description, provider_id, consumer_id, status, terms, signatures, created_at, updated_at, version,
       content_version, content_digest, ever_signed, status_reason, suspended_by, valid_until, measurement_sets_held`,
    ),
    p.contracts,
    (c) => contractRow(c, rng),
  );
  say(`COPY ${p.measurementSets.length} measurement sets and ${p.enclaves.length} enclaves`);
  await load(
    'measurement_sets',
    copy(
      'measurement_sets',
      'id, contract_id, pcr0, pcr1, pcr2, pcr8, additional_pcrs, status, approvals, proposed_by, version, created_at, updated_at',
    ),
    p.measurementSets,
    (m) => measurementRow(m, rng),
  );
  await load(
    'enclaves',
    copy(
      'enclaves',
      `id, name, contract_id, provider_id, status, attestation, configuration, metrics, region, version, instance_id,
       execution_arn, status_reason, created_at, updated_at`,
    ),
    p.enclaves,
    enclaveRow,
  );
  phase('rows');

  // Every change in the order it happened (to the minute), so the records of one entity lie spread over the
  // table as the application leaves them: sort keys of minute, entity index and change index.
  let total = 0;
  for (const e of entities) total += e.events;
  say(`ordering ${total} audit records by time`);
  const keys = new BigUint64Array(total);
  let k = 0;
  for (let e = 0; e < entities.length; e++) {
    const entity = entities[e]!;
    const prefix = BigInt(e) << 14n;
    for (let s = 0; s < entity.events; s++) {
      keys[k++] = (BigInt(Math.floor((entity.time(s) - KEY_EPOCH) / MINUTE)) << 35n) | prefix | BigInt(s);
    }
  }
  keys.sort();
  say(`COPY ${total} audit records, hash-chained per entity`);
  const heads: string[] = new Array(entities.length).fill(GENESIS_HASH);
  const audit = copy(
    'audit_log',
    'entity_id, seq, entity_type, action, actor_id, occurred_at, data, prev_hash, hash',
  );
  let written = 0;
  for (const key of keys) {
    const e = Number((key >> 14n) & 0x1fffffn);
    const s = Number(key & 0x3fffn);
    const record = chainRecord(entities[e]!.entry(s), heads[e]!);
    heads[e] = record.hash;
    const line = copyRow([
      record.entityId,
      record.seq,
      record.entityType,
      record.action,
      record.actorId,
      record.occurredAt,
      JSON.stringify(record.data),
      record.prevHash,
      record.hash,
    ]);
    if (audit.add(line)) await audit.flush();
    if (++written % 1_000_000 === 0) say(`  ${written / 1_000_000} M audit records`);
  }
  counts.audit_log = await audit.end();
  phase('audit');

  // The checkpoint job's work up to now: every head anchored, 1 000 per checkpoint in entity id order.
  say('signing checkpoints over every chain head');
  const leaves: CheckpointLeaf[] = entities
    .map((e, i) => ({ entityId: e.id, seq: e.events, hash: heads[i]! }))
    .sort((a, b) => (a.entityId < b.entityId ? -1 : a.entityId > b.entityId ? 1 : 0));
  const checkpoints = copy(
    'audit_checkpoints',
    'seq, created_at, prev_root, tree_root, tree_size, signed_payload, kid, alg, signature',
  );
  const leafRows = copy('audit_checkpoint_leaves', 'checkpoint_seq, leaf_index, entity_id, seq, hash');
  let prevRoot = GENESIS_HASH;
  for (let start = 0, n = 1; start < leaves.length; start += 1000, n++) {
    const chunk = leaves.slice(start, start + 1000);
    const statement: CheckpointStatement = {
      checkpoint: n,
      createdAt: iso(DATA_AS_OF - HOUR + n),
      prevRoot,
      treeRoot: treeRoot(chunk.map(leafOf)).toString('hex'),
      treeSize: chunk.length,
    };
    const payload = canonicalJson(statement);
    const signed = await options.signer.sign(Buffer.from(payload, 'utf8'));
    checkpoints.add(
      copyRow([
        n,
        statement.createdAt,
        prevRoot,
        statement.treeRoot,
        chunk.length,
        payload,
        signed.kid,
        signed.alg,
        signed.signature,
      ]),
    );
    chunk.forEach((l, i) => {
      leafRows.add(copyRow([n, i, l.entityId, l.seq, l.hash]));
    });
    await leafRows.flush();
    prevRoot = statement.treeRoot;
  }
  counts.audit_checkpoints = await checkpoints.end();
  counts.audit_checkpoint_leaves = await leafRows.end();
  phase('checkpoints');

  say('rebuilding keys, indexes and foreign keys');
  for (const o of [...migrated].sort((a, b) => order(b.type) - order(a.type))) {
    await db.query(o.type === 'i' ? o.def : `ALTER TABLE ${o.table} ADD CONSTRAINT ${o.name} ${o.def}`);
  }
  const rebuilt = await schemaObjects(db);
  if (JSON.stringify(rebuilt) !== JSON.stringify(migrated)) {
    throw new Error('the rebuilt schema differs from the migrated one');
  }
  phase('indexes');
  say('VACUUM ANALYZE');
  await db.query('VACUUM (ANALYZE)');
  phase('vacuum');

  return {
    generatorVersion: GENERATOR_VERSION,
    spec,
    busyProviderId: p.busyProvider.id,
    longChainContractId: p.longChain.id,
    busyEnclaveContractId: p.busyEnclaveContract.id,
    counts: { ...counts, entities: entities.length },
    seconds,
  };
}
