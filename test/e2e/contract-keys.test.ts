/**
 * Attestation gates the data, end to end on the local stack (IAM on): the contract's KMS key follows the
 * contract through the events its lifecycle publishes, the provider wraps data keys over HTTP, and only an
 * enclave the provisioning workflow brought to Running, presenting an attestation document of its approved
 * image on its own parent, gets a data key from KMS (the local KMS stand-in, evaluating the key policy the
 * platform rendered). Suspending one enclave revokes it alone; suspending the contract disables the key;
 * terminating it (the fixture's terms delete the data) schedules the key's deletion, after which nothing
 * decrypts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LOCAL_DEFAULT_IMAGE } from '../../infra/local/services/nitro-enclaves/nitro-simulator.ts';
import type { ContractKeyView, WrappedDataKey } from '../../shared/keys/contract-keys.ts';
import { ApiClient } from '../support/api-client.ts';
import { attestedDecrypt, parentKmsClient } from '../support/local-kms.ts';
import {
  type ProvisioningContext,
  provisioningHarness,
  startProvisioningStack,
} from '../support/provisioning.ts';

let context: ProvisioningContext;
let consumer: ApiClient;
let outsider: ApiClient;

beforeAll(async () => {
  context = await startProvisioningStack({
    enclaves: { bootDelayMs: 20, attestationTimeoutMs: 15_000, attestationHeartbeatMs: 15_000 },
  });
  consumer = await ApiClient.as(context.stack, 'consumer');
  outsider = await ApiClient.as(context.stack, 'outsider');
});
afterAll(async () => context?.stack.close());

const { create, settle, instancesOf } = provisioningHarness(() => context);

/** Publishes events (the key's sync runs on them) until the key satisfies `ready`. */
async function keyWhen(ready: (key: ContractKeyView) => boolean): Promise<ContractKeyView> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    await context.stack.publishEvents();
    const res = await context.provider.get<ContractKeyView>(`/contracts/${context.contractId}/key`);
    if (res.status === 200 && ready(res.body)) return res.body;
    if (Date.now() > deadline) throw new Error(`the key never got there: ${res.status} ${res.text}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** The enclave on `instanceId` asks KMS for the data key, as its workload would through the vsock proxy. */
function decryptAs(instanceId: string, blob: string, image = LOCAL_DEFAULT_IMAGE, debug = false) {
  const { enclaves } = context.stack;
  return attestedDecrypt(
    parentKmsClient(enclaves, instanceId),
    enclaves.nitro,
    { instanceId, image, ...(debug ? { debug } : {}) },
    blob,
    context.contractId,
  );
}

describe("a contract's data key on the local stack", () => {
  let blob: string;
  let a: { enclaveId: string; instanceId: string };
  let b: { enclaveId: string; instanceId: string };

  it('exists once the contract is Active, shows what it admits to the parties only, and wraps data keys for the provider alone', async () => {
    const key = await keyWhen(() => true);
    expect(key).toMatchObject({ contractId: context.contractId, state: 'Enabled', policyVersion: 1 });
    expect(key.admits).toEqual({ measurementSets: [], enclaves: [] });
    expect((await consumer.get(`/contracts/${context.contractId}/key`)).status).toBe(200);
    expect((await outsider.get(`/contracts/${context.contractId}/key`)).status).toBe(404);

    const wrapped = await context.provider.post<WrappedDataKey>(
      `/contracts/${context.contractId}/data-keys`,
      {},
    );
    expect(wrapped.status, wrapped.text).toBe(200);
    expect(wrapped.body).toMatchObject({
      keyArn: key.keyArn,
      keySpec: 'AES_256',
      encryptionContext: { contractId: context.contractId },
    });
    blob = wrapped.body.ciphertextBlob;
    const refused = await consumer.post(`/contracts/${context.contractId}/data-keys`, {});
    expect(refused.status).toBe(403);
    expect(refused.headers.get('content-type')).toContain('application/problem+json');
    expect((await outsider.post(`/contracts/${context.contractId}/data-keys`, {})).status).toBe(404);
  });

  it('releases the data key to the Running enclaves only, as the image they attested as on their own parents', async () => {
    const [first, second] = await Promise.all([create(), create()]);
    await Promise.all([
      settle(first!, ['Running', 'Failed'], 30_000),
      settle(second!, ['Running', 'Failed'], 30_000),
    ]);
    a = { enclaveId: first!, instanceId: instancesOf(first!)[0]!.instanceId };
    b = { enclaveId: second!, instanceId: instancesOf(second!)[0]!.instanceId };
    const key = await keyWhen((k) => k.admits.enclaves.length === 2);
    expect(key.admits.enclaves.map((e) => e.instanceId).sort()).toEqual([a.instanceId, b.instanceId].sort());
    expect(key.policyVersion).toBeGreaterThan(1);

    const fromA = await decryptAs(a.instanceId, blob);
    const fromB = await decryptAs(b.instanceId, blob);
    expect(fromA.outcome).toBe('ok');
    expect(fromA.key).toHaveLength(32);
    expect(fromB.key).toEqual(fromA.key);
    // A debug-mode enclave or another image on an admitted parent, or the right image elsewhere: refused.
    expect((await decryptAs(a.instanceId, blob, LOCAL_DEFAULT_IMAGE, true)).outcome).toBe(
      'AccessDeniedException',
    );
    expect((await decryptAs(a.instanceId, blob, { eif: 'another-image:1.0.0' })).outcome).toBe(
      'AccessDeniedException',
    );
    expect((await decryptAs('i-0fedcba9876543210', blob)).outcome).toBe('AccessDeniedException');
  });

  it('revokes a suspended enclave at once while its sibling keeps access', async () => {
    const suspended = await context.provider.post(`/enclaves/${a.enclaveId}/suspend`, {
      reason: 'maintenance',
    });
    expect(suspended.status, suspended.text).toBe(200);
    await keyWhen((k) => k.admits.enclaves.length === 1);
    expect((await decryptAs(a.instanceId, blob)).outcome).toBe('AccessDeniedException');
    expect((await decryptAs(b.instanceId, blob)).outcome).toBe('ok');
  });

  it('disables the key with the contract, and schedules its deletion when the contract is terminated', async () => {
    const suspended = await context.provider.post(`/contracts/${context.contractId}/suspend`, {
      reason: 'audit finding',
    });
    expect(suspended.status, suspended.text).toBe(200);
    await keyWhen((k) => k.state === 'Disabled');
    expect((await decryptAs(b.instanceId, blob)).outcome).toBe('AccessDeniedException');
    expect((await context.provider.post(`/contracts/${context.contractId}/data-keys`, {})).status).toBe(409);

    const terminated = await context.provider.post(`/contracts/${context.contractId}/terminate`, {
      reason: 'done',
    });
    expect(terminated.status, terminated.text).toBe(200);
    const key = await keyWhen((k) => k.state === 'PendingDeletion');
    expect(Date.parse(key.deletionDate!) - Date.now()).toBeGreaterThan(6 * 86_400_000);
    expect((await decryptAs(b.instanceId, blob)).outcome).toBe('AccessDeniedException');

    // Every change is on the key's chain, which the parties may read and which verifies.
    const trail = await consumer.get<{ records: { action: string }[]; verification: { valid: boolean } }>(
      `/audit?entityId=${key.id}`,
    );
    expect(trail.status, trail.text).toBe(200);
    expect(trail.body.verification.valid).toBe(true);
    const actions = trail.body.records.map((r) => r.action);
    expect(actions[0]).toBe('create');
    expect(actions.at(-1)).toBe('schedule-deletion');
    expect(actions).toContain('policy');
  });
});
