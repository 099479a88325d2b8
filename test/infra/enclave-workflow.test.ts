/**
 * The enclave provisioning workflow as synthesized: the state machine's definition (every task bounded,
 * retried and caught; the attestation wait; Standard, logged in full, traced), who may do what to EC2 (launch
 * only with the launch template, stop/terminate/start/tag only tagged instances), who may complete the
 * attestation wait, the parents' launch template and role, the workflow table, the rules, and that no
 * function of the workflow is configured with anything that could name an attestation trust root.
 *
 * Synthesized without bundling (the bundles are checked in contracts-stack.test.ts): a few seconds.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import type { IConstruct } from 'constructs';
import { beforeAll, describe, expect, it } from 'vitest';
import type { AppFunction } from '../../infra/constructs/app-function.ts';
import {
  PARENT_AGENT_UNIT,
  PARENT_AGENT_USER,
  PARENT_NODE,
  PARENT_PATHS,
  VSOCK_PROXY_CONFIG,
  VSOCK_PROXY_UNIT,
  vsockProxyAllowlist,
} from '../../infra/constructs/enclave-parents.ts';
import { ENFORCEMENT_EVENTS, PROVISIONING_EVENTS } from '../../infra/constructs/enclave-workflow.ts';
import { ContractsStack } from '../../infra/contracts-stack.ts';
import { AGENT_TIMING } from '../../infra/parent-agent/agent.ts';
import { bundleParentAgent } from '../../infra/parent-agent/bundle.ts';
import { projectPath } from '../../infra/project-paths.ts';
import { STATES, WORKFLOW_STEPS, WORKFLOW_TIMING } from '../../shared/enclaves/provisioning-workflow.ts';
import { type Grant, ROUTES, usesWorkflow } from '../../shared/http/routes.ts';
import { INSTANCE_TAGS } from '../../shared/workflow/workflow-ports.ts';
import { type CfnResource, StackTemplate, type Statement, target } from '../support/stack-template.ts';

type State = Record<string, unknown> & {
  Type: string;
  Next?: string;
  Default?: string;
  Choices?: { Next: string }[];
  Catch?: { ErrorEquals: string[]; Next: string; ResultPath?: string }[];
  Retry?: { ErrorEquals: string[]; MaxAttempts?: number }[];
};

const TAG_CONDITION = { Null: { [`aws:ResourceTag/${INSTANCE_TAGS.enclaveId}`]: 'false' } };

let stack: ContractsStack;
let resources: Record<string, CfnResource>;
let cfn: StackTemplate;
const logicalId = (construct: IConstruct) => cfn.logicalId(construct);
const ofType = (type: string) => cfn.ofType(type);
const roleStatements = (roleId: string) => cfn.roleStatements(roleId);

let states: Record<string, State>;
interface Definition {
  readonly StartAt: string;
  readonly TimeoutSeconds?: number;
  readonly States: Record<string, State>;
}
let definition: Definition;

/**
 * The stack is built without bundling (about 6 s when run alone), synchronously: vitest can only compare the
 * time it took with this afterwards. Sized for a loaded 2-core machine running the whole suite.
 */
const SYNTH_TIMEOUT_MS = 300_000;

beforeAll(() => {
  const context = JSON.parse(readFileSync(projectPath('cdk.json'), 'utf8')).context as Record<
    string,
    unknown
  >;
  // No stack needs bundling: the functions get placeholder code, the template is otherwise the same.
  const app = new App({ context: { ...context, 'aws:cdk:bundling-stacks': [] } });
  stack = new ContractsStack(app, 'EnclaveContracts', {
    env: { account: '000000000000', region: 'eu-central-1' },
  });
  resources = Template.fromStack(stack).toJSON().Resources as Record<string, CfnResource>;
  cfn = new StackTemplate(stack, resources);
  definition = definitionOf(resources[logicalId(stack.enclaveWorkflow.stateMachine)]!);
  states = definition.States;
}, SYNTH_TIMEOUT_MS);

/** The state machine's definition, each intrinsic (ARNs, ids) replaced by `<LogicalId>` (partition: aws). */
function definitionOf(stateMachine: CfnResource): Definition {
  const raw = stateMachine.Properties.DefinitionString as string | { 'Fn::Join': [string, unknown[]] };
  const text =
    typeof raw === 'string'
      ? raw
      : raw['Fn::Join'][1]
          .map((part) => {
            if (typeof part === 'string') return part;
            const p = part as { Ref?: string; 'Fn::GetAtt'?: [string, string] };
            if (p.Ref === 'AWS::Partition') return 'aws';
            return `<${p.Ref ?? p['Fn::GetAtt']?.join('.')}>`;
          })
          .join(raw['Fn::Join'][0]);
  return JSON.parse(text);
}

/** A CloudFormation string (`Fn::Base64`/`Fn::Join` of strings and references) as text, references as `<…>`. */
function flatten(value: unknown): string {
  if (typeof value === 'string') return value;
  const v = value as { 'Fn::Base64'?: unknown; 'Fn::Join'?: [string, unknown[]] };
  if (v['Fn::Base64'] !== undefined) return flatten(v['Fn::Base64']);
  if (v['Fn::Join']) return v['Fn::Join'][1].map(flatten).join(v['Fn::Join'][0]);
  return `<${JSON.stringify(value)}>`;
}

/** What the user data writes to `path` with a quoted here-document. */
function fileWritten(script: string, path: string): string {
  const match = new RegExp(
    `^cat > ${path.replace(/[.]/g, '\\.')} <<'(\\w+)'\\n([\\s\\S]*?)\\n\\1$`,
    'm',
  ).exec(script);
  if (!match) throw new Error(`the user data does not write ${path}`);
  return match[2]!;
}

const unitFile = (script: string, name: string) => fileWritten(script, `/etc/systemd/system/${name}`);

/** Every role of the stack with the statements that allow `action`. */
function rolesAllowing(action: string): Map<string, Statement[]> {
  const holders = new Map<string, Statement[]>();
  for (const [roleId] of ofType('AWS::IAM::Role')) {
    const statements = roleStatements(roleId).filter(
      (s) => s.effect === 'Allow' && s.actions.includes(action),
    );
    if (statements.length > 0) holders.set(roleId, statements);
  }
  return holders;
}

function environmentOf(fn: AppFunction): Record<string, unknown> {
  return (resources[logicalId(fn.function)]!.Properties.Environment as { Variables: Record<string, unknown> })
    .Variables;
}

const step = (state: string) => {
  const fn = (stack.enclaveWorkflow.steps as Record<string, AppFunction>)[state];
  if (!fn) throw new Error(`no function for step ${state}`);
  return fn;
};

describe('the state machine', () => {
  it('is Standard, logs everything with execution data to a CMK-encrypted log group, and traces with X-Ray', () => {
    const props = resources[logicalId(stack.enclaveWorkflow.stateMachine)]!.Properties;
    expect(props.StateMachineType).toBe('STANDARD');
    expect(props.TracingConfiguration).toEqual({ Enabled: true });
    const logging = props.LoggingConfiguration as {
      Level: string;
      IncludeExecutionData: boolean;
      Destinations: { CloudWatchLogsLogGroup: { LogGroupArn: unknown } }[];
    };
    expect(logging).toMatchObject({ Level: 'ALL', IncludeExecutionData: true });
    const group = resources[target(logging.Destinations[0]!.CloudWatchLogsLogGroup.LogGroupArn)!]!;
    expect(resources[target(group.Properties.KmsKeyId)!]?.Type).toBe('AWS::KMS::Key');
    expect(definition.TimeoutSeconds).toBe(WORKFLOW_TIMING.executionTimeoutSeconds);
  });

  it('has exactly the states of STATES and starts with Validate', () => {
    expect(Object.keys(states).sort()).toEqual(Object.values(STATES).sort());
    expect(definition.StartAt).toBe(STATES.validate);
  });

  it('bounds, retries and catches every task', () => {
    const tasks = Object.entries(states).filter(([, s]) => s.Type === 'Task');
    expect(tasks.length).toBeGreaterThanOrEqual(WORKFLOW_STEPS.length + 3);
    for (const [name, s] of tasks) {
      expect(s.TimeoutSeconds, name).toEqual(expect.any(Number));
      expect(s.Retry?.length, name).toBeGreaterThan(0);
      expect(s.Catch?.length, name).toBeGreaterThan(0);
    }
  });

  it('compensates every failure after Validate claimed the enclave, keeping the state at $.error', () => {
    for (const [name, s] of Object.entries(states)) {
      if (s.Type !== 'Task' || name === STATES.compensate) continue;
      const all = s.Catch!.find((c) => c.ErrorEquals.includes('States.ALL'))!;
      expect(all.ResultPath, name).toBe('$.error');
      expect(all.Next, name).toBe(name === STATES.runInstances ? STATES.launchFailed : STATES.compensate);
    }
    expect(states[STATES.validate]!.Catch![0]).toEqual({
      ErrorEquals: ['ProvisioningSuperseded'],
      ResultPath: '$.error',
      Next: STATES.superseded,
    });
    expect(states[STATES.compensate]).toMatchObject({
      Next: STATES.provisioningFailed,
      Catch: [{ ErrorEquals: ['States.ALL'], Next: STATES.compensationFailed }],
    });
    expect(states[STATES.compensate]!.Retry![0]).toMatchObject({
      ErrorEquals: ['States.ALL'],
      MaxAttempts: 6,
    });
    // The whole state and the execution: only the execution that owns the enclave compensates it.
    expect(states[STATES.compensate]!.Parameters).toEqual({
      'executionArn.$': '$$.Execution.Id',
      'state.$': '$',
    });
    expect(states[STATES.compensationFailed]).toMatchObject({ Type: 'Fail', Error: 'CompensationFailed' });
    expect(states[STATES.provisioningFailed]).toMatchObject({
      Type: 'Fail',
      Error: 'EnclaveProvisioningFailed',
    });
    expect(states[STATES.superseded]?.Type).toBe('Succeed');
  });

  it('retries Lambda steps on Lambda service errors and TransientStepFailure only', () => {
    for (const s of WORKFLOW_STEPS.filter((w) => w.state !== STATES.compensate)) {
      const errors = states[s.state]!.Retry!.flatMap((r) => r.ErrorEquals);
      expect(errors, s.state).not.toContain('States.ALL');
      expect(errors, s.state).toContain('Lambda.ServiceException');
      if (s.state !== STATES.waitForAttestation) expect(errors, s.state).toContain('TransientStepFailure');
    }
  });

  it('invokes each Lambda step, answering with its result, and nothing but its function', () => {
    for (const s of WORKFLOW_STEPS.filter((w) => w.state !== STATES.waitForAttestation)) {
      expect(states[s.state]!.Resource, s.state).toBe(`<${logicalId(step(s.state).function)}.Arn>`);
    }
  });

  it('waits for the attestation with a task token, bounded by the timeout and the heartbeat', () => {
    expect(states[STATES.waitForAttestation]).toMatchObject({
      Resource: 'arn:aws:states:::lambda:invoke.waitForTaskToken',
      TimeoutSeconds: WORKFLOW_TIMING.attestationTimeoutSeconds,
      HeartbeatSeconds: WORKFLOW_TIMING.attestationHeartbeatSeconds,
      ResultPath: '$.submission',
      Parameters: {
        FunctionName: `<${logicalId(step(STATES.waitForAttestation).function)}.Arn>`,
        Payload: {
          'enclaveId.$': '$.enclaveId',
          'instanceId.$': '$.instance.instanceId',
          'executionArn.$': '$$.Execution.Id',
          'taskToken.$': '$$.Task.Token',
        },
      },
    });
  });

  it('launches from the launch template with the enclave and nonce tags, falling back to larger types', () => {
    const lt = logicalId(stack.enclaveWorkflow.parents.launchTemplate);
    expect(states[STATES.runInstances]).toMatchObject({
      Resource: 'arn:aws:states:::aws-sdk:ec2:runInstances',
      ResultSelector: { 'instanceId.$': '$.Instances[0].InstanceId' },
      ResultPath: '$.instance',
      Parameters: {
        LaunchTemplate: { LaunchTemplateId: `<${lt}>`, Version: `<${lt}.LatestVersionNumber>` },
        'InstanceType.$': '$.launch.instanceType',
        EnclaveOptions: { Enabled: true },
        // Idempotent: a retried launch of the same execution and candidate answers the first instance.
        'ClientToken.$':
          "States.Hash(States.Format('{}/{}/{}/{}', $.launch.index, $.launch.zone, $$.Execution.Name, $$.Execution.Id), 'SHA-1')",
        // The template holds no interface: the launch's names the zone's subnet, the group, no public IP.
        NetworkInterfaces: [
          {
            DeviceIndex: 0,
            'SubnetId.$': '$.launch.subnetId',
            Groups: [`<${logicalId(stack.enclaveWorkflow.parents.securityGroup)}.GroupId>`],
            AssociatePublicIpAddress: false,
            DeleteOnTermination: true,
          },
        ],
      },
    });
    const specs = (states[STATES.runInstances]!.Parameters as { TagSpecifications: unknown })
      .TagSpecifications;
    expect(specs).toEqual([
      {
        ResourceType: 'instance',
        Tags: [
          { Key: INSTANCE_TAGS.enclaveId, 'Value.$': '$.enclaveId' },
          { Key: INSTANCE_TAGS.contractId, 'Value.$': '$.plan.contractId' },
          { Key: INSTANCE_TAGS.attestationNonce, 'Value.$': '$.challenge.nonce' },
          { Key: INSTANCE_TAGS.cpuCount, 'Value.$': '$.plan.enclaveCpuCount' },
          { Key: INSTANCE_TAGS.memoryMiB, 'Value.$': '$.plan.enclaveMemoryMiB' },
          { Key: INSTANCE_TAGS.imageUrl, 'Value.$': '$.plan.imageUrl' },
          { Key: INSTANCE_TAGS.imageSha256, 'Value.$': '$.plan.imageSha256' },
        ],
      },
      {
        ResourceType: 'volume',
        Tags: [
          { Key: INSTANCE_TAGS.enclaveId, 'Value.$': '$.enclaveId' },
          { Key: INSTANCE_TAGS.contractId, 'Value.$': '$.plan.contractId' },
        ],
      },
    ]);
    expect(states[STATES.nextInstanceType]?.Next).toBe(STATES.runInstances);
    expect(states[STATES.nextAvailabilityZone]?.Next).toBe(STATES.runInstances);
  });

  it("tries each of the parents' Availability Zones for a type before the next larger type", () => {
    const subnets = stack.enclaveWorkflow.parents.subnetIds.map((id) => `<${target(stack.resolve(id))}>`);
    expect(subnets).toHaveLength(2);
    const zones = subnets.map((ref) => resources[ref.slice(1, -1)]!.Properties.AvailabilityZone);
    expect(new Set(zones.map((z) => JSON.stringify(z))).size).toBe(2);
    expect(states[STATES.chooseFirstInstanceType]).toMatchObject({
      ResultPath: '$.launch',
      Parameters: { index: 0, zone: 0, subnetId: subnets[0], subnets, lastZone: 1, attempt: 0 },
    });
    expect(states[STATES.nextAvailabilityZone]).toMatchObject({
      ResultPath: '$.launch',
      Parameters: {
        'index.$': '$.launch.index',
        'zone.$': 'States.MathAdd($.launch.zone, 1)',
        'subnetId.$': 'States.ArrayGetItem($.launch.subnets, States.MathAdd($.launch.zone, 1))',
        attempt: 0,
      },
    });
    expect(states[STATES.nextInstanceType]).toMatchObject({
      Parameters: {
        'index.$': 'States.MathAdd($.launch.index, 1)',
        zone: 0,
        'subnetId.$': 'States.ArrayGetItem($.launch.subnets, 0)',
      },
    });
    // The launch may use every parent subnet, and no other.
    const subnetGrants = roleStatements(logicalId(stack.enclaveWorkflow.stateMachine.role))
      .filter((st) => st.actions.includes('ec2:RunInstances'))
      .flatMap((st) => ([] as unknown[]).concat(JSON.parse(st.resource)))
      .filter((arn) => JSON.stringify(arn).includes(':subnet/'));
    expect(subnetGrants.map((arn) => `<${JSON.stringify(arn).match(/"Ref":"([^"]+)"/)![1]}>`).sort()).toEqual(
      [...subnets].sort(),
    );
  });

  it("tells EC2's refusals apart by the cause, as the integration names them all Ec2.Ec2Exception", () => {
    // Dead names (Ec2.RequestLimitExceededException and the like) are matched nowhere.
    for (const [name, s] of Object.entries(states)) {
      for (const errors of [...(s.Retry ?? []), ...(s.Catch ?? [])].map((r) => r.ErrorEquals)) {
        for (const error of errors.filter((e) => e.startsWith('Ec2.'))) {
          expect(['Ec2.Ec2Exception', 'Ec2.SdkClientException'], `${name}: ${error}`).toContain(error);
        }
      }
    }
    const choice = states[STATES.launchFailed] as unknown as {
      Choices: { And: Record<string, unknown>[]; Next: string }[];
      Default: string;
    };
    expect(choice.Default).toBe(STATES.compensate);
    const [noCapacityHere, noCapacity, throttled] = choice.Choices;
    expect(noCapacityHere!.Next).toBe(STATES.nextAvailabilityZone);
    expect(JSON.stringify(noCapacityHere)).toContain('"NumericLessThanPath":"$.launch.lastZone"');
    expect(noCapacity!.Next).toBe(STATES.nextInstanceType);
    for (const fallback of [noCapacityHere, noCapacity]) {
      expect(JSON.stringify(fallback)).toContain('"StringEquals":"Ec2.Ec2Exception"');
      expect(JSON.stringify(fallback)).toContain(
        '"StringMatches":"We currently do not have sufficient * capacity*"',
      );
      expect(JSON.stringify(fallback)).toContain(
        '"StringMatches":"Your requested instance type * is not supported in your requested Availability Zone*"',
      );
    }
    expect(JSON.stringify(noCapacity)).toContain('"NumericLessThanPath":"$.plan.lastInstanceTypeIndex"');
    expect(throttled!.Next).toBe(STATES.relaunchBackoff);
    expect(JSON.stringify(throttled)).toContain('"StringMatches":"*(Service: Ec2, Status Code: 503,*"');
    expect(JSON.stringify(throttled)).toContain('"StringMatches":"*(Service: Ec2, Status Code: 500,*"');
    expect(JSON.stringify(throttled)).toContain(
      `{"Variable":"$.launch.attempt","NumericLessThan":${WORKFLOW_TIMING.relaunchBackoffSeconds.length}}`,
    );
    expect(states[STATES.relaunchBackoff]).toMatchObject({
      Type: 'Pass',
      ResultPath: '$.launch',
      Next: STATES.waitToRelaunch,
      Parameters: {
        'attempt.$': 'States.MathAdd($.launch.attempt, 1)',
        'delaySeconds.$': 'States.ArrayGetItem(States.Array(2, 4, 8, 16, 30), $.launch.attempt)',
      },
    });
    expect(states[STATES.waitToRelaunch]).toMatchObject({
      Type: 'Wait',
      SecondsPath: '$.launch.delaySeconds',
      Next: STATES.runInstances,
    });
  });

  it('restarts the parent once a stop completes: StartInstances retries IncorrectInstanceState for minutes', () => {
    expect(states[STATES.tagRestartNonce]?.Next).toBe(STATES.startInstances);
    // IncorrectInstanceState arrives as Ec2.Ec2Exception, as every EC2 error through the integration.
    const retry = (states[STATES.startInstances]!.Retry as Record<string, unknown>[]).find((r) =>
      (r.ErrorEquals as string[]).includes('Ec2.Ec2Exception'),
    );
    expect(retry).toEqual({
      ErrorEquals: ['Ec2.Ec2Exception'],
      IntervalSeconds: 5,
      BackoffRate: 1.5,
      MaxAttempts: 8,
    });
    // Long enough for a Nitro parent to finish stopping (about 4 minutes of backoff in all).
    const waited = Array.from({ length: 8 }, (_, n) => 5 * 1.5 ** n).reduce((a, b) => a + b, 0);
    expect(waited).toBeGreaterThan(180);
  });
});

describe('EC2 permissions', () => {
  it('ec2:RunInstances only for the state machine, only with the launch template, the instance and its volume only tagged', () => {
    const holders = rolesAllowing('ec2:RunInstances');
    expect([...holders.keys()]).toEqual([logicalId(stack.enclaveWorkflow.stateMachine.role)]);
    const lt = logicalId(stack.enclaveWorkflow.parents.launchTemplate);
    const statements = [...holders.values()].flat();
    for (const s of statements) {
      expect(s.actions).toEqual(['ec2:RunInstances']);
      expect(JSON.stringify(s.condition?.ArnEquals?.['ec2:LaunchTemplate'])).toContain(`"Ref":"${lt}"`);
    }
    // Whatever statement covers instances or volumes requires the enclave tag in the request.
    const onInstances = statements.filter((s) => /:(instance|volume)\/\*/.test(s.resource));
    expect(onInstances.length).toBeGreaterThan(0);
    for (const s of onInstances) {
      expect(s.condition?.Null).toEqual({ [`aws:RequestTag/${INSTANCE_TAGS.enclaveId}`]: 'false' });
    }
    // The request may not override the template's IMDSv2 requirement: every statement that lets it create
    // an instance requires the token.
    const onInstance = statements.filter((s) => /:instance\/\*/.test(s.resource));
    expect(onInstance.length).toBeGreaterThan(0);
    for (const s of onInstance) {
      expect(s.condition?.StringEquals).toEqual({ 'ec2:MetadataHttpTokens': 'required' });
    }
    // IAM derives ec2:MetadataHttpTokens from the request's own MetadataOptions, never from the launch
    // template (aws/karpenter-provider-aws issue 9018): a launch that left them to the template is denied.
    const sent = (states[STATES.runInstances]!.Parameters as { MetadataOptions?: Record<string, unknown> })
      .MetadataOptions;
    expect(sent).toEqual({
      HttpTokens: 'required',
      HttpPutResponseHopLimit: 1,
      HttpEndpoint: 'enabled',
      InstanceMetadataTags: 'enabled',
    });
    for (const s of onInstance)
      expect(s.condition?.StringEquals?.['ec2:MetadataHttpTokens']).toBe(sent?.HttpTokens);
  });

  it('ec2:CreateTags only within RunInstances or on instances carrying the enclave tag', () => {
    for (const s of [...rolesAllowing('ec2:CreateTags').values()].flat()) {
      const withinRun = s.condition?.StringEquals?.['ec2:CreateAction'] === 'RunInstances';
      expect(withinRun || JSON.stringify(s.condition) === JSON.stringify(TAG_CONDITION), s.resource).toBe(
        true,
      );
    }
  });

  it.each(['ec2:StopInstances', 'ec2:TerminateInstances', 'ec2:StartInstances'])(
    '%s only on instances carrying the enclave tag',
    (action) => {
      const holders = rolesAllowing(action);
      expect(holders.size).toBeGreaterThan(0);
      for (const s of [...holders.values()].flat()) {
        expect(s.condition).toEqual(TAG_CONDITION);
        expect(s.resource).toMatch(/:instance\/\*"$/);
      }
    },
  );

  it('terminate is held by Compensate and the enforcement, stop by the enforcement, start by the state machine', () => {
    const ids = (action: string) => [...rolesAllowing(action).keys()].sort();
    const compensate = logicalId(step(STATES.compensate).role);
    const enforcement = logicalId(stack.enclaveWorkflow.enforcement.role);
    expect(ids('ec2:TerminateInstances')).toEqual([compensate, enforcement].sort());
    expect(ids('ec2:StopInstances')).toEqual([enforcement]);
    expect(ids('ec2:StartInstances')).toEqual([logicalId(stack.enclaveWorkflow.stateMachine.role)]);
  });

  it('iam:PassRole of the parent role only, to EC2 only', () => {
    const holders = rolesAllowing('iam:PassRole');
    expect([...holders.keys()]).toEqual([logicalId(stack.enclaveWorkflow.stateMachine.role)]);
    for (const s of [...holders.values()].flat()) {
      expect(s.resource).toBe(
        JSON.stringify({ 'Fn::GetAtt': [logicalId(stack.enclaveWorkflow.parentRole), 'Arn'] }),
      );
      expect(s.condition).toEqual({ StringEquals: { 'iam:PassedToService': 'ec2.amazonaws.com' } });
    }
  });

  it('the state machine may do nothing but invoke its steps, launch/restart parents, log and trace', () => {
    const actions = roleStatements(logicalId(stack.enclaveWorkflow.stateMachine.role)).flatMap(
      (s) => s.actions,
    );
    // Case-sensitively: CallAwsService would add its own unconditioned `ec2:runInstances`-style statements.
    expect(new Set(actions.filter((a) => !/^(logs|xray):/.test(a)))).toEqual(
      new Set([
        'lambda:InvokeFunction',
        'ec2:RunInstances',
        'ec2:CreateTags',
        'ec2:StartInstances',
        'iam:PassRole',
        'kms:Decrypt',
        'kms:DescribeKey',
        'kms:GenerateDataKeyWithoutPlaintext',
        'kms:ReEncryptFrom',
        'kms:ReEncryptTo',
        'kms:CreateGrant',
      ]),
    );
  });
});

describe('the attestation callback', () => {
  const callbackRoutes = ROUTES.filter((r) => (r.grants as readonly Grant[]).includes('taskCallback'));

  it('states:SendTaskSuccess is held by the taskCallback routes only, on this state machine only', () => {
    expect(callbackRoutes.length).toBeGreaterThan(0);
    const holders = rolesAllowing('states:SendTaskSuccess');
    const expected = callbackRoutes.map((r) => logicalId(stack.api.functions.get(r.id)!.role));
    expect([...holders.keys()].sort()).toEqual(expected.sort());
    for (const s of [...holders.values()].flat()) {
      expect(s.actions).toEqual(['states:SendTaskSuccess']);
      expect(s.resource).toBe(JSON.stringify({ Ref: logicalId(stack.enclaveWorkflow.stateMachine) }));
    }
  });

  it('states:SendTaskHeartbeat is held by the taskHeartbeat routes only, which may only read the table', () => {
    const heartbeatRoutes = ROUTES.filter((r) => (r.grants as readonly Grant[]).includes('taskHeartbeat'));
    expect(heartbeatRoutes.map((r) => r.id)).toEqual(['sendAttestationHeartbeat']);
    const holders = rolesAllowing('states:SendTaskHeartbeat');
    const expected = heartbeatRoutes.map((r) => logicalId(stack.api.functions.get(r.id)!.role));
    expect([...holders.keys()].sort()).toEqual(expected.sort());
    for (const s of [...holders.values()].flat()) {
      expect(s.actions).toEqual(['states:SendTaskHeartbeat']);
      expect(s.resource).toBe(JSON.stringify({ Ref: logicalId(stack.enclaveWorkflow.stateMachine) }));
    }
    // It keeps a wait alive; it can neither take the token nor complete the task. (It may ring the
    // doorbell, an UpdateItem on another table: only the workflow table's statements count here.)
    const table = logicalId(stack.enclaveWorkflow.table);
    for (const roleId of expected) {
      const statements = roleStatements(roleId);
      const onTable = statements.filter((s) => s.resource.includes(table)).flatMap((s) => s.actions);
      expect(onTable).toContain('dynamodb:GetItem');
      for (const a of ['dynamodb:UpdateItem', 'dynamodb:PutItem', 'dynamodb:DeleteItem']) {
        expect(onTable, a).not.toContain(a);
      }
      expect(statements.flatMap((s) => s.actions)).not.toContain('states:SendTaskSuccess');
    }
  });

  it('the callback and heartbeat routes reach the task-token items only, never the nonces', () => {
    const table = logicalId(stack.enclaveWorkflow.table);
    const routes = ROUTES.filter((r) =>
      (r.grants as readonly Grant[]).some((g) => g === 'taskCallback' || g === 'taskHeartbeat'),
    );
    expect(routes.length).toBe(2);
    for (const route of routes) {
      const statements = roleStatements(logicalId(stack.api.functions.get(route.id)!.role)).filter((s) =>
        s.resource.includes(`"${table}"`),
      );
      expect(statements.length, route.id).toBeGreaterThan(0);
      for (const s of statements) {
        expect(
          s.actions.every((a) => a === 'dynamodb:GetItem' || a === 'dynamodb:UpdateItem'),
          route.id,
        ).toBe(true);
        expect(s.condition, route.id).toEqual({
          'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': ['task#*'] },
        });
      }
    }
  });

  it('no role may fail a task', () => {
    expect(rolesAllowing('states:SendTaskFailure').size).toBe(0);
  });
});

describe('the parents', () => {
  it('run with a role that may only read the agent and invoke the iam routes', () => {
    const roleId = logicalId(stack.enclaveWorkflow.parentRole);
    expect(resources[roleId]?.Properties.ManagedPolicyArns).toBeUndefined();
    const statements = roleStatements(roleId);
    expect(statements.flatMap((s) => s.actions).sort()).toEqual(['execute-api:Invoke', 's3:GetObject']);
    // One object: the agent's bundle (the placeholder default image is https, fetched without credentials).
    const read = statements.filter((s) => s.actions.includes('s3:GetObject'));
    expect(read).toHaveLength(1);
    expect(JSON.parse(read[0]!.resource)).toMatch(
      new RegExp(
        `^arn:aws:s3:::cdk-[a-z0-9]+-assets-000000000000-eu-central-1/${stack.enclaveWorkflow.parents.agent.s3ObjectKey}$`,
      ),
    );
    const invoked = statements
      .filter((s) => s.actions.includes('execute-api:Invoke'))
      .flatMap((s) => JSON.parse(s.resource) as unknown[])
      .map((arn) =>
        (arn as { 'Fn::Join': [string, unknown[]] })['Fn::Join'][1]
          .filter((p) => typeof p === 'string')
          .join(''),
      );
    const iamRoutes = ROUTES.filter((r) => r.auth === 'iam');
    expect(iamRoutes.length).toBeGreaterThan(0);
    expect(invoked.map((arn) => arn.replace(/^.*:/, '')).sort()).toEqual(
      iamRoutes.map((r) => `/*/${r.method}${r.path.replace(/\{[^}]+\}/g, '*')}`).sort(),
    );
    expect(rolesAllowing('execute-api:Invoke').size).toBe(1);
  });

  it('launch with IMDSv2 required, metadata tags, enclaves on, a CMK-encrypted gp3 root volume and no public IP', () => {
    const data = resources[logicalId(stack.enclaveWorkflow.parents.launchTemplate)]!.Properties
      .LaunchTemplateData as Record<string, unknown>;
    expect(data.MetadataOptions).toMatchObject({
      HttpTokens: 'required',
      HttpEndpoint: 'enabled',
      HttpPutResponseHopLimit: 1,
      InstanceMetadataTags: 'enabled',
    });
    expect(data.EnclaveOptions).toEqual({ Enabled: true });
    const [root] = data.BlockDeviceMappings as { Ebs: Record<string, unknown> }[];
    expect(root!.Ebs).toMatchObject({ Encrypted: true, VolumeType: 'gp3', DeleteOnTermination: true });
    expect(resources[target(root!.Ebs.KmsKeyId)!]?.Type).toBe('AWS::KMS::Key');
    // No interface in the template (the launch brings it, per zone); IAM refuses one with a public address.
    expect(data.NetworkInterfaces).toBeUndefined();
    const nicGrant = roleStatements(logicalId(stack.enclaveWorkflow.stateMachine.role)).find((st) =>
      st.resource.includes(':network-interface/'),
    );
    expect(nicGrant?.condition).toMatchObject({ BoolIfExists: { 'ec2:AssociatePublicIpAddress': 'false' } });
    expect(data.IamInstanceProfile).toBeDefined();
  });

  const userData = () =>
    flatten(
      (
        resources[logicalId(stack.enclaveWorkflow.parents.launchTemplate)]!.Properties.LaunchTemplateData as {
          UserData: unknown;
        }
      ).UserData,
    );

  it('fetch the agent with the instance role and check its SHA-256 before anything runs it', () => {
    const script = userData();
    const lines = script.split('\n');
    const copy = lines.findIndex((l) => l.startsWith('aws s3 cp '));
    expect(lines[copy]).toMatch(
      new RegExp(
        `^aws s3 cp --only-show-errors --region '[^']+' 's3://[^']+/${stack.enclaveWorkflow.parents.agent.s3ObjectKey}' ${PARENT_PATHS.agent}$`,
      ),
    );
    // The pin is the SHA-256 of the very bundle the asset publishes.
    const pinned = new RegExp(`^echo '([0-9a-f]{64})  ${PARENT_PATHS.agent}' \\| sha256sum --strict -c -$`);
    const check = lines.findIndex((l) => pinned.test(l));
    expect(check).toBe(copy + 1);
    // The bundle is reproducible: built again, it has the same digest.
    const again = bundleParentAgent(mkdtempSync(join(tmpdir(), 'agent-')));
    expect(pinned.exec(lines[check]!)![1]).toBe(again.sha256);
    expect(createHash('sha256').update(readFileSync(again.file)).digest('hex')).toBe(again.sha256);
    expect(stack.enclaveWorkflow.parents.agentSha256).toBe(again.sha256);
    // Nothing runs it before: the unit is enabled last.
    expect(lines.findIndex((l) => l.startsWith('systemctl enable'))).toBeGreaterThan(check);
  });

  it("install the agent's unit, run on every boot (a resume) as an unprivileged, sandboxed user", () => {
    const script = userData();
    const unit = unitFile(script, PARENT_AGENT_UNIT);
    expect(unit).toContain(`User=${PARENT_AGENT_USER}\n`);
    expect(unit).toContain('SupplementaryGroups=ne\n');
    // Only the allocator step runs as root ('+'); the agent itself runs unprivileged.
    expect(unit).toContain(`ExecStartPre=+${PARENT_NODE} ${PARENT_PATHS.agent} configure-allocator\n`);
    expect(unit).toContain(`ExecStart=${PARENT_NODE} ${PARENT_PATHS.agent} run\n`);
    for (const line of [
      'NoNewPrivileges=yes',
      'CapabilityBoundingSet=',
      'ProtectSystem=full',
      'ProtectHome=yes',
      'RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_VSOCK',
      'Restart=on-failure',
      // A refused document: a restart would be refused the same way.
      'RestartPreventExitStatus=3',
      'WantedBy=multi-user.target',
    ]) {
      expect(unit.split('\n'), line).toContain(line);
    }
    expect(script).toMatch(
      new RegExp(
        `^id ${PARENT_AGENT_USER} .* \\|\\| useradd --system .*--groups ne ${PARENT_AGENT_USER}$`,
        'm',
      ),
    );
    expect(script).toMatch(
      new RegExp(
        `^systemctl enable --now nitro-enclaves-allocator\\.service ${VSOCK_PROXY_UNIT.replace('.', '\\.')} ${PARENT_AGENT_UNIT.replace('.', '\\.')}$`,
        'm',
      ),
    );
    expect(script).toMatch(
      /^dnf install -y aws-nitro-enclaves-cli aws-nitro-enclaves-cli-devel socat nodejs22 awscli-2$/m,
    );
  });

  it("let the enclave reach this region's KMS through the vsock-proxy, and nothing else", () => {
    const allowlist = fileWritten(userData(), VSOCK_PROXY_CONFIG).split('\n');
    expect(allowlist).toEqual(['allowlist:', `- {address: kms.${stack.region}.amazonaws.com, port: 443}`]);
    expect(() => vsockProxyAllowlist('kms.evil.example')).toThrow('not an AWS region');
  });

  it("write the agent's configuration: the API, the default image pinned, the enclave's CID", () => {
    const config = fileWritten(userData(), PARENT_PATHS.config).split('\n');
    expect(config[0]).toMatch(/^API_URL=.*ApiHttpApi.*\/api\/v1$/);
    expect(config.slice(1)).toEqual([
      'DEFAULT_IMAGE_URL=https://artifacts.invalid/enclave.eif',
      `DEFAULT_IMAGE_SHA256=${'0'.repeat(64)}`,
      'ENCLAVE_CID=16',
      `IMAGE_PATH=${PARENT_PATHS.image}`,
    ]);
    // Two heartbeats may be lost before the wait's heartbeat ends it.
    expect(3 * AGENT_TIMING.heartbeatIntervalMs).toBeLessThan(
      WORKFLOW_TIMING.attestationHeartbeatSeconds * 1000,
    );
  });

  it('have user data that bash parses', () => {
    const parsed = spawnSync('bash', ['-n'], { input: userData(), encoding: 'utf8' });
    expect(parsed.status, parsed.stderr).toBe(0);
  });

  it.each([0, 1])(
    'launch into private subnet %i, whose only way out is the NAT gateway (the API, packages, artifacts)',
    (i) => {
      const subnetId = target(stack.resolve(stack.enclaveWorkflow.parents.subnetIds[i]))!;
      expect(resources[subnetId]!.Properties.MapPublicIpOnLaunch).toBe(false);
      const routes = ofType('AWS::EC2::Route').filter(([, r]) => {
        const table = target(r.Properties.RouteTableId);
        return ofType('AWS::EC2::SubnetRouteTableAssociation').some(
          ([, a]) =>
            target(a.Properties.SubnetId) === subnetId && target(a.Properties.RouteTableId) === table,
        );
      });
      expect(routes.map(([, r]) => resources[target(r.Properties.NatGatewayId)!]?.Type)).toEqual([
        'AWS::EC2::NatGateway',
      ]);
      expect(routes.some(([, r]) => r.Properties.GatewayId !== undefined)).toBe(false);
      // No subnet of the VPC hands out public addresses.
      for (const [, subnet] of ofType('AWS::EC2::Subnet'))
        expect(subnet.Properties.MapPublicIpOnLaunch).toBe(false);
    },
  );

  it('have a security group with no ingress and HTTPS egress only', () => {
    const sg = resources[logicalId(stack.enclaveWorkflow.parents.securityGroup)]!.Properties;
    expect(sg.SecurityGroupIngress).toBeUndefined();
    expect(sg.SecurityGroupEgress).toEqual([
      expect.objectContaining({ IpProtocol: 'tcp', FromPort: 443, ToPort: 443, CidrIp: '0.0.0.0/0' }),
    ]);
    const sgId = logicalId(stack.enclaveWorkflow.parents.securityGroup);
    const ingress = ofType('AWS::EC2::SecurityGroupIngress').filter(
      ([, r]) => target(r.Properties.GroupId) === sgId,
    );
    expect(ingress).toEqual([]);
  });
});

describe('the workflow table', () => {
  it('is encrypted with a CMK, has TTL on expiresAt, point-in-time recovery and on-demand billing', () => {
    const table = resources[logicalId(stack.enclaveWorkflow.table)]!.Properties;
    expect(table.KeySchema).toEqual([{ AttributeName: 'pk', KeyType: 'HASH' }]);
    expect(table.TimeToLiveSpecification).toEqual({ AttributeName: 'expiresAt', Enabled: true });
    expect(table.BillingMode).toBe('PAY_PER_REQUEST');
    expect(table.SSESpecification).toMatchObject({ SSEEnabled: true, SSEType: 'KMS' });
    const [replica] = table.Replicas as Record<
      string,
      { KMSMasterKeyId?: unknown; PointInTimeRecoveryEnabled?: boolean }
    >[];
    expect(resources[target(replica!.SSESpecification!.KMSMasterKeyId)!]?.Type).toBe('AWS::KMS::Key');
    expect(replica!.PointInTimeRecoverySpecification).toMatchObject({ PointInTimeRecoveryEnabled: true });
  });
});

describe('the workflow functions', () => {
  it.each(WORKFLOW_STEPS.map((s) => [s.state, s] as const))('%s holds exactly its grants', (_state, s) => {
    const actions = new Set(roleStatements(logicalId(step(s.state).role)).flatMap((st) => st.actions));
    const has = (a: string) => actions.has(a);
    expect(has('rds-data:ExecuteStatement')).toBe((s.grants as readonly string[]).includes('database'));
    expect(has('dynamodb:PutItem')).toBe((s.grants as readonly string[]).includes('workflowTable'));
    expect(has('ec2:TerminateInstances')).toBe(
      (s.grants as readonly string[]).includes('terminateTaggedInstances'),
    );
    for (const a of ['ec2:RunInstances', 'ec2:StopInstances', 'states:SendTaskSuccess', 'kms:Sign']) {
      expect(has(a), a).toBe(false);
    }
  });

  it('configure the workflow (table and parent role) on the steps, the enforcement and the iam/task routes', () => {
    const expected = {
      WORKFLOW_TABLE_NAME: { Ref: logicalId(stack.enclaveWorkflow.table) },
      PARENT_ROLE_NAME: { Ref: logicalId(stack.enclaveWorkflow.parentRole) },
    };
    const routes = ROUTES.filter(usesWorkflow).map((r) => stack.api.functions.get(r.id)!);
    for (const fn of [
      ...Object.values(stack.enclaveWorkflow.steps),
      stack.enclaveWorkflow.enforcement,
      ...routes,
    ]) {
      expect(environmentOf(fn), fn.node.path).toMatchObject(expected);
    }
    expect(environmentOf(stack.api.functions.get('getHealth')!).WORKFLOW_TABLE_NAME).toBeUndefined();
  });

  it('VerifyAttestation is configured with nothing that could name a trust root', () => {
    // The deployed verifier trusts the pinned AWS Nitro root alone; no environment may add or replace one
    // (the local simulator's root must never be trusted in AWS).
    for (const fn of [...Object.values(stack.enclaveWorkflow.steps), stack.enclaveWorkflow.enforcement]) {
      const names = Object.keys(environmentOf(fn));
      expect(
        names.filter((n) => /ROOT|CERT|PEM/i.test(n)),
        fn.node.path,
      ).toEqual([]);
      const values = JSON.stringify(environmentOf(fn));
      expect(values, fn.node.path).not.toContain('BEGIN CERTIFICATE');
    }
  });
});

describe('the rules', () => {
  function ruleFor(detailType: string): CfnResource {
    const [rule] = ofType('AWS::Events::Rule').filter(([, r]) =>
      ((r.Properties.EventPattern as { 'detail-type'?: string[] })?.['detail-type'] ?? []).includes(
        detailType,
      ),
    );
    if (!rule) throw new Error(`no rule for ${detailType}`);
    return rule[1];
  }

  it('start provisioning on EnclaveCreated and EnclaveResumed with only the enclave id, with a DLQ', () => {
    const rule = ruleFor('EnclaveCreated');
    expect(rule.Properties.EventBusName).toEqual({ Ref: logicalId(stack.events.bus) });
    expect(rule.Properties.EventPattern).toEqual({
      source: ['enclave-contracts'],
      'detail-type': [...PROVISIONING_EVENTS],
    });
    const [t] = rule.Properties.Targets as Record<string, unknown>[];
    expect(t).toMatchObject({
      Arn: { Ref: logicalId(stack.enclaveWorkflow.stateMachine) },
      InputTransformer: { InputPathsMap: { 'detail-enclaveId': '$.detail.enclaveId' } },
      DeadLetterConfig: {
        Arn: { 'Fn::GetAtt': [logicalId(stack.enclaveWorkflow.startDeadLetterQueue), 'Arn'] },
      },
      RetryPolicy: expect.any(Object),
    });
    expect(
      JSON.parse((t!.InputTransformer as { InputTemplate: string }).InputTemplate.replace(/<[\w-]+>/, '"x"')),
    ).toEqual({
      enclaveId: 'x',
    });
  });

  it('enforce enclave and contract status changes through the enforcement function, with a DLQ', () => {
    const rule = ruleFor('EnclaveSuspended');
    expect((rule.Properties.EventPattern as { 'detail-type': string[] })['detail-type'].sort()).toEqual(
      [...ENFORCEMENT_EVENTS].sort(),
    );
    expect((rule.Properties.Targets as Record<string, unknown>[])[0]).toMatchObject({
      Arn: { 'Fn::GetAtt': [logicalId(stack.enclaveWorkflow.enforcement.function), 'Arn'] },
      DeadLetterConfig: {
        Arn: { 'Fn::GetAtt': [logicalId(stack.enclaveWorkflow.enforcementDeadLetterQueue), 'Arn'] },
      },
    });
  });

  it('send timed-out and aborted executions of this state machine (default bus) to the enforcement, with a DLQ', () => {
    const rules = ofType('AWS::Events::Rule').filter(([, r]) =>
      (r.Properties.EventPattern as { source?: string[] }).source?.includes('aws.states'),
    );
    expect(rules).toHaveLength(1);
    const [, rule] = rules[0]!;
    // The default bus: Step Functions puts its events nowhere else.
    expect(rule.Properties.EventBusName).toBeUndefined();
    expect(rule.Properties.EventPattern).toEqual({
      source: ['aws.states'],
      'detail-type': ['Step Functions Execution Status Change'],
      detail: {
        status: ['TIMED_OUT', 'ABORTED'],
        stateMachineArn: [{ Ref: logicalId(stack.enclaveWorkflow.stateMachine) }],
      },
    });
    const targets = rule.Properties.Targets as Record<string, unknown>[];
    expect(targets).toHaveLength(1);
    expect(targets[0]).toMatchObject({
      Arn: { 'Fn::GetAtt': [logicalId(stack.enclaveWorkflow.enforcement.function), 'Arn'] },
      DeadLetterConfig: {
        Arn: { 'Fn::GetAtt': [logicalId(stack.enclaveWorkflow.enforcementDeadLetterQueue), 'Arn'] },
      },
      RetryPolicy: { MaximumRetryAttempts: 10 },
    });
  });

  it("send EC2's state changes to down states (default bus) to the enforcement, with a DLQ", () => {
    const rules = ofType('AWS::Events::Rule').filter(([, r]) =>
      (r.Properties.EventPattern as { source?: string[] }).source?.includes('aws.ec2'),
    );
    expect(rules).toHaveLength(1);
    const [, rule] = rules[0]!;
    expect(rule.Properties.EventBusName).toBeUndefined(); // EC2 puts its events on the default bus only
    expect(rule.Properties.EventPattern).toEqual({
      source: ['aws.ec2'],
      'detail-type': ['EC2 Instance State-change Notification'],
      detail: { state: ['stopping', 'stopped', 'shutting-down', 'terminated'] },
    });
    expect((rule.Properties.Targets as Record<string, unknown>[])[0]).toMatchObject({
      Arn: { 'Fn::GetAtt': [logicalId(stack.enclaveWorkflow.enforcement.function), 'Arn'] },
      DeadLetterConfig: {
        Arn: { 'Fn::GetAtt': [logicalId(stack.enclaveWorkflow.enforcementDeadLetterQueue), 'Arn'] },
      },
      RetryPolicy: { MaximumRetryAttempts: 10 },
    });
  });

  it('failed executions and failed compensations raise alarms', () => {
    const alarms = ofType('AWS::CloudWatch::Alarm').map(([, a]) => a.Properties);
    expect(
      alarms.some(
        (a) =>
          a.MetricName === 'ExecutionsFailed' &&
          JSON.stringify(a.Dimensions).includes(logicalId(stack.enclaveWorkflow.stateMachine)),
      ),
    ).toBe(true);
    expect(alarms.some((a) => a.MetricName === 'CompensationFailed')).toBe(true);
  });

  it('every alarm notifies the alarm topic when it fires and when it clears; a failed compensation pages', () => {
    const topic = (construct: IConstruct) => ({ Ref: logicalId(construct) });
    const { alarmTopic, pageTopic } = stack.observability;
    const alarms = ofType('AWS::CloudWatch::Alarm');
    expect(alarms.length).toBeGreaterThanOrEqual(11);
    for (const [id, alarm] of alarms) {
      expect(alarm.Properties.AlarmActions, id).toContainEqual(topic(alarmTopic));
      expect(alarm.Properties.OKActions, id).toContainEqual(topic(alarmTopic));
    }
    const paging = alarms.filter(([, a]) =>
      JSON.stringify(a.Properties.AlarmActions).includes(logicalId(pageTopic)),
    );
    expect(paging.map(([, a]) => a.Properties.MetricName)).toEqual(['CompensationFailed']);
  });

  it('alarm topics are encrypted with a key CloudWatch of this account may use, and refuse plain HTTP', () => {
    const { alarmTopic, pageTopic, topicKey } = stack.observability;
    for (const topic of [alarmTopic, pageTopic]) {
      expect(resources[logicalId(topic)]!.Properties.KmsMasterKeyId).toEqual({
        'Fn::GetAtt': [logicalId(topicKey), 'Arn'],
      });
      const policy = ofType('AWS::SNS::TopicPolicy').find(([, p]) =>
        JSON.stringify(p.Properties.Topics).includes(logicalId(topic)),
      );
      expect(JSON.stringify(policy?.[1].Properties.PolicyDocument)).toContain(
        '"aws:SecureTransport":"false"',
      );
    }
    const keyPolicy = resources[logicalId(topicKey)]!.Properties.KeyPolicy as {
      Statement: Record<string, unknown>[];
    };
    expect(keyPolicy.Statement.find((s) => s.Sid === 'AllowCloudWatchAlarmsOfThisAccount')).toMatchObject({
      Principal: { Service: 'cloudwatch.amazonaws.com' },
      Action: ['kms:Decrypt', 'kms:GenerateDataKey*'],
      Condition: { StringEquals: { 'aws:SourceAccount': '000000000000' } },
    });
    // No subscription unless the deployment names who is told (context alarmEmail / pageEndpoint).
    expect(ofType('AWS::SNS::Subscription')).toEqual([]);
  });

  it('timed-out and aborted executions (which run no Catch) raise alarms', () => {
    const alarms = ofType('AWS::CloudWatch::Alarm').map(([, a]) => a.Properties);
    for (const metric of ['ExecutionsTimedOut', 'ExecutionsAborted']) {
      expect(
        alarms.filter(
          (a) =>
            a.MetricName === metric &&
            a.Namespace === 'AWS/States' &&
            a.Threshold === 1 &&
            JSON.stringify(a.Dimensions).includes(logicalId(stack.enclaveWorkflow.stateMachine)),
        ),
        metric,
      ).toHaveLength(1);
    }
  });
});
