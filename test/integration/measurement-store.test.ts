import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seedIdentities } from '../../infra/local/seed.ts';
import { GENESIS_HASH } from '../../shared/audit/audit-chain.ts';
import { auditedWrite } from '../../shared/audit/audited-write.ts';
import { createContract } from '../../shared/contracts/contract-service.ts';
import { proposeMeasurementSet } from '../../shared/contracts/measurement-service.ts';
import {
  insertMeasurementSetMutation,
  listMeasurementSets,
  loadMeasurementSet,
} from '../../shared/contracts/measurement-store.ts';
import { sql } from '../../shared/database/database.ts';
import { loadMigrations, migrate } from '../../shared/database/migrate.ts';
import type { Identity } from '../../shared/domain/identity.ts';
import {
  ADDITIONAL_PCR_INDEXES,
  MAX_MEASUREMENT_SETS_PER_CONTRACT,
  type MeasurementSet,
  measurementSigningPayload,
} from '../../shared/domain/measurement-set.ts';
import type { Dependencies } from '../../shared/runtime/dependencies.ts';
import { LocalSigner } from '../../shared/signing/local-signer.ts';
import { CREATE_FIXTURE } from '../support/contracts.ts';
import { ADAPTERS, type OpenedDatabase } from '../support/databases.ts';

/**
 * Measurement sets' additional PCRs in the database (migration 0009), on every adapter: stored and read
 * back as proposed (all 27 at once, through the Data API too), part of what makes a set distinct, refused
 * by the table's CHECK when a row names a register the platform pins, and '{}' for the sets stored before
 * the column existed, whose signed payload is unchanged.
 */

const CHECK_VIOLATION = '23514';
const pcr = (c: string) => c.repeat(96);
/** A distinct 96-hex-digit value per index. */
const pcrValueOf = (index: number) => index.toString(16).padStart(2, '0').repeat(48);
const ALL_ADDITIONAL = Object.fromEntries(ADDITIONAL_PCR_INDEXES.map((i) => [String(i), pcrValueOf(i)]));

for (const adapter of ADAPTERS) {
  describe.runIf(adapter.available)(`measurement sets' additional PCRs on ${adapter.name}`, () => {
    let opened: OpenedDatabase;
    let deps: Dependencies;
    let provider: Identity;
    let contractId: string;
    /** A set of the contract signed (before 0009) over the payload of its day. */
    let legacy: { id: string; payload: string };

    beforeAll(async () => {
      opened = await adapter.open();
      const migrations = await loadMigrations();
      await migrate(
        opened.db,
        migrations.filter((m) => m.name < '0009'),
      );
      deps = {
        db: opened.db,
        signer: await LocalSigner.create(),
        now: () => new Date('2027-01-01T00:00:00.000Z'),
        newId: randomUUID,
      };
      // Not read back: the identity queries name columns of later migrations than this database has.
      provider = (await seedIdentities(deps)).find((i) => i.name === 'provider')!;
      contractId = (await createContract(deps, provider, CREATE_FIXTURE)).body.id;
      // A set as the code before 0009 stored it (no additional_pcrs column yet), with its audit record.
      legacy = { id: randomUUID(), payload: '' };
      const at = deps.now().toISOString();
      await auditedWrite(opened.db, {
        mutation: `INSERT INTO measurement_sets (id, contract_id, pcr0, pcr1, pcr2, pcr8, status, approvals,
            proposed_by, version, created_at, updated_at)
          VALUES (:id, :contract_id, :pcr, :pcr, :pcr, NULL, 'Proposed', '[]'::jsonb, :by, 1, :at, :at)
          RETURNING 1`,
        params: {
          id: sql.uuid(legacy.id),
          contract_id: sql.uuid(contractId),
          pcr: sql.text(pcr('7')),
          by: sql.uuid(provider.id),
          at: sql.timestamp(at),
        },
        audit: {
          entityType: 'measurement-set',
          entityId: legacy.id,
          seq: 1,
          action: 'propose',
          actorId: provider.id,
          occurredAt: at,
          data: { contractId },
        },
        prevHash: GENESIS_HASH,
        event: {
          id: randomUUID(),
          aggregateType: 'measurement-set',
          aggregateId: legacy.id,
          type: 'MeasurementSetProposed',
          occurredAt: at,
          payload: {},
        },
      });
      legacy.payload = `{"contractId":"${contractId}","pcr0":"${pcr('7')}","pcr1":"${pcr('7')}","pcr2":"${pcr('7')}"}`;
      expect(await migrate(opened.db, migrations)).toContain('0009-measurement-set-pcrs.sql');
    });
    afterAll(async () => opened?.close());

    it(`counts each contract's sets on its row: proposals racing for the last places never pass ${MAX_MEASUREMENT_SETS_PER_CONTRACT}`, async () => {
      // Migration 0010 counted the set stored before it.
      const held = async (id: string) =>
        (
          await opened.db.query<{ n: number }>(
            'SELECT measurement_sets_held AS n FROM contracts WHERE id = :id',
            { id: sql.uuid(id) },
          )
        ).rows[0]!.n;
      expect(await held(contractId)).toBeGreaterThanOrEqual(1);
      const full = (await createContract(deps, provider, CREATE_FIXTURE)).body.id;
      const set = (n: number) => ({ pcr0: pcrValueOf(n + 1), pcr1: pcr('b'), pcr2: pcr('c') });
      for (let n = 0; n < MAX_MEASUREMENT_SETS_PER_CONTRACT - 3; n++) {
        await proposeMeasurementSet(deps, provider, full, set(n));
      }
      // A repeated proposal takes no place.
      await expect(proposeMeasurementSet(deps, provider, full, set(0))).rejects.toMatchObject({
        type: 'measurements-exist',
      });
      const outcomes = await Promise.allSettled(
        Array.from({ length: 10 }, (_, i) => proposeMeasurementSet(deps, provider, full, set(100 + i))),
      );
      expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(3);
      for (const o of outcomes.filter((o) => o.status === 'rejected')) {
        expect((o as PromiseRejectedResult).reason).toMatchObject({ type: 'too-many-measurement-sets' });
      }
      expect(await listMeasurementSets(opened.db, full)).toHaveLength(MAX_MEASUREMENT_SETS_PER_CONTRACT);
      expect(await held(full)).toBe(MAX_MEASUREMENT_SETS_PER_CONTRACT);
    });

    it('reads a set stored before 0009 with no additional PCRs and the payload it was signed over', async () => {
      const loaded = await loadMeasurementSet(opened.db, contractId, legacy.id);
      expect(loaded?.set.additionalPcrs).toEqual({});
      expect(measurementSigningPayload(loaded!.set)).toBe(legacy.payload);
    });

    it('stores all 27 additional PCRs and reads them back as proposed', async () => {
      const image = { pcr0: pcr('a'), pcr1: pcr('b'), pcr2: pcr('c') };
      const proposed = await proposeMeasurementSet(deps, provider, contractId, {
        ...image,
        additionalPcrs: ALL_ADDITIONAL,
      });
      const loaded = await loadMeasurementSet(opened.db, contractId, proposed.body.id);
      expect(loaded?.set.additionalPcrs).toEqual(ALL_ADDITIONAL);
      expect(measurementSigningPayload(loaded!.set)).toBe(proposed.body.signingPayload);
      const listed = (await listMeasurementSets(opened.db, contractId)).find(
        (s) => s.id === proposed.body.id,
      );
      expect(listed?.additionalPcrs).toEqual(ALL_ADDITIONAL);
    });

    it('counts the additional PCRs in what makes a set distinct, whatever their key order', async () => {
      const image = { pcr0: pcr('d'), pcr1: pcr('e'), pcr2: pcr('f') };
      const insert = (additionalPcrs: Record<string, string>) => {
        const id = randomUUID();
        const set: MeasurementSet = {
          id,
          contractId,
          ...image,
          pcr8: null,
          additionalPcrs,
          status: 'Proposed',
          approvals: [],
          proposedBy: provider.id,
          version: 1,
          createdAt: '2027-01-01T00:00:00.000Z',
          updatedAt: '2027-01-01T00:00:00.000Z',
        };
        const { preamble, mutation, params } = insertMeasurementSetMutation(
          set,
          MAX_MEASUREMENT_SETS_PER_CONTRACT,
        );
        return opened.db.query(`WITH ${preamble} ${mutation}`, params).then((r) => r.rows.length);
      };
      expect(await insert({})).toBe(1);
      expect(await insert({})).toBe(0);
      expect(await insert({ 3: pcr('1'), 16: pcr('2') })).toBe(1);
      expect(await insert({ 16: pcr('2'), 3: pcr('1') })).toBe(0);
      expect(await insert({ 3: pcr('1') })).toBe(1);
      expect(await insert(ALL_ADDITIONAL)).toBe(1);
      expect(await insert(Object.fromEntries(Object.entries(ALL_ADDITIONAL).reverse()))).toBe(0);
    });

    it.each<[string, unknown]>([
      ['PCR4, which the platform pins per instance', { 4: pcr('4') }],
      ['PCR0, which has its own column', { 0: pcr('4') }],
      ['PCR32', { 32: pcr('4') }],
      ['a leading zero', { '03': pcr('4') }],
      ['an upper-case value', { 3: pcr('A') }],
      ['a short value', { 3: 'ab' }],
      ['a number', { 3: 3 }],
      ['an array', [pcr('4')]],
    ])('refuses a row whose additional PCRs hold %s (CHECK)', async (_why, additional) => {
      await expect(
        opened.db.query(
          `INSERT INTO measurement_sets (id, contract_id, pcr0, pcr1, pcr2, additional_pcrs, status, proposed_by,
             created_at, updated_at)
           VALUES (:id, :contract_id, :pcr, :pcr, :pcr, :additional, 'Proposed', :by, now(), now())`,
          {
            id: sql.uuid(randomUUID()),
            contract_id: sql.uuid(contractId),
            pcr: sql.text(pcr('5')),
            additional: sql.json(additional),
            by: sql.uuid(provider.id),
          },
        ),
      ).rejects.toMatchObject({ code: CHECK_VIOLATION });
    });
  });
}
