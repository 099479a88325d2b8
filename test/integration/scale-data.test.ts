import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCheckpoint } from '../../shared/audit/audit-checkpoints.ts';
import { getAuditTrail } from '../../shared/audit/audit-service.ts';
import { expireContracts } from '../../shared/contracts/contract-expiry.ts';
import { getContract, listContracts, suspendContract } from '../../shared/contracts/contract-service.ts';
import { listMeasurementSets } from '../../shared/contracts/measurement-service.ts';
import { sql } from '../../shared/database/database.ts';
import { PostgresDatabase } from '../../shared/database/postgres-database.ts';
import type { Identity } from '../../shared/domain/identity.ts';
import { getEnclave, listEnclaves } from '../../shared/enclaves/enclave-service.ts';
import {
  AuditTrailSchema,
  ContractPageSchema,
  ContractResponseSchema,
  EnclavePageSchema,
  EnclaveResponseSchema,
  ListContractsQuerySchema,
  ListEnclavesQuerySchema,
  MeasurementSetListSchema,
} from '../../shared/http/api-schemas.ts';
import { findIdentity } from '../../shared/identities/identity-store.ts';
import type { Dependencies } from '../../shared/runtime/dependencies.ts';
import { LocalSigner } from '../../shared/signing/local-signer.ts';
import { DATA_AS_OF, generateScaleData, type ScaleDataSet, scaleSpec } from '../bench/scale-data.ts';
import { serverDatabase } from '../support/databases.ts';
// @ts-expect-error: a plain ESM helper shared with the test runner, without type declarations
import { findPgBin } from '../support/postgres-server.mjs';

/**
 * The scale benchmark's generator at a small size, on a real PostgreSQL server (it loads with psql's COPY):
 * every row it writes reads back through the services as the API answers it, every audit chain verifies
 * and is anchored by a signed checkpoint, and the application keeps working on top of the data (the expiry
 * sweep, the checkpoint job, a lifecycle write).
 */
const bin: string | undefined = findPgBin();
const psql = bin ? join(bin, 'psql') : '';
const ADMIN_ID = '33333333-3333-4333-8333-333333333333';
const AUDITOR_ID = '44444444-4444-4444-8444-444444444444';

describe.runIf(process.env.TEST_DATABASE_URL && existsSync(psql))('the scale data generator', () => {
  let database: Awaited<ReturnType<typeof serverDatabase>>;
  let db: PostgresDatabase;
  let deps: Dependencies;
  let data: ScaleDataSet;
  let admin: Identity;
  let auditor: Identity;
  let clock = new Date(DATA_AS_OF);
  const spec = scaleSpec(400, {
    enclaves: 40,
    auditRecords: 4000,
    providers: 12,
    consumers: 12,
    busyProviderShare: 0.2,
    longChainRecords: 250,
    busyContractEnclaves: 25,
  });

  beforeAll(async () => {
    database = (await serverDatabase())!;
    db = new PostgresDatabase(database.url, { max: 4 });
    const signer = await LocalSigner.create();
    data = await generateScaleData(db, database.url, spec, { psql, signer });
    deps = { db, signer, now: () => clock, newId: randomUUID };
    admin = (await findIdentity(db, ADMIN_ID))!;
    auditor = (await findIdentity(db, AUDITOR_ID))!;
  }, 120_000);
  afterAll(async () => {
    await db?.close();
    await database?.drop();
  });

  const column = async (query: string) => (await db.query<{ v: string }>(query)).rows.map((r) => r.v);

  it('writes the spec: the counts, every status, the audit records it aims at', async () => {
    expect(data.counts).toMatchObject({
      contracts: 400,
      enclaves: 40,
      identities: 5 + 12 + 12,
      identity_keys: 24,
    });
    expect(data.counts.audit_log).toBeGreaterThan(4000 * 0.9);
    expect(data.counts.audit_log).toBeLessThan(4000 * 1.1);
    expect((await column('SELECT DISTINCT status AS v FROM contracts')).sort()).toEqual(
      ['Active', 'Draft', 'Expired', 'PendingSignature', 'Suspended', 'Terminated'].sort(),
    );
    expect(await column('SELECT DISTINCT status AS v FROM enclaves')).toEqual(
      expect.arrayContaining(['Running', 'Failed', 'Terminated']),
    );
    const { rows } = await db.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM audit_log WHERE entity_id = :id',
      { id: sql.uuid(data.longChainContractId) },
    );
    expect(rows[0]!.n).toBe(250);
  });

  it('every contract, enclave and measurement set reads back as the API answers it', async () => {
    for (const id of await column('SELECT id AS v FROM contracts')) {
      const { body } = await getContract(deps, admin, id);
      ContractResponseSchema.parse(body);
    }
    for (const id of await column('SELECT id AS v FROM enclaves')) {
      EnclaveResponseSchema.parse((await getEnclave(deps, admin, id)).body);
    }
    for (const id of await column('SELECT DISTINCT contract_id AS v FROM measurement_sets')) {
      const { body } = await listMeasurementSets(deps, admin, id);
      expect(MeasurementSetListSchema.parse(body).items.map((s) => s.status)).toEqual(['Approved']);
    }
  });

  it('the lists page through the busy catalogue and the busy contract', async () => {
    const provider = (await findIdentity(db, data.busyProviderId))!;
    let cursor: string | null = null;
    let listed = 0;
    do {
      const query = ListContractsQuerySchema.parse({
        role: 'provider',
        status: 'Active',
        ...(cursor ? { cursor } : {}),
      });
      const { body } = await listContracts(deps, provider, query);
      ContractPageSchema.parse(body);
      listed += body.items.length;
      cursor = body.nextCursor;
    } while (cursor);
    const { rows } = await db.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM contracts WHERE provider_id = :id AND status = 'Active'",
      { id: sql.uuid(provider.id) },
    );
    expect(listed).toBe(rows[0]!.n);
    const query = ListEnclavesQuerySchema.parse({ contractId: data.busyEnclaveContractId, limit: '100' });
    const { body } = await listEnclaves(deps, provider, query);
    expect(EnclavePageSchema.parse(body).items).toHaveLength(25);
  });

  it('every kind of audit chain verifies and its head is anchored by a signed checkpoint', async () => {
    // 30 chains of each entity type (every one takes a while: the trail loads and proves its checkpoint).
    const { rows } = await db.query<{ entity_id: string; seq: number; type: string }>(
      `SELECT entity_id, seq, type FROM (
         SELECT entity_id, max(seq)::int AS seq, min(entity_type) AS type,
                row_number() OVER (PARTITION BY min(entity_type) ORDER BY entity_id) AS n
         FROM audit_log GROUP BY entity_id
       ) chains WHERE n <= 30 OR entity_id = :long`,
      { long: sql.uuid(data.longChainContractId) },
    );
    expect(new Set(rows.map((r) => r.type))).toEqual(
      new Set(['identity', 'contract', 'measurement-set', 'enclave']),
    );
    for (const { entity_id: entityId, seq } of rows) {
      const afterSeq = Math.max(0, seq - 200);
      const { body } = await getAuditTrail(deps, auditor, { entityId, afterSeq, limit: 200 });
      AuditTrailSchema.parse(body);
      expect(body.verification, entityId).toMatchObject({ valid: true, anchored: true });
    }
  });

  it('the application works on top: the sweep, the checkpoint job, a lifecycle write', async () => {
    expect(await createCheckpoint(deps)).toBeNull();
    clock = new Date(DATA_AS_OF + 400 * 24 * 3600 * 1000);
    const expired = await expireContracts(deps);
    expect(expired).toBeGreaterThan(0);
    expect((await createCheckpoint(deps))!.treeSize).toBe(expired);
    expect(await createCheckpoint(deps)).toBeNull();

    const [id] = await column(
      `SELECT id AS v FROM contracts WHERE status = 'Active' AND valid_until >= '2090-01-01' ORDER BY created_at LIMIT 1`,
    );
    const suspended = await suspendContract(deps, admin, id!, 'scale test', undefined);
    expect(suspended.body).toMatchObject({ status: 'Suspended' });
    const { body } = await getAuditTrail(deps, auditor, { entityId: id!, afterSeq: 0, limit: 200 });
    expect(body.verification.valid).toBe(true);
  });
});
