import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GENESIS_HASH, verifyChain } from '../../shared/audit/audit-chain.ts';
import { listAuditRecords, loadAuditHead } from '../../shared/audit/audit-store.ts';
import { auditedWrite } from '../../shared/audit/audited-write.ts';
import { createContract, suspendContract } from '../../shared/contracts/contract-service.ts';
import { sql, UNIQUE_VIOLATION } from '../../shared/database/database.ts';
import { loadMigrations, migrate } from '../../shared/database/migrate.ts';
import {
  type EnclaveConfiguration,
  EnclaveConfigurationSchema,
  type EnclaveData,
  newEnclave,
} from '../../shared/domain/enclave.ts';
import type { UnmetRequirement } from '../../shared/domain/enclave-compatibility.ts';
import { ConflictError, NotFoundError, UnprocessableError } from '../../shared/domain/errors.ts';
import type { Identity } from '../../shared/domain/identity.ts';
import { chooseInstanceTypes } from '../../shared/domain/instance-types.ts';
import type { ProposeMeasurements } from '../../shared/domain/measurement-set.ts';
import {
  findEnclaveByInstance,
  insertEnclaveMutation,
  listEnclaves,
  loadEnclave,
  updateEnclaveMutation,
} from '../../shared/enclaves/enclave-store.ts';
import { validateEnclaveForProvisioning } from '../../shared/enclaves/enclave-validation.ts';
import type { Dependencies } from '../../shared/runtime/dependencies.ts';
import { LocalSigner } from '../../shared/signing/local-signer.ts';
import { type ContractParties, contractParties, type Party } from '../support/contract-parties.ts';
import { CREATE_FIXTURE } from '../support/contracts.ts';
import { ADAPTERS, type OpenedDatabase } from '../support/databases.ts';

/**
 * Enclave persistence and the provisioning workflow's Validate step, run against every database adapter:
 * the same SQL must behave and decode the same on PGlite, a real PostgreSQL server and the Data API.
 * Contracts and measurement sets are built through their real use cases (signed by both parties with real
 * keys, countersigned by the platform), so "Active" and "Approved" mean what they mean in production.
 */

const pcr = (c: string) => c.repeat(96);
const SIGNER = pcr('8');
const OTHER_SIGNER = pcr('9');
/** The image of the enclaves below: what the parties approve unless a test says otherwise. */
const IMAGE = { pcr0: pcr('a'), pcr1: pcr('b'), pcr2: pcr('c'), pcr8: SIGNER };

/**
 * A configuration that meets the fixture contract's terms (High encryption, network isolation, audit
 * logging, data residency eu-central-1); tests break one thing at a time.
 */
function configuration(change: (c: EnclaveConfiguration) => void = () => {}): EnclaveConfiguration {
  const c = EnclaveConfigurationSchema.parse({
    resources: { cpuCount: 2, memoryMiB: 4096, storageGiB: 50 },
    networkPolicies: {
      ingress: [{ protocol: 'tcp', port: 8443, cidr: '10.0.0.0/16', description: 'model registry' }],
      egress: [
        { protocol: 'tcp', port: 443, host: 'kms.eu-central-1.amazonaws.com' },
        { protocol: 'udp', port: { from: 5000, to: 5010 }, cidr: '10.1.2.0/24' },
      ],
      encryptionRequired: true,
      minTlsVersion: '1.3',
    },
    securityPolicies: { secureBoot: true, measuredBoot: true, allowedSigners: [SIGNER], debugMode: false },
    observability: { metricsEnabled: true, logForwarding: true },
    image: { ...IMAGE, name: 'trainer', version: '1.4.2' },
  });
  change(c);
  return EnclaveConfigurationSchema.parse(c);
}

for (const adapter of ADAPTERS) {
  describe.runIf(adapter.available)(`enclave store on ${adapter.name}`, () => {
    let opened: OpenedDatabase;
    let deps: Dependencies;
    let clock = new Date('2027-01-01T00:00:00.000Z');
    let provider: Identity;
    let consumer: Identity;
    let outsider: Identity;
    let parties: ContractParties;

    beforeAll(async () => {
      opened = await adapter.open();
      await migrate(opened.db, await loadMigrations());
      deps = { db: opened.db, signer: await LocalSigner.create(), now: () => clock, newId: randomUUID };
      parties = await contractParties(deps);
      ({ provider, consumer, outsider } = parties);
    });
    afterAll(async () => opened?.close());

    /** Moves the clock on, so rows written next are newer than everything before. */
    const tick = () => {
      clock = new Date(clock.getTime() + 1000);
    };

    const activeContract = () => parties.activeContract();
    const measurementSet = (contractId: string, m: ProposeMeasurements, approvedBy?: readonly Party[]) =>
      parties.measurementSet(contractId, m, approvedBy);

    function enclave(contractId: string, overrides: Partial<EnclaveData> = {}): EnclaveData {
      const at = clock.toISOString();
      return {
        ...newEnclave(
          {
            id: randomUUID(),
            name: 'trainer-1',
            providerId: provider.id,
            contractId,
            configuration: configuration(),
            region: 'eu-central-1',
          },
          at,
        ),
        ...overrides,
      };
    }

    function eventOf(e: EnclaveData, type: string) {
      return {
        id: randomUUID(),
        aggregateType: 'enclave',
        aggregateId: e.id,
        type,
        occurredAt: e.updatedAt,
        payload: { enclaveId: e.id, contractId: e.contractId, status: e.status, version: e.version },
      };
    }

    /** Inserts `e` as the create use case will: row, audit record (seq 1) and event in one statement. */
    async function insert(e: EnclaveData, options: { requireActiveContract?: boolean } = {}) {
      return auditedWrite(deps.db, {
        ...insertEnclaveMutation(e, options),
        audit: {
          entityType: 'enclave',
          entityId: e.id,
          seq: 1,
          action: 'create',
          actorId: provider.id,
          occurredAt: e.createdAt,
          data: { contractId: e.contractId, status: e.status },
        },
        prevHash: GENESIS_HASH,
        event: eventOf(e, 'EnclaveCreated'),
      });
    }

    async function update(
      next: EnclaveData,
      expectedVersion: number,
      auditHead: string,
      options: { requireActiveContract?: boolean } = {},
    ) {
      return auditedWrite(deps.db, {
        ...updateEnclaveMutation(next, expectedVersion, options),
        audit: {
          entityType: 'enclave',
          entityId: next.id,
          seq: next.version,
          action: 'update',
          actorId: null,
          occurredAt: next.updatedAt,
          data: { status: next.status },
        },
        prevHash: auditHead,
        event: eventOf(next, 'EnclaveUpdated'),
      });
    }

    async function countRows(table: 'audit_log' | 'outbox', id: string): Promise<number> {
      const column = table === 'audit_log' ? 'entity_id' : 'aggregate_id';
      const { rows } = await opened.db.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM ${table} WHERE ${column} = :id`,
        { id: sql.uuid(id) },
      );
      return rows[0]!.n;
    }

    describe('persistence', () => {
      let contractId: string;
      beforeAll(async () => {
        contractId = await activeContract();
      });

      it('round-trips every field identically, nulls included', async () => {
        tick();
        const bare = enclave(contractId);
        const full = enclave(contractId, {
          name: 'trainer ünïcode — 2',
          status: 'Running',
          attestation: {
            verdict: 'verified',
            verifiedAt: '2027-01-01T00:00:01.250Z',
            moduleId: 'i-0123456789abcdef0-enc0123456789abcdef',
            documentTimestamp: '2027-01-01T00:00:00.999Z',
            pcrs: { '0': IMAGE.pcr0, '4': pcr('4'), '8': SIGNER },
            measurementSetId: randomUUID(),
          },
          metrics: {
            reportedAt: '2027-01-01T00:00:02.000Z',
            cpuUtilizationPercent: 12.5,
            memoryUsedMiB: 3000,
            storageUsedGiB: 0.75,
            networkInBytes: Number.MAX_SAFE_INTEGER,
            networkOutBytes: 0,
            uptimeSeconds: 60,
          },
          instanceId: 'i-0123456789abcdef0',
          executionArn: 'arn:aws:states:eu-central-1:123456789012:execution:EnclaveProvisioning:run-1',
          statusReason: 'attested',
          updatedAt: '2027-01-01T00:00:03.456Z',
        });
        for (const e of [bare, full]) {
          expect((await insert(e)).applied).toBe(true);
          const loaded = await loadEnclave(opened.db, e.id);
          expect(loaded!.enclave).toStrictEqual(e);
          expect(loaded!.auditHead).toBe(await loadAuditHead(opened.db, e.id, 1));
        }
        expect(await loadEnclave(opened.db, randomUUID())).toBeNull();
      });

      it('inserts under a contract only while it is Active, when asked to, and writes nothing otherwise', async () => {
        const draft = (await createContract(deps, provider, CREATE_FIXTURE)).body.id;
        const refused = enclave(draft);
        expect((await insert(refused, { requireActiveContract: true })).applied).toBe(false);
        expect(await loadEnclave(opened.db, refused.id)).toBeNull();
        expect(await countRows('audit_log', refused.id)).toBe(0);
        expect(await countRows('outbox', refused.id)).toBe(0);
        expect((await insert(enclave(contractId), { requireActiveContract: true })).applied).toBe(true);
      });

      it('applies an update requiring the contract only before its validity.end, checked at updatedAt in the write', async () => {
        // The expiry sweep has not run: the contract is still Active when its window ends.
        const end = new Date(clock.getTime() + 60_000).toISOString();
        const endingSoon = await parties.activeContract({
          ...CREATE_FIXTURE,
          terms: { ...CREATE_FIXTURE.terms, validity: { start: CREATE_FIXTURE.terms.validity.start, end } },
        });
        tick();
        const e = enclave(endingSoon);
        await insert(e);
        const { auditHead } = (await loadEnclave(opened.db, e.id))!;
        const at = (deltaMs: number): EnclaveData => ({
          ...e,
          status: 'Running',
          version: 2,
          updatedAt: new Date(Date.parse(end) + deltaMs).toISOString(),
        });
        const required = { requireActiveContract: true };
        for (const late of [at(0), at(1)]) {
          expect((await update(late, 1, auditHead, required)).applied).toBe(false);
        }
        expect((await loadEnclave(opened.db, e.id))!.enclave).toStrictEqual(e);
        expect(await countRows('audit_log', e.id)).toBe(1);
        expect(await countRows('outbox', e.id)).toBe(1);
        expect((await update(at(-1), 1, auditHead, required)).applied).toBe(true);
        expect((await loadEnclave(opened.db, e.id))!.enclave).toStrictEqual(at(-1));
      });

      it("refuses an enclave whose provider is not its contract's provider", async () => {
        await expect(insert(enclave(contractId, { providerId: consumer.id }))).rejects.toMatchObject({
          code: '23503',
        });
      });

      it('applies a version-guarded update once; a stale version writes nothing at all', async () => {
        tick();
        const e = enclave(contractId);
        await insert(e);
        const { enclave: current, auditHead } = (await loadEnclave(opened.db, e.id))!;
        tick();
        const next: EnclaveData = {
          ...current,
          instanceId: `i-${randomUUID().replaceAll('-', '').slice(0, 17)}`,
          executionArn: 'arn:aws:states:eu-central-1:123456789012:execution:EnclaveProvisioning:run-2',
          version: 2,
          updatedAt: clock.toISOString(),
        };
        expect((await update(next, 1, auditHead)).applied).toBe(true);
        const stale: EnclaveData = { ...next, status: 'Failed', statusReason: 'lost the race' };
        expect((await update(stale, 1, auditHead)).applied).toBe(false);

        const after = (await loadEnclave(opened.db, e.id))!;
        expect(after.enclave).toStrictEqual(next);
        const records = await listAuditRecords(opened.db, e.id, 0, 10);
        expect(records.map((r) => r.seq)).toEqual([1, 2]);
        expect(verifyChain(records).valid).toBe(true);
        expect(after.auditHead).toBe(records[1]!.hash);
        expect(await countRows('outbox', e.id)).toBe(2);
        // the audit seq is the version: a write that skips one is a programming error
        expect(() => updateEnclaveMutation({ ...next, version: 4 }, 2)).toThrow(/advance by one/);
      });

      it('finds the enclave of an instance, and lets an instance be claimed only once', async () => {
        tick();
        const first = enclave(contractId, { instanceId: 'i-00000000000000001' });
        const second = enclave(contractId);
        await insert(first);
        await insert(second);
        expect((await findEnclaveByInstance(opened.db, 'i-00000000000000001'))!.enclave).toStrictEqual(first);
        expect(await findEnclaveByInstance(opened.db, 'i-0000000000000000f')).toBeNull();

        const { enclave: current, auditHead } = (await loadEnclave(opened.db, second.id))!;
        const claim = { ...current, instanceId: first.instanceId, version: 2 };
        await expect(update(claim, 1, auditHead)).rejects.toMatchObject({ code: UNIQUE_VIOLATION });
        // the failed statement wrote neither the row nor its audit record nor its event
        expect((await loadEnclave(opened.db, second.id))!.enclave).toStrictEqual(second);
        expect(await countRows('audit_log', second.id)).toBe(1);
        expect(await countRows('outbox', second.id)).toBe(1);
      });

      it("lists a party's enclaves newest first, with filters and keyset paging through ties", async () => {
        const mine = await activeContract();
        // a draft is enough here: the store does not look at the contract's status unless asked to
        const theirs = (await createContract(deps, provider, { ...CREATE_FIXTURE, consumerId: outsider.id }))
          .body.id;
        // Later than every enclave of the other tests, so they come first for the consumer.
        clock = new Date('2028-01-01T00:00:00.000Z');
        const oldest = enclave(mine, { name: 'oldest' });
        tick();
        // Two at the same instant: the id breaks the tie, and paging must not skip or repeat either.
        const tied = [enclave(mine, { status: 'Failed' }), enclave(mine)].sort((a, b) =>
          b.id.localeCompare(a.id),
        );
        tick();
        const foreign = enclave(theirs); // the newest, but not the consumer's
        for (const e of [oldest, ...tied, foreign]) await insert(e);

        const expected = [...tied, oldest].map((e) => e.id);
        const seen: string[] = [];
        let after: { createdAt: string; id: string } | undefined;
        while (seen.length < 3) {
          const page = await listEnclaves(opened.db, { partyId: consumer.id, limit: 1, after });
          expect(page).toHaveLength(1);
          seen.push(page[0]!.id);
          after = { createdAt: page[0]!.createdAt, id: page[0]!.id };
        }
        expect(seen).toEqual(expected);
        // the rest are older enclaves of the consumer's other contracts, never the outsider's
        const rest = await listEnclaves(opened.db, { partyId: consumer.id, limit: 100, after });
        expect(rest.length).toBeGreaterThan(0);
        expect(rest.every((e) => e.contractId !== theirs && e.createdAt <= oldest.createdAt)).toBe(true);

        expect((await listEnclaves(opened.db, { partyId: outsider.id, limit: 10 })).map((e) => e.id)).toEqual(
          [foreign.id],
        );
        expect(
          (await listEnclaves(opened.db, { partyId: provider.id, contractId: mine, limit: 10 })).map(
            (e) => e.id,
          ),
        ).toEqual(expected);
        expect(
          (await listEnclaves(opened.db, { partyId: outsider.id, contractId: mine, limit: 10 })).length,
        ).toBe(0);
        const failed = await listEnclaves(opened.db, {
          partyId: consumer.id,
          contractId: mine,
          status: 'Failed',
          limit: 10,
        });
        expect(failed.map((e) => e.id)).toEqual(tied.filter((e) => e.status === 'Failed').map((e) => e.id));
        // without a party (admins and auditors): every enclave, the same order
        const all = await listEnclaves(opened.db, { limit: 4 });
        expect(all.map((e) => e.id)).toEqual([foreign.id, ...expected]);
        // Lists carry summaries: the image's identity instead of the configuration, no metrics.
        const { source: _source, ...image } = foreign.configuration.image;
        expect(all[0]).toStrictEqual({
          id: foreign.id,
          name: foreign.name,
          providerId: foreign.providerId,
          contractId: foreign.contractId,
          status: foreign.status,
          region: foreign.region,
          image,
          attestationVerdict: null,
          version: foreign.version,
          instanceId: foreign.instanceId,
          provisioningId: null,
          statusReason: foreign.statusReason,
          createdAt: foreign.createdAt,
          updatedAt: foreign.updatedAt,
        });
      });
    });

    describe('validateEnclaveForProvisioning', () => {
      const DEPLOYED = { localStack: false };

      /** An Active contract, an Initializing enclave under it, and the given sets. */
      async function scenario(
        sets: { m: ProposeMeasurements; approvedBy?: readonly ('provider' | 'consumer')[] }[],
        overrides: Partial<EnclaveData> = {},
      ) {
        const contractId = await activeContract();
        const setIds: string[] = [];
        for (const s of sets) setIds.push(await measurementSet(contractId, s.m, s.approvedBy));
        const e = enclave(contractId, overrides);
        await insert(e);
        return { contractId, setIds, enclave: e };
      }

      const refusal = (reason: RegExp) =>
        expect.objectContaining({
          status: 422,
          type: 'measurements-not-approved',
          errors: [{ field: 'configuration.image', message: expect.stringMatching(reason) }],
        });

      it('returns the plan for an approved image: the matching sets and the instance types, smallest first', async () => {
        const {
          contractId,
          setIds,
          enclave: e,
        } = await scenario([
          { m: { ...IMAGE, pcr0: pcr('d') } }, // approved, but another image
          { m: IMAGE },
        ]);
        const plan = await validateEnclaveForProvisioning(deps, e.id, DEPLOYED);
        expect(plan.enclave).toStrictEqual(e);
        expect(plan.contract).toMatchObject({ id: contractId, status: 'Active' });
        expect(plan.approvedMeasurements.map((m) => [m.id, m.status])).toEqual([[setIds[1], 'Approved']]);
        expect(plan.instanceTypes).toEqual(chooseInstanceTypes(e.configuration.resources));
        expect(plan.instanceTypes[0]).toBe('c6i.xlarge');
      });

      it('accepts a signed image under a set that pins no signer, the pinning set first', async () => {
        const { pcr8: _, ...unpinned } = IMAGE;
        const { setIds, enclave: e } = await scenario([{ m: unpinned }, { m: IMAGE }]);
        const plan = await validateEnclaveForProvisioning(deps, e.id, DEPLOYED);
        expect(plan.approvedMeasurements.map((m) => m.id)).toEqual([setIds[1], setIds[0]]);
      });

      it('refuses an image no approved set matches', async () => {
        const { enclave: e } = await scenario([{ m: { ...IMAGE, pcr2: pcr('e') } }]);
        const error = await validateEnclaveForProvisioning(deps, e.id, DEPLOYED).catch((x) => x);
        expect(error).toBeInstanceOf(UnprocessableError);
        expect(error).toEqual(refusal(/no measurement set approved by both parties/));
      });

      it('refuses an image whose set only one party approved', async () => {
        const { setIds, enclave: e } = await scenario([{ m: IMAGE, approvedBy: ['provider'] }]);
        await expect(validateEnclaveForProvisioning(deps, e.id, DEPLOYED)).rejects.toEqual(
          refusal(new RegExp(`proposed \\(measurement set ${setIds[0]}\\) but not yet approved`)),
        );
      });

      it('refuses an image signed by another certificate than the approved set pins, or unsigned', async () => {
        const signedByOther = await scenario([{ m: IMAGE }], {
          configuration: configuration((c) => {
            c.image.pcr8 = OTHER_SIGNER;
            c.securityPolicies.allowedSigners = [OTHER_SIGNER];
          }),
        });
        await expect(
          validateEnclaveForProvisioning(deps, signedByOther.enclave.id, DEPLOYED),
        ).rejects.toEqual(refusal(/pins a different signing certificate/));
        const unsigned = await scenario([{ m: IMAGE }], {
          configuration: configuration((c) => {
            delete c.image.pcr8;
          }),
        });
        await expect(validateEnclaveForProvisioning(deps, unsigned.enclave.id, DEPLOYED)).rejects.toEqual(
          refusal(/the image is unsigned/),
        );
      });

      it('refuses when the contract is no longer Active, naming that requirement', async () => {
        const { contractId, enclave: e } = await scenario([{ m: IMAGE }]);
        await suspendContract(deps, consumer, contractId, 'data quality review', undefined);
        const error = await validateEnclaveForProvisioning(deps, e.id, DEPLOYED).catch((x) => x);
        expect(error).toBeInstanceOf(UnprocessableError);
        expect(error).toMatchObject({
          status: 422,
          type: 'enclave-incompatible',
          errors: [{ requirement: 'contract-not-active', field: 'contractId' }],
        });
      });

      it('refuses from validity.end on, naming that requirement, before the sweep marked the contract Expired', async () => {
        const end = new Date(clock.getTime() + 60_000).toISOString();
        const contractId = await parties.activeContract({
          ...CREATE_FIXTURE,
          terms: { ...CREATE_FIXTURE.terms, validity: { start: CREATE_FIXTURE.terms.validity.start, end } },
        });
        await measurementSet(contractId, IMAGE);
        const e = enclave(contractId);
        await insert(e);
        clock = new Date(Date.parse(end) - 1);
        expect((await validateEnclaveForProvisioning(deps, e.id, DEPLOYED)).enclave).toStrictEqual(e);
        for (const delta of [0, 1]) {
          clock = new Date(Date.parse(end) + delta);
          await expect(validateEnclaveForProvisioning(deps, e.id, DEPLOYED)).rejects.toMatchObject({
            status: 422,
            type: 'enclave-incompatible',
            errors: [
              {
                requirement: 'contract-outside-validity',
                field: 'contractId',
                message: expect.stringContaining(`ended at ${end}`),
              },
            ],
          });
        }
      });

      it('refuses an incompatible configuration, listing every unmet requirement', async () => {
        const { enclave: e } = await scenario([{ m: IMAGE }], {
          region: 'us-east-1',
          configuration: configuration((c) => {
            c.networkPolicies.minTlsVersion = '1.2';
            c.observability.metricsEnabled = false;
            c.networkPolicies.ingress.push({ protocol: 'tcp', port: 22, cidr: '0.0.0.0/0' });
          }),
        });
        const error = await validateEnclaveForProvisioning(deps, e.id, DEPLOYED).catch((x) => x);
        expect(error).toMatchObject({ status: 422, type: 'enclave-incompatible' });
        const unmet = (error as UnprocessableError).errors as readonly UnmetRequirement[];
        expect(unmet.map((u) => [u.requirement, u.field])).toEqual([
          ['region-outside-data-residency', 'region'],
          ['tls-below-1.3', 'configuration.networkPolicies.minTlsVersion'],
          ['ingress-from-anywhere', 'configuration.networkPolicies.ingress.1.cidr'],
          ['metrics-off-with-audit-logging', 'configuration.observability.metricsEnabled'],
        ]);
      });

      it('refuses debug mode outside the local stack only (a Standard contract allows it locally)', async () => {
        // Debug mode is forbidden under High encryption (the fixture's) even locally, so this contract's
        // terms are relaxed to Standard.
        const id = await parties.activeContract({
          ...CREATE_FIXTURE,
          terms: {
            ...CREATE_FIXTURE.terms,
            security: { ...CREATE_FIXTURE.terms.security, encryptionLevel: 'Standard' },
          },
        });
        await measurementSet(id, IMAGE);
        const e = enclave(id, {
          configuration: configuration((c) => {
            c.securityPolicies.debugMode = true;
          }),
        });
        await insert(e);
        await expect(validateEnclaveForProvisioning(deps, e.id, { localStack: false })).rejects.toMatchObject(
          {
            type: 'enclave-incompatible',
            errors: [{ requirement: 'debug-mode-outside-local-stack' }],
          },
        );
        expect((await validateEnclaveForProvisioning(deps, e.id, { localStack: true })).enclave.id).toBe(
          e.id,
        );
      });

      it('refuses an enclave that is not Initializing with 409, and an unknown one with 404', async () => {
        for (const status of ['Running', 'Suspended', 'Failed', 'Terminated'] as const) {
          const { enclave: e } = await scenario([], { status });
          const error = await validateEnclaveForProvisioning(deps, e.id, DEPLOYED).catch((x) => x);
          expect(error).toBeInstanceOf(ConflictError);
          expect(error).toMatchObject({ status: 409, type: 'enclave-not-initializing' });
          expect((error as Error).message).toContain(status);
        }
        const unknown = randomUUID();
        const error = await validateEnclaveForProvisioning(deps, unknown, DEPLOYED).catch((x) => x);
        expect(error).toBeInstanceOf(NotFoundError);
        expect(error).toMatchObject({ status: 404, message: `Enclave ${unknown} was not found.` });
      });
    });
  });
}

if (!ADAPTERS.find((a) => a.name === 'postgres')!.available) {
  describe('enclave store on postgres', () => {
    it('needs TEST_DATABASE_URL (npm test starts a server when PostgreSQL is installed)', () => {
      expect(process.env.CI).not.toBe('true');
    });
  });
}
