import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seedIdentities } from '../../infra/local/seed.ts';
import {
  createCheckpoint,
  loadCheckpointProof,
  verifyCheckpointProof,
} from '../../shared/audit/audit-checkpoints.ts';
import { recordSecurityRefusal, securityRefusalChainId } from '../../shared/audit/security-refusals.ts';
import { createContract, updateContract } from '../../shared/contracts/contract-service.ts';
import { type Database, type Row, type SqlParams, sql } from '../../shared/database/database.ts';
import { loadMigrations, migrate } from '../../shared/database/migrate.ts';
import type { Identity } from '../../shared/domain/identity.ts';
import type { Dependencies } from '../../shared/runtime/dependencies.ts';
import { LocalSigner } from '../../shared/signing/local-signer.ts';
import { listPlatformKeys } from '../../shared/signing/platform-key-registry.ts';
import { CREATE_FIXTURE } from '../support/contracts.ts';
import { ADAPTERS, type OpenedDatabase } from '../support/databases.ts';

/**
 * The checkpoint job reads the chains that grew from `audit_unanchored_heads` (migration 0011), which a
 * trigger on `audit_log` keeps, instead of every chain's head: on every adapter, the migration queues what
 * no checkpoint covered before it, every writer of the trail queues its chain, a checkpoint removes exactly
 * the heads it anchors, and a head that moves on while a checkpoint is taken stays queued.
 */
const MIGRATION = '0011-audit-unanchored-heads.sql';

for (const adapter of ADAPTERS) {
  describe.runIf(adapter.available)(`checkpoint queue (${MIGRATION}) on ${adapter.name}`, () => {
    let opened: OpenedDatabase;
    let deps: Dependencies;
    let provider: Identity;
    const clock = new Date('2027-01-01T00:00:00.000Z');

    async function queued(db: Database = opened.db): Promise<Map<string, number>> {
      const { rows } = await db.query<{ entity_id: string; seq: number }>(
        'SELECT entity_id, seq FROM audit_unanchored_heads',
      );
      return new Map(rows.map((r) => [r.entity_id, r.seq]));
    }

    async function heads(): Promise<Map<string, number>> {
      const { rows } = await opened.db.query<{ entity_id: string; seq: number }>(
        'SELECT entity_id, max(seq)::int AS seq FROM audit_log GROUP BY entity_id',
      );
      return new Map(rows.map((r) => [r.entity_id, r.seq]));
    }

    const draft = async () => (await createContract(deps, provider, CREATE_FIXTURE)).body;

    beforeAll(async () => {
      opened = await adapter.open();
      const migrations = await loadMigrations();
      await migrate(
        opened.db,
        migrations.filter((m) => m.name < MIGRATION),
      );
      deps = { db: opened.db, signer: await LocalSigner.create(), now: () => clock, newId: randomUUID };
      // Not read back: the identity queries name columns of later migrations than this database has.
      provider = (await seedIdentities(deps)).find((i) => i.name === 'provider')!;
    });
    afterAll(async () => opened?.close());

    it('the migration queues the heads no checkpoint covered before it', async () => {
      const anchored = await draft();
      const pending = await draft();
      // A checkpoint of the code before 0011 covering `anchored` only.
      await opened.db.query(
        `WITH c AS (
           INSERT INTO audit_checkpoints (seq, created_at, prev_root, tree_root, tree_size, signed_payload, kid, alg, signature)
           VALUES (1, :at, :zero, :zero, 1, '{}', 'kid', 'ES256', 'sig') RETURNING seq
         )
         INSERT INTO audit_checkpoint_leaves (checkpoint_seq, leaf_index, entity_id, seq, hash)
         SELECT c.seq, 0, a.entity_id, a.seq, a.hash FROM c, audit_log a WHERE a.entity_id = :id`,
        { at: sql.timestamp(clock), zero: sql.text('0'.repeat(64)), id: sql.uuid(anchored.id) },
      );
      expect(await migrate(opened.db, await loadMigrations())).toContain(MIGRATION);
      const expected = await heads();
      expected.delete(anchored.id);
      expect(await queued()).toEqual(expected);
      expect(expected.get(pending.id)).toBe(1);
      expect(expected.size).toBe(6); // the five seeded identities and `pending`
    });

    it('a checkpoint anchors what is queued and removes it; the next write queues its chain again', async () => {
      const before = await queued();
      const first = await createCheckpoint(deps);
      expect(first!.treeSize).toBe(before.size);
      expect(await queued()).toEqual(new Map());
      expect(await createCheckpoint(deps)).toBeNull();

      const c = await draft();
      await updateContract(deps, provider, c.id, { title: 'Edited' }, '"1"');
      expect(await queued()).toEqual(new Map([[c.id, 2]]));
      const second = await createCheckpoint(deps);
      expect(second).toMatchObject({
        checkpoint: first!.checkpoint + 1,
        prevRoot: first!.treeRoot,
        treeSize: 1,
      });
      const proof = await loadCheckpointProof(opened.db, c.id);
      expect(proof!.leaf).toMatchObject({ entityId: c.id, seq: 2 });
      expect(verifyCheckpointProof(proof!, await listPlatformKeys(opened.db))).toBeNull();
      expect(await queued()).toEqual(new Map());
    });

    it('every writer of the trail queues its chain: a security refusal too', async () => {
      const chain = securityRefusalChainId('enclave', randomUUID());
      const refused = {
        entityType: 'enclave',
        action: 'report-metrics',
        code: 'wrong-instance',
        detail: 'test',
      };
      await recordSecurityRefusal(deps, { ...refused, entityId: chain });
      const record = await recordSecurityRefusal(deps, { ...refused, entityId: chain });
      expect(await queued()).toEqual(new Map([[record.entityId, 2]]));
      expect((await createCheckpoint(deps))!.treeSize).toBe(1);
    });

    it('a head that moves on while a checkpoint is taken stays queued for the next one', async () => {
      const c = await draft();
      // The edit lands between the checkpoint's read of the queue and its write.
      let raced = false;
      const racing: Database = {
        query: async <R extends Row = Row>(text: string, params?: SqlParams) => {
          const result = await opened.db.query<R>(text, params);
          if (!raced && text.startsWith('SELECT') && text.includes('FROM audit_unanchored_heads')) {
            raced = true;
            await updateContract(deps, provider, c.id, { title: 'Edited meanwhile' }, '"1"');
          }
          return result;
        },
        transaction: (work) => opened.db.transaction(work),
        close: () => opened.db.close(),
      };
      const taken = await createCheckpoint({ ...deps, db: racing });
      expect(taken!.treeSize).toBe(1);
      expect((await loadCheckpointProof(opened.db, c.id))!.leaf.seq).toBe(1);
      expect(await queued()).toEqual(new Map([[c.id, 2]]));
      await createCheckpoint(deps);
      expect((await loadCheckpointProof(opened.db, c.id))!.leaf.seq).toBe(2);
      expect(await queued()).toEqual(new Map());
    });
  });
}
