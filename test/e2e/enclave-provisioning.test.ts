import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LocalStack } from '../../infra/local/local-stack.ts';
import { LOCAL_DEFAULT_IMAGE } from '../../infra/local/services/nitro-enclaves/nitro-simulator.ts';
import { LOCAL_PARENT_NETWORK } from '../../infra/local/services/stepfunctions/provisioning-definition.ts';
import { provisioningIdOf } from '../../shared/domain/enclave.ts';
import { chooseInstanceTypes } from '../../shared/domain/instance-types.ts';
import { enforce } from '../../shared/enclaves/enclave-enforcement.ts';
import { compensateStep, verifyAttestationStep } from '../../shared/enclaves/provisioning-steps.ts';
import { STATES, STEP_ERRORS, WORKFLOW_TIMING } from '../../shared/enclaves/provisioning-workflow.ts';
import { INSTANCE_TAGS } from '../../shared/workflow/workflow-ports.ts';
import { ApiClient } from '../support/api-client.ts';
import {
  ENCLAVE_FIXTURE,
  type Enclave,
  provisioningHarness,
  startProvisioningStack,
} from '../support/provisioning.ts';

/**
 * The provisioning workflow end to end, locally: the state machine the CDK code renders, run by
 * aws-local-stepfunctions, with the EC2 simulator's instances booting the Nitro simulator and posting
 * their documents to the API as the parent agent does. Every path ends with the instance inventory
 * checked: no instance may run unless its enclave is Running.
 */

/**
 * Short, so that the failure paths (no-callback) end quickly, yet room for a cold first parent on a loaded
 * machine: its agent's first requests load the gateway's handler modules and start the first responder.
 */
const ATTESTATION_TIMEOUT_MS = 3000;
let stack: LocalStack;
let provider: ApiClient;
let consumer: ApiClient;
let contractId: string;

beforeAll(async () => {
  ({ stack, provider, contractId } = await startProvisioningStack({
    // The heartbeat as long as the timeout: these tests call back by hand; heartbeats have their own suite.
    enclaves: {
      attestationTimeoutMs: ATTESTATION_TIMEOUT_MS,
      attestationHeartbeatMs: ATTESTATION_TIMEOUT_MS,
      bootDelayMs: 20,
    },
  }));
  consumer = await ApiClient.as(stack, 'consumer');
});
afterAll(async () => stack?.close());

const {
  assertNoOrphans,
  asInstance,
  attestAsParent,
  create,
  executionOf,
  instancesOf,
  refusalsOf,
  settle,
  settleInstances,
  waitUntilWaiting,
} = provisioningHarness(() => ({ stack, provider, contractId }));

async function postAttestation(enclaveId: string, instanceId: string, document: Uint8Array | string) {
  const client = await asInstance(instanceId);
  return client.post<Record<string, string>>(`/enclaves/${enclaveId}/attestation`, {
    document: typeof document === 'string' ? document : Buffer.from(document).toString('base64'),
  });
}

describe('provisioning through the rendered state machine', () => {
  it('reaches Running with a verified attestation on a tagged, running parent', async () => {
    const id = await create();
    const enclave = await settle(id, ['Running', 'Failed']);
    expect(enclave.status, enclave.statusReason ?? '').toBe('Running');
    expect(enclave.attestation).toMatchObject({
      verdict: 'verified',
      pcrs: { 0: ENCLAVE_FIXTURE.configuration.image.pcr0 },
    });
    const [instance, ...others] = instancesOf(id);
    expect(others).toEqual([]);
    expect(instance).toMatchObject({ instanceId: enclave.instanceId, state: 'running' });
    expect(instance!.tags[INSTANCE_TAGS.contractId]).toBe(contractId);
    // The parent sizes its enclave allocator from these: the enclave's own resources.
    expect(instance!.tags[INSTANCE_TAGS.cpuCount]).toBe(
      String(ENCLAVE_FIXTURE.configuration.resources.cpuCount),
    );
    expect(instance!.tags[INSTANCE_TAGS.memoryMiB]).toBe(
      String(ENCLAVE_FIXTURE.configuration.resources.memoryMiB),
    );
    // No image source declared: empty tags, so the parent fetches the deployment's default EIF.
    expect(instance!.tags[INSTANCE_TAGS.imageUrl]).toBe('');
    expect(instance!.tags[INSTANCE_TAGS.imageSha256]).toBe('');
    const execution = executionOf(id);
    expect(execution.status).toBe('SUCCEEDED');
    expect(enclave.provisioningId).toBe(provisioningIdOf(execution.executionArn));
    // Parties see the execution's name, never its ARN (the account id and the state machine's name).
    expect(enclave).not.toHaveProperty('executionArn');
    expect(JSON.stringify(enclave)).not.toContain('arn:aws:states');
    expect(execution.path).toEqual([
      STATES.validate,
      STATES.challenge,
      STATES.launchOrRestart,
      STATES.chooseFirstInstanceType,
      STATES.runInstances,
      STATES.waitForAttestation,
      STATES.verifyAttestation,
      STATES.activate,
      STATES.provisioned,
    ]);
    // The consumer sees the same verified attestation, and the enclave's verified audit trail.
    const attestation = await consumer.get<Record<string, unknown>>(`/enclaves/${id}/attestation`);
    expect(attestation.status).toBe(200);
    const trail = await consumer.get<{ records: { action: string }[]; verification: { valid: boolean } }>(
      `/audit?entityId=${id}`,
    );
    expect(trail.body.verification.valid).toBe(true);
    expect(trail.body.records.map((r) => r.action)).toEqual(['create', 'provision', 'activate']);
    // The parties' trail names the execution as the enclave does, never by its ARN.
    expect(trail.body.records[1]).toMatchObject({ data: { provisioningId: enclave.provisioningId } });
    expect(trail.text).not.toContain('arn:aws:states');
    const outsider = await ApiClient.as(stack, 'outsider');
    expect((await outsider.get(`/audit?entityId=${id}`)).status).toBe(404);
    await assertNoOrphans();
  });

  it.each([
    ['wrong-image', 'pcr_mismatch'],
    ['debug-mode', 'debug_mode'],
    ['expired-document', 'expired'],
    ['wrong-nonce', 'nonce_mismatch'],
    ['no-callback', 'attestation_timeout'],
  ] as const)('%s: the enclave fails with %s and its instance is terminated', async (fault, code) => {
    const id = await create(fault);
    const enclave = await settle(id, ['Running', 'Failed']);
    expect(enclave.status).toBe('Failed');
    expect(enclave.statusReason).toMatch(new RegExp(`^${code}: `));
    const instances = instancesOf(id);
    expect(instances).toHaveLength(1);
    expect(instances[0]!.state).toBe('terminated');
    const execution = executionOf(id);
    expect(execution.status).toBe('FAILED');
    expect(execution.error).toBe('EnclaveProvisioningFailed');
    expect(execution.path.slice(-2)).toEqual([STATES.compensate, STATES.provisioningFailed]);
    if (code !== 'attestation_timeout') {
      expect(enclave.attestation).toMatchObject({ verdict: 'refused', code });
    }
    await assertNoOrphans();
  });

  it('falls back to the next Availability Zone, with the same type, when EC2 has no capacity in the first', async () => {
    const [first, second] = LOCAL_PARENT_NETWORK.subnets;
    const [smallest] = chooseInstanceTypes(ENCLAVE_FIXTURE.configuration.resources);
    stack.enclaves.ec2.failNext('InsufficientInstanceCapacity', 1, {
      availabilityZone: first.availabilityZone,
    });
    const id = await create();
    const enclave = await settle(id, ['Running', 'Failed']);
    expect(enclave.status).toBe('Running');
    const execution = executionOf(id);
    expect(execution.path).toContain(STATES.launchFailed);
    expect(execution.path).toContain(STATES.nextAvailabilityZone);
    expect(execution.path).not.toContain(STATES.nextInstanceType);
    expect(instancesOf(id).map((i) => [i.instanceType, i.availabilityZone, i.subnetId])).toEqual([
      [smallest, second.availabilityZone, second.subnetId],
    ]);
    await assertNoOrphans();
  });

  it('falls back to the next instance type, in the first zone again, when no zone has the first', async () => {
    const candidates = chooseInstanceTypes(ENCLAVE_FIXTURE.configuration.resources);
    stack.enclaves.ec2.failNext('InsufficientInstanceCapacity', 1, { instanceType: candidates[0]! });
    // The type is not offered in the second zone (EC2's Unsupported, worded for the zone).
    stack.enclaves.ec2.failNext('Unsupported', 1, {
      instanceType: candidates[0]!,
      availabilityZone: LOCAL_PARENT_NETWORK.subnets[1].availabilityZone,
    });
    const id = await create();
    const enclave = await settle(id, ['Running', 'Failed']);
    expect(enclave.status).toBe('Running');
    const execution = executionOf(id);
    expect(execution.path.filter((s) => s === STATES.runInstances)).toHaveLength(3);
    expect(execution.path).toContain(STATES.nextAvailabilityZone);
    expect(execution.path).toContain(STATES.nextInstanceType);
    expect(instancesOf(id).map((i) => [i.instanceType, i.availabilityZone])).toEqual([
      [candidates[1], LOCAL_PARENT_NETWORK.subnets[0].availabilityZone],
    ]);
    await assertNoOrphans();
  });

  it('compensates when every candidate type lacks capacity in every zone', async () => {
    const candidates = chooseInstanceTypes(ENCLAVE_FIXTURE.configuration.resources);
    const zones = LOCAL_PARENT_NETWORK.subnets.length;
    stack.enclaves.ec2.failNext('InsufficientInstanceCapacity', candidates.length * zones);
    const id = await create();
    const enclave = await settle(id, ['Running', 'Failed']);
    expect(enclave.status).toBe('Failed');
    // The integration's cause carries EC2's wording, not its code: the reason names the code from it.
    expect(enclave.statusReason).toMatch(
      /^InsufficientInstanceCapacity: We currently do not have sufficient \S+ capacity .*\(Service: Ec2, Status Code: 500, Request ID: [0-9a-f-]+\)$/,
    );
    expect(instancesOf(id)).toEqual([]);
    expect(executionOf(id).path.filter((s) => s === STATES.runInstances)).toHaveLength(
      candidates.length * zones,
    );
    expect(executionOf(id).path).not.toContain(STATES.waitToRelaunch); // no capacity is not retried in place
  });

  it('launches again after a pause when EC2 throttles or is unavailable, with the same type', async () => {
    stack.enclaves.ec2.failNext('RequestLimitExceeded', 2);
    stack.enclaves.ec2.failNext('InternalError', 1);
    const id = await create();
    const enclave = await settle(id, ['Running', 'Failed']);
    expect(enclave.status).toBe('Running');
    const path = executionOf(id).path;
    expect(path.filter((s) => s === STATES.waitToRelaunch)).toHaveLength(3);
    expect(path.filter((s) => s === STATES.runInstances)).toHaveLength(4);
    expect(path).not.toContain(STATES.nextInstanceType);
    expect(instancesOf(id)).toHaveLength(1);
    await assertNoOrphans();
  });

  it('compensates once the relaunches are spent, naming the throttling', async () => {
    stack.enclaves.ec2.failNext('RequestLimitExceeded', WORKFLOW_TIMING.relaunchBackoffSeconds.length + 1);
    const id = await create();
    const enclave = await settle(id, ['Running', 'Failed']);
    expect(enclave.status).toBe('Failed');
    expect(enclave.statusReason).toMatch(
      /^RequestLimitExceeded: Request limit exceeded\. .*Status Code: 503/,
    );
    const path = executionOf(id).path;
    expect(path.filter((s) => s === STATES.waitToRelaunch)).toHaveLength(
      WORKFLOW_TIMING.relaunchBackoffSeconds.length,
    );
    expect(instancesOf(id)).toEqual([]);
  });

  it('compensates at once when EC2 refuses for good (not authorized), without pausing or another type', async () => {
    stack.enclaves.ec2.failNext('UnauthorizedOperation', 1);
    const id = await create();
    const enclave = await settle(id, ['Running', 'Failed']);
    expect(enclave.status).toBe('Failed');
    expect(enclave.statusReason).toMatch(/^UnauthorizedOperation: You are not authorized .*Status Code: 403/);
    const path = executionOf(id).path;
    expect(path.filter((s) => s === STATES.runInstances)).toHaveLength(1);
    expect(path).not.toContain(STATES.waitToRelaunch);
    expect(instancesOf(id)).toEqual([]);
  });
});

describe('callbacks and replays', () => {
  it('refuses a document that is not structurally an attestation document with 400, before looking at the wait', async () => {
    const id = await create('no-callback');
    const garbage = await postAttestation(
      id,
      'i-0123456789abcdef0',
      Buffer.from('not cbor').toString('base64'),
    );
    expect(garbage.status).toBe(400);
    expect(garbage.body.type).toMatch(/validation-failed$/);
    expect(await refusalsOf(id)).toEqual([]);
    await settle(id, ['Failed']);
  });

  it('refuses a second submission after activation, and a submission from another instance, with audit records', async () => {
    const id = await create();
    const enclave = await settle(id, ['Running', 'Failed']);
    expect(enclave.status).toBe('Running');
    const document = await stack.enclaves.nitro.attest({
      instanceId: enclave.instanceId!,
      image: LOCAL_DEFAULT_IMAGE,
      nonce: new Uint8Array(32),
    });
    const duplicate = await postAttestation(id, enclave.instanceId!, document);
    expect(duplicate.status).toBe(409);
    expect(duplicate.headers.get('content-type')).toMatch(/application\/problem\+json/);
    // Another instance learns nothing about the enclave, not even that it is Running.
    const other = await postAttestation(id, 'i-0fedcba9876543210', document);
    expect(other.status).toBe(403);
    expect(other.text).not.toContain('Running');
    expect((await refusalsOf(id)).map((r) => r.code)).toEqual(['attestation-not-awaited', 'wrong-instance']);
    const after = (await provider.get<Enclave>(`/enclaves/${id}`)).body;
    expect(after.version).toBe(enclave.version);
  });

  it('while the workflow waits: another instance is refused (403), the right one completes it once, a duplicate is refused (409)', async () => {
    const id = await create('no-callback');
    const instanceId = await waitUntilWaiting(id);
    const document = await attestAsParent(id);
    const wrong = await postAttestation(id, 'i-0fedcba9876543210', document);
    expect(wrong.status).toBe(403);
    const [first, second] = await Promise.all([
      postAttestation(id, instanceId, document),
      postAttestation(id, instanceId, document),
    ]);
    expect([first.status, second.status].sort()).toEqual([202, 409]);
    const enclave = await settle(id, ['Running', 'Failed']);
    expect(enclave.status, enclave.statusReason ?? '').toBe('Running');
    const codes = (await refusalsOf(id)).map((r) => r.code);
    expect(codes).toContain('wrong-instance');
    expect(codes).toContain('attestation-already-submitted');
    await assertNoOrphans();
  });

  it("a throttled SendTaskSuccess answers 503 and hands the wait back, so the agent's retry completes it", async () => {
    const id = await create('no-callback');
    const instanceId = await waitUntilWaiting(id);
    const document = await attestAsParent(id);
    const callbacks = stack.deps.workflow!.callbacks as {
      succeed: (t: string, o: unknown) => Promise<string>;
    };
    const succeed = callbacks.succeed;
    callbacks.succeed = async () => {
      callbacks.succeed = succeed;
      throw Object.assign(new Error('ThrottlingException'), { name: 'TaskCallbackError', transient: true });
    };
    let first = await postAttestation(id, instanceId, document);
    while (first.status === 409 && first.body.type?.endsWith('/attestation-wait-not-open')) {
      await new Promise((resolve) => setTimeout(resolve, 10));
      first = await postAttestation(id, instanceId, document);
    }
    expect(first.status).toBe(503);
    expect(first.headers.get('retry-after')).toBe('5');
    expect((await postAttestation(id, instanceId, document)).status).toBe(202);
    const enclave = await settle(id, ['Running', 'Failed']);
    expect(enclave.status, enclave.statusReason ?? '').toBe('Running');
  });

  it('a late document (after the wait timed out) is refused and changes nothing', async () => {
    const id = await create('no-callback');
    const enclave = await settle(id, ['Running', 'Failed']);
    expect(enclave.status).toBe('Failed');
    const instanceId = instancesOf(id)[0]!.instanceId;
    const document = await attestAsParent(id);
    const late = await postAttestation(id, instanceId, document);
    expect(late.status).toBe(409);
    expect((await provider.get<Enclave>(`/enclaves/${id}`)).body.version).toBe(enclave.version);
    expect((await refusalsOf(id)).map((r) => r.code)).toEqual(['attestation-not-awaited']);
  });

  it('a replayed document is refused: its nonce was consumed by the first verification', async () => {
    const id = await create();
    const enclave = await settle(id, ['Running', 'Failed']);
    const nonce = instancesOf(id)[0]!.tags[INSTANCE_TAGS.attestationNonce]!;
    const replay = await attestAsParent(id);
    const refused = await verifyAttestationStep(stack.deps, {
      enclaveId: id,
      // Another execution than the one that consumed the nonce: a replay.
      executionArn: `${executionOf(id).executionArn}-replay`,
      instanceId: enclave.instanceId,
      document: Buffer.from(replay).toString('base64'),
      nonce,
    }).catch((error: Error) => error);
    expect(refused).toBeInstanceOf(Error);
    expect((refused as Error).name).toBe(STEP_ERRORS.attestationRefused);
    expect((refused as Error).message).toMatch(/^nonce_replayed: /);
  });
});

describe('duplicate and stale executions', () => {
  it("a second execution for the same enclave ends Superseded and leaves the first one's parent alone", async () => {
    const id = await create('no-callback');
    await waitUntilWaiting(id);
    const duplicate = stack.enclaves.runner().start({ enclaveId: id });
    await duplicate.done;
    expect(duplicate.status).toBe('SUCCEEDED');
    expect(duplicate.path).toEqual([STATES.validate, STATES.superseded]);
    // A stale or duplicate execution's Compensate touches nothing either.
    const outcome = await compensateStep(stack.deps, {
      executionArn: duplicate.executionArn,
      state: { enclaveId: id, error: { Error: 'States.Timeout', Cause: 'late' } },
    });
    expect(outcome.terminatedInstances).toEqual([]);
    await stack.enclaves.ec2.waitForState(instancesOf(id)[0]!.instanceId, 'running');
    const [instance] = instancesOf(id);
    expect(instance!.state).toBe('running');
    // The owner's wait is still open: the right document completes it.
    const document = await attestAsParent(id);
    expect((await postAttestation(id, instance!.instanceId, document)).status).toBe(202);
    const enclave = await settle(id, ['Running', 'Failed']);
    expect(enclave.status, enclave.statusReason ?? '').toBe('Running');
    expect(enclave.provisioningId).not.toBe(provisioningIdOf(duplicate.executionArn));
    await assertNoOrphans();
  });
});

describe('the deployment region', () => {
  it('refuses an enclave in a region this deployment does not launch parents in, storing nothing', async () => {
    const res = await provider.post<{ errors: { field: string; message: string }[] }>('/enclaves', {
      ...ENCLAVE_FIXTURE,
      contractId,
      region: 'eu-west-1',
    });
    expect(res.status).toBe(422);
    expect(res.body.errors).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          field: 'region',
          message: expect.stringContaining('this deployment runs enclaves in eu-central-1 only'),
        }),
      ]),
    );
  });
});

describe('executions that end without their Catch', () => {
  it('an execution stopped from the console is compensated through its status-change event', async () => {
    const id = await create('no-callback');
    const instanceId = await waitUntilWaiting(id);
    const execution = executionOf(id);
    expect(await stack.enclaves.runner().stop(execution.executionArn)).toBe(true);
    expect(execution.status).toBe('ABORTED');
    expect(execution.path).not.toContain(STATES.compensate);
    const enclave = await settle(id, ['Failed']);
    expect(enclave.statusReason).toMatch(/^execution_aborted: /);
    await settleInstances(id, 'terminated');
    expect(instancesOf(id).map((i) => i.instanceId)).toEqual([instanceId]);
    await assertNoOrphans();
  });

  it('a stop while WaitForAttestation still records its token ends the execution cleanly', async () => {
    // The stop rejects the local wait before the race awaits it: no unhandled rejection may escape.
    const tokens = stack.deps.workflow!.taskTokens;
    const put = tokens.put.bind(tokens);
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    let entered!: () => void;
    const recording = new Promise<void>((resolve) => {
      entered = resolve;
    });
    tokens.put = async (...args: Parameters<typeof put>) => {
      entered();
      await gate;
      return put(...args);
    };
    try {
      const id = await create('no-callback');
      await stack.publishEvents();
      await recording;
      const execution = executionOf(id);
      const stopped = stack.enclaves.runner().stop(execution.executionArn);
      release();
      expect(await stopped).toBe(true);
      expect(execution.status).toBe('ABORTED');
      const enclave = await settle(id, ['Failed']);
      expect(enclave.statusReason).toMatch(/^execution_aborted: /);
      await settleInstances(id, 'terminated');
      await assertNoOrphans();
    } finally {
      tokens.put = put;
    }
  });
});

describe('resume checks what provisioning will check', () => {
  it('answers 422 instead of a resume the workflow would fail, changing nothing', async () => {
    const id = await create();
    await settle(id, ['Running', 'Failed']);
    const suspended = await provider.post<Enclave>(`/enclaves/${id}/suspend`, { reason: 'move' });
    expect(suspended.status).toBe(200);
    // As if the deployment had moved region since the enclave was created.
    const deps = stack.deps as { region?: string };
    const region = deps.region;
    deps.region = 'eu-west-1';
    try {
      const refused = await provider.post<{ errors: { field: string }[] }>(`/enclaves/${id}/resume`, {});
      expect(refused.status).toBe(422);
      expect(refused.body.errors).toContainEqual(expect.objectContaining({ field: 'region' }));
    } finally {
      deps.region = region;
    }
    expect((await provider.get<Enclave>(`/enclaves/${id}`)).body.version).toBe(suspended.body.version);
  });
});

describe('trust anchors', () => {
  it('without the local-stack hooks (as deployed) a simulator document is refused as untrusted_root', async () => {
    const id = await create();
    const enclave = await settle(id, ['Running', 'Failed']);
    const { nonce } = await stack.deps.workflow!.nonces.issue({ enclaveId: id }, 60);
    const document = await stack.enclaves.nitro.attest({
      instanceId: enclave.instanceId!,
      image: LOCAL_DEFAULT_IMAGE,
      nonce,
    });
    const input = {
      enclaveId: id,
      executionArn: executionOf(id).executionArn,
      instanceId: enclave.instanceId,
      document: Buffer.from(document).toString('base64'),
      nonce: Buffer.from(nonce).toString('base64'),
    };
    const { local: _local, ...deployed } = stack.deps;
    const refused = await verifyAttestationStep(deployed, input).catch((error: Error) => error);
    expect((refused as Error).message).toMatch(/^untrusted_root: /);
    // The same document with the simulator's root trusted (the local stack) verifies: the refusal above is
    // the trust anchor's doing, nothing else.
    await expect(verifyAttestationStep(stack.deps, input)).resolves.toMatchObject({
      matchedMeasurementSet: { id: expect.any(String) },
    });
  });
});

describe('suspend, resume and terminate reach the instances', () => {
  it('suspend stops the parent and voids the attestation; resume restarts the same parent and re-attests', async () => {
    const id = await create();
    const running = await settle(id, ['Running', 'Failed']);
    const suspended = await provider.post<Enclave>(`/enclaves/${id}/suspend`, { reason: 'quarterly review' });
    expect(suspended.status).toBe(200);
    expect(suspended.body.attestation).toMatchObject({ verdict: 'voided' });
    await settleInstances(id, 'stopped');
    const resumed = await provider.post<Enclave>(`/enclaves/${id}/resume`, {});
    expect(resumed.status, resumed.text).toBe(200);
    expect(resumed.body.status).toBe('Initializing');
    const again = await settle(id, ['Running', 'Failed']);
    expect(again.status, again.statusReason ?? '').toBe('Running');
    expect(again.instanceId).toBe(running.instanceId);
    expect(again.attestation).toMatchObject({ verdict: 'verified' });
    const [instance, ...others] = instancesOf(id);
    expect(others).toEqual([]);
    expect(instance).toMatchObject({ state: 'running', boots: 2 });
    expect(executionOf(id).path).toEqual(
      expect.arrayContaining([STATES.tagRestartNonce, STATES.startInstances, STATES.activate]),
    );
    await assertNoOrphans();
  });

  it("an edit of resources and image retires the stopped parent: it is terminated, and resume launches one that fits and fetches the enclave's image", async () => {
    const id = await create();
    const running = await settle(id, ['Running', 'Failed']);
    await provider.post<Enclave>(`/enclaves/${id}/suspend`, { reason: 'resize' });
    await settleInstances(id, 'stopped');
    const current = await provider.get<Enclave>(`/enclaves/${id}`);
    const configuration = structuredClone(ENCLAVE_FIXTURE.configuration) as Record<string, unknown> & {
      resources: { cpuCount: number; memoryMiB: number };
      image: Record<string, unknown>;
    };
    configuration.resources.cpuCount = 8;
    configuration.resources.memoryMiB = 16_384;
    // The same approved measurements, now fetched from the provider's own artifact host.
    const source = { url: 'https://artifacts.provider.example/eif/train-2.eif', sha256: 'ab'.repeat(32) };
    configuration.image.source = source;
    const edited = await provider.put<Enclave>(
      `/enclaves/${id}`,
      { configuration },
      { 'if-match': current.headers.get('etag')! },
    );
    expect(edited.status, edited.text).toBe(200);
    expect(edited.body.instanceId).toBeNull();
    await settleInstances(id, 'terminated');
    expect((await provider.post<Enclave>(`/enclaves/${id}/resume`, {})).status).toBe(200);
    const again = await settle(id, ['Running', 'Failed']);
    const parent = instancesOf(id).find((i) => i.instanceId !== running.instanceId)!;
    expect(parent.tags[INSTANCE_TAGS.cpuCount]).toBe('8');
    expect(parent.tags[INSTANCE_TAGS.imageUrl]).toBe(source.url);
    expect(parent.tags[INSTANCE_TAGS.imageSha256]).toBe(source.sha256);
    // The new parent's agent fetches the enclave's own image, not the default: the provider's host is not
    // reachable from this machine, so the agent says why and submits nothing, and the wait times out.
    expect(again.status).toBe('Failed');
    expect(again.statusReason).toMatch(/^attestation_timeout/);
    const failure = stack.enclaves.parents.logsOf(parent.instanceId).find((line) => line.level === 'error');
    expect(failure?.message).toMatch(/the image source did not answer/);
    expect(instancesOf(id).find((i) => i.instanceId === running.instanceId)!.state).toBe('terminated');
    await assertNoOrphans();
  });

  it('a resume right after a suspend (the parent not stopped yet) still re-attests and ends Running', async () => {
    const id = await create();
    const running = await settle(id, ['Running', 'Failed']);
    await provider.post<Enclave>(`/enclaves/${id}/suspend`, { reason: 'blip' });
    const resumed = await provider.post<Enclave>(`/enclaves/${id}/resume`, {});
    expect(resumed.status, resumed.text).toBe(200);
    const again = await settle(id, ['Running', 'Failed']);
    expect(again.status, again.statusReason ?? '').toBe('Running');
    expect(again.instanceId).toBe(running.instanceId);
    expect(again.version).toBeGreaterThan(resumed.body.version);
    await assertNoOrphans();
  });

  it('concurrent suspend and terminate end Terminated with the instance terminated', async () => {
    const id = await create();
    await settle(id, ['Running', 'Failed']);
    const [suspend, terminate] = await Promise.all([
      provider.post<Enclave>(`/enclaves/${id}/suspend`, { reason: 'pause' }),
      consumer.post<Enclave>(`/enclaves/${id}/terminate`, { reason: 'done' }),
    ]);
    expect(terminate.status, terminate.text).toBe(200);
    expect([200, 409]).toContain(suspend.status);
    const final = (await provider.get<Enclave>(`/enclaves/${id}`)).body;
    expect(final.status).toBe('Terminated');
    await settleInstances(id, 'terminated');
    await assertNoOrphans();
  });

  it('terminating while provisioning runs ends with the instance terminated and the enclave Terminated', async () => {
    const id = await create('no-callback');
    const deadline = Date.now() + 10_000;
    while (instancesOf(id).length === 0) {
      await stack.publishEvents();
      if (Date.now() > deadline) throw new Error('never launched');
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    const terminated = await provider.post<Enclave>(`/enclaves/${id}/terminate`, {
      reason: 'changed my mind',
    });
    expect(terminated.status).toBe(200);
    await stack.enclaves.runner().idle();
    await settleInstances(id, 'terminated');
    expect((await provider.get<Enclave>(`/enclaves/${id}`)).body.status).toBe('Terminated');
    await assertNoOrphans();
  });
});

describe('parents that die out of band (EC2 state-change events)', () => {
  const trailOf = async (id: string) =>
    (
      await provider.get<{ records: { action: string; data: Record<string, unknown> }[] }>(
        `/audit?entityId=${id}`,
      )
    ).body.records;

  it('an operator terminating a Running parent in the console fails the enclave at once, audited', async () => {
    const id = await create();
    const running = await settle(id, ['Running', 'Failed']);
    expect(running.status).toBe('Running');
    // The console's TerminateInstances: not the platform, not through its roles.
    await stack.enclaves.ec2.terminateInstances({ InstanceIds: [running.instanceId!] });
    const failed = await settle(id, ['Failed'], 5_000);
    expect(failed.statusReason).toMatch(
      new RegExp(
        `^parent_terminated: The parent instance ${running.instanceId} is (shutting-down|terminated): it was terminated outside the platform`,
      ),
    );
    expect(failed.attestation).toMatchObject({ verdict: 'refused', code: 'parent_terminated' });
    expect((await trailOf(id)).at(-1)).toMatchObject({
      action: 'fail',
      data: { from: 'Running', code: 'parent_terminated', instanceId: running.instanceId },
    });
    await assertNoOrphans();
  });

  it('a Running parent stopped out of band (a host failure, a retirement) fails the enclave, and the parent is terminated', async () => {
    const id = await create();
    const running = await settle(id, ['Running', 'Failed']);
    await stack.enclaves.ec2.stopInstances({ InstanceIds: [running.instanceId!] });
    const failed = await settle(id, ['Failed'], 5_000);
    expect(failed.statusReason).toMatch(/^parent_stopped: The parent instance \S+ is (stopping|stopped)/);
    // EnclaveFailed's enforcement: a failed enclave keeps no parent.
    await settleInstances(id, 'terminated');
    await assertNoOrphans();
  });

  it("the platform's own stop (suspend) and a late event for a parent running again change nothing", async () => {
    const id = await create();
    const running = await settle(id, ['Running', 'Failed']);
    await provider.post(`/enclaves/${id}/suspend`, { reason: 'review' });
    await settleInstances(id, 'stopped');
    expect((await provider.get<Enclave>(`/enclaves/${id}`)).body.status).toBe('Suspended');
    await provider.post(`/enclaves/${id}/resume`, {});
    expect((await settle(id, ['Running', 'Failed'])).status).toBe('Running');
    // The suspend's "stopped" delivered late (EventBridge retries): EC2 says the parent runs, so it is stale.
    const outcome = await enforce(stack.deps, {
      kind: 'instance',
      instanceId: running.instanceId!,
      state: 'stopped',
    });
    expect(outcome).toEqual({
      instanceId: running.instanceId,
      enclaveId: id,
      status: null,
      outcome: 'stale',
    });
    // An instance that is no enclave's parent is ignored.
    expect(
      await enforce(stack.deps, { kind: 'instance', instanceId: 'i-0123456789abcdef0', state: 'terminated' }),
    ).toEqual({
      instanceId: 'i-0123456789abcdef0',
      enclaveId: null,
      status: null,
      outcome: 'none',
    });
    expect((await provider.get<Enclave>(`/enclaves/${id}`)).body.status).toBe('Running');
    await assertNoOrphans();
  });
});
