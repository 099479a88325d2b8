import { describe, expect, it } from 'vitest';
import {
  Ec2Error,
  type Ec2Instance,
  Ec2Simulator,
  type RunInstancesInput,
} from '../../infra/local/services/ec2/ec2-simulator.ts';
import { chooseInstanceTypes } from '../../shared/domain/instance-types.ts';

const TAGS = [
  { Key: 'EnclaveId', Value: 'enc-1' },
  { Key: 'ContractId', Value: 'ctr-1' },
];

function launch(overrides: Partial<RunInstancesInput> = {}): RunInstancesInput {
  return {
    ImageId: 'ami-0123456789abcdef0',
    InstanceType: 'c6i.xlarge',
    MinCount: 1,
    MaxCount: 1,
    EnclaveOptions: { Enabled: true },
    TagSpecifications: [{ ResourceType: 'instance', Tags: TAGS }],
    UserData: Buffer.from('#!/bin/bash\nnitro-cli run-enclave').toString('base64'),
    ...overrides,
  };
}

async function runOne(ec2: Ec2Simulator, overrides: Partial<RunInstancesInput> = {}): Promise<Ec2Instance> {
  const { Instances } = await ec2.runInstances(launch(overrides));
  expect(Instances).toHaveLength(1);
  return Instances[0]!;
}

async function ec2Error(promise: Promise<unknown>): Promise<Ec2Error> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(Ec2Error);
  return error as Ec2Error;
}

function stateOf(ec2: Ec2Simulator, instanceId: string): string | undefined {
  return ec2.inventory().find((entry) => entry.instanceId === instanceId)?.state;
}

describe('Ec2Simulator: launching', () => {
  it('launches pending, then running, with tags, enclave options and an EC2-shaped id', async () => {
    const ec2 = new Ec2Simulator({ now: () => new Date('2026-11-25T10:00:00Z') });
    const output = await ec2.runInstances(launch());
    expect(output.ReservationId).toMatch(/^r-[0-9a-f]{17}$/);
    const instance = output.Instances[0]!;
    expect(instance).toMatchObject({
      ImageId: 'ami-0123456789abcdef0',
      InstanceType: 'c6i.xlarge',
      State: { Code: 0, Name: 'pending' },
      Tags: TAGS,
      LaunchTime: '2026-11-25T10:00:00.000Z',
      EnclaveOptions: { Enabled: true },
    });
    expect(instance.InstanceId).toMatch(/^i-[0-9a-f]{17}$/);
    await ec2.waitForState(instance.InstanceId, 'running');
    const described = await ec2.describeInstances({ InstanceIds: [instance.InstanceId] });
    expect(described.Reservations).toHaveLength(1);
    expect(described.Reservations[0]!.Instances[0]!.State).toEqual({ Code: 16, Name: 'running' });
    expect(ec2.userData(instance.InstanceId)).toBe(launch().UserData);
    // The output is what a Step Functions state carries: plain JSON.
    expect(JSON.parse(JSON.stringify(output))).toEqual(output);
  });

  it('gives the same ids for the same seed, and MaxCount instances in one reservation', async () => {
    const a = await new Ec2Simulator({ seed: 's' }).runInstances(launch({ MinCount: 1, MaxCount: 3 }));
    const b = await new Ec2Simulator({ seed: 's' }).runInstances(launch({ MinCount: 1, MaxCount: 3 }));
    expect(a.Instances.map((i) => i.InstanceId)).toEqual(b.Instances.map((i) => i.InstanceId));
    expect(new Set(a.Instances.map((i) => i.InstanceId)).size).toBe(3);
  });

  it('refuses a launch without EnclaveOptions.Enabled, or with hibernation, and launches nothing', async () => {
    const ec2 = new Ec2Simulator();
    for (const overrides of [
      { EnclaveOptions: undefined },
      { EnclaveOptions: { Enabled: false } },
      { HibernationOptions: { Configured: true } },
    ]) {
      const error = await ec2Error(ec2.runInstances(launch(overrides)));
      expect(error.name).toBe('InvalidParameterCombination');
      expect(error.$fault).toBe('client');
      expect(error.$metadata.httpStatusCode).toBe(400);
      expect(error.message).not.toBe('');
    }
    expect(ec2.inventory()).toEqual([]);
  });

  it('refuses instance types that cannot parent an enclave with Unsupported', async () => {
    const ec2 = new Ec2Simulator();
    for (const type of ['t3.micro', 'm5.large', 'c6i.metal', 'nope']) {
      const error = await ec2Error(ec2.runInstances(launch({ InstanceType: type })));
      expect(error.name).toBe('Unsupported');
    }
    expect(ec2.inventory()).toEqual([]);
  });

  it('refuses missing parameters and bad counts', async () => {
    const ec2 = new Ec2Simulator();
    expect((await ec2Error(ec2.runInstances(launch({ ImageId: undefined })))).name).toBe('MissingParameter');
    expect((await ec2Error(ec2.runInstances(launch({ MinCount: 2, MaxCount: 1 })))).name).toBe(
      'InvalidParameterValue',
    );
    const reserved = [{ ResourceType: 'instance', Tags: [{ Key: 'aws:x', Value: '1' }] }];
    expect((await ec2Error(ec2.runInstances(launch({ TagSpecifications: reserved })))).name).toBe(
      'InvalidParameterValue',
    );
  });

  it('merges a launch template under the request, and refuses an unknown one', async () => {
    const ec2 = new Ec2Simulator({
      launchTemplates: {
        'enclave-parent': {
          ImageId: 'ami-0fromtemplate000',
          EnclaveOptions: { Enabled: true },
          TagSpecifications: [{ ResourceType: 'instance', Tags: [{ Key: 'Stack', Value: 'local' }] }],
        },
      },
    });
    const instance = await runOne(ec2, {
      ImageId: undefined,
      EnclaveOptions: undefined,
      LaunchTemplate: { LaunchTemplateName: 'enclave-parent', Version: '$Latest' },
    });
    expect(instance.ImageId).toBe('ami-0fromtemplate000');
    expect(instance.Tags).toEqual([{ Key: 'Stack', Value: 'local' }, ...TAGS]);
    const error = await ec2Error(ec2.runInstances(launch({ LaunchTemplate: { LaunchTemplateName: 'x' } })));
    expect(error.name).toBe('InvalidLaunchTemplateName.NotFoundException');
  });

  it("applies metadata options field by field (request over template over EC2's defaults), and refuses bad values", async () => {
    const ec2 = new Ec2Simulator({
      launchTemplates: {
        'enclave-parent': { MetadataOptions: { HttpTokens: 'required', InstanceMetadataTags: 'enabled' } },
      },
    });
    expect((await runOne(ec2)).MetadataOptions).toEqual({
      HttpTokens: 'optional',
      HttpPutResponseHopLimit: 1,
      HttpEndpoint: 'enabled',
      InstanceMetadataTags: 'disabled',
    });
    const fromTemplate = await runOne(ec2, {
      LaunchTemplate: { LaunchTemplateName: 'enclave-parent' },
      MetadataOptions: { HttpPutResponseHopLimit: 2 },
    });
    expect(fromTemplate.MetadataOptions).toEqual({
      HttpTokens: 'required',
      HttpPutResponseHopLimit: 2,
      HttpEndpoint: 'enabled',
      InstanceMetadataTags: 'enabled',
    });
    const before = ec2.inventory().length;
    for (const [options, field] of [
      [{ HttpTokens: 'v1' }, 'HttpTokens'],
      [{ HttpEndpoint: 'on' }, 'HttpEndpoint'],
      [{ InstanceMetadataTags: true }, 'InstanceMetadataTags'],
      [{ HttpPutResponseHopLimit: 0 }, 'HttpPutResponseHopLimit'],
      [{ HttpPutResponseHopLimit: 65 }, 'HttpPutResponseHopLimit'],
    ] as const) {
      const error = await ec2Error(
        ec2.runInstances(launch({ MetadataOptions: options as RunInstancesInput['MetadataOptions'] })),
      );
      expect(error.name).toBe('InvalidParameterValue');
      expect(error.message).toContain(`MetadataOptions.${field}`);
    }
    expect(ec2.inventory()).toHaveLength(before);
  });

  it('is idempotent by ClientToken: a repeat answers the original reservation, other parameters are refused', async () => {
    const ec2 = new Ec2Simulator();
    const token = 'a'.repeat(40);
    const first = await ec2.runInstances(launch({ ClientToken: token }));
    await ec2.waitForState(first.Instances[0]!.InstanceId, 'running');

    // The same request again (keys in another order): the original reservation, as it is now.
    const { ClientToken: _, ...parameters } = launch({ ClientToken: token });
    const repeat = await ec2.runInstances({
      ClientToken: token,
      ...Object.fromEntries(Object.entries(parameters).reverse()),
    } as RunInstancesInput);
    expect(repeat.ReservationId).toBe(first.ReservationId);
    expect(repeat.Instances.map((i) => i.InstanceId)).toEqual(first.Instances.map((i) => i.InstanceId));
    expect(repeat.Instances[0]!.State.Name).toBe('running');
    expect(ec2.inventory()).toHaveLength(1);

    // The same token with another type: refused, nothing launched.
    const mismatch = await ec2Error(
      ec2.runInstances(launch({ ClientToken: token, InstanceType: 'c6i.2xlarge' })),
    );
    expect(mismatch.name).toBe('IdempotentParameterMismatch');
    expect(mismatch.$fault).toBe('client');
    expect(ec2.inventory()).toHaveLength(1);

    // Another token, or none, launches again; a token over 64 characters is refused.
    await runOne(ec2, { ClientToken: 'b'.repeat(64) });
    await runOne(ec2);
    expect(ec2.inventory()).toHaveLength(3);
    expect((await ec2Error(ec2.runInstances(launch({ ClientToken: 'c'.repeat(65) })))).name).toBe(
      'InvalidParameterValue',
    );
    await ec2.settled();
  });

  it('records no token for a failed launch: its retry with the same token launches', async () => {
    const ec2 = new Ec2Simulator();
    ec2.failNext('InsufficientInstanceCapacity');
    const failed = await ec2Error(ec2.runInstances(launch({ ClientToken: 'retry-1' })));
    expect(failed.name).toBe('InsufficientInstanceCapacity');
    expect(ec2.inventory()).toHaveLength(0);
    await runOne(ec2, { ClientToken: 'retry-1' });
    expect(ec2.inventory()).toHaveLength(1);
    await ec2.settled();
  });
});

describe('Ec2Simulator: injected faults', () => {
  it('fails one type with InsufficientInstanceCapacity; the next candidate type launches', async () => {
    const ec2 = new Ec2Simulator();
    const candidates = chooseInstanceTypes({ cpuCount: 2, memoryMiB: 4096 });
    ec2.failNext('InsufficientInstanceCapacity', 1, { instanceType: candidates[0]! });

    // What the workflow does: try the candidates in order, moving on only on a capacity error.
    const tried: string[] = [];
    let launched: Ec2Instance | undefined;
    for (const type of candidates) {
      tried.push(type);
      try {
        launched = await runOne(ec2, { InstanceType: type });
        break;
      } catch (error) {
        expect(error).toBeInstanceOf(Ec2Error);
        expect((error as Ec2Error).name).toBe('InsufficientInstanceCapacity');
        expect((error as Ec2Error).$fault).toBe('server');
        expect((error as Ec2Error).message).toContain(type);
      }
    }
    expect(tried).toEqual(candidates.slice(0, 2));
    expect(launched?.InstanceType).toBe(candidates[1]);
    // The fault was consumed: the first type launches again.
    expect((await runOne(ec2, { InstanceType: candidates[0]! })).InstanceType).toBe(candidates[0]);
    expect(ec2.inventory()).toHaveLength(2);
  });

  it('counts faults, leaves other types alone, and can target other operations', async () => {
    const ec2 = new Ec2Simulator();
    ec2.failNext('InsufficientInstanceCapacity', 2, { instanceType: 'm5.xlarge' });
    await runOne(ec2, { InstanceType: 'c5.xlarge' });
    for (let i = 0; i < 2; i++) {
      expect((await ec2Error(ec2.runInstances(launch({ InstanceType: 'm5.xlarge' })))).name).toBe(
        'InsufficientInstanceCapacity',
      );
    }
    await runOne(ec2, { InstanceType: 'm5.xlarge' });

    ec2.failNext('RequestLimitExceeded', 1, { operation: 'TerminateInstances' });
    const ids = ec2.inventory().map((entry) => entry.instanceId);
    const throttled = await ec2Error(ec2.terminateInstances({ InstanceIds: ids }));
    expect(throttled.name).toBe('RequestLimitExceeded');
    expect(throttled.$metadata.httpStatusCode).toBe(503);
    // Nothing changed by the failed call; the retry succeeds.
    expect(ec2.inventory().every((entry) => entry.state !== 'shutting-down')).toBe(true);
    await ec2.terminateInstances({ InstanceIds: ids });
    await ec2.settled();
    expect(ec2.inventory().map((entry) => entry.state)).toEqual(['terminated', 'terminated']);
  });
});

describe('Ec2Simulator: subnets and Availability Zones', () => {
  const subnets = { 'subnet-0a': 'eu-central-1a', 'subnet-0b': 'eu-central-1b' };
  const nic = (SubnetId: string) => [
    { DeviceIndex: 0, SubnetId, Groups: ['sg-0p'], AssociatePublicIpAddress: false },
  ];

  it("launches into the request's network interface's subnet, in that subnet's zone, as EC2 reports it", async () => {
    const ec2 = new Ec2Simulator({ subnets });
    const instance = await runOne(ec2, { NetworkInterfaces: nic('subnet-0b') });
    expect(instance.SubnetId).toBe('subnet-0b');
    expect(instance.Placement).toEqual({ AvailabilityZone: 'eu-central-1b' });
    const described = await ec2.describeInstances({ InstanceIds: [instance.InstanceId] });
    expect(described.Reservations[0]!.Instances[0]!.Placement.AvailabilityZone).toBe('eu-central-1b');
    // Without a subnet, EC2 picks the default one (zone a here).
    expect((await runOne(ec2)).Placement.AvailabilityZone).toBe('eu-central-1a');
    await ec2.settled();
  });

  it('refuses an unknown subnet, and a subnet or groups beside network interfaces, as EC2 does', async () => {
    const ec2 = new Ec2Simulator({ subnets });
    const unknown = await ec2Error(ec2.runInstances(launch({ NetworkInterfaces: nic('subnet-0zz') })));
    expect([unknown.name, unknown.message]).toEqual([
      'InvalidSubnetID.NotFound',
      "The subnet ID 'subnet-0zz' does not exist",
    ]);
    const both = await ec2Error(
      ec2.runInstances(launch({ NetworkInterfaces: nic('subnet-0a'), SubnetId: 'subnet-0a' })),
    );
    expect([both.name, both.message]).toEqual([
      'InvalidParameterCombination',
      'Network interfaces and an instance-level subnet ID may not be specified on the same request',
    ]);
    const groups = await ec2Error(
      ec2.runInstances(launch({ NetworkInterfaces: nic('subnet-0a'), SecurityGroupIds: ['sg-0p'] })),
    );
    expect(groups.name).toBe('InvalidParameterCombination');
    expect(ec2.inventory()).toEqual([]);
  });

  it('fails a zone with InsufficientInstanceCapacity in EC2 wording that names it; the other zone launches', async () => {
    const ec2 = new Ec2Simulator({ subnets });
    ec2.failNext('InsufficientInstanceCapacity', 1, { availabilityZone: 'eu-central-1a' });
    ec2.failNext('Unsupported', 1, { availabilityZone: 'eu-central-1b', instanceType: 'm5.xlarge' });
    await runOne(ec2, { NetworkInterfaces: nic('subnet-0b') }); // c6i.xlarge: neither fault applies
    const none = await ec2Error(ec2.runInstances(launch({ NetworkInterfaces: nic('subnet-0a') })));
    expect(none.message).toBe(
      'We currently do not have sufficient c6i.xlarge capacity in the Availability Zone you requested (eu-central-1a). Our system will be working on provisioning additional capacity. You can currently get c6i.xlarge capacity by not specifying an Availability Zone in your request or choosing eu-central-1b.',
    );
    const unsupported = await ec2Error(
      ec2.runInstances(launch({ InstanceType: 'm5.xlarge', NetworkInterfaces: nic('subnet-0b') })),
    );
    expect(unsupported.message).toMatch(
      /^Your requested instance type \(m5\.xlarge\) is not supported in your requested Availability Zone \(eu-central-1b\)\./,
    );
    expect((await runOne(ec2, { NetworkInterfaces: nic('subnet-0a') })).Placement.AvailabilityZone).toBe(
      'eu-central-1a',
    );
    await ec2.settled();
  });
});

describe('Ec2Simulator: state transitions', () => {
  it('stops, starts (booting again) and terminates, with EC2 state changes', async () => {
    let boots = 0;
    const ec2 = new Ec2Simulator({ onBoot: async () => void boots++ });
    const { InstanceId } = await runOne(ec2);
    const ids = { InstanceIds: [InstanceId] };
    // A pending instance cannot be stopped.
    expect((await ec2Error(ec2.stopInstances(ids))).name).toBe('IncorrectInstanceState');
    await ec2.waitForState(InstanceId, 'running');

    expect((await ec2.stopInstances(ids)).StoppingInstances).toEqual([
      {
        InstanceId,
        CurrentState: { Code: 64, Name: 'stopping' },
        PreviousState: { Code: 16, Name: 'running' },
      },
    ]);
    // Starting while still stopping is refused, as EC2 does (the workflow's StartInstances retries on it).
    expect((await ec2Error(ec2.startInstances(ids))).name).toBe('IncorrectInstanceState');
    await ec2.waitForState(InstanceId, 'stopped');
    // Stopping a stopped instance is a no-op.
    expect((await ec2.stopInstances(ids)).StoppingInstances[0]!.CurrentState.Name).toBe('stopped');

    expect((await ec2.startInstances(ids)).StartingInstances).toEqual([
      {
        InstanceId,
        CurrentState: { Code: 0, Name: 'pending' },
        PreviousState: { Code: 80, Name: 'stopped' },
      },
    ]);
    await ec2.waitForState(InstanceId, 'running');
    await ec2.settled();
    expect(boots).toBe(2);
    expect(ec2.inventory()[0]!.boots).toBe(2);

    expect((await ec2.terminateInstances(ids)).TerminatingInstances).toEqual([
      {
        InstanceId,
        CurrentState: { Code: 32, Name: 'shutting-down' },
        PreviousState: { Code: 16, Name: 'running' },
      },
    ]);
    await ec2.waitForState(InstanceId, 'terminated');
    // Terminate is idempotent; start and stop are refused; the instance stays listed.
    expect((await ec2.terminateInstances(ids)).TerminatingInstances[0]).toMatchObject({
      CurrentState: { Name: 'terminated' },
      PreviousState: { Name: 'terminated' },
    });
    expect((await ec2Error(ec2.startInstances(ids))).name).toBe('IncorrectInstanceState');
    expect((await ec2Error(ec2.stopInstances(ids))).name).toBe('IncorrectInstanceState');
    const [described] = (await ec2.describeInstances(ids)).Reservations[0]!.Instances;
    expect(described!.State).toEqual({ Code: 48, Name: 'terminated' });
    expect(described!.StateTransitionReason).toMatch(
      /^User initiated \(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d GMT\)$/,
    );
  });

  it('terminates a pending instance before it ever boots', async () => {
    let boots = 0;
    const ec2 = new Ec2Simulator({ bootDelayMs: 50, onBoot: async () => void boots++ });
    const { InstanceId } = await runOne(ec2);
    await ec2.terminateInstances({ InstanceIds: [InstanceId] });
    await ec2.settled();
    expect(stateOf(ec2, InstanceId)).toBe('terminated');
    expect(boots).toBe(0);
  });

  it('answers unknown and malformed ids as EC2 does, failing the whole request', async () => {
    const ec2 = new Ec2Simulator();
    const { InstanceId } = await runOne(ec2);
    const unknown = 'i-0aaaaaaaaaaaaaaaa';
    const notFound = await ec2Error(ec2.terminateInstances({ InstanceIds: [InstanceId, unknown] }));
    expect(notFound.name).toBe('InvalidInstanceID.NotFound');
    expect(notFound.message).toContain(unknown);
    expect(stateOf(ec2, InstanceId)).toBe('pending');
    expect((await ec2Error(ec2.describeInstances({ InstanceIds: ['vol-1'] }))).name).toBe(
      'InvalidInstanceID.Malformed',
    );
    expect((await ec2Error(ec2.stopInstances({ InstanceIds: [] }))).name).toBe('MissingParameter');
  });
});

describe('Ec2Simulator: describe and inventory', () => {
  it('filters by tags, tag keys, state and type (AND across filters, OR across values, wildcards)', async () => {
    const ec2 = new Ec2Simulator();
    const tagged = (enclave: string) => [
      { ResourceType: 'instance', Tags: [{ Key: 'EnclaveId', Value: enclave }] },
      // Not the instance's: ignored.
      { ResourceType: 'volume', Tags: [{ Key: 'Backup', Value: 'yes' }] },
    ];
    const a = await runOne(ec2, { TagSpecifications: tagged('enc-a') });
    const b = await runOne(ec2, { TagSpecifications: tagged('enc-b'), InstanceType: 'm5.2xlarge' });
    const c = await runOne(ec2, { TagSpecifications: [] });
    await ec2.settled();
    await ec2.terminateInstances({ InstanceIds: [b.InstanceId] });
    await ec2.settled();

    const ids = async (filters: { Name: string; Values: string[] }[]) =>
      (await ec2.describeInstances({ Filters: filters })).Reservations.flatMap((r) =>
        r.Instances.map((i) => i.InstanceId),
      );
    expect(await ids([{ Name: 'tag:EnclaveId', Values: ['enc-a'] }])).toEqual([a.InstanceId]);
    expect(await ids([{ Name: 'tag:EnclaveId', Values: ['enc-a', 'enc-b'] }])).toEqual([
      a.InstanceId,
      b.InstanceId,
    ]);
    expect(await ids([{ Name: 'tag:EnclaveId', Values: ['enc-*'] }])).toHaveLength(2);
    expect(
      await ids([
        { Name: 'tag:EnclaveId', Values: ['enc-*'] },
        { Name: 'instance-state-name', Values: ['pending', 'running'] },
      ]),
    ).toEqual([a.InstanceId]);
    expect(await ids([{ Name: 'tag-key', Values: ['EnclaveId'] }])).toHaveLength(2);
    expect(await ids([{ Name: 'tag:Backup', Values: ['yes'] }])).toEqual([]);
    expect(await ids([{ Name: 'instance-type', Values: ['m5.*'] }])).toEqual([b.InstanceId]);
    expect(await ids([])).toEqual([a.InstanceId, b.InstanceId, c.InstanceId]);
    expect(
      (await ec2Error(ec2.describeInstances({ Filters: [{ Name: 'vpc-id', Values: ['x'] }] }))).name,
    ).toBe('InvalidParameterValue');
  });

  it('lists every instance with state and tags, so a test can prove none is orphaned', async () => {
    const ec2 = new Ec2Simulator();
    const launched = await Promise.all([runOne(ec2), runOne(ec2, { InstanceType: 'c5.2xlarge' })]);
    expect(ec2.inventory().filter((entry) => entry.state !== 'terminated')).toHaveLength(2);
    await ec2.terminateInstances({ InstanceIds: launched.map((i) => i.InstanceId) });
    await ec2.settled();
    const inventory = ec2.inventory();
    expect(inventory.map((entry) => entry.instanceId)).toEqual(launched.map((i) => i.InstanceId));
    expect(inventory[1]).toMatchObject({
      instanceType: 'c5.2xlarge',
      state: 'terminated',
      tags: { EnclaveId: 'enc-1', ContractId: 'ctr-1' },
    });
    expect(inventory.filter((entry) => entry.state !== 'terminated')).toEqual([]);
  });

  it('offers the EC2 tasks as aws-local-stepfunctions handlers keyed by the rendered resource ARNs', async () => {
    const ec2 = new Ec2Simulator();
    const handlers = ec2.localTaskHandlers() as Record<string, (input: unknown) => Promise<unknown>>;
    expect(Object.keys(handlers).sort()).toEqual(
      [
        'createTags',
        'describeInstances',
        'runInstances',
        'startInstances',
        'stopInstances',
        'terminateInstances',
      ].map((action) => `arn:aws:states:::aws-sdk:ec2:${action}`),
    );
    const run = (await handlers['arn:aws:states:::aws-sdk:ec2:runInstances']!(launch())) as {
      Instances: Ec2Instance[];
    };
    expect(run.Instances[0]!.State.Name).toBe('pending');
    const error = await ec2Error(handlers['arn:aws:states:::aws-sdk:ec2:terminateInstances']!(null));
    expect(error.name).toBe('InvalidParameterValue');
  });

  it('CreateTags adds and overwrites instance tags, and refuses unknown instances and reserved keys', async () => {
    const ec2 = new Ec2Simulator();
    const { Instances } = await ec2.runInstances(launch());
    const id = Instances[0]!.InstanceId;
    await ec2.createTags({ Resources: [id], Tags: [{ Key: 'nonce', Value: 'one' }] });
    await ec2.createTags({ Resources: [id], Tags: [{ Key: 'nonce', Value: 'two' }] });
    const [described] = (await ec2.describeInstances({ InstanceIds: [id] })).Reservations[0]!.Instances;
    expect(described!.Tags.filter((t) => t.Key === 'nonce')).toEqual([{ Key: 'nonce', Value: 'two' }]);
    expect((await ec2Error(ec2.createTags({ Resources: ['i-0123456789abcdef0'], Tags: [] }))).name).toBe(
      'InvalidInstanceID.NotFound',
    );
    expect(
      (await ec2Error(ec2.createTags({ Resources: [id], Tags: [{ Key: 'aws:x', Value: 'y' }] }))).name,
    ).toBe('InvalidParameterValue');
  });
});
