/**
 * The contract keys' sync (shared/keys/contract-keys.ts, migration 0019) on every database adapter, against
 * the local KMS stand-in through the deployed adapter (KmsContractKeys over the SigV4 JSON client), with the
 * real use cases making the contract, its approved set and its Running enclaves: each change of the
 * contract's state reaches the key in KMS, which then answers enclaves' attested calls accordingly, and
 * every change is audited on the key's own chain with the policy's digest.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalCredentials } from '../../infra/local/services/iam/local-credentials.ts';
import type { PolicyDocument } from '../../infra/local/services/iam/stack-policies.ts';
import type { KmsSimulator } from '../../infra/local/services/kms/kms-simulator.ts';
import { NitroSimulator } from '../../infra/local/services/nitro-enclaves/nitro-simulator.ts';
import { verifyChain } from '../../shared/audit/audit-chain.ts';
import { listAuditRecords } from '../../shared/audit/audit-store.ts';
import {
  createContract,
  resumeContract,
  suspendContract,
  terminateContract,
} from '../../shared/contracts/contract-service.ts';
import { sql } from '../../shared/database/database.ts';
import { loadMigrations, migrate } from '../../shared/database/migrate.ts';
import { createEnclave, suspendEnclave } from '../../shared/enclaves/enclave-service.ts';
import type { ContractKeyPrincipals } from '../../shared/keys/contract-key-policy.ts';
import {
  CONTRACT_KEY_TAG_KEY,
  ContractKeyError,
  findContractKey,
  syncContractKey,
} from '../../shared/keys/contract-keys.ts';
import { KmsContractKeys } from '../../shared/keys/kms-contract-keys.ts';
import type { Dependencies } from '../../shared/runtime/dependencies.ts';
import { AwsJsonError } from '../../shared/runtime/signed-json-client.ts';
import { LocalSigner } from '../../shared/signing/local-signer.ts';
import { type ContractParties, contractParties } from '../support/contract-parties.ts';
import { CREATE_FIXTURE } from '../support/contracts.ts';
import { ADAPTERS, type OpenedDatabase } from '../support/databases.ts';
import { activateAsWorkflow, newInstanceId } from '../support/enclaves.ts';
import {
  attestedDecrypt,
  KMS_ACCOUNT,
  KMS_REGION,
  kmsClientAs,
  roleArn,
  startSuiteKms,
} from '../support/local-kms.ts';
import { ENCLAVE_FIXTURE } from '../support/provisioning.ts';

const ACCOUNT = KMS_ACCOUNT;
const REGION = KMS_REGION;
const STACK = 'EnclaveContracts-test';
const ALIAS_PREFIX = 'alias/enclave-contracts/test/contracts/';
const role = roleArn;
const PRINCIPALS: ContractKeyPrincipals = {
  partition: 'aws',
  accountId: ACCOUNT,
  administratorRoleArn: role('ContractKeys'),
  dataKeyRoleArn: role('DataKeys'),
  parentRoleArn: role('Parents'),
};
/** The key-managing function's identity policy, as the stack scopes it: by the deployment's tag. */
const IDENTITY: Record<string, PolicyDocument> = {
  ContractKeys: {
    Version: '2012-10-17',
    Statement: [
      {
        Effect: 'Allow',
        Action: ['kms:CreateKey', 'kms:TagResource'],
        Resource: '*',
        Condition: { StringEquals: { [`aws:RequestTag/${CONTRACT_KEY_TAG_KEY}`]: STACK } },
      },
      {
        Effect: 'Allow',
        Action: 'kms:CreateAlias',
        Resource: [
          `arn:aws:kms:${REGION}:${ACCOUNT}:${ALIAS_PREFIX}*`,
          `arn:aws:kms:${REGION}:${ACCOUNT}:key/*`,
        ],
      },
    ],
  },
};

let kms: KmsSimulator;
let nitro: NitroSimulator;
const credentials = new LocalCredentials();
const kmsAs = (roleName: string, id = 'fn') => kmsClientAs(kms, credentials, roleName, id);

beforeAll(async () => {
  nitro = await NitroSimulator.create();
  kms = await startSuiteKms({ credentials, identity: IDENTITY, nitro });
});
afterAll(async () => kms?.close());

/** The enclave on `instanceId`, running `image`, asks KMS for the data key with its attestation. */
const enclaveDecrypt = (
  instanceId: string,
  image: { eif: string } | { pcrs: Record<number, string> },
  contractId: string,
  blob: string,
) =>
  attestedDecrypt(
    kmsAs('Parents', instanceId),
    nitro,
    { instanceId, ...('eif' in image ? { image } : { image: { eif: 'custom' }, pcrs: image.pcrs }) },
    blob,
    contractId,
  );

for (const adapter of ADAPTERS) {
  describe.runIf(adapter.available)(`contract keys on ${adapter.name}`, () => {
    let opened: OpenedDatabase;
    let deps: Dependencies;
    let parties: ContractParties;
    const admin = () => kmsAs('ContractKeys');

    beforeAll(async () => {
      opened = await adapter.open();
      await migrate(opened.db, await loadMigrations());
      deps = {
        db: opened.db,
        signer: await LocalSigner.create(),
        now: () => new Date(),
        newId: randomUUID,
        contractKeys: {
          manager: new KmsContractKeys({
            tag: STACK,
            call: (operation, input) => admin().call(operation, input),
          }),
          sync: { principals: PRINCIPALS, aliasPrefix: ALIAS_PREFIX },
        },
      };
      parties = await contractParties(deps);
    });
    afterAll(async () => opened?.close());

    /** A Running enclave of `contractId` on a new parent, as the workflow leaves it; its id and instance. */
    async function runningEnclave(contractId: string) {
      const created = await createEnclave(deps, parties.provider, {
        ...ENCLAVE_FIXTURE,
        contractId,
      } as Parameters<typeof createEnclave>[2]);
      const instanceId = newInstanceId();
      await activateAsWorkflow(deps, created.body, instanceId);
      return { enclaveId: created.body.id, instanceId };
    }

    const image = () => {
      const { pcr0, pcr1, pcr2 } = ENCLAVE_FIXTURE.configuration.image;
      return { pcrs: { 0: pcr0, 1: pcr1, 2: pcr2 } };
    };

    it('follows the contract: created when Active, admits its Running enclaves one by one, shuts on suspension, shreds on termination', async () => {
      const contractId = await parties.activeContract();
      const { pcr0, pcr1, pcr2 } = ENCLAVE_FIXTURE.configuration.image;
      await parties.measurementSet(contractId, { pcr0, pcr1, pcr2 });

      const first = await syncContractKey(deps, contractId);
      expect(first.changes).toEqual(['create']);
      expect(first.key).toMatchObject({
        state: 'Enabled',
        policyVersion: 1,
        alias: `${ALIAS_PREFIX}${contractId}`,
      });
      expect(first.key?.admitted.admittedEnclaves).toEqual([]);
      const keyArn = first.key!.keyArn;
      // The key in KMS carries the rendered policy and the deployment's tag.
      const policy = (await admin().call('GetKeyPolicy', { KeyId: keyArn })) as { Policy: string };
      expect(policy.Policy).toContain(`"kms:EncryptionContext:contractId":"${contractId}"`);

      const wrapped = await new KmsContractKeys({
        tag: STACK,
        call: (op, input) => kmsAs('DataKeys').call(op, input),
      }).wrapDataKey(keyArn, contractId);
      expect(wrapped.keyArn).toBe(keyArn);
      const blob = wrapped.ciphertextBlob;

      const a = await runningEnclave(contractId);
      const b = await runningEnclave(contractId);
      expect((await enclaveDecrypt(a.instanceId, image(), contractId, blob)).outcome).toBe(
        'AccessDeniedException',
      );
      const admitted = await syncContractKey(deps, contractId);
      expect(admitted.changes).toEqual(['policy']);
      expect(admitted.key?.admitted.admittedEnclaves.map((e) => e.id).sort()).toEqual(
        [a.enclaveId, b.enclaveId].sort(),
      );
      const fromA = await enclaveDecrypt(a.instanceId, image(), contractId, blob);
      const fromB = await enclaveDecrypt(b.instanceId, image(), contractId, blob);
      expect(fromA.outcome).toBe('ok');
      expect(fromB.key).toEqual(fromA.key);
      // Another image on A's parent: refused.
      expect((await enclaveDecrypt(a.instanceId, { eif: 'another-image' }, contractId, blob)).outcome).toBe(
        'AccessDeniedException',
      );
      // Nothing changed: nothing written.
      expect((await syncContractKey(deps, contractId)).changes).toEqual([]);

      await suspendEnclave(deps, parties.provider, a.enclaveId, 'maintenance', undefined);
      expect((await syncContractKey(deps, contractId)).changes).toEqual(['policy']);
      expect((await enclaveDecrypt(a.instanceId, image(), contractId, blob)).outcome).toBe(
        'AccessDeniedException',
      );
      expect((await enclaveDecrypt(b.instanceId, image(), contractId, blob)).outcome).toBe('ok');

      await suspendContract(deps, parties.provider, contractId, 'audit finding', undefined);
      expect((await syncContractKey(deps, contractId)).changes).toEqual(['policy', 'disable']);
      expect((await enclaveDecrypt(b.instanceId, image(), contractId, blob)).outcome).toBe(
        'AccessDeniedException',
      );
      await resumeContract(deps, parties.provider, contractId, undefined, undefined);
      expect((await syncContractKey(deps, contractId)).changes).toEqual(['enable', 'policy']);
      expect((await enclaveDecrypt(b.instanceId, image(), contractId, blob)).outcome).toBe('ok');

      const before = Date.now();
      await terminateContract(deps, parties.provider, contractId, 'done', undefined);
      const ended = await syncContractKey(deps, contractId);
      expect(ended.changes).toEqual(['policy', 'disable', 'schedule-deletion']);
      expect(ended.key?.state).toBe('PendingDeletion');
      const deletion = Date.parse(ended.key!.deletionDate!);
      expect(deletion - before).toBeGreaterThanOrEqual(7 * 86_400_000);
      expect(deletion - before).toBeLessThan(7 * 86_400_000 + 60_000);
      expect((await enclaveDecrypt(b.instanceId, image(), contractId, blob)).outcome).toBe(
        'AccessDeniedException',
      );
      const described = (await admin().call('DescribeKey', { KeyId: keyArn })) as {
        KeyMetadata: { KeyState: string };
      };
      expect(described.KeyMetadata.KeyState).toBe('PendingDeletion');
      // A pending deletion is final: later syncs change nothing.
      expect((await syncContractKey(deps, contractId)).changes).toEqual([]);

      // Every change is on the key's own chain, with the policy's digest, and the chain verifies.
      const key = (await findContractKey(opened.db, contractId))!;
      const records = await listAuditRecords(opened.db, key.id, 0, 50);
      expect(records.map((r) => r.action)).toEqual([
        'create',
        'policy',
        'policy',
        'policy',
        'disable',
        'enable',
        'policy',
        'policy',
        'disable',
        'schedule-deletion',
      ]);
      expect(records.at(-1)?.data).toMatchObject({
        state: 'PendingDeletion',
        policyDigest: key.policyDigest,
      });
      expect(verifyChain(records).valid).toBe(true);
    });

    it('makes no key for a contract that was never Active, and only disables one whose terms keep the data', async () => {
      const draft = (await createContract(deps, parties.provider, CREATE_FIXTURE)).body.id;
      expect(await syncContractKey(deps, draft)).toEqual({ contractId: draft, changes: [], refused: [] });
      expect(await findContractKey(opened.db, draft)).toBeUndefined();
      const keep = await parties.activeContract({
        ...CREATE_FIXTURE,
        terms: {
          ...CREATE_FIXTURE.terms,
          retention: { ...CREATE_FIXTURE.terms.retention, deleteOnTermination: false },
        },
      });
      expect((await syncContractKey(deps, keep)).changes).toEqual(['create']);
      await terminateContract(deps, parties.provider, keep, 'done', undefined);
      expect((await syncContractKey(deps, keep)).changes).toEqual(['disable']);
      expect((await findContractKey(opened.db, keep))?.state).toBe('Disabled');
    });

    // 340 Running enclaves: on the embedded database only (the SQL is the one the other adapters run above).
    if (adapter.name === 'pglite')
      it("refuses the Running enclaves its policy cannot admit within KMS's 32 KB: the newest fail, the rest keep their access", async () => {
        const contractId = await parties.activeContract();
        const { pcr0, pcr1, pcr2 } = ENCLAVE_FIXTURE.configuration.image;
        await parties.measurementSet(contractId, { pcr0, pcr1, pcr2 });
        const running: { enclaveId: string; instanceId: string }[] = [];
        for (let i = 0; i < 340; i++) running.push(await runningEnclave(contractId));
        const synced = await syncContractKey(deps, contractId);
        expect(synced.refused.length).toBeGreaterThan(0);
        const admitted = synced.key!.admitted.admittedEnclaves.length;
        expect(admitted + synced.refused.length).toBe(running.length);
        // The newest are refused: Failed with the reason, audited as any failure.
        expect(synced.refused).toEqual(running.slice(admitted).map((e) => e.enclaveId));
        const { rows } = await opened.db.query<{ status: string; status_reason: string }>(
          'SELECT status, status_reason FROM enclaves WHERE id = :id',
          { id: sql.uuid(synced.refused[0]!) },
        );
        expect(rows[0]).toMatchObject({
          status: 'Failed',
          status_reason: expect.stringMatching(/^key_policy_full: /),
        });
        // The oldest keep their access; the refused one is not admitted.
        const wrapped = await new KmsContractKeys({
          tag: STACK,
          call: (op, input) => kmsAs('DataKeys').call(op, input),
        }).wrapDataKey(synced.key!.keyArn, contractId);
        expect(
          (await enclaveDecrypt(running[0]!.instanceId, image(), contractId, wrapped.ciphertextBlob)).outcome,
        ).toBe('ok');
        const last = running.at(-1)!;
        expect(
          (await enclaveDecrypt(last.instanceId, image(), contractId, wrapped.ciphertextBlob)).outcome,
        ).toBe('AccessDeniedException');
        // Once they are Failed, the policy fits and refuses nobody.
        expect((await syncContractKey(deps, contractId)).refused).toEqual([]);
      }, 120_000);

    it('writes nothing when KMS fails, and the next sync reuses the key the alias names', async () => {
      const contractId = await parties.activeContract();
      let failPolicy = true;
      const flaky: Dependencies = {
        ...deps,
        contractKeys: {
          ...deps.contractKeys!,
          manager: new KmsContractKeys({
            tag: STACK,
            call: async (operation, input) => {
              if (operation === 'PutKeyPolicy' && failPolicy)
                throw new AwsJsonError('KMSInternalException', 'KMS failed', 500);
              return admin().call(operation, input);
            },
          }),
        },
      };
      const { pcr0, pcr1, pcr2 } = ENCLAVE_FIXTURE.configuration.image;
      await parties.measurementSet(contractId, { pcr0, pcr1, pcr2 });
      await runningEnclave(contractId);
      const failed = await syncContractKey(flaky, contractId).catch((e) => e);
      expect(failed).toBeInstanceOf(ContractKeyError);
      expect((failed as ContractKeyError).transient).toBe(true);
      expect(await findContractKey(opened.db, contractId)).toBeUndefined();
      failPolicy = false;
      const retried = await syncContractKey(flaky, contractId);
      expect(retried.changes).toEqual(['create', 'policy']);
      const alias = (await admin().call('DescribeKey', { KeyId: `${ALIAS_PREFIX}${contractId}` })) as {
        KeyMetadata: { Arn: string };
      };
      expect(retried.key?.keyArn).toBe(alias.KeyMetadata.Arn);
    });
  });
}
