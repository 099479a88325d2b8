/**
 * Enforcement of enclave statuses on EC2, through the EventBridge handler: real PGlite, enclaves moved
 * between statuses by the real use cases (so the events are the ones production publishes, drained from
 * the outbox as the publisher does), and the EC2 simulator behind SimulatedInstanceControl.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Ec2Simulator } from '../../infra/local/services/ec2/ec2-simulator.ts';
import { SimulatedInstanceControl } from '../../infra/local/services/ec2/simulated-instance-control.ts';
import { GENESIS_HASH } from '../../shared/audit/audit-chain.ts';
import { auditedWrite, type DomainEvent } from '../../shared/audit/audited-write.ts';
import { suspendContract, terminateContract } from '../../shared/contracts/contract-service.ts';
import { loadMigrations, migrate } from '../../shared/database/migrate.ts';
import { PgliteDatabase } from '../../shared/database/pglite-database.ts';
import { newEnclave } from '../../shared/domain/enclave.ts';
import {
  type ContractEnforcement,
  ENFORCEMENT_DETAIL_TYPES,
  type EnclaveEnforcement,
  EXECUTION_END_EVENT,
  enforcementTriggerOf,
  enforceParentStateChange,
  INSTANCE_STATE_EVENT,
} from '../../shared/enclaves/enclave-enforcement.ts';
import {
  resumeEnclave,
  suspendEnclaveAsPlatform,
  terminateEnclaveAsPlatform,
} from '../../shared/enclaves/enclave-service.ts';
import { activateEnclave, claimProvisioning, failEnclave } from '../../shared/enclaves/enclave-steps.ts';
import { insertEnclaveMutation, loadEnclave } from '../../shared/enclaves/enclave-store.ts';
import { compensateStep } from '../../shared/enclaves/provisioning-steps.ts';
import { STEP_ERRORS } from '../../shared/enclaves/provisioning-workflow.ts';
import { EVENT_SOURCE } from '../../shared/events/event-bus.ts';
import { InProcessBus } from '../../shared/events/in-process-bus.ts';
import { publishOutbox } from '../../shared/events/outbox-publisher.ts';
import type { Dependencies } from '../../shared/runtime/dependencies.ts';
import { useRuntime } from '../../shared/runtime/runtime.ts';
import { LocalSigner } from '../../shared/signing/local-signer.ts';
import { InstanceControlError } from '../../shared/workflow/tagged-instance-control.ts';
import { INSTANCE_TAGS } from '../../shared/workflow/workflow-ports.ts';
import { type ContractParties, contractParties } from '../support/contract-parties.ts';
import {
  launchInstance,
  launchTaggedParent,
  pcr,
  SIGNED_IMAGE,
  SIGNED_IMAGE_CONFIGURATION,
} from '../support/enclaves.ts';

const SIGNER = SIGNED_IMAGE.pcr8;
const IMAGE = SIGNED_IMAGE;
const CONFIGURATION = SIGNED_IMAGE_CONFIGURATION;

const notUsed = (): never => {
  throw new Error('not used by enforcement');
};

let db: PgliteDatabase;
let deps: Dependencies;
let parties: ContractParties;
let clock = new Date('2027-01-01T00:00:00.000Z');
const ec2 = new Ec2Simulator({ seed: 'enclave-enforcement' });
const bus = new InProcessBus();
let handler: (event: unknown) => Promise<unknown>;

beforeAll(async () => {
  db = await PgliteDatabase.open();
  await migrate(db, await loadMigrations());
  deps = {
    db,
    signer: await LocalSigner.create(),
    now: () => clock,
    newId: randomUUID,
    workflow: {
      nonces: { issue: notUsed, consume: notUsed },
      taskTokens: { put: notUsed, take: notUsed, peek: notUsed, discard: notUsed, release: notUsed },
      callbacks: { succeed: notUsed, heartbeat: notUsed },
      instances: new SimulatedInstanceControl(ec2),
      parentRoleName: '',
    },
  };
  parties = await contractParties(deps);
  useRuntime(deps);
  ({ handler } = await import('../../functions/events/enforce-enclave-state.ts'));
});
afterAll(async () => {
  ec2.close();
  await db?.close();
});

const tick = () => {
  clock = new Date(clock.getTime() + 1000);
};

/** The EventBridge event the outbox publisher puts for `e` (as EventBridgeBus shapes it). */
function eventBridgeEvent(e: DomainEvent) {
  return {
    version: '0',
    id: randomUUID(),
    source: EVENT_SOURCE,
    account: '123456789012',
    time: e.occurredAt,
    region: 'eu-central-1',
    resources: [],
    'detail-type': e.type,
    detail: {
      eventId: e.id,
      aggregateType: e.aggregateType,
      aggregateId: e.aggregateId,
      ...(e.payload as object),
    },
  };
}

/** Drains the outbox and answers the latest published `type` event of `aggregateId`, as EventBridge delivers it. */
async function published(type: string, aggregateId: string) {
  while ((await publishOutbox(db, bus)).published > 0);
  const event = bus.published.findLast((e) => e.type === type && e.aggregateId === aggregateId);
  if (!event) throw new Error(`no ${type} published for ${aggregateId}`);
  return eventBridgeEvent(event);
}

async function launch(enclaveId: string, contractId: string): Promise<string> {
  const id = await launchTaggedParent(ec2, enclaveId, contractId);
  await ec2.waitForState(id, 'running');
  return id;
}

const stateOf = (instanceId: string) => ec2.inventory().find((i) => i.instanceId === instanceId)!.state;

interface ContractUnderTest {
  readonly contractId: string;
  readonly setId: string;
}

/**
 * An Initializing enclave (as create writes it) under `under` or a new Active contract with an approved
 * set, with its parent instance running.
 */
async function initializing(under?: ContractUnderTest) {
  const contract = under?.contractId ?? (await parties.activeContract());
  const setId = under?.setId ?? (await parties.measurementSet(contract, IMAGE));
  tick();
  const at = clock.toISOString();
  const e = newEnclave(
    {
      id: randomUUID(),
      name: 'trainer-1',
      providerId: parties.provider.id,
      contractId: contract,
      configuration: CONFIGURATION,
      region: 'eu-central-1',
    },
    at,
  );
  const { applied } = await auditedWrite(db, {
    ...insertEnclaveMutation(e, { requireActiveContract: true }),
    audit: {
      entityType: 'enclave',
      entityId: e.id,
      seq: 1,
      action: 'create',
      actorId: parties.provider.id,
      occurredAt: at,
      data: { contractId: contract, status: e.status },
    },
    prevHash: GENESIS_HASH,
    event: {
      id: randomUUID(),
      aggregateType: 'enclave',
      aggregateId: e.id,
      type: 'EnclaveCreated',
      occurredAt: at,
      payload: { enclaveId: e.id, contractId: contract, status: e.status, version: 1 },
    },
  });
  expect(applied).toBe(true);
  const instanceId = await launch(e.id, contract);
  return { enclaveId: e.id, contractId: contract, setId, instanceId };
}

/** A Running enclave on a running parent instance (activated with a verified attestation). */
async function running(under?: ContractUnderTest) {
  const s = await initializing(under);
  tick();
  // The workflow claims the enclave for its execution (Validate) before it may activate it.
  const executionArn = `arn:aws:states:eu-central-1:000000000000:execution:EnclaveProvisioning:${s.enclaveId}`;
  await claimProvisioning(deps, s.enclaveId, executionArn);
  await activateEnclave(deps, {
    enclaveId: s.enclaveId,
    executionArn,
    instanceId: s.instanceId,
    attestation: {
      matchedMeasurementSet: { id: s.setId },
      claims: {
        moduleId: `${s.instanceId}-enc0123456789abcdef`,
        digest: 'SHA384',
        timestamp: clock.toISOString(),
        pcrs: { '0': IMAGE.pcr0, '1': IMAGE.pcr1, '2': IMAGE.pcr2, '4': pcr('4'), '8': SIGNER },
        leafValidFrom: '2027-01-01T00:00:00.000Z',
        leafValidTo: '2027-01-02T00:00:00.000Z',
        nonce: 'ab'.repeat(32),
        publicKey: null,
        userData: null,
      },
    },
  });
  return s;
}

async function suspended() {
  const s = await running();
  tick();
  expect((await suspendEnclaveAsPlatform(deps, s.enclaveId, 'incident')).changed).toBe(true);
  return s;
}

describe('enforce-enclave-state: enclave events', () => {
  it('EnclaveSuspended stops the running parent of a Suspended enclave', async () => {
    const { enclaveId, instanceId } = await suspended();

    const result = await handler(await published('EnclaveSuspended', enclaveId));

    expect(result).toEqual({ enclaveId, status: 'Suspended', stopped: [instanceId], terminated: [] });
    await ec2.waitForState(instanceId, 'stopped');
  });

  it('a duplicate delivery is a no-op', async () => {
    const { enclaveId, instanceId } = await suspended();
    const event = await published('EnclaveSuspended', enclaveId);
    await handler(event);
    await ec2.waitForState(instanceId, 'stopped');

    const again = await handler(event);

    expect(again).toEqual({ enclaveId, status: 'Suspended', stopped: [], terminated: [] });
    expect(stateOf(instanceId)).toBe('stopped');
  });

  it('EnclaveTerminated terminates every parent of the enclave, stopped ones included, and no other', async () => {
    const { enclaveId, contractId, instanceId } = await running();
    // A second parent whose launch response was lost, already stopped: found by the tag all the same.
    const orphan = await launch(enclaveId, contractId);
    await ec2.stopInstances({ InstanceIds: [orphan] });
    await ec2.waitForState(orphan, 'stopped');
    const bystander = await running();
    tick();
    await terminateEnclaveAsPlatform(deps, enclaveId, 'done');

    const result = (await handler(await published('EnclaveTerminated', enclaveId))) as EnclaveEnforcement;

    expect(result).toMatchObject({ enclaveId, status: 'Terminated', stopped: [] });
    expect([...result.terminated].sort()).toEqual([instanceId, orphan].sort());
    await ec2.waitForState(instanceId, 'terminated');
    await ec2.waitForState(orphan, 'terminated');
    expect(stateOf(bystander.instanceId)).toBe('running');
    expect(await handler(await published('EnclaveTerminated', enclaveId))).toEqual({
      enclaveId,
      status: 'Terminated',
      stopped: [],
      terminated: [],
    });
  });

  it('EnclaveFailed terminates the parent of a Failed enclave', async () => {
    const { enclaveId, instanceId } = await initializing();
    tick();
    await failEnclave(deps, {
      enclaveId,
      instanceId,
      reason: { code: 'timeout', message: 'no attestation' },
    });

    const result = await handler(await published('EnclaveFailed', enclaveId));

    expect(result).toEqual({ enclaveId, status: 'Failed', stopped: [], terminated: [instanceId] });
    await ec2.waitForState(instanceId, 'terminated');
  });

  it('a stale EnclaveSuspended for an enclave terminated since terminates', async () => {
    const { enclaveId, instanceId } = await suspended();
    const stale = await published('EnclaveSuspended', enclaveId);
    tick();
    await terminateEnclaveAsPlatform(deps, enclaveId, 'contract ended');

    const result = await handler(stale);

    expect(result).toEqual({ enclaveId, status: 'Terminated', stopped: [], terminated: [instanceId] });
    await ec2.waitForState(instanceId, 'terminated');
  });

  it('a stale EnclaveSuspended for an enclave resumed since leaves its parent to the workflow', async () => {
    const { enclaveId, instanceId } = await suspended();
    const stale = await published('EnclaveSuspended', enclaveId);
    tick();
    await resumeEnclave(deps, parties.provider, enclaveId, 'incident closed', undefined);

    const result = await handler(stale);

    expect(result).toEqual({ enclaveId, status: 'Initializing', stopped: [], terminated: [] });
    expect(stateOf(instanceId)).toBe('running');
  });

  it('an enclave unknown to the database is left alone', async () => {
    const enclaveId = randomUUID();
    const contractId = randomUUID();
    const instanceId = await launch(enclaveId, contractId);
    const result = await handler({
      source: EVENT_SOURCE,
      'detail-type': 'EnclaveTerminated',
      detail: { enclaveId, aggregateId: enclaveId },
    });
    expect(result).toEqual({ enclaveId, status: null, stopped: [], terminated: [] });
    expect(stateOf(instanceId)).toBe('running');
  });

  it('throws a transient error when EC2 is throttling, and acts on the retry', async () => {
    const { enclaveId, instanceId } = await running();
    tick();
    await terminateEnclaveAsPlatform(deps, enclaveId, 'done');
    const event = await published('EnclaveTerminated', enclaveId);
    ec2.failNext('RequestLimitExceeded', 1, { operation: 'TerminateInstances' });

    const error = await handler(event).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(InstanceControlError);
    expect((error as InstanceControlError).transient).toBe(true);
    expect(stateOf(instanceId)).toBe('running');
    await handler(event);
    await ec2.waitForState(instanceId, 'terminated');
  });
});

describe('enforce-enclave-state: contract events', () => {
  it('a contract suspension suspends its Running enclaves and stops their parents at once; their events find nothing left', async () => {
    const first = await running();
    const second = await running(first);
    tick();
    await suspendContract(deps, parties.consumer, first.contractId, 'data quality review', undefined);

    const result = (await handler(
      await published('ContractSuspended', first.contractId),
    )) as ContractEnforcement;

    expect(result).toMatchObject({ contractId: first.contractId, terminated: [], deferred: [] });
    expect([...result.suspended].sort()).toEqual([first.enclaveId, second.enclaveId].sort());
    expect(result.enclaves.map((e) => [e.enclaveId, e.status, e.stopped, e.terminated]).sort()).toEqual(
      [
        [first.enclaveId, 'Suspended', [first.instanceId], []],
        [second.enclaveId, 'Suspended', [second.instanceId], []],
      ].sort(),
    );
    for (const s of [first, second]) {
      expect((await loadEnclave(db, s.enclaveId))!.enclave.status).toBe('Suspended');
      // Stopped before the enclave's own event is delivered, which then has nothing left to stop.
      await ec2.waitForState(s.instanceId, 'stopped');
      expect(await handler(await published('EnclaveSuspended', s.enclaveId))).toEqual({
        enclaveId: s.enclaveId,
        status: 'Suspended',
        stopped: [],
        terminated: [],
      });
    }
    // Delivered again: nothing left to suspend.
    expect(await handler(await published('ContractSuspended', first.contractId))).toEqual({
      contractId: first.contractId,
      suspended: [],
      terminated: [],
      enclaves: [],
      deferred: [],
    });
  });

  it('a contract termination terminates its enclaves and their parents at once', async () => {
    const s = await running();
    tick();
    await terminateContract(deps, parties.provider, s.contractId, 'breach', undefined);

    expect(await handler(await published('ContractTerminated', s.contractId))).toEqual({
      contractId: s.contractId,
      suspended: [],
      terminated: [s.enclaveId],
      enclaves: [{ enclaveId: s.enclaveId, status: 'Terminated', stopped: [], terminated: [s.instanceId] }],
      deferred: [],
    });
    await ec2.waitForState(s.instanceId, 'terminated');
    expect(await handler(await published('EnclaveTerminated', s.enclaveId))).toEqual({
      enclaveId: s.enclaveId,
      status: 'Terminated',
      stopped: [],
      terminated: [],
    });
  });

  it('leaves a parent EC2 refuses now to its enclave event, without failing the contract event', async () => {
    const first = await running();
    const second = await running(first);
    tick();
    ec2.failNext('RequestLimitExceeded', 1, { operation: 'StopInstances' });
    await suspendContract(deps, parties.provider, first.contractId, 'audit', undefined);

    const result = (await handler(
      await published('ContractSuspended', first.contractId),
    )) as ContractEnforcement;

    expect(result.deferred).toHaveLength(1);
    const [deferred] = result.deferred;
    const reached = [first, second].find((s) => s.enclaveId !== deferred)!;
    const left = [first, second].find((s) => s.enclaveId === deferred)!;
    expect(result.enclaves.map((e) => e.enclaveId)).toEqual([reached.enclaveId]);
    await ec2.waitForState(reached.instanceId, 'stopped');
    expect(stateOf(left.instanceId)).toBe('running');
    // The enclave's own event, delivered as always, stops it.
    expect(await handler(await published('EnclaveSuspended', left.enclaveId))).toMatchObject({
      stopped: [left.instanceId],
    });
    await ec2.waitForState(left.instanceId, 'stopped');
  });
});

const STATE_MACHINE_ARN = 'arn:aws:states:eu-central-1:123456789012:stateMachine:EnclaveProvisioning';

/** Step Functions' status-change event (default bus) for an execution of the provisioning machine. */
function executionEnded(executionArn: string, status: string, input: unknown) {
  return {
    version: '0',
    id: randomUUID(),
    source: EXECUTION_END_EVENT.source,
    account: '123456789012',
    time: clock.toISOString(),
    region: 'eu-central-1',
    resources: [executionArn],
    'detail-type': EXECUTION_END_EVENT.detailType,
    detail: {
      executionArn,
      stateMachineArn: STATE_MACHINE_ARN,
      name: executionArn.split(':').at(-1),
      status,
      startDate: clock.getTime() - 1_800_000,
      stopDate: clock.getTime(),
      input: typeof input === 'string' ? input : JSON.stringify(input),
      output: null,
      inputDetails: { included: true },
    },
  };
}

const executionArnOf = (name: string) =>
  `${STATE_MACHINE_ARN.replace(':stateMachine:', ':execution:')}:${name}`;

describe('enforce-enclave-state: provisioning executions that end without their Catch', () => {
  it.each([
    ['TIMED_OUT', 'execution_timed_out'],
    ['ABORTED', 'execution_aborted'],
  ])(
    '%s of the owning execution fails the enclave and terminates its tagged parents',
    async (status, code) => {
      const { enclaveId, contractId, instanceId } = await initializing();
      // A second parent whose launch answer was lost: found by its tag all the same.
      const orphan = await launch(enclaveId, contractId);
      const executionArn = executionArnOf(`${enclaveId}-owner`);
      await claimProvisioning(deps, enclaveId, executionArn);
      tick();

      const result = (await handler(executionEnded(executionArn, status, { enclaveId }))) as {
        status: string;
        terminatedInstances: string[];
        reason: string;
      };

      expect(result).toMatchObject({ enclaveId, status: 'Failed' });
      expect(result.reason.startsWith(`${code}: `)).toBe(true);
      expect([...result.terminatedInstances].sort()).toEqual([instanceId, orphan].sort());
      const { enclave } = (await loadEnclave(db, enclaveId))!;
      expect(enclave.status).toBe('Failed');
      expect(enclave.statusReason).toMatch(new RegExp(`^${code}: `));
      await ec2.waitForState(instanceId, 'terminated');
      await ec2.waitForState(orphan, 'terminated');
      // Delivered again: nothing changes.
      expect(await handler(executionEnded(executionArn, status, { enclaveId }))).toMatchObject({
        enclaveId,
        status: 'Failed',
      });
    },
  );

  it('an execution that does not own the enclave (superseded, a duplicate) changes nothing', async () => {
    const { enclaveId, instanceId } = await initializing();
    await claimProvisioning(deps, enclaveId, executionArnOf(`${enclaveId}-owner`));
    tick();

    const result = await handler(
      executionEnded(executionArnOf(`${enclaveId}-duplicate`), 'TIMED_OUT', { enclaveId }),
    );

    expect(result).toMatchObject({ enclaveId, status: 'Initializing', terminatedInstances: [] });
    expect((await loadEnclave(db, enclaveId))!.enclave.status).toBe('Initializing');
    expect(stateOf(instanceId)).toBe('running');
  });

  it("Compensate of an execution that failed before its claim fails an enclave no execution claimed, and no other's", async () => {
    const unclaimed = await initializing();
    const failedEarly = executionArnOf(`${unclaimed.enclaveId}-early`);
    const state = (enclaveId: string) => ({
      enclaveId,
      error: { Error: STEP_ERRORS.transient, Cause: 'A dependency was unavailable; retry.' },
    });
    tick();
    const outcome = await compensateStep(deps, {
      executionArn: failedEarly,
      state: state(unclaimed.enclaveId),
    });
    expect(outcome).toMatchObject({ status: 'Failed', terminatedInstances: [unclaimed.instanceId] });
    expect((await loadEnclave(db, unclaimed.enclaveId))!.enclave).toMatchObject({
      status: 'Failed',
      executionArn: failedEarly,
    });

    // Claimed by another execution meanwhile: a late failure before this one's claim touches nothing.
    const owned = await initializing();
    await claimProvisioning(deps, owned.enclaveId, executionArnOf(`${owned.enclaveId}-owner`));
    tick();
    const ignored = await compensateStep(deps, {
      executionArn: executionArnOf(`${owned.enclaveId}-early`),
      state: state(owned.enclaveId),
    });
    expect(ignored).toMatchObject({ status: 'Initializing', terminatedInstances: [] });
    expect(stateOf(owned.instanceId)).toBe('running');
  });

  it('a Running enclave whose execution is aborted afterwards is left running', async () => {
    const { enclaveId, instanceId } = await running();
    const executionArn = `arn:aws:states:eu-central-1:000000000000:execution:EnclaveProvisioning:${enclaveId}`;

    expect(await handler(executionEnded(executionArn, 'ABORTED', { enclaveId }))).toMatchObject({
      enclaveId,
      status: 'Running',
      terminatedInstances: [],
    });
    expect(stateOf(instanceId)).toBe('running');
  });

  it('ignores other statuses (the Catch compensated them), and refuses an input without an enclave id', async () => {
    const { enclaveId, instanceId } = await initializing();
    const executionArn = executionArnOf(`${enclaveId}-owner`);
    await claimProvisioning(deps, enclaveId, executionArn);
    for (const status of ['FAILED', 'SUCCEEDED', 'RUNNING']) {
      expect(await handler(executionEnded(executionArn, status, { enclaveId }))).toEqual({
        ignored: EXECUTION_END_EVENT.detailType,
      });
    }
    expect(stateOf(instanceId)).toBe('running');
    await expect(handler(executionEnded(executionArn, 'TIMED_OUT', { id: enclaveId }))).rejects.toThrow();
    await expect(handler(executionEnded(executionArn, 'TIMED_OUT', '{not json'))).rejects.toThrow();
    await expect(
      handler({ ...executionEnded(executionArn, 'ABORTED', { enclaveId }), detail: { status: 'ABORTED' } }),
    ).rejects.toThrow();
    expect((await loadEnclave(db, enclaveId))!.enclave.status).toBe('Initializing');
  });
});

describe('enforce-enclave-state: EC2 state changes of parents (out of band)', () => {
  /** EC2's event as EventBridge delivers it (default bus). */
  const ec2Event = (instanceId: string, state: string) => ({
    version: '0',
    id: randomUUID(),
    'detail-type': INSTANCE_STATE_EVENT.detailType,
    source: INSTANCE_STATE_EVENT.source,
    account: '000000000000',
    time: '2027-01-01T00:00:00Z',
    region: 'eu-central-1',
    resources: [`arn:aws:ec2:eu-central-1:000000000000:instance/${instanceId}`],
    detail: { 'instance-id': instanceId, state },
  });

  it('fails the Running enclave whose parent EC2 reports terminated, audited and announced', async () => {
    const { enclaveId, instanceId } = await running();
    await ec2.terminateInstances({ InstanceIds: [instanceId] });
    tick();
    expect(await handler(ec2Event(instanceId, 'shutting-down'))).toEqual({
      instanceId,
      enclaveId,
      status: 'Running',
      outcome: 'failed',
    });
    const { enclave } = (await loadEnclave(db, enclaveId))!;
    expect(enclave.status).toBe('Failed');
    expect(enclave.statusReason).toMatch(
      /^parent_terminated: The parent instance i-\S+ is (shutting-down|terminated): /,
    );
    const failed = await published('EnclaveFailed', enclaveId);
    expect(failed.detail).toMatchObject({ enclaveId, instanceId });
    // Repeated (EventBridge delivers at least once): nothing left to do.
    expect(await handler(ec2Event(instanceId, 'terminated'))).toMatchObject({
      status: 'Failed',
      outcome: 'none',
    });
  });

  it('calls a stopped parent stopped, and leaves alone a parent EC2 says runs (a late event)', async () => {
    const stale = await running();
    expect(await handler(ec2Event(stale.instanceId, 'stopped'))).toMatchObject({ outcome: 'stale' });
    expect((await loadEnclave(db, stale.enclaveId))!.enclave.status).toBe('Running');
    await ec2.stopInstances({ InstanceIds: [stale.instanceId] });
    tick();
    expect(await handler(ec2Event(stale.instanceId, 'stopping'))).toMatchObject({ outcome: 'failed' });
    expect((await loadEnclave(db, stale.enclaveId))!.enclave.statusReason).toMatch(/^parent_stopped: /);
  });

  it('ignores the states in which an enclave runs, instances of no enclave, and refuses a malformed one', async () => {
    const { instanceId } = await running();
    for (const state of ['pending', 'running']) {
      expect(await handler(ec2Event(instanceId, state))).toEqual({
        ignored: INSTANCE_STATE_EVENT.detailType,
      });
    }
    expect(await handler(ec2Event('i-0aaaaaaaaaaaaaaaa', 'terminated'))).toEqual({
      instanceId: 'i-0aaaaaaaaaaaaaaaa',
      enclaveId: null,
      status: null,
      outcome: 'none',
    });
    await expect(handler(ec2Event('not-an-instance', 'terminated'))).rejects.toThrow();
  });

  it("looks at EC2 before the database: another team's instance, or a late event, never reaches it", async () => {
    const noDatabase = {
      ...deps,
      db: new Proxy(deps.db, {
        get: () => {
          throw new Error('the database was reached');
        },
      }),
    };
    const stranger = await launchInstance(ec2);
    await ec2.terminateInstances({ InstanceIds: [stranger] });
    const trigger = { kind: 'instance', instanceId: stranger, state: 'terminated' } as const;
    expect(await enforceParentStateChange(noDatabase, trigger)).toEqual({
      instanceId: stranger,
      enclaveId: null,
      status: null,
      outcome: 'none',
    });
    const { enclaveId, instanceId } = await running();
    expect(
      await enforceParentStateChange(noDatabase, { kind: 'instance', instanceId, state: 'stopped' }),
    ).toEqual({ instanceId, enclaveId, status: null, outcome: 'stale' });
    // A tag names, it does not prove: the enclave must be Running on that very instance.
    // (Anybody with ec2:CreateTags could tag an instance of theirs so.)
    const impostor = await launchInstance(ec2, [{ Key: INSTANCE_TAGS.enclaveId, Value: enclaveId }]);
    await ec2.terminateInstances({ InstanceIds: [impostor] });
    expect(
      await enforceParentStateChange(deps, { kind: 'instance', instanceId: impostor, state: 'terminated' }),
    ).toEqual({ instanceId: impostor, enclaveId, status: 'Running', outcome: 'none' });
    expect((await loadEnclave(db, enclaveId))!.enclave.status).toBe('Running');
  });
});

describe('enforce-enclave-state: events it does not act on', () => {
  it('ignores other detail-types and other sources', async () => {
    const { enclaveId, instanceId } = await running();
    expect(await handler(await published('EnclaveActivated', enclaveId))).toEqual({
      ignored: 'EnclaveActivated',
    });
    tick();
    await terminateEnclaveAsPlatform(deps, enclaveId, 'done');
    const event = await published('EnclaveTerminated', enclaveId);
    expect(await handler({ ...event, source: 'someone.else' })).toEqual({ ignored: 'EnclaveTerminated' });
    expect(stateOf(instanceId)).toBe('running');
  });

  it('reads the contract id of every contract event from aggregateId, the enclave id from enclaveId', () => {
    const id = randomUUID();
    for (const type of ENFORCEMENT_DETAIL_TYPES.contract) {
      expect(enforcementTriggerOf(type, { aggregateId: id, contractId: id })).toEqual({
        kind: 'contract',
        contractId: id,
      });
    }
    for (const type of ENFORCEMENT_DETAIL_TYPES.enclave) {
      expect(enforcementTriggerOf(type, { aggregateId: id, enclaveId: id })).toEqual({
        kind: 'enclave',
        enclaveId: id,
      });
    }
    expect(enforcementTriggerOf('EnclaveResumed', { enclaveId: id })).toBeNull();
  });

  it('refuses a handled event without its id (retried, then dead-lettered)', async () => {
    await expect(
      handler({ source: EVENT_SOURCE, 'detail-type': 'EnclaveSuspended', detail: { enclaveId: '*' } }),
    ).rejects.toThrow();
    await expect(
      handler({ source: EVENT_SOURCE, 'detail-type': 'ContractSuspended', detail: {} }),
    ).rejects.toThrow();
    await expect(handler({ 'detail-type': 'EnclaveSuspended' })).rejects.toThrow();
  });
});
