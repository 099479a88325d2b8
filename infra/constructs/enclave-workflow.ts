import { Duration, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import type * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import * as tasks from 'aws-cdk-lib/aws-stepfunctions-tasks';
import { Construct } from 'constructs';
import {
  ENFORCEMENT_DETAIL_TYPES,
  EXECUTION_END_EVENT,
  INSTANCE_STATE_EVENT,
} from '../../shared/enclaves/enclave-enforcement.ts';
import {
  EC2_CAUSES,
  EC2_INTEGRATION_ERROR,
  STATES,
  STEP_ERRORS,
  WORKFLOW_STEPS,
  WORKFLOW_TIMING,
} from '../../shared/enclaves/provisioning-workflow.ts';
import { EVENT_SOURCE } from '../../shared/events/event-bus.ts';
import { adaptersOf } from '../../shared/runtime/adapters.ts';
import { NONCE_TABLE } from '../../shared/workflow/dynamodb-nonce-store.ts';
import { TASK_TOKEN_KEY_PREFIX } from '../../shared/workflow/dynamodb-task-token-store.ts';
import { INSTANCE_TAGS } from '../../shared/workflow/workflow-ports.ts';
import { AppFunction } from './app-function.ts';
import type { Database } from './database.ts';
import { deadLetterQueue } from './dead-letter-queue.ts';
import {
  type EnclaveArtifacts,
  EnclaveParents,
  PARENT_METADATA_OPTIONS,
  parentNetworkInterface,
} from './enclave-parents.ts';
import { EncryptedLogGroup, type LogSettings, Observability } from './observability.ts';

/** The states that are Lambda steps (`WORKFLOW_STEPS`). */
export type WorkflowStepState = (typeof WORKFLOW_STEPS)[number]['state'];

/** Props of {@link buildProvisioningDefinition}. */
export interface ProvisioningDefinitionProps {
  /** The function of each Lambda step. */
  readonly steps: Readonly<Record<WorkflowStepState, lambda.IFunction>>;
  /** The launch template of the parents: its id and the version RunInstances uses. */
  readonly launchTemplate: { readonly id: string; readonly version: string };
  /**
   * Where launches go: the parents' subnets, one per Availability Zone, in the order they are tried, and
   * their security group (see {@link parentNetworkInterface}).
   */
  readonly parentNetwork: { readonly subnetIds: readonly string[]; readonly securityGroupId: string };
}

/** Errors of Lambda itself (not of the function) that are always worth retrying. */
const LAMBDA_SERVICE_ERRORS = [
  'Lambda.ServiceException',
  'Lambda.AWSLambdaException',
  'Lambda.SdkClientException',
  'Lambda.TooManyRequestsException',
];

/**
 * The integration's own failures to reach EC2 (network, timeouts): always worth retrying. EC2's answers are
 * all `Ec2.Ec2Exception` (see `EC2_INTEGRATION_ERROR`): RunInstances tells them apart in a Choice; CreateTags
 * and StartInstances retry them all, as throttling is the likely one and the others stay refused.
 */
const EC2_CLIENT_ERRORS = ['Ec2.SdkClientException'];

const BACKOFF = {
  interval: Duration.seconds(2),
  backoffRate: 2,
  maxAttempts: 5,
  maxDelay: Duration.seconds(30),
  jitterStrategy: sfn.JitterType.FULL,
} as const;

/**
 * StartInstances of a parent that is still `stopping` (a resume right after a suspend) is refused with
 * IncorrectInstanceState until the stop completes, which takes a minute or two for a Nitro parent: about
 * 4 minutes of backoff in all (5 s × 1.5ⁿ, 8 retries), no jitter so the total is what it says. A parent
 * that is shutting down or terminated stays refused and goes to Compensate after these retries.
 */
const UNTIL_STOPPED: sfn.RetryProps = {
  // The EC2 integration reports IncorrectInstanceState, as every EC2 error, as Ec2.Ec2Exception (the code not
  // even in the cause): this retries throttling too, and only delays Compensate for errors that stay refused.
  errors: [EC2_INTEGRATION_ERROR],
  interval: Duration.seconds(5),
  backoffRate: 1.5,
  maxAttempts: 8,
};

const STEP_TIMEOUT = sfn.Timeout.duration(Duration.seconds(WORKFLOW_TIMING.lambdaTimeoutSeconds));

/**
 * An `aws-sdk:ec2:*` task that adds nothing to the state machine's role. `CallAwsService` would grant its
 * action on `iamResources` without conditions; the EC2 actions here are only allowed with the launch
 * template or on instances carrying the enclave tag, which `EnclaveParents.grantLaunch/grantRestart` grant.
 */
class Ec2Call extends tasks.CallAwsService {
  protected override readonly taskPolicies: iam.PolicyStatement[] = [];

  constructor(
    scope: Construct,
    id: string,
    props: Omit<tasks.CallAwsServiceProps, 'service' | 'iamResources'>,
  ) {
    // `iamResources` is required but unused: taskPolicies is emptied above.
    super(scope, id, { ...props, service: 'ec2', iamResources: ['*'] });
  }
}

/**
 * Builds the provisioning state machine's states under `scope` and returns the chain that starts with
 * `Validate`: the one definition both the deployed state machine ({@link EnclaveWorkflow}) and the local
 * stack (`infra/local/services/stepfunctions/provisioning-definition.ts`) run. State names come from `STATES`; see
 * `shared/enclaves/provisioning-workflow.ts` for the flow and the payloads.
 *
 * Every task has a timeout, a Retry for transient failures and a Catch: a failure after the first
 * Challenge goes to `Compensate` with the error at `$.error` and the state kept (so `$.instance` reaches
 * Compensate whenever an instance was launched).
 */
export function buildProvisioningDefinition(
  scope: Construct,
  props: ProvisioningDefinitionProps,
): sfn.IChainable {
  const { steps } = props;
  const toCompensate = { resultPath: '$.error', errors: [sfn.Errors.ALL] };

  /** A Lambda step answering with its result (`payloadResponseOnly`); retried on transient failures. */
  const lambdaStep = (
    state: WorkflowStepState,
    payload: Record<string, unknown>,
    resultPath: string,
    comment: string,
  ): sfn.TaskStateBase =>
    new tasks.LambdaInvoke(scope, state, {
      stateName: state,
      comment,
      lambdaFunction: steps[state],
      payload: sfn.TaskInput.fromObject(payload),
      payloadResponseOnly: true,
      // The Retry below replaces CDK's default one, so the definition says exactly what is retried.
      retryOnServiceExceptions: false,
      resultPath,
      taskTimeout: STEP_TIMEOUT,
    }).addRetry({ errors: [...LAMBDA_SERVICE_ERRORS, STEP_ERRORS.transient], ...BACKOFF });

  const enclaveId = sfn.JsonPath.stringAt('$.enclaveId');
  const instanceId = sfn.JsonPath.stringAt('$.instance.instanceId');
  const nonce = sfn.JsonPath.stringAt('$.challenge.nonce');
  const restartInstanceId = sfn.JsonPath.stringAt('$.plan.restartInstanceId');

  // --- ends
  const provisioned = new sfn.Succeed(scope, STATES.provisioned, {
    stateName: STATES.provisioned,
    comment: 'The enclave is Running with a verified attestation.',
  });
  const superseded = new sfn.Succeed(scope, STATES.superseded, {
    stateName: STATES.superseded,
    comment:
      'Another execution owns the enclave, or it is no longer Initializing: nothing was launched by this execution, so nothing is compensated.',
  });
  const provisioningFailed = new sfn.Fail(scope, STATES.provisioningFailed, {
    stateName: STATES.provisioningFailed,
    comment: 'Compensated: the enclave is Failed and its instances are terminated.',
    error: 'EnclaveProvisioningFailed',
    cause: "See the Compensate step's input for the reason ($.error).",
  });
  const compensationFailed = new sfn.Fail(scope, STATES.compensationFailed, {
    stateName: STATES.compensationFailed,
    comment: 'Compensation itself failed after its retries: an operator must act.',
    error: 'CompensationFailed',
    cause: `Compensation failed after its retries: an operator must terminate the instances tagged ${INSTANCE_TAGS.enclaveId}=<enclaveId> and mark the enclave Failed (see the Compensate step's input and error).`,
  });

  const compensate = new tasks.LambdaInvoke(scope, STATES.compensate, {
    stateName: STATES.compensate,
    comment:
      "Terminates the enclave's instances (found by tag, so an instance whose launch answer was lost is found too) and marks the enclave Failed with $.error.",
    lambdaFunction: steps[STATES.compensate],
    // The whole state (`$.error`, `$.instance` when launched) and the execution: Compensate acts only for
    // the execution that owns the enclave.
    payload: sfn.TaskInput.fromObject({
      executionArn: sfn.JsonPath.executionId,
      state: sfn.JsonPath.entirePayload,
    }),
    payloadResponseOnly: true,
    retryOnServiceExceptions: false,
    resultPath: '$.compensation',
    taskTimeout: STEP_TIMEOUT,
  })
    .addRetry({ errors: [sfn.Errors.ALL], ...BACKOFF, maxAttempts: 6 })
    .addCatch(compensationFailed, { resultPath: '$.compensationError', errors: [sfn.Errors.ALL] })
    .next(provisioningFailed);

  // --- the flow
  const validate = lambdaStep(
    STATES.validate,
    { enclaveId, executionArn: sfn.JsonPath.executionId },
    '$.plan',
    'Claims the enclave for this execution and plans the parent: candidate instance types, or the stopped parent to restart.',
  )
    .addCatch(superseded, { resultPath: '$.error', errors: [STEP_ERRORS.superseded] })
    .addCatch(compensate, toCompensate);

  const challenge = lambdaStep(
    STATES.challenge,
    { enclaveId, executionArn: sfn.JsonPath.executionId },
    '$.challenge',
    'Issues the attestation nonce bound to the enclave; the parent reads it from its instance tag.',
  ).addCatch(compensate, toCompensate);

  // `$.launch` is the candidate being launched: the instance type (`index` in `$.plan.instanceTypes`), the
  // Availability Zone (`zone` in `subnets`, the parents' subnets, one per zone) and the relaunch `attempt`.
  const subnets = props.parentNetwork.subnetIds;
  const candidate = (index: string | number, zone: string | number, attempt: string | number) => ({
    ...(typeof index === 'number' ? { index } : { 'index.$': index }),
    'instanceType.$': `States.ArrayGetItem($.plan.instanceTypes, ${index})`,
    ...(typeof zone === 'number' ? { zone } : { 'zone.$': zone }),
    'subnetId.$': `States.ArrayGetItem($.launch.subnets, ${zone})`,
    'subnets.$': '$.launch.subnets',
    'lastZone.$': '$.launch.lastZone',
    ...(typeof attempt === 'number' ? { attempt } : { 'attempt.$': attempt }),
  });
  const chooseFirst = new sfn.Pass(scope, STATES.chooseFirstInstanceType, {
    stateName: STATES.chooseFirstInstanceType,
    comment: `The smallest candidate instance type first, in the first of the parents' ${subnets.length} Availability Zones.`,
    resultPath: '$.launch',
    parameters: {
      index: 0,
      instanceType: sfn.JsonPath.arrayGetItem(sfn.JsonPath.listAt('$.plan.instanceTypes'), 0),
      zone: 0,
      subnetId: subnets[0],
      subnets,
      lastZone: subnets.length - 1,
      attempt: 0,
    },
  });

  const tags = (includeNonce: boolean) => [
    { Key: INSTANCE_TAGS.enclaveId, Value: enclaveId },
    { Key: INSTANCE_TAGS.contractId, Value: sfn.JsonPath.stringAt('$.plan.contractId') },
    ...(includeNonce
      ? [
          { Key: INSTANCE_TAGS.attestationNonce, Value: nonce },
          // The allocator is sized from these on the parent (the enclave's own resources).
          { Key: INSTANCE_TAGS.cpuCount, Value: sfn.JsonPath.stringAt('$.plan.enclaveCpuCount') },
          { Key: INSTANCE_TAGS.memoryMiB, Value: sfn.JsonPath.stringAt('$.plan.enclaveMemoryMiB') },
          // The enclave's own EIF, which the user data fetches (empty: the deployment's default).
          { Key: INSTANCE_TAGS.imageUrl, Value: sfn.JsonPath.stringAt('$.plan.imageUrl') },
          { Key: INSTANCE_TAGS.imageSha256, Value: sfn.JsonPath.stringAt('$.plan.imageSha256') },
        ]
      : []),
  ];
  const runInstances = new Ec2Call(scope, STATES.runInstances, {
    stateName: STATES.runInstances,
    comment:
      'Launches the parent from the launch template, tagged with the enclave (what every IAM condition and lookup matches) and the nonce.',
    action: 'runInstances',
    parameters: {
      LaunchTemplate: { LaunchTemplateId: props.launchTemplate.id, Version: props.launchTemplate.version },
      InstanceType: sfn.JsonPath.stringAt('$.launch.instanceType'),
      MinCount: 1,
      MaxCount: 1,
      EnclaveOptions: { Enabled: true },
      // Repeats the template's: IAM reads ec2:MetadataHttpTokens from the request, and requires `required`.
      MetadataOptions: PARENT_METADATA_OPTIONS,
      // The template holds no interface: the launch names the zone's subnet, the security group, no public IP.
      NetworkInterfaces: [
        parentNetworkInterface(
          sfn.JsonPath.stringAt('$.launch.subnetId'),
          props.parentNetwork.securityGroupId,
        ),
      ],
      // Idempotency: a retry of this launch (same execution, same candidate) answers the instance the first
      // attempt launched instead of launching a second parent. SHA-1 hex is 40 characters (EC2 takes 64).
      // What varies comes first: aws-local-stepfunctions 3.0's SHA-1 mis-reads every 64-byte block after
      // the first, so locally only the first block tells executions apart (Step Functions hashes it all).
      ClientToken: sfn.JsonPath.hash(
        sfn.JsonPath.format(
          '{}/{}/{}/{}',
          sfn.JsonPath.stringAt('$.launch.index'),
          sfn.JsonPath.stringAt('$.launch.zone'),
          sfn.JsonPath.stringAt('$$.Execution.Name'),
          sfn.JsonPath.executionId,
        ),
        'SHA-1',
      ),
      TagSpecifications: [
        { ResourceType: 'instance', Tags: tags(true) },
        { ResourceType: 'volume', Tags: tags(false) },
      ],
    },
    resultSelector: { instanceId: sfn.JsonPath.stringAt('$.Instances[0].InstanceId') },
    resultPath: '$.instance',
    taskTimeout: STEP_TIMEOUT,
  }).addRetry({ errors: EC2_CLIENT_ERRORS, ...BACKOFF });

  const nextZone = new sfn.Pass(scope, STATES.nextAvailabilityZone, {
    stateName: STATES.nextAvailabilityZone,
    comment: "The same instance type in the next Availability Zone (the next of the parents' subnets).",
    resultPath: '$.launch',
    parameters: candidate('$.launch.index', 'States.MathAdd($.launch.zone, 1)', 0),
  });
  const nextInstanceType = new sfn.Pass(scope, STATES.nextInstanceType, {
    stateName: STATES.nextInstanceType,
    comment: 'The next larger candidate instance type, in the first Availability Zone again.',
    resultPath: '$.launch',
    parameters: candidate('States.MathAdd($.launch.index, 1)', 0, 0),
  });
  const backoff = WORKFLOW_TIMING.relaunchBackoffSeconds;
  const relaunchBackoff = new sfn.Pass(scope, STATES.relaunchBackoff, {
    stateName: STATES.relaunchBackoff,
    comment: `EC2 throttled or was unavailable: the same launch again after ${backoff.join(', ')} seconds.`,
    resultPath: '$.launch',
    parameters: {
      ...candidate('$.launch.index', '$.launch.zone', 'States.MathAdd($.launch.attempt, 1)'),
      'delaySeconds.$': `States.ArrayGetItem(States.Array(${backoff.join(', ')}), $.launch.attempt)`,
    },
  });
  const waitToRelaunch = new sfn.Wait(scope, STATES.waitToRelaunch, {
    stateName: STATES.waitToRelaunch,
    comment:
      'The pause before the launch is repeated (same ClientToken: a launch that did succeed is answered, not repeated).',
    time: sfn.WaitTime.secondsPath('$.launch.delaySeconds'),
  });
  const ec2Refused = sfn.Condition.and(
    sfn.Condition.stringEquals('$.error.Error', EC2_INTEGRATION_ERROR),
    sfn.Condition.isPresent('$.error.Cause'),
  );
  // No capacity for this type in this zone, or the type is not offered there: another zone or type may do.
  const noCapacity = sfn.Condition.and(
    ec2Refused,
    sfn.Condition.or(
      sfn.Condition.stringMatches('$.error.Cause', EC2_CAUSES.insufficientCapacity),
      sfn.Condition.stringMatches('$.error.Cause', EC2_CAUSES.unsupportedInZone),
    ),
  );
  const launchFailed = new sfn.Choice(scope, STATES.launchFailed, {
    stateName: STATES.launchFailed,
    comment:
      'EC2 refused the launch (every EC2 error is Ec2.Ec2Exception; its cause tells which). No capacity for this type in this zone: the next zone, then the next larger type. Throttled or unavailable: pause and launch again, a few times. Anything else compensates.',
  })
    .when(
      sfn.Condition.and(
        noCapacity,
        sfn.Condition.numberLessThanJsonPath('$.launch.zone', '$.launch.lastZone'),
      ),
      nextZone.next(runInstances),
    )
    .when(
      sfn.Condition.and(
        noCapacity,
        sfn.Condition.numberLessThanJsonPath('$.launch.index', '$.plan.lastInstanceTypeIndex'),
      ),
      nextInstanceType.next(runInstances),
    )
    .when(
      sfn.Condition.and(
        ec2Refused,
        sfn.Condition.not(noCapacity),
        sfn.Condition.or(
          sfn.Condition.stringMatches('$.error.Cause', EC2_CAUSES.unavailable),
          sfn.Condition.stringMatches('$.error.Cause', EC2_CAUSES.internalError),
        ),
        sfn.Condition.numberLessThan('$.launch.attempt', backoff.length),
      ),
      relaunchBackoff.next(waitToRelaunch).next(runInstances),
    )
    .otherwise(compensate);
  runInstances.addCatch(launchFailed, { resultPath: '$.error', errors: [sfn.Errors.ALL] });

  const tagRestartNonce = new Ec2Call(scope, STATES.tagRestartNonce, {
    stateName: STATES.tagRestartNonce,
    comment: 'Puts the new attestation nonce on the stopped parent before it starts.',
    action: 'createTags',
    parameters: {
      Resources: sfn.JsonPath.array(restartInstanceId),
      Tags: [{ Key: INSTANCE_TAGS.attestationNonce, Value: nonce }],
    },
    resultPath: sfn.JsonPath.DISCARD,
    taskTimeout: STEP_TIMEOUT,
  })
    .addRetry({ errors: [...EC2_CLIENT_ERRORS, EC2_INTEGRATION_ERROR], ...BACKOFF })
    .addCatch(compensate, toCompensate);
  const startInstances = new Ec2Call(scope, STATES.startInstances, {
    stateName: STATES.startInstances,
    comment:
      'Restarts the stopped parent (resume); while it is still stopping, EC2 refuses with IncorrectInstanceState and the start is retried until the stop completes.',
    action: 'startInstances',
    parameters: { InstanceIds: sfn.JsonPath.array(restartInstanceId) },
    resultSelector: { instanceId: sfn.JsonPath.stringAt('$.StartingInstances[0].InstanceId') },
    resultPath: '$.instance',
    taskTimeout: STEP_TIMEOUT,
  })
    .addRetry({ errors: EC2_CLIENT_ERRORS, ...BACKOFF })
    .addRetry(UNTIL_STOPPED)
    .addCatch(compensate, toCompensate);

  const waitForAttestation = new tasks.LambdaInvoke(scope, STATES.waitForAttestation, {
    stateName: STATES.waitForAttestation,
    comment:
      "Records the task token; the attestation route completes it with the agent's document. Boot, image fetch and enclave start must fit the timeout; silence longer than the heartbeat ends the wait.",
    lambdaFunction: steps[STATES.waitForAttestation],
    integrationPattern: sfn.IntegrationPattern.WAIT_FOR_TASK_TOKEN,
    payload: sfn.TaskInput.fromObject({
      enclaveId,
      instanceId,
      executionArn: sfn.JsonPath.executionId,
      taskToken: sfn.JsonPath.taskToken,
    }),
    retryOnServiceExceptions: false,
    resultPath: '$.submission',
    taskTimeout: sfn.Timeout.duration(Duration.seconds(WORKFLOW_TIMING.attestationTimeoutSeconds)),
    heartbeatTimeout: sfn.Timeout.duration(Duration.seconds(WORKFLOW_TIMING.attestationHeartbeatSeconds)),
  })
    // Its Lambda reads the database (is the enclave still this execution's?): a transient failure retries.
    .addRetry({ errors: [...LAMBDA_SERVICE_ERRORS, STEP_ERRORS.transient], ...BACKOFF })
    // States.ALL includes States.Timeout and States.HeartbeatTimeout.
    .addCatch(compensate, toCompensate);

  const verify = lambdaStep(
    STATES.verifyAttestation,
    {
      enclaveId,
      executionArn: sfn.JsonPath.executionId,
      instanceId,
      document: sfn.JsonPath.stringAt('$.submission.document'),
      nonce,
    },
    '$.verification',
    'Verifies the document (AWS Nitro root, nonce, approved measurements) and consumes the nonce.',
  ).addCatch(compensate, toCompensate);

  const activate = lambdaStep(
    STATES.activate,
    {
      enclaveId,
      instanceId,
      executionArn: sfn.JsonPath.executionId,
      verification: sfn.JsonPath.objectAt('$.verification'),
    },
    '$.activation',
    'Marks the enclave Running with its verified attestation.',
  ).addCatch(compensate, toCompensate);

  const launchOrRestart = new sfn.Choice(scope, STATES.launchOrRestart, {
    stateName: STATES.launchOrRestart,
    comment: 'Resume restarts the stopped parent; a first provisioning launches one.',
  })
    .when(sfn.Condition.isPresent('$.plan.restartInstanceId'), tagRestartNonce.next(startInstances))
    .otherwise(chooseFirst.next(runInstances));

  waitForAttestation.next(verify).next(activate).next(provisioned);
  runInstances.next(waitForAttestation);
  startInstances.next(waitForAttestation);

  return validate.next(challenge).next(launchOrRestart);
}

/**
 * What the definition's top level holds besides the states (comment, execution timeout) and the type: shared
 * by the deployed state machine and the local rendering, so both run the same definition.
 */
export function provisioningStateMachineProps(
  chain: sfn.IChainable,
): Pick<sfn.StateMachineProps, 'comment' | 'definitionBody' | 'stateMachineType' | 'timeout'> {
  return {
    comment:
      'Provisions an enclave: validate, challenge, launch or restart the parent, wait for and verify its attestation, activate; compensates on any failure.',
    definitionBody: sfn.DefinitionBody.fromChainable(chain),
    stateMachineType: sfn.StateMachineType.STANDARD,
    timeout: Duration.seconds(WORKFLOW_TIMING.executionTimeoutSeconds),
  };
}

// -----------------------------------------------------------------------------------------------------
// The construct

/** Domain events that start (or restart) provisioning. */
export const PROVISIONING_EVENTS = ['EnclaveCreated', 'EnclaveResumed'] as const;

/** Domain events after which an enclave's parents must be stopped or terminated. */
export const ENFORCEMENT_EVENTS = [
  ...ENFORCEMENT_DETAIL_TYPES.enclave,
  ...ENFORCEMENT_DETAIL_TYPES.contract,
] as const;

/** The enforcement function's handler module. */
export const ENFORCEMENT_HANDLER = 'functions/events/enforce-enclave-state.ts';

/** Props of {@link EnclaveWorkflow}. */
export interface EnclaveWorkflowProps {
  readonly database: Database;
  /** The domain event bus: its enclave events start the workflow and the enforcement. */
  readonly bus: events.IEventBus;
  /** Where the parents run (see {@link EnclaveParents}). */
  readonly vpc: ec2.IVpc;
  readonly parentSubnets: ec2.SubnetSelection;
  /** The enclave image and the parent agent. @default placeholders (parents fail at boot) */
  readonly artifacts?: EnclaveArtifacts;
  /** Where the functions' and the state machine's logs go. */
  readonly logs: LogSettings;
  /** The runtime configuration every function gets (database and signer ids). */
  readonly environment: Readonly<Record<string, string>>;
  /** Where the alarms on executions that timed out or were aborted go (the stack's alarm topics). */
  readonly observability: Observability;
}

/**
 * Enclave provisioning (issue 4): the Standard state machine built by {@link buildProvisioningDefinition},
 * its six Lambda steps (`WORKFLOW_STEPS`, each granted exactly its `grants`), the DynamoDB table of nonces and
 * task tokens, the parents it launches ({@link EnclaveParents}), the rule that starts it on `EnclaveCreated`
 * / `EnclaveResumed`, and the function that stops or terminates parents when an enclave or its contract
 * is suspended, terminated, failed or expired.
 *
 * Executions that time out or are aborted run no Catch: Step Functions' status-change events for them
 * (default bus) go to the enforcement function, which compensates as the Compensate step would have, and
 * raise alarms.
 *
 * The state machine's role may invoke the six steps, launch parents with the launch template only, and
 * tag/start instances carrying the enclave tag only. Executions are logged in full (level ALL, with
 * execution data) to an encrypted log group and traced with X-Ray.
 */
export class EnclaveWorkflow extends Construct {
  readonly tableKey: kms.Key;
  /** Nonces and task tokens (`pk`, TTL `expiresAt`; see shared/workflow/dynamodb-nonce-store.ts). */
  readonly table: dynamodb.TableV2;
  readonly parents: EnclaveParents;
  /** The function of each Lambda step, by state name. */
  readonly steps: Readonly<Record<WorkflowStepState, AppFunction>>;
  readonly logGroup: EncryptedLogGroup;
  readonly stateMachine: sfn.StateMachine;
  /** Start events EventBridge could not deliver to the state machine after its retries. */
  readonly startDeadLetterQueue: sqs.Queue;
  readonly enforcement: AppFunction;
  /** Enforcement events that could not be delivered, or whose function failed after its retries. */
  readonly enforcementDeadLetterQueue: sqs.Queue;

  constructor(scope: Construct, id: string, props: EnclaveWorkflowProps) {
    super(scope, id);
    this.tableKey = new kms.Key(this, 'TableKey', {
      description: 'Encrypts the provisioning workflow table (attestation nonces, task tokens)',
      enableKeyRotation: true,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    this.table = new dynamodb.TableV2(this, 'Table', {
      partitionKey: { name: NONCE_TABLE.partitionKey, type: dynamodb.AttributeType.STRING },
      timeToLiveAttribute: NONCE_TABLE.timeToLiveAttribute,
      billing: dynamodb.Billing.onDemand(),
      encryption: dynamodb.TableEncryptionV2.customerManagedKey(this.tableKey),
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      // Items live minutes (TTL); nothing in it outlives an execution, so nothing is worth retaining.
      removalPolicy: RemovalPolicy.DESTROY,
    });
    this.parents = new EnclaveParents(this, 'Parents', {
      vpc: props.vpc,
      vpcSubnets: props.parentSubnets,
      artifacts: props.artifacts,
    });

    const environment = { ...props.environment, ...this.environment };
    const steps = {} as Record<WorkflowStepState, AppFunction>;
    for (const step of WORKFLOW_STEPS) {
      const fn = new AppFunction(this, step.state, {
        entry: step.handler,
        description: `Provisioning step ${step.state}: ${step.description}`.slice(0, 256),
        adapters: adaptersOf(step.grants),
        logs: props.logs,
        environment,
        // Below the task's timeout, so a slow step fails as a Lambda timeout rather than the task timing
        // out while the function still runs (and, say, activates after Compensate started).
        timeout: Duration.seconds(WORKFLOW_TIMING.lambdaTimeoutSeconds - 10),
      });
      for (const grant of step.grants) {
        switch (grant) {
          case 'database':
            props.database.grantDataApiAccess(fn);
            break;
          case 'workflowTable':
            this.grantTableAccess(fn);
            break;
          case 'terminateTaggedInstances':
            this.parents.grantControl(fn, ['terminate']);
            break;
          default: {
            const unknown: never = grant;
            throw new Error(`workflow grant ${String(unknown)} has no CDK mapping`);
          }
        }
      }
      steps[step.state] = fn;
    }
    this.steps = steps;

    this.logGroup = new EncryptedLogGroup(this, 'Logs', { settings: props.logs });
    // The definition is built in a scope of its own: states are constructs, and their ids are state names.
    const definition = buildProvisioningDefinition(new Construct(this, 'Definition'), {
      steps: Object.fromEntries(
        Object.entries(steps).map(([state, fn]) => [state, fn.function as lambda.IFunction]),
      ) as Record<WorkflowStepState, lambda.IFunction>,
      launchTemplate: {
        id: this.parents.launchTemplate.launchTemplateId!,
        // Pinned, so a deployment changes the template and the state machine that uses it together.
        version: (this.parents.launchTemplate.node.defaultChild as ec2.CfnLaunchTemplate)
          .attrLatestVersionNumber,
      },
      parentNetwork: {
        subnetIds: this.parents.subnetIds,
        securityGroupId: this.parents.securityGroup.securityGroupId,
      },
    });
    this.stateMachine = new sfn.StateMachine(this, 'StateMachine', {
      ...provisioningStateMachineProps(definition),
      tracingEnabled: true,
      logs: { destination: this.logGroup, level: sfn.LogLevel.ALL, includeExecutionData: true },
    });
    this.parents.grantLaunch(this.stateMachine);
    this.parents.grantRestart(this.stateMachine);
    const role = this.stateMachine.role;
    for (const fn of Object.values(steps)) fn.acknowledgeInvokeGrant(role, 'The provisioning state machine');
    this.acknowledgeStateMachineRole(role);

    this.startDeadLetterQueue = this.deadLetterQueue('StartDeadLetters');
    new events.Rule(this, 'StartRule', {
      description: 'Starts enclave provisioning when an enclave is created or resumed',
      eventBus: props.bus,
      eventPattern: { source: [EVENT_SOURCE], detailType: [...PROVISIONING_EVENTS] },
      targets: [
        new targets.SfnStateMachine(this.stateMachine, {
          input: events.RuleTargetInput.fromObject({
            enclaveId: events.EventField.fromPath('$.detail.enclaveId'),
          }),
          deadLetterQueue: this.startDeadLetterQueue,
          retryAttempts: 10,
          maxEventAge: Duration.hours(2),
        }),
      ],
    });

    this.enforcementDeadLetterQueue = this.deadLetterQueue('EnforcementDeadLetters');
    this.enforcement = new AppFunction(this, 'EnforceEnclaveState', {
      entry: ENFORCEMENT_HANDLER,
      description:
        'Stops or terminates enclave parents when the enclave or its contract no longer allows them to run; fails enclaves whose parent died out of band; compensates provisioning executions that timed out or were aborted',
      adapters: adaptersOf(['database', 'controlInstances']),
      logs: props.logs,
      environment,
      timeout: Duration.minutes(1),
      deadLetterQueue: this.enforcementDeadLetterQueue,
      retryAttempts: 2,
    });
    props.database.grantDataApiAccess(this.enforcement);
    this.parents.grantControl(this.enforcement, ['stop', 'terminate']);
    new events.Rule(this, 'EnforcementRule', {
      description: 'Stops or terminates enclave parents when an enclave or its contract ends or pauses',
      eventBus: props.bus,
      eventPattern: { source: [EVENT_SOURCE], detailType: [...ENFORCEMENT_EVENTS] },
      targets: [
        new targets.LambdaFunction(this.enforcement.function, {
          deadLetterQueue: this.enforcementDeadLetterQueue,
          retryAttempts: 10,
          maxEventAge: Duration.hours(2),
        }),
      ],
    });
    // A timed-out or aborted execution skips every Catch: Step Functions' own event (default bus) is the
    // only signal left, and the enforcement compensates what that execution still owns.
    new events.Rule(this, 'ExecutionEndRule', {
      description:
        'Compensates provisioning executions that timed out or were aborted (no Catch runs for them)',
      eventPattern: {
        source: [EXECUTION_END_EVENT.source],
        detailType: [EXECUTION_END_EVENT.detailType],
        detail: {
          status: Object.keys(EXECUTION_END_EVENT.statuses),
          stateMachineArn: [this.stateMachine.stateMachineArn],
        },
      },
      targets: [
        new targets.LambdaFunction(this.enforcement.function, {
          deadLetterQueue: this.enforcementDeadLetterQueue,
          retryAttempts: 10,
          maxEventAge: Duration.hours(2),
        }),
      ],
    });
    // A parent that dies out of band (an operator, a retirement, a host failure): EC2's own event (default
    // bus). It carries no tags, so every instance of the account and region matches; the function looks the
    // instance up among the enclaves' parents and ignores the rest.
    new events.Rule(this, 'ParentStateRule', {
      description: 'Fails Running enclaves whose parent instance stopped or terminated outside the platform',
      eventPattern: {
        source: [INSTANCE_STATE_EVENT.source],
        detailType: [INSTANCE_STATE_EVENT.detailType],
        detail: { state: [...INSTANCE_STATE_EVENT.states] },
      },
      targets: [
        new targets.LambdaFunction(this.enforcement.function, {
          deadLetterQueue: this.enforcementDeadLetterQueue,
          retryAttempts: 10,
          maxEventAge: Duration.hours(2),
        }),
      ],
    });
    const period = Observability.ALARM_PERIOD;
    this.executionAlarm(
      'ProvisioningTimedOut',
      this.stateMachine.metricTimedOut({ period, statistic: 'Sum' }),
      `Enclave provisioning executions timed out (no Catch ran; the enforcement function compensates them — check ${this.enforcementDeadLetterQueue.node.path} if it could not).`,
      props.observability,
    );
    this.executionAlarm(
      'ProvisioningAborted',
      this.stateMachine.metricAborted({ period, statistic: 'Sum' }),
      `Enclave provisioning executions were stopped (aborted; no Catch ran; the enforcement function compensates them — check ${this.enforcementDeadLetterQueue.node.path} if it could not).`,
      props.observability,
    );
  }

  /** Fires on any occurrence within one period, as the stack's other alarms (`Observability.alarmOn`). */
  private executionAlarm(
    id: string,
    metric: cloudwatch.IMetric,
    description: string,
    observability: Observability,
  ): cloudwatch.Alarm {
    const alarm = new cloudwatch.Alarm(this, id, {
      metric,
      threshold: 1,
      evaluationPeriods: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      alarmDescription: description,
    });
    return observability.route(alarm);
  }

  /**
   * The runtime configuration of a function that uses the workflow: `WORKFLOW_TABLE_NAME` and
   * `PARENT_ROLE_NAME` (the role whose sessions the `iam` routes accept). Identifiers, not permissions.
   */
  get environment(): Readonly<Record<string, string>> {
    return { WORKFLOW_TABLE_NAME: this.table.tableName, PARENT_ROLE_NAME: this.parents.role.roleName };
  }

  /** The role the parent instances run with; the API lets it call the `iam` routes. */
  get parentRole(): iam.IRole {
    return this.parents.role;
  }

  /**
   * Item access to the workflow table (get, put, update, delete: no scan, no query, no batch) and its key
   * through DynamoDB only.
   */
  grantTableAccess(grantee: iam.IGrantable): iam.Grant {
    return this.grantTable(
      grantee,
      ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:DeleteItem'],
      ['kms:Decrypt', 'kms:Encrypt', 'kms:GenerateDataKey', 'kms:DescribeKey'],
    );
  }

  /**
   * What the attestation route needs to complete WaitForAttestation: updates of the task-token items
   * (`dynamodb:LeadingKeys` `task#*`) and `states:SendTaskSuccess` on this state machine. Not SendTaskFailure: a refused submission is the
   * wait's timeout's business, not the caller's.
   */
  grantTaskCallback(grantee: iam.IGrantable): iam.Grant {
    // Take and release are conditional updates of the task-token items; nonces are out of reach.
    this.grantTable(
      grantee,
      ['dynamodb:UpdateItem'],
      ['kms:Decrypt', 'kms:Encrypt', 'kms:GenerateDataKey', 'kms:DescribeKey'],
      TASK_TOKEN_KEY_PREFIX,
    );
    return this.stateMachine.grant(grantee, 'states:SendTaskSuccess');
  }

  /**
   * What the heartbeat route needs to keep WaitForAttestation alive: reading the task-token items
   * (`GetItem` with `dynamodb:LeadingKeys` `task#*`, decrypt only) and `states:SendTaskHeartbeat` on this state machine; it can neither take a token nor
   * complete a task.
   */
  grantTaskHeartbeat(grantee: iam.IGrantable): iam.Grant {
    this.grantTable(grantee, ['dynamodb:GetItem'], ['kms:Decrypt', 'kms:DescribeKey'], TASK_TOKEN_KEY_PREFIX);
    return this.stateMachine.grant(grantee, 'states:SendTaskHeartbeat');
  }

  /** `actions` on the table (on the items whose key starts with `keyPrefix` only, when given). */
  private grantTable(
    grantee: iam.IGrantable,
    actions: string[],
    keyActions: string[],
    keyPrefix?: string,
  ): iam.Grant {
    const grant =
      keyPrefix === undefined
        ? this.table.grant(grantee, ...actions)
        : iam.Grant.addToPrincipal({
            grantee,
            actions,
            resourceArns: [this.table.tableArn],
            conditions: { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': [`${keyPrefix}*`] } },
          });
    iam.Grant.addToPrincipal({
      grantee,
      actions: keyActions,
      resourceArns: [this.tableKey.keyArn],
      conditions: { StringEquals: { 'kms:ViaService': `dynamodb.${Stack.of(this).region}.amazonaws.com` } },
    });
    return grant;
  }

  /** Executions that ended in `CompensationFailed` (an operator must clean up), from the execution log. */
  metricCompensationFailed(props: cloudwatch.MetricOptions = {}): cloudwatch.Metric {
    const filter = new logs.MetricFilter(this, 'CompensationFailedFilter', {
      logGroup: this.logGroup,
      filterPattern: logs.FilterPattern.all(
        logs.FilterPattern.stringValue('$.type', '=', 'ExecutionFailed'),
        logs.FilterPattern.stringValue('$.details.error', '=', 'CompensationFailed'),
      ),
      metricNamespace: 'EnclaveContracts/Provisioning',
      metricName: 'CompensationFailed',
      metricValue: '1',
    });
    return filter.metric({ statistic: 'Sum', ...props });
  }

  private deadLetterQueue(id: string): sqs.Queue {
    return deadLetterQueue(this, id);
  }

  private acknowledgeStateMachineRole(role: iam.IRole): void {
    Validations.of(role).acknowledge({
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason:
        'Step Functions logging (logs:*LogDelivery, PutResourcePolicy, DescribeResourcePolicies, DescribeLogGroups) and X-Ray (PutTraceSegments, PutTelemetryRecords, GetSampling*) support no resource-level permissions; the EC2 actions are scoped by ARN and conditions.',
    });
  }
}
