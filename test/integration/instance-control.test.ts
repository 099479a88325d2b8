/**
 * The behaviour every InstanceControl must show, as one suite run against each adapter that can be run
 * here: the simulated EC2 (through the same TaggedInstanceControl the AWS adapter uses). The AWS adapter's
 * request shapes and fault mapping are checked with a mocked client in test/unit/ec2-instance-control.test.ts.
 */
import { afterEach, describe, expect, it } from 'vitest';
import {
  type Ec2FaultName,
  type Ec2Operation,
  Ec2Simulator,
  type InstanceStateName,
} from '../../infra/local/services/ec2/ec2-simulator.ts';
import { SimulatedInstanceControl } from '../../infra/local/services/ec2/simulated-instance-control.ts';
import { InstanceControlError } from '../../shared/workflow/tagged-instance-control.ts';
import type { InstanceControl } from '../../shared/workflow/workflow-ports.ts';
import { launchTaggedParent } from '../support/enclaves.ts';

/** An adapter under test with the EC2 behind it, driven the way the platform's instances are. */
interface InstanceControlFixture {
  readonly control: InstanceControl;
  /** Launches an enclave parent tagged with `enclaveId`; returns its id (pending). */
  launch(enclaveId: string): Promise<string>;
  waitFor(instanceId: string, state: InstanceStateName): Promise<void>;
  stateOf(instanceId: string): InstanceStateName;
  failNext(operation: Ec2Operation, code: Ec2FaultName): void;
  close(): void;
}

interface Adapter {
  readonly name: string;
  open(options?: { bootDelayMs?: number }): InstanceControlFixture;
}

const ADAPTERS: readonly Adapter[] = [
  {
    name: 'SimulatedInstanceControl',
    open(options = {}) {
      const ec2 = new Ec2Simulator({ seed: 'instance-control', bootDelayMs: options.bootDelayMs ?? 5 });
      return {
        control: new SimulatedInstanceControl(ec2),
        launch: (enclaveId) => launchTaggedParent(ec2, enclaveId, 'contract-1'),
        waitFor: (instanceId, state) => ec2.waitForState(instanceId, state),
        stateOf: (instanceId) => ec2.inventory().find((i) => i.instanceId === instanceId)!.state,
        failNext: (operation, code) => ec2.failNext(code, 1, { operation }),
        close: () => ec2.close(),
      };
    },
  },
];

/** A well-formed instance id EC2 has never issued. */
const UNKNOWN_INSTANCE = 'i-0fffffffffffffff0';

async function refusal(promise: Promise<unknown>): Promise<InstanceControlError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(InstanceControlError);
  return error as InstanceControlError;
}

for (const adapter of ADAPTERS) {
  describe(`InstanceControl: ${adapter.name}`, () => {
    let fixture: InstanceControlFixture | undefined;
    const open = (options?: { bootDelayMs?: number }) => {
      fixture = adapter.open(options);
      return fixture;
    };
    afterEach(() => fixture?.close());

    /** Launches an instance for `enclaveId` and waits until it runs. */
    async function running(f: InstanceControlFixture, enclaveId: string): Promise<string> {
      const id = await f.launch(enclaveId);
      await f.waitFor(id, 'running');
      return id;
    }

    describe('parentOf', () => {
      it('answers the state and the enclave tag now, null for an unknown instance, and refuses a glob', async () => {
        const f = open();
        const a = await running(f, 'enclave-a');
        expect(await f.control.parentOf(a)).toEqual({
          instanceId: a,
          state: 'running',
          enclaveId: 'enclave-a',
        });
        await f.control.terminate([a]);
        await f.waitFor(a, 'terminated');
        expect(await f.control.parentOf(a)).toEqual({
          instanceId: a,
          state: 'terminated',
          enclaveId: 'enclave-a',
        });
        expect(await f.control.parentOf('i-0123456789abcdef0')).toBeNull();
        await expect(f.control.parentOf('i-*')).rejects.toThrow(TypeError);
      });
    });

    describe('listForEnclave', () => {
      it('lists the instances tagged with the enclave in every state but terminated, and nothing else', async () => {
        const f = open();
        const a = await running(f, 'enclave-a');
        const b = await running(f, 'enclave-a');
        const c = await running(f, 'enclave-a');
        const other = await running(f, 'enclave-b');
        await f.control.stop([b]);
        await f.control.terminate([c]);
        await f.waitFor(c, 'terminated');

        const listed = await f.control.listForEnclave('enclave-a');

        expect(listed.sort((x, y) => x.instanceId.localeCompare(y.instanceId))).toEqual(
          [
            { instanceId: a, state: 'running' },
            { instanceId: b, state: f.stateOf(b) },
          ].sort((x, y) => x.instanceId.localeCompare(y.instanceId)),
        );
        expect(['stopping', 'stopped']).toContain(f.stateOf(b));
        expect(listed.map((i) => i.instanceId)).not.toContain(other);
      });

      it('lists pending and shutting-down instances (they still count as the enclave’s)', async () => {
        const f = open({ bootDelayMs: 60_000 });
        const pending = await f.launch('enclave-a');
        expect(await f.control.listForEnclave('enclave-a')).toEqual([
          { instanceId: pending, state: 'pending' },
        ]);
        await f.control.terminate([pending]);
        expect(await f.control.listForEnclave('enclave-a')).toEqual([
          { instanceId: pending, state: f.stateOf(pending) },
        ]);
      });

      it('answers an empty list for an enclave without instances', async () => {
        const f = open();
        await running(f, 'enclave-a');
        expect(await f.control.listForEnclave('enclave-c')).toEqual([]);
      });

      it('matches the tag value exactly, never as a prefix', async () => {
        const f = open();
        await running(f, 'enclave-a-2');
        expect(await f.control.listForEnclave('enclave-a')).toEqual([]);
      });

      it.each(['', '*', 'enclave-?', 'enclave-\\*', 'x'.repeat(257)])(
        'refuses %j: EC2 would read it as a glob matching other enclaves’ instances',
        async (enclaveId) => {
          const f = open();
          await running(f, 'enclave-a');
          await expect(f.control.listForEnclave(enclaveId)).rejects.toBeInstanceOf(TypeError);
        },
      );

      it('throws a transient error when EC2 is throttling', async () => {
        const f = open();
        f.failNext('DescribeInstances', 'RequestLimitExceeded');
        const error = await refusal(f.control.listForEnclave('enclave-a'));
        expect(error.transient).toBe(true);
      });
    });

    describe('stop', () => {
      it('stops running instances', async () => {
        const f = open();
        const a = await running(f, 'enclave-a');
        const b = await running(f, 'enclave-a');
        expect([f.stateOf(a), f.stateOf(b)]).toEqual(['running', 'running']);
        await f.control.stop([a, b]);
        await f.waitFor(a, 'stopped');
        await f.waitFor(b, 'stopped');
        expect([f.stateOf(a), f.stateOf(b)]).toEqual(['stopped', 'stopped']);
        // Stopped, not gone: still the enclave's.
        expect((await f.control.listForEnclave('enclave-a')).map((i) => i.instanceId).sort()).toEqual(
          [a, b].sort(),
        );
      });

      it('does nothing for an empty list', async () => {
        const f = open();
        await expect(f.control.stop([])).resolves.toBeUndefined();
      });

      it('is a no-op for stopping, stopped, shutting-down, terminated and unknown instances', async () => {
        const f = open();
        const stopped = await running(f, 'enclave-a');
        await f.control.stop([stopped]);
        await f.waitFor(stopped, 'stopped');
        const terminated = await running(f, 'enclave-a');
        await f.control.terminate([terminated]);
        await f.waitFor(terminated, 'terminated');
        const shuttingDown = await running(f, 'enclave-a');
        await f.control.terminate([shuttingDown]);

        await f.control.stop([stopped, terminated, shuttingDown, UNKNOWN_INSTANCE]);
        await f.control.stop([stopped, stopped]);

        expect(f.stateOf(stopped)).toBe('stopped');
        expect(f.stateOf(terminated)).toBe('terminated');
        expect(['shutting-down', 'terminated']).toContain(f.stateOf(shuttingDown));
      });

      it('still stops the running instances of a call EC2 refuses for a terminated one', async () => {
        const f = open();
        const terminated = await running(f, 'enclave-a');
        await f.control.terminate([terminated]);
        await f.waitFor(terminated, 'terminated');
        const live = await running(f, 'enclave-a');

        await expect(f.control.stop([terminated, live])).resolves.toBeUndefined();

        await f.waitFor(live, 'stopped');
        expect([f.stateOf(terminated), f.stateOf(live)]).toEqual(['terminated', 'stopped']);
      });

      it('stops the running instances, then fails as transient for a pending one it cannot stop yet', async () => {
        const f = open({ bootDelayMs: 200 });
        const live = await running(f, 'enclave-a');
        const pending = await f.launch('enclave-a');

        const error = await refusal(f.control.stop([live, pending]));

        expect(error.transient).toBe(true);
        expect(error.message).toContain(pending);
        expect(['stopping', 'stopped']).toContain(f.stateOf(live));
        // Once it runs, a retry stops it.
        await f.waitFor(pending, 'running');
        await f.control.stop([live, pending]);
        await f.waitFor(pending, 'stopped');
      });

      it('throws a transient error when EC2 is throttling or unavailable, and a permanent one when denied', async () => {
        const f = open();
        const a = await running(f, 'enclave-a');
        f.failNext('StopInstances', 'RequestLimitExceeded');
        expect((await refusal(f.control.stop([a]))).transient).toBe(true);
        f.failNext('StopInstances', 'Unavailable');
        expect((await refusal(f.control.stop([a]))).transient).toBe(true);
        f.failNext('StopInstances', 'UnauthorizedOperation');
        const denied = await refusal(f.control.stop([a]));
        expect(denied.transient).toBe(false);
        expect((denied.cause as Error).name).toBe('UnauthorizedOperation');
        expect(f.stateOf(a)).toBe('running');
      });
    });

    describe('terminate', () => {
      it('terminates pending, running and stopped instances', async () => {
        const f = open();
        const pending = await f.launch('enclave-a');
        const live = await running(f, 'enclave-a');
        const stopped = await running(f, 'enclave-a');
        await f.control.stop([stopped]);
        await f.waitFor(stopped, 'stopped');

        await f.control.terminate([pending, live, stopped]);

        for (const id of [pending, live, stopped]) await f.waitFor(id, 'terminated');
        expect(await f.control.listForEnclave('enclave-a')).toEqual([]);
      });

      it('does nothing for an empty list, and is a no-op for terminated instances', async () => {
        const f = open();
        await expect(f.control.terminate([])).resolves.toBeUndefined();
        const a = await running(f, 'enclave-a');
        await f.control.terminate([a, a]);
        await f.waitFor(a, 'terminated');
        await f.control.terminate([a]);
        expect(f.stateOf(a)).toBe('terminated');
      });

      it('terminates the known instances of a call that names unknown ones', async () => {
        const f = open();
        const a = await running(f, 'enclave-a');
        const b = await running(f, 'enclave-a');

        await expect(f.control.terminate([a, UNKNOWN_INSTANCE, b])).resolves.toBeUndefined();
        await expect(f.control.terminate([UNKNOWN_INSTANCE])).resolves.toBeUndefined();

        await f.waitFor(a, 'terminated');
        await f.waitFor(b, 'terminated');
        expect([f.stateOf(a), f.stateOf(b)]).toEqual(['terminated', 'terminated']);
        expect(await f.control.listForEnclave('enclave-a')).toEqual([]);
      });

      it('throws a transient error when EC2 is throttling, and a permanent one when denied', async () => {
        const f = open();
        const a = await running(f, 'enclave-a');
        f.failNext('TerminateInstances', 'RequestLimitExceeded');
        expect((await refusal(f.control.terminate([a]))).transient).toBe(true);
        f.failNext('TerminateInstances', 'UnauthorizedOperation');
        expect((await refusal(f.control.terminate([a]))).transient).toBe(false);
        expect(f.stateOf(a)).toBe('running');
      });
    });
  });
}
