import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SEEDED_IDENTITIES, seedIdentities } from '../../infra/local/seed.ts';
import { GENESIS_HASH, verifyChain } from '../../shared/audit/audit-chain.ts';
import {
  createCheckpoint,
  loadCheckpointProof,
  verifyCheckpointProof,
} from '../../shared/audit/audit-checkpoints.ts';
import { listAuditRecords, loadAuditHead } from '../../shared/audit/audit-store.ts';
import { auditedWrite } from '../../shared/audit/audited-write.ts';
import { expireContracts } from '../../shared/contracts/contract-expiry.ts';
import {
  createContract,
  getContract,
  listContracts,
  signContract,
  suspendContract,
  updateContract,
} from '../../shared/contracts/contract-service.ts';
import { findExpiredLiveContractIds, loadContract } from '../../shared/contracts/contract-store.ts';
import { sql } from '../../shared/database/database.ts';
import { loadMigrations, migrate } from '../../shared/database/migrate.ts';
import type { Identity } from '../../shared/domain/identity.ts';
import { InProcessBus } from '../../shared/events/in-process-bus.ts';
import { publishOutbox } from '../../shared/events/outbox-publisher.ts';
import { ListContractsQuerySchema } from '../../shared/http/api-schemas.ts';
import { fingerprintOf, purgeIdempotencyKeys } from '../../shared/idempotency/idempotency-store.ts';
import { registerKey } from '../../shared/identities/identity-service.ts';
import { findIdentityBySubject, listIdentities } from '../../shared/identities/identity-store.ts';
import type { Dependencies } from '../../shared/runtime/dependencies.ts';
import { LocalSigner } from '../../shared/signing/local-signer.ts';
import { listPlatformKeys } from '../../shared/signing/platform-key-registry.ts';
import { PartyKey } from '../support/api-client.ts';
import { CREATE_FIXTURE } from '../support/contracts.ts';
import { ADAPTERS, type OpenedDatabase } from '../support/databases.ts';

/**
 * One repository suite, run against every database adapter: the same SQL must behave and decode the same
 * on PGlite, a real PostgreSQL server and the Data API.
 */
for (const adapter of ADAPTERS) {
  describe.runIf(adapter.available)(`repository on ${adapter.name}`, () => {
    let opened: OpenedDatabase;
    let deps: Dependencies;
    let clock = new Date('2027-01-01T00:00:00.000Z');
    let provider: Identity;
    let consumer: Identity;

    beforeAll(async () => {
      opened = await adapter.open();
      const migrations = await loadMigrations();
      expect(await migrate(opened.db, migrations)).toHaveLength(migrations.length);
      deps = { db: opened.db, signer: await LocalSigner.create(), now: () => clock, newId: randomUUID };
      await seedIdentities(deps);
      provider = (await findIdentityBySubject(opened.db, 'local|provider'))!;
      consumer = (await findIdentityBySubject(opened.db, 'local|consumer'))!;
    });
    afterAll(async () => opened?.close());

    it('applies migrations once and refuses a changed one', async () => {
      const migrations = await loadMigrations();
      expect(await migrate(opened.db, migrations)).toEqual([]);
      const changed = migrations.map((m, i) => (i === 0 ? { ...m, script: `${m.script}\n-- edited` } : m));
      await expect(migrate(opened.db, changed)).rejects.toThrow(/was changed after it was applied/);
    });

    it('decodes every column type the same way', async () => {
      const { rows } = await opened.db.query(
        `SELECT :id::uuid AS id, :doc::jsonb AS doc, :at::timestamptz AS at, :n::int8 AS n, 7::int4 AS small,
                12.50::numeric AS amount, true AS flag, ARRAY['a','b']::text[] AS tags, NULL::text AS nothing,
                'x'::text AS label`,
        {
          id: sql.uuid('11111111-1111-4111-8111-111111111111'),
          doc: sql.json({ a: [1, 'b', null] }),
          at: sql.timestamp('2026-11-25T10:11:12.345Z'),
          n: sql.int(9007199254740991),
        },
      );
      expect(rows[0]).toEqual({
        id: '11111111-1111-4111-8111-111111111111',
        doc: { a: [1, 'b', null] },
        at: '2026-11-25T10:11:12.345Z',
        n: 9007199254740991,
        small: 7,
        amount: '12.50',
        flag: true,
        tags: ['a', 'b'],
        nothing: null,
        label: 'x',
      });
    });

    it('finds, lists and pages identities', async () => {
      expect(provider.roles).toEqual(['provider']);
      const page1 = await listIdentities(opened.db, { limit: 2 });
      const page2 = await listIdentities(opened.db, { limit: 10, after: { name: page1[1]!.name } });
      expect([...page1, ...page2].map((i) => i.name)).toEqual(SEEDED_IDENTITIES.map((s) => s.name).sort());
      const consumers = await listIdentities(opened.db, { role: 'consumer', limit: 10 });
      expect(consumers.map((i) => i.name).sort()).toEqual(['consumer', 'outsider']);
    });

    it('creates a contract, its audit record and its event in one statement, idempotently', async () => {
      const body = { ...CREATE_FIXTURE, description: CREATE_FIXTURE.description as string };
      const idem = { key: 'repo-1', fingerprint: fingerprintOf('createContract', body) };
      const first = await createContract(deps, provider, body, idem);
      const again = await createContract(deps, provider, body, idem);
      expect(first.status).toBe(201);
      expect(again).toMatchObject({ status: 201, replayed: true });
      expect(again.body.id).toBe(first.body.id);
      await expect(
        createContract(deps, provider, { ...body, title: 'other' }, { key: 'repo-1', fingerprint: 'f' }),
      ).rejects.toMatchObject({ status: 422 });
      // a day later the key is forgotten: the same key is then a new request
      expect(await purgeIdempotencyKeys(opened.db, new Date(clock.getTime() + 23 * 3600_000))).toBe(0);
      expect(await purgeIdempotencyKeys(opened.db, new Date(clock.getTime() + 25 * 3600_000))).toBe(1);
      const loaded = await loadContract(opened.db, first.body.id);
      expect(loaded!.contract).toMatchObject({
        status: 'Draft',
        version: 1,
        terms: first.body.terms,
        signatures: [],
      });
      expect(loaded!.contract.createdAt).toBe(clock.toISOString());
      const { rows } = await opened.db.query<{ n: number }>(
        'SELECT count(*)::int AS n FROM outbox WHERE aggregate_id = :id',
        { id: sql.uuid(first.body.id) },
      );
      expect(rows[0]!.n).toBe(1);
    });

    it('chains the audit trail across writes and refuses a stale version without writing anything', async () => {
      const created = await createContract(deps, provider, CREATE_FIXTURE);
      const id = created.body.id;
      const key = new PartyKey('ES256');
      const { body: registered } = await registerKey(
        deps,
        provider,
        provider.id,
        await key.registration(provider.id),
      );
      const signed = await signContract(
        deps,
        provider,
        id,
        { type: 'digital', kid: registered.kid, signature: key.sign(created.body.signingPayload) },
        undefined,
      );
      expect(signed.body!.status).toBe('PendingSignature');
      await expect(updateContract(deps, consumer, id, { title: 'stale' }, '"1"')).rejects.toMatchObject({
        status: 412,
      });
      const edited = await updateContract(deps, consumer, id, { title: 'fresh' }, '"2"');
      expect(edited.body!).toMatchObject({ status: 'Draft', version: 3, contentVersion: 3, signatures: [] });
      const records = await listAuditRecords(opened.db, id, 0, 100);
      expect(records.map((r) => [r.seq, r.action])).toEqual([
        [1, 'create'],
        [2, 'sign'],
        [3, 'edit'],
      ]);
      expect(verifyChain(records).valid).toBe(true);
      expect(await loadAuditHead(opened.db, id, 3)).toBe(records[2]!.hash);
      await expect(
        opened.db.query('UPDATE audit_log SET action = :a WHERE entity_id = :id', {
          a: sql.text('x'),
          id: sql.uuid(id),
        }),
      ).rejects.toThrow(/append-only/);
    });

    it('writes nothing when the guarded mutation does not apply', async () => {
      const id = randomUUID();
      const { applied } = await auditedWrite(opened.db, {
        mutation: 'UPDATE contracts SET version = version + 1 WHERE id = :id RETURNING 1',
        params: { id: sql.uuid(id) },
        audit: {
          entityType: 'contract',
          entityId: id,
          seq: 1,
          action: 'x',
          actorId: null,
          occurredAt: clock.toISOString(),
          data: {},
        },
        prevHash: GENESIS_HASH,
        event: {
          id: randomUUID(),
          aggregateType: 'contract',
          aggregateId: id,
          type: 'X',
          occurredAt: clock.toISOString(),
          payload: {},
        },
      });
      expect(applied).toBe(false);
      expect(await listAuditRecords(opened.db, id, 0, 10)).toEqual([]);
    });

    it('rolls back a transaction that fails', async () => {
      const id = randomUUID();
      await expect(
        opened.db.transaction(async (tx) => {
          await tx.query(
            `INSERT INTO outbox (id, aggregate_type, aggregate_id, event_type, payload, occurred_at)
            VALUES (:id, 'x', :id, 'X', '{}'::jsonb, now())`,
            { id: sql.uuid(id) },
          );
          throw new Error('boom');
        }),
      ).rejects.toThrow('boom');
      const { rows } = await opened.db.query('SELECT 1 FROM outbox WHERE id = :id', { id: sql.uuid(id) });
      expect(rows).toEqual([]);
    });

    it('lists contracts of a party newest first with keyset pagination', async () => {
      const ids: string[] = [];
      for (let i = 0; i < 3; i++) {
        clock = new Date(clock.getTime() + 1000);
        ids.push((await createContract(deps, provider, CREATE_FIXTURE)).body.id);
      }
      const first = await listContracts(deps, consumer, { limit: 2, status: 'Draft' });
      expect(first.body.items.map((c) => c.id)).toEqual([ids[2], ids[1]]);
      const second = await listContracts(deps, consumer, {
        limit: 2,
        status: 'Draft',
        cursor: ListContractsQuerySchema.parse({ cursor: first.body.nextCursor! }).cursor,
      });
      expect(second.body.items[0]!.id).toBe(ids[0]);
      await expect(
        getContract(deps, (await findIdentityBySubject(opened.db, 'local|outsider'))!, ids[0]!),
      ).rejects.toMatchObject({ status: 404 });
    });

    it('publishes the outbox at least once and marks what was accepted', async () => {
      const bus = new InProcessBus();
      let total = 0;
      for (;;) {
        const { published } = await publishOutbox(opened.db, bus, { batchSize: 5 });
        if (published === 0) break;
        total += published;
      }
      expect(total).toBeGreaterThan(0);
      expect(new Set(bus.published.map((e) => e.id)).size).toBe(total);
      const { rows } = await opened.db.query<{ n: number }>(
        'SELECT count(*)::int AS n FROM outbox WHERE published_at IS NULL',
      );
      expect(rows[0]!.n).toBe(0);
    });

    it('expires live contracts whose validity ended', async () => {
      const body = {
        ...CREATE_FIXTURE,
        terms: {
          ...CREATE_FIXTURE.terms,
          validity: { start: '2026-01-01T00:00:00Z', end: '2027-06-01T00:00:00Z' },
        },
      };
      const c = await createContract(deps, provider, body);
      await opened.db.query("UPDATE contracts SET status = 'Active' WHERE id = :id", {
        id: sql.uuid(c.body.id),
      });
      await suspendContract(deps, provider, c.body.id, 'pause', undefined);
      clock = new Date('2027-07-01T00:00:00Z');
      expect(await findExpiredLiveContractIds(opened.db, clock.toISOString(), 10)).toContain(c.body.id);
      expect(await expireContracts(deps)).toBeGreaterThanOrEqual(1);
      const after = await loadContract(opened.db, c.body.id);
      expect(after!.contract.status).toBe('Expired');
      const records = await listAuditRecords(opened.db, c.body.id, 0, 10);
      expect(records.at(-1)).toMatchObject({ action: 'expire', actorId: null });
      expect(verifyChain(records).valid).toBe(true);
    });
    it('signs checkpoints over the chain heads and proves each head against them', async () => {
      const first = await createCheckpoint(deps);
      expect(first).not.toBeNull();
      expect(await createCheckpoint(deps)).toBeNull();
      const c = await createContract(deps, provider, CREATE_FIXTURE);
      const second = await createCheckpoint(deps);
      expect(second).toMatchObject({
        checkpoint: first!.checkpoint + 1,
        prevRoot: first!.treeRoot,
        treeSize: 1,
      });
      const keys = await listPlatformKeys(opened.db);
      const proof = await loadCheckpointProof(opened.db, c.body.id);
      expect(proof).toMatchObject({ leaf: { entityId: c.body.id, seq: 1 }, leafIndex: 0, proof: [] });
      expect(verifyCheckpointProof(proof!, keys)).toBeNull();
      // a head covered by the first checkpoint, among many leaves
      const older = await loadCheckpointProof(opened.db, provider.id);
      expect(older!.proof.length).toBeGreaterThan(0);
      expect(verifyCheckpointProof(older!, keys)).toBeNull();
      expect(
        verifyCheckpointProof({ ...older!, leaf: { ...older!.leaf, seq: older!.leaf.seq + 1 } }, keys),
      ).toMatch(/not in the signed tree/);
      expect(verifyCheckpointProof({ ...older!, signature: proof!.signature }, keys)).toMatch(/signature/);
      await expect(opened.db.query('DELETE FROM audit_checkpoints')).rejects.toThrow(/append-only/);
    });
  });
}

if (!ADAPTERS.find((a) => a.name === 'postgres')!.available) {
  describe('repository on postgres', () => {
    it('needs TEST_DATABASE_URL (npm test starts a server when PostgreSQL is installed)', () => {
      expect(process.env.CI).not.toBe('true');
    });
  });
}
