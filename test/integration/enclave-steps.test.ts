import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GENESIS_HASH, verifyChain } from '../../shared/audit/audit-chain.ts';
import { listAuditRecords } from '../../shared/audit/audit-store.ts';
import { auditedWrite } from '../../shared/audit/audited-write.ts';
import { suspendContract } from '../../shared/contracts/contract-service.ts';
import { loadContract } from '../../shared/contracts/contract-store.ts';
import { sql } from '../../shared/database/database.ts';
import { loadMigrations, migrate } from '../../shared/database/migrate.ts';
import type { CreateContract } from '../../shared/domain/contract.ts';
import { type EnclaveData, newEnclave } from '../../shared/domain/enclave.ts';
import { IllegalTransitionError, NotFoundError, UnprocessableError } from '../../shared/domain/errors.ts';
import type { Identity } from '../../shared/domain/identity.ts';
import type { AttestationClaimsSummary } from '../../shared/enclaves/enclave-attestation.ts';
import {
  activateEnclave,
  failEnclave,
  MAX_STATUS_REASON_LENGTH,
  type VerifiedAttestation,
} from '../../shared/enclaves/enclave-steps.ts';
import { insertEnclaveMutation, loadEnclave } from '../../shared/enclaves/enclave-store.ts';
import type { Dependencies } from '../../shared/runtime/dependencies.ts';
import { LocalSigner } from '../../shared/signing/local-signer.ts';
import { type ContractParties, contractParties } from '../support/contract-parties.ts';
import { CREATE_FIXTURE } from '../support/contracts.ts';
import { ADAPTERS, type OpenedDatabase } from '../support/databases.ts';
import { pcr, SIGNED_IMAGE, SIGNED_IMAGE_CONFIGURATION } from '../support/enclaves.ts';

/**
 * The provisioning workflow's Activate and Compensate steps against every database adapter. The contract
 * and its measurement set are built through their real use cases (as in enclave-store.test.ts), so
 * "Active" and "Approved" mean what they mean in production.
 */

const SIGNER = SIGNED_IMAGE.pcr8;
const IMAGE = SIGNED_IMAGE;
const CONFIGURATION = SIGNED_IMAGE_CONFIGURATION;
/** The provisioning execution the scenarios' enclaves are claimed by. */
const EXECUTION = 'arn:aws:states:eu-central-1:123456789012:execution:EnclaveProvisioning:run-1';

let instanceCounter = 0;
/** A fresh, well-formed instance id (instance ids are claimed once across the database). */
const newInstanceId = () =>
  `i-${(++instanceCounter).toString(16).padStart(8, '0')}${randomUUID().slice(0, 8)}`;

for (const adapter of ADAPTERS) {
  describe.runIf(adapter.available)(`enclave workflow steps on ${adapter.name}`, () => {
    let opened: OpenedDatabase;
    let deps: Dependencies;
    let clock = new Date('2027-01-01T00:00:00.000Z');
    let provider: Identity;
    let parties: ContractParties;

    beforeAll(async () => {
      opened = await adapter.open();
      await migrate(opened.db, await loadMigrations());
      deps = { db: opened.db, signer: await LocalSigner.create(), now: () => clock, newId: randomUUID };
      parties = await contractParties(deps);
      provider = parties.provider;
    });
    afterAll(async () => opened?.close());

    const tick = () => {
      clock = new Date(clock.getTime() + 1000);
    };

    /**
     * An Active contract (the fixture's, or `contract`) with an approved set, and an Initializing enclave
     * under it (as create writes it).
     */
    async function scenario(contract?: CreateContract) {
      const contractId = await parties.activeContract(contract);
      const setId = await parties.measurementSet(contractId, IMAGE);
      tick();
      const at = clock.toISOString();
      const e: EnclaveData = {
        ...newEnclave(
          {
            id: randomUUID(),
            name: 'trainer-1',
            providerId: provider.id,
            contractId,
            configuration: CONFIGURATION,
            region: 'eu-central-1',
          },
          at,
        ),
        // Claimed by the provisioning execution that activates or fails it below.
        executionArn: EXECUTION,
      };
      const { applied } = await auditedWrite(deps.db, {
        ...insertEnclaveMutation(e, { requireActiveContract: true }),
        audit: {
          entityType: 'enclave',
          entityId: e.id,
          seq: 1,
          action: 'create',
          actorId: provider.id,
          occurredAt: at,
          data: { contractId, status: e.status },
        },
        prevHash: GENESIS_HASH,
        event: {
          id: randomUUID(),
          aggregateType: 'enclave',
          aggregateId: e.id,
          type: 'EnclaveCreated',
          occurredAt: at,
          payload: { enclaveId: e.id, contractId, status: e.status, version: 1 },
        },
      });
      expect(applied).toBe(true);
      return { contractId, setId, enclave: e };
    }

    /** What VerifyAttestation hands Activate for a document from `instanceId`. */
    function verified(
      setId: string,
      instanceId: string,
      timestamp = clock.toISOString(),
    ): VerifiedAttestation {
      const claims: AttestationClaimsSummary = {
        moduleId: `${instanceId}-enc0123456789abcdef`,
        digest: 'SHA384',
        timestamp,
        pcrs: { '0': IMAGE.pcr0, '1': IMAGE.pcr1, '2': IMAGE.pcr2, '4': pcr('4'), '8': SIGNER },
        leafValidFrom: '2027-01-01T00:00:00.000Z',
        leafValidTo: '2027-01-01T03:00:00.000Z',
        nonce: 'ab'.repeat(32),
        publicKey: null,
        userData: null,
      };
      return { claims, matchedMeasurementSet: { id: setId } };
    }

    async function outbox(id: string): Promise<{ event_type: string; payload: unknown }[]> {
      const { rows } = await opened.db.query<{ event_type: string; payload: unknown }>(
        'SELECT event_type, payload FROM outbox WHERE aggregate_id = :id ORDER BY occurred_at, event_type',
        { id: sql.uuid(id) },
      );
      return rows;
    }

    async function auditTrail(id: string) {
      const records = await listAuditRecords(opened.db, id, 0, 100);
      expect(verifyChain(records).valid).toBe(true);
      return records;
    }

    async function running() {
      const s = await scenario();
      const instanceId = newInstanceId();
      tick();
      const attestation = verified(s.setId, instanceId);
      const activated = await activateEnclave(deps, {
        enclaveId: s.enclave.id,
        instanceId,
        executionArn: EXECUTION,
        attestation,
      });
      return { ...s, instanceId, attestation, activated };
    }

    describe('activateEnclave', () => {
      it('makes an Initializing enclave Running with the verified attestation, audited and published', async () => {
        const { enclave: e, setId } = await scenario();
        const instanceId = newInstanceId();
        const executionArn = EXECUTION;
        tick();
        const documentTime = new Date(clock.getTime() - 200).toISOString();
        const attestation = verified(setId, instanceId, documentTime);
        const result = await activateEnclave(deps, {
          enclaveId: e.id,
          instanceId,
          executionArn,
          attestation,
        });

        const expected: EnclaveData = {
          ...e,
          status: 'Running',
          instanceId,
          executionArn,
          statusReason: null,
          attestation: {
            verdict: 'verified',
            verifiedAt: clock.toISOString(),
            moduleId: attestation.claims.moduleId,
            documentTimestamp: documentTime,
            pcrs: attestation.claims.pcrs,
            measurementSetId: setId,
          },
          version: 2,
          updatedAt: clock.toISOString(),
        };
        expect(result).toStrictEqual(expected);
        expect((await loadEnclave(opened.db, e.id))!.enclave).toStrictEqual(expected);

        const records = await auditTrail(e.id);
        expect(records.map((r) => [r.seq, r.action, r.actorId])).toEqual([
          [1, 'create', provider.id],
          [2, 'activate', null],
        ]);
        expect(records[1]!.data).toStrictEqual({
          instanceId,
          moduleId: attestation.claims.moduleId,
          matchedMeasurementSet: setId,
        });
        const events = await outbox(e.id);
        expect(events.map((r) => r.event_type)).toEqual(['EnclaveCreated', 'EnclaveActivated']);
        expect(events[1]!.payload).toMatchObject({
          enclaveId: e.id,
          status: 'Running',
          version: 2,
          instanceId,
        });
      });

      it('answers a duplicate callback with the current state and writes nothing', async () => {
        const { enclave: e, instanceId, attestation, activated } = await running();
        tick();
        const again = await activateEnclave(deps, {
          enclaveId: e.id,
          instanceId,
          executionArn: EXECUTION,
          attestation,
        });
        expect(again).toStrictEqual(activated);
        expect((await loadEnclave(opened.db, e.id))!.enclave).toStrictEqual(activated);
        expect((await auditTrail(e.id)).length).toBe(2);
        expect((await outbox(e.id)).length).toBe(2);
        // another document (or another instance) is not a duplicate: a Running enclave is not activated
        const other = verified(attestation.matchedMeasurementSet.id, instanceId);
        await expect(
          activateEnclave(deps, { enclaveId: e.id, instanceId, executionArn: EXECUTION, attestation: other }),
        ).rejects.toBeInstanceOf(IllegalTransitionError);
        expect((await auditTrail(e.id)).length).toBe(2);
      });

      it('refuses activation when the contract was suspended meanwhile, writing nothing', async () => {
        const { contractId, setId, enclave: e } = await scenario();
        await suspendContract(deps, parties.consumer, contractId, 'data quality review', undefined);
        tick();
        const instanceId = newInstanceId();
        const error = await activateEnclave(deps, {
          enclaveId: e.id,
          instanceId,
          executionArn: EXECUTION,
          attestation: verified(setId, instanceId),
        }).catch((x) => x);
        expect(error).toBeInstanceOf(UnprocessableError);
        expect(error).toMatchObject({ status: 422, type: 'transition-guard-failed' });
        expect((error as Error).message).toMatch(/contract is Suspended/);
        expect((await loadEnclave(opened.db, e.id))!.enclave).toStrictEqual(e);
        expect((await auditTrail(e.id)).length).toBe(1);
        expect((await outbox(e.id)).length).toBe(1);
      });

      it('does not activate when the contract is suspended between the check and the write', async () => {
        const { contractId, setId, enclave: e } = await scenario();
        let suspended = false;
        // The suspension lands just before the activation's write statement runs.
        const racing: Dependencies = {
          ...deps,
          db: {
            query: async (text, params) => {
              if (!suspended && text.includes('UPDATE enclaves')) {
                suspended = true;
                await suspendContract(deps, parties.consumer, contractId, 'incident', undefined);
              }
              return deps.db.query(text, params);
            },
            transaction: (work) => deps.db.transaction(work),
            close: async () => {},
          },
        };
        tick();
        const instanceId = newInstanceId();
        await expect(
          activateEnclave(racing, {
            enclaveId: e.id,
            instanceId,
            executionArn: EXECUTION,
            attestation: verified(setId, instanceId),
          }),
        ).rejects.toMatchObject({ type: 'transition-guard-failed' });
        expect(suspended).toBe(true);
        expect((await loadEnclave(opened.db, e.id))!.enclave).toStrictEqual(e);
        expect((await auditTrail(e.id)).length).toBe(1);
        expect((await outbox(e.id)).length).toBe(1);
      });

      describe('inside the contract validity window only, whatever the expiry sweep has done yet', () => {
        /** The fixture contract, ending `msFromNow` after the clock (its window opened in 2026). */
        const endingSoon = (msFromNow: number): CreateContract => ({
          ...CREATE_FIXTURE,
          terms: {
            ...CREATE_FIXTURE.terms,
            validity: {
              start: CREATE_FIXTURE.terms.validity.start,
              end: new Date(clock.getTime() + msFromNow).toISOString(),
            },
          },
        });

        /** Activate at `instant`: the refusal, or the enclave it made Running. */
        async function activateAt(s: Awaited<ReturnType<typeof scenario>>, instant: Date) {
          clock = instant;
          const instanceId = newInstanceId();
          return activateEnclave(deps, {
            enclaveId: s.enclave.id,
            instanceId,
            executionArn: EXECUTION,
            attestation: verified(s.setId, instanceId),
          }).catch((x: unknown) => x);
        }

        /** The refusal changed nothing: no Running, no audit record, no event; the contract still Active. */
        async function expectUnchanged(s: Awaited<ReturnType<typeof scenario>>) {
          expect((await loadEnclave(opened.db, s.enclave.id))!.enclave).toStrictEqual(s.enclave);
          expect((await auditTrail(s.enclave.id)).length).toBe(1);
          expect((await outbox(s.enclave.id)).length).toBe(1);
          expect((await loadContract(opened.db, s.contractId))!.contract.status).toBe('Active');
        }

        it('activates one millisecond before validity.end', async () => {
          const contract = endingSoon(60_000);
          const s = await scenario(contract);
          const end = Date.parse(contract.terms.validity.end);
          const result = await activateAt(s, new Date(end - 1));
          expect(result).toMatchObject({ status: 'Running', updatedAt: new Date(end - 1).toISOString() });
        });

        for (const [name, delta] of [
          ['at validity.end', 0],
          ['one millisecond after validity.end', 1],
          ['0.7 s after validity.end (the reviewer’s case)', 700],
        ] as const) {
          it(`refuses activation ${name}, while the contract is still Active, writing nothing`, async () => {
            const contract = endingSoon(60_000);
            const s = await scenario(contract);
            const error = await activateAt(s, new Date(Date.parse(contract.terms.validity.end) + delta));
            expect(error).toBeInstanceOf(UnprocessableError);
            expect(error).toMatchObject({
              status: 422,
              type: 'transition-guard-failed',
              message: `Cannot activate: the contract validity window ended at ${contract.terms.validity.end}.`,
            });
            await expectUnchanged(s);
          });
        }

        it('refuses activation before validity.start (a parent whose clock runs behind), writing nothing', async () => {
          const start = new Date(clock.getTime() + 10_000);
          const contract: CreateContract = {
            ...CREATE_FIXTURE,
            terms: {
              ...CREATE_FIXTURE.terms,
              validity: { start: start.toISOString(), end: CREATE_FIXTURE.terms.validity.end },
            },
          };
          clock = start; // the contract can only be activated once its window opened
          const s = await scenario(contract);
          try {
            const error = await activateAt(s, new Date(start.getTime() - 1));
            expect(error).toMatchObject({
              status: 422,
              type: 'transition-guard-failed',
              message: `Cannot activate: the contract validity window opens at ${start.toISOString()}.`,
            });
            await expectUnchanged(s);
          } finally {
            clock = new Date(start.getTime() + 1000);
          }
        });
      });

      it('refuses an execution that does not own the enclave (a superseded run), writing nothing', async () => {
        const { enclave: e, setId } = await scenario();
        tick();
        const instanceId = newInstanceId();
        const error = await activateEnclave(deps, {
          enclaveId: e.id,
          instanceId,
          executionArn: `${EXECUTION}-stale`,
          attestation: verified(setId, instanceId),
        }).catch((x) => x);
        expect(error).toMatchObject({ status: 409, type: 'enclave-not-owned' });
        expect((await loadEnclave(opened.db, e.id))!.enclave).toStrictEqual(e);
        expect((await auditTrail(e.id)).length).toBe(1);
      });

      it('answers 404 for an unknown enclave', async () => {
        const instanceId = newInstanceId();
        await expect(
          activateEnclave(deps, {
            enclaveId: randomUUID(),
            instanceId,
            executionArn: EXECUTION,
            attestation: verified(randomUUID(), instanceId),
          }),
        ).rejects.toBeInstanceOf(NotFoundError);
      });
    });

    describe('failEnclave', () => {
      it('fails an Initializing enclave with the reason, recording an attestation refusal', async () => {
        const { enclave: e } = await scenario();
        const instanceId = newInstanceId();
        tick();
        const reason = { code: 'pcr_mismatch', message: 'PCR0 matches no approved measurement set.' };
        const result = await failEnclave(deps, {
          enclaveId: e.id,
          reason,
          instanceId,
          attestationRefused: true,
        });
        const expected: EnclaveData = {
          ...e,
          status: 'Failed',
          instanceId,
          statusReason: 'pcr_mismatch: PCR0 matches no approved measurement set.',
          attestation: { verdict: 'refused', verifiedAt: clock.toISOString(), ...reason },
          version: 2,
          updatedAt: clock.toISOString(),
        };
        expect(result).toStrictEqual(expected);
        expect((await loadEnclave(opened.db, e.id))!.enclave).toStrictEqual(expected);
        const records = await auditTrail(e.id);
        expect(records.map((r) => [r.seq, r.action])).toEqual([
          [1, 'create'],
          [2, 'fail'],
        ]);
        expect(records[1]!.data).toStrictEqual({ from: 'Initializing', ...reason, instanceId });
        const events = await outbox(e.id);
        expect(events.map((r) => r.event_type)).toEqual(['EnclaveCreated', 'EnclaveFailed']);
        expect(events[1]!.payload).toMatchObject({ status: 'Failed', reason: expected.statusReason });
      });

      it('fails an Initializing enclave without touching a missing attestation when the failure is not one', async () => {
        const { enclave: e } = await scenario();
        tick();
        const result = await failEnclave(deps, {
          enclaveId: e.id,
          reason: { code: 'insufficient-capacity', message: 'No candidate instance type had capacity.' },
        });
        expect(result).toMatchObject({ status: 'Failed', attestation: null, instanceId: null, version: 2 });
      });

      it('fails a Running enclave, voiding its verified attestation', async () => {
        const { enclave: e, instanceId } = await running();
        tick();
        const result = await failEnclave(deps, {
          enclaveId: e.id,
          reason: { code: 'instance-stopped', message: 'The parent instance stopped unexpectedly.' },
        });
        expect(result).toMatchObject({
          status: 'Failed',
          instanceId,
          statusReason: 'instance-stopped: The parent instance stopped unexpectedly.',
          attestation: { verdict: 'refused', code: 'instance-stopped', verifiedAt: clock.toISOString() },
          version: 3,
        });
        expect((await loadEnclave(opened.db, e.id))!.enclave).toStrictEqual(result);
        const records = await auditTrail(e.id);
        expect(records.map((r) => r.action)).toEqual(['create', 'activate', 'fail']);
        expect((await outbox(e.id)).map((r) => r.event_type)).toEqual([
          'EnclaveCreated',
          'EnclaveActivated',
          'EnclaveFailed',
        ]);
      });

      it("leaves another execution's enclave alone when the failing execution is named", async () => {
        const { enclave: e } = await scenario();
        tick();
        const result = await failEnclave(deps, {
          enclaveId: e.id,
          reason: { code: 'timeout', message: 'late' },
          executionArn: `${EXECUTION}-stale`,
        });
        expect(result).toStrictEqual(e);
        expect((await auditTrail(e.id)).length).toBe(1);
      });

      it('writes once when Compensate runs twice, and bounds the reason', async () => {
        const { enclave: e } = await scenario();
        tick();
        const reason = { code: 'timeout', message: 'x'.repeat(5000) };
        const first = await failEnclave(deps, { enclaveId: e.id, reason });
        expect(first.statusReason!.length).toBeLessThanOrEqual(MAX_STATUS_REASON_LENGTH);
        expect(first.statusReason).toMatch(/^timeout: x+…$/);
        tick();
        const second = await failEnclave(deps, {
          enclaveId: e.id,
          reason: { code: 'other', message: 'again' },
        });
        expect(second).toStrictEqual(first);
        expect((await auditTrail(e.id)).length).toBe(2);
        expect((await outbox(e.id)).length).toBe(2);
        // a failed enclave cannot be activated afterwards either
        const instanceId = newInstanceId();
        await expect(
          activateEnclave(deps, {
            enclaveId: e.id,
            instanceId,
            executionArn: EXECUTION,
            attestation: verified(randomUUID(), instanceId),
          }),
        ).rejects.toBeInstanceOf(IllegalTransitionError);
      });
    });
  });
}

if (!ADAPTERS.find((a) => a.name === 'postgres')!.available) {
  describe('enclave workflow steps on postgres', () => {
    it('needs TEST_DATABASE_URL (npm test starts a server when PostgreSQL is installed)', () => {
      expect(process.env.CI).not.toBe('true');
    });
  });
}
