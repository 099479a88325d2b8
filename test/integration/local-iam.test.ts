/**
 * The local IAM stand-in against the EC2 stand-in: the checks EC2 derives for each call, evaluated against
 * the policies the synthesized stack gives the provisioning state machine's role. The defects an AWS review
 * found are denied here as AWS denies them: a launch that leaves `MetadataOptions` to its template (IAM reads
 * `ec2:MetadataHttpTokens` from the request), a start of an instance that is not a parent.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import {
  Ec2Simulator,
  type NetworkInterfaceSpecification,
  type RunInstancesInput,
} from '../../infra/local/services/ec2/ec2-simulator.ts';
import {
  type AuthorizationCheck,
  denialMessage,
  firstDenial,
} from '../../infra/local/services/iam/iam-authorizer.ts';
import { type StackPrincipals, stackPrincipals } from '../../infra/local/services/iam/stack-policies.ts';
import { INSTANCE_TAGS } from '../../shared/workflow/workflow-ports.ts';
import { TEST_RESOURCE_NAMES } from '../support/local-iam.ts';

const NAMES = TEST_RESOURCE_NAMES;
const PROFILE = 'arn:aws:iam::000000000000:instance-profile/Parents';

let principals: StackPrincipals;
let ec2: Ec2Simulator;

beforeAll(() => {
  principals = stackPrincipals(NAMES);
  ec2 = new Ec2Simulator({
    launchTemplates: {
      [NAMES.launchTemplate.id]: {
        ImageId: 'ami-0test',
        EnclaveOptions: { Enabled: true },
        IamInstanceProfile: { Arn: PROFILE },
      },
    },
    instanceProfileRoles: { [PROFILE]: principals.parentRoleArn },
    subnets: {
      'subnet-0testa': 'eu-central-1a',
      'subnet-0testb': 'eu-central-1b',
      'subnet-0other': 'eu-central-1c',
    },
  });
}, 120_000);

/** The network interface the state machine's launch into `subnet` asks for. */
function networkInterface(subnet: string, overrides: Partial<NetworkInterfaceSpecification> = {}) {
  return [
    {
      DeviceIndex: 0,
      SubnetId: subnet,
      Groups: [NAMES.parentSecurityGroupId],
      AssociatePublicIpAddress: false,
      DeleteOnTermination: true,
      ...overrides,
    },
  ];
}

/** The launch the provisioning state machine makes (its RunInstances parameters). */
function launch(overrides: Partial<RunInstancesInput> = {}): RunInstancesInput {
  const tags = [
    { Key: INSTANCE_TAGS.enclaveId, Value: 'enc-1' },
    { Key: INSTANCE_TAGS.contractId, Value: 'ctr-1' },
  ];
  return {
    LaunchTemplate: { LaunchTemplateId: NAMES.launchTemplate.id, Version: NAMES.launchTemplate.version },
    InstanceType: 'm5.xlarge',
    MinCount: 1,
    MaxCount: 1,
    EnclaveOptions: { Enabled: true },
    MetadataOptions: {
      HttpTokens: 'required',
      HttpPutResponseHopLimit: 1,
      HttpEndpoint: 'enabled',
      InstanceMetadataTags: 'enabled',
    },
    NetworkInterfaces: networkInterface(NAMES.parentSubnetIds[0]!),
    TagSpecifications: [
      { ResourceType: 'instance', Tags: tags },
      { ResourceType: 'volume', Tags: tags },
    ],
    ...overrides,
  };
}

const denialOf = async (checks: AuthorizationCheck[]) => firstDenial(principals.stateMachine, checks);

describe('the state machine role, as the template grants it', () => {
  it('may launch a parent as the workflow does: every resource, the tags on create and the role it passes', async () => {
    const checks = ec2.authorizationChecks('RunInstances', launch());
    expect(
      checks.map((c) => `${c.action} ${c.resource.replace(/^arn:aws:[a-z0-9]+:[a-z0-9-]*:\d*:/, '')}`),
    ).toEqual([
      'ec2:RunInstances instance/*',
      'ec2:RunInstances volume/*',
      'ec2:RunInstances network-interface/*',
      `ec2:RunInstances launch-template/${NAMES.launchTemplate.id}`,
      `ec2:RunInstances subnet/${NAMES.parentSubnetIds[0]}`,
      `ec2:RunInstances security-group/${NAMES.parentSecurityGroupId}`,
      'ec2:RunInstances image/ami-0test',
      'ec2:CreateTags instance/*',
      'ec2:CreateTags volume/*',
      `iam:PassRole role/${principals.parentRoleArn.split('/').at(-1)}`,
    ]);
    expect(await denialOf(checks)).toBeUndefined();
  });

  it("may launch into either of the parents' zones, never another subnet nor with a public address", async () => {
    const second = launch({ NetworkInterfaces: networkInterface(NAMES.parentSubnetIds[1]!) });
    expect(await denialOf(ec2.authorizationChecks('RunInstances', second))).toBeUndefined();
    const elsewhere = await denialOf(
      ec2.authorizationChecks(
        'RunInstances',
        launch({ NetworkInterfaces: networkInterface('subnet-0other') }),
      ),
    );
    expect(elsewhere?.check.resource).toMatch(/:subnet\/subnet-0other$/);
    const exposed = await denialOf(
      ec2.authorizationChecks(
        'RunInstances',
        launch({
          NetworkInterfaces: networkInterface(NAMES.parentSubnetIds[0]!, { AssociatePublicIpAddress: true }),
        }),
      ),
    );
    expect(exposed?.check).toMatchObject({
      resource: expect.stringMatching(/:network-interface\/\*$/),
      context: { 'ec2:AssociatePublicIpAddress': 'true' },
    });
    const otherGroup = await denialOf(
      ec2.authorizationChecks(
        'RunInstances',
        launch({ NetworkInterfaces: networkInterface(NAMES.parentSubnetIds[0]!, { Groups: ['sg-0open'] }) }),
      ),
    );
    expect(otherGroup?.check.resource).toMatch(/:security-group\/sg-0open$/);
  });

  it('may not launch one that leaves MetadataOptions to the launch template (the first-deployment defect)', async () => {
    const denial = await denialOf(
      ec2.authorizationChecks('RunInstances', launch({ MetadataOptions: undefined })),
    );
    expect(denial?.check).toMatchObject({
      action: 'ec2:RunInstances',
      resource: expect.stringMatching(/:instance\/\*$/),
    });
    expect(denialMessage(denial!)).toBe(
      `User: ${principals.stateMachine.sessionArn} is not authorized to perform: ec2:RunInstances on resource: arn:aws:ec2:eu-central-1:000000000000:instance/* because no identity-based policy allows the ec2:RunInstances action`,
    );
    const optional = await denialOf(
      ec2.authorizationChecks('RunInstances', launch({ MetadataOptions: { HttpTokens: 'optional' } })),
    );
    expect(optional?.check.action).toBe('ec2:RunInstances');
  });

  it('may not launch untagged, nor with another launch template', async () => {
    const untagged = await denialOf(
      ec2.authorizationChecks('RunInstances', launch({ TagSpecifications: [] })),
    );
    expect(untagged?.check.resource).toMatch(/:instance\/\*$/);
    const other = new Ec2Simulator({
      launchTemplates: { 'lt-0other': { ImageId: 'ami-0test' } },
      subnets: { 'subnet-0testa': 'eu-central-1a' },
    });
    const elsewhere = await denialOf(
      other.authorizationChecks(
        'RunInstances',
        launch({ LaunchTemplate: { LaunchTemplateId: 'lt-0other' } }),
      ),
    );
    expect(elsewhere?.check.action).toBe('ec2:RunInstances');
  });

  it('may restart and tag an instance only when it carries the enclave tag', async () => {
    const { Instances } = await ec2.runInstances(launch());
    const parent = Instances[0]!.InstanceId;
    const { Instances: others } = await ec2.runInstances(
      launch({ TagSpecifications: [{ ResourceType: 'instance', Tags: [{ Key: 'team', Value: 'x' }] }] }),
    );
    const stranger = others[0]!.InstanceId;
    const nonce = [{ Key: INSTANCE_TAGS.attestationNonce, Value: 'AAAA' }];
    expect(
      await denialOf(ec2.authorizationChecks('StartInstances', { InstanceIds: [parent] })),
    ).toBeUndefined();
    expect(
      await denialOf(ec2.authorizationChecks('CreateTags', { Resources: [parent], Tags: nonce })),
    ).toBeUndefined();
    const start = await denialOf(ec2.authorizationChecks('StartInstances', { InstanceIds: [stranger] }));
    expect(start?.check.resource).toMatch(new RegExp(`instance/${stranger}$`));
    const tag = await denialOf(ec2.authorizationChecks('CreateTags', { Resources: [stranger], Tags: nonce }));
    expect(tag?.check.action).toBe('ec2:CreateTags');
  });

  it('may neither stop nor terminate (that is the enforcement and Compensate), nor describe', async () => {
    const { Instances } = await ec2.runInstances(launch());
    const parent = Instances[0]!.InstanceId;
    for (const operation of ['StopInstances', 'TerminateInstances'] as const) {
      const denial = await denialOf(ec2.authorizationChecks(operation, { InstanceIds: [parent] }));
      expect(denial?.check.action).toBe(`ec2:${operation}`);
    }
    expect((await denialOf(ec2.authorizationChecks('DescribeInstances', {})))?.check.action).toBe(
      'ec2:DescribeInstances',
    );
  });
});
