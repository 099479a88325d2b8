import {
  DescribeInstancesCommand,
  EC2Client,
  EC2ServiceException,
  StopInstancesCommand,
  TerminateInstancesCommand,
} from '@aws-sdk/client-ec2';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it } from 'vitest';
import { Ec2InstanceControl, InstanceControlError } from '../../shared/workflow/ec2-instance-control.ts';
import { INSTANCE_TAGS } from '../../shared/workflow/workflow-ports.ts';

/**
 * The EC2 adapter's requests (filters, pagination, batching) and its reading of EC2's failures, on a mocked
 * client. The behaviour itself (no-ops, what is stopped or terminated) is the shared suite in
 * test/integration/instance-control.test.ts.
 */
const ec2 = mockClient(EC2Client);
afterEach(() => ec2.reset());

const control = () => new Ec2InstanceControl({ client: new EC2Client({ region: 'eu-central-1' }) });
const ENCLAVE = '0b9f3c2e-6d1a-4f5e-9b7c-3a2d1e0f4c5b';
const id = (n: number) => `i-${n.toString(16).padStart(17, '0')}`;

function ec2Error(name: string, fault: 'client' | 'server', status: number) {
  return new EC2ServiceException({
    name,
    $fault: fault,
    $metadata: { httpStatusCode: status },
    message: name,
  });
}

function instance(n: number, state: string, enclaveId = ENCLAVE) {
  return {
    InstanceId: id(n),
    State: { Name: state as 'running', Code: 16 },
    Tags: [{ Key: INSTANCE_TAGS.enclaveId, Value: enclaveId }],
  };
}

async function refusal(promise: Promise<unknown>): Promise<InstanceControlError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(InstanceControlError);
  return error as InstanceControlError;
}

describe('Ec2InstanceControl.listForEnclave', () => {
  it('filters on the enclave tag and every state but terminated, and follows NextToken', async () => {
    ec2
      .on(DescribeInstancesCommand)
      .resolvesOnce({
        Reservations: [{ Instances: [instance(1, 'running'), instance(2, 'stopped')] }],
        NextToken: 'page-2',
      })
      .resolvesOnce({ Reservations: [{ Instances: [instance(3, 'pending')] }] });

    const listed = await control().listForEnclave(ENCLAVE);

    expect(listed).toEqual([
      { instanceId: id(1), state: 'running' },
      { instanceId: id(2), state: 'stopped' },
      { instanceId: id(3), state: 'pending' },
    ]);
    const calls = ec2.commandCalls(DescribeInstancesCommand).map((call) => call.args[0].input);
    expect(calls).toHaveLength(2);
    expect(calls[0]).toEqual({
      Filters: [
        { Name: `tag:${INSTANCE_TAGS.enclaveId}`, Values: [ENCLAVE] },
        {
          Name: 'instance-state-name',
          Values: ['pending', 'running', 'stopping', 'stopped', 'shutting-down'],
        },
      ],
      MaxResults: 100,
    });
    expect(calls[1]).toEqual({ ...calls[0], NextToken: 'page-2' });
  });

  it('drops instances that do not carry the exact tag value, or are terminated', async () => {
    ec2.on(DescribeInstancesCommand).resolves({
      Reservations: [
        {
          Instances: [
            instance(1, 'running', `${ENCLAVE}-other`),
            instance(2, 'terminated'),
            instance(3, 'running'),
          ],
        },
      ],
    });
    expect(await control().listForEnclave(ENCLAVE)).toEqual([{ instanceId: id(3), state: 'running' }]);
  });

  it('gives up after ten pages instead of acting on a partial listing', async () => {
    ec2.on(DescribeInstancesCommand).resolves({ Reservations: [], NextToken: 'again' });
    const error = await refusal(control().listForEnclave(ENCLAVE));
    expect(error.transient).toBe(false);
    expect(ec2.commandCalls(DescribeInstancesCommand)).toHaveLength(10);
  });

  it('refuses a glob before calling EC2', async () => {
    await expect(control().listForEnclave('*')).rejects.toBeInstanceOf(TypeError);
    expect(ec2.commandCalls(DescribeInstancesCommand)).toHaveLength(0);
  });
});

describe('Ec2InstanceControl.stop and terminate', () => {
  it('send at most 1000 distinct ids per call and nothing for an empty list', async () => {
    ec2.on(StopInstancesCommand).resolves({});
    ec2.on(TerminateInstancesCommand).resolves({});
    const ids = Array.from({ length: 2500 }, (_, n) => id(n + 1));

    await control().stop([]);
    await control().terminate([]);
    await control().stop([...ids, ids[0]!]);
    await control().terminate(ids);

    for (const command of [StopInstancesCommand, TerminateInstancesCommand] as const) {
      const sent = ec2.commandCalls(command).map((call) => call.args[0].input.InstanceIds!);
      expect(sent.map((batch) => batch.length)).toEqual([1000, 1000, 500]);
      expect(sent.flat()).toEqual(ids);
    }
  });

  it('stop: after IncorrectInstanceState, looks the states up by id and stops only the running ones', async () => {
    ec2
      .on(StopInstancesCommand)
      .rejectsOnce(ec2Error('IncorrectInstanceState', 'client', 400))
      .resolves({});
    ec2.on(DescribeInstancesCommand).resolves({
      Reservations: [
        { Instances: [instance(1, 'running'), instance(2, 'terminated'), instance(3, 'stopped')] },
      ],
    });

    await control().stop([id(1), id(2), id(3)]);

    const stops = ec2.commandCalls(StopInstancesCommand).map((call) => call.args[0].input.InstanceIds);
    expect(stops).toEqual([[id(1), id(2), id(3)], [id(1)]]);
    expect(ec2.commandCalls(DescribeInstancesCommand)[0]!.args[0].input).toEqual({
      Filters: [{ Name: 'instance-id', Values: [id(1), id(2), id(3)] }],
      MaxResults: 100,
    });
  });

  it('stop: a pending instance is transient, after the running ones were stopped', async () => {
    ec2
      .on(StopInstancesCommand)
      .rejectsOnce(ec2Error('IncorrectInstanceState', 'client', 400))
      .resolves({});
    ec2.on(DescribeInstancesCommand).resolves({
      Reservations: [{ Instances: [instance(1, 'running'), instance(2, 'pending')] }],
    });

    const error = await refusal(control().stop([id(1), id(2)]));

    expect(error.transient).toBe(true);
    expect(ec2.commandCalls(StopInstancesCommand).map((call) => call.args[0].input.InstanceIds)).toEqual([
      [id(1), id(2)],
      [id(1)],
    ]);
  });

  it('stop: instances that keep changing state end in a transient error after three attempts', async () => {
    ec2.on(StopInstancesCommand).rejects(ec2Error('IncorrectInstanceState', 'client', 400));
    ec2.on(DescribeInstancesCommand).resolves({ Reservations: [{ Instances: [instance(1, 'running')] }] });
    const error = await refusal(control().stop([id(1)]));
    expect(error.transient).toBe(true);
    expect(ec2.commandCalls(StopInstancesCommand)).toHaveLength(3);
  });

  it('terminate: after InvalidInstanceID.NotFound, terminates the batch one id at a time, skipping unknown ones', async () => {
    const notFound = ec2Error('InvalidInstanceID.NotFound', 'client', 400);
    ec2
      .on(TerminateInstancesCommand)
      .rejects(notFound)
      .on(TerminateInstancesCommand, { InstanceIds: [id(1)] })
      .resolves({})
      .on(TerminateInstancesCommand, { InstanceIds: [id(3)] })
      .resolves({});

    await control().terminate([id(1), id(2), id(3)]);

    expect(ec2.commandCalls(TerminateInstancesCommand).map((call) => call.args[0].input.InstanceIds)).toEqual(
      [[id(1), id(2), id(3)], [id(1)], [id(2)], [id(3)]],
    );
  });
});

describe('Ec2InstanceControl failures', () => {
  it.each([
    [
      'RequestLimitExceeded (throttling, raised as a client fault)',
      ec2Error('RequestLimitExceeded', 'client', 400),
      true,
    ],
    ['a 5xx', ec2Error('InternalError', 'server', 500), true],
    ['Unavailable', ec2Error('Unavailable', 'server', 503), true],
    ['no answer', Object.assign(new Error('socket hang up'), { code: 'ECONNRESET', $metadata: {} }), true],
    ['UnauthorizedOperation', ec2Error('UnauthorizedOperation', 'client', 403), false],
    ['InvalidInstanceID.Malformed', ec2Error('InvalidInstanceID.Malformed', 'client', 400), false],
  ])('%s → InstanceControlError with transient %s, cause kept', async (_kind, cause, transient) => {
    ec2.on(TerminateInstancesCommand).rejects(cause);
    ec2.on(StopInstancesCommand).rejects(cause);
    ec2.on(DescribeInstancesCommand).rejects(cause);
    for (const call of [
      () => control().terminate([id(1)]),
      () => control().stop([id(1)]),
      () => control().listForEnclave(ENCLAVE),
    ]) {
      const error = await refusal(call());
      expect(error).toMatchObject({ name: 'InstanceControlError', transient });
      expect(error.cause).toBe(cause);
    }
  });
});
