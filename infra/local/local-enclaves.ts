import { createHash } from 'node:crypto';
import type { DomainEvent } from '../../shared/audit/audited-write.ts';
import type { SimulationFault } from '../../shared/domain/enclave.ts';
import {
  type EnforcementTrigger,
  enforce,
  enforcementTriggerOf,
  triggerOfEvent,
} from '../../shared/enclaves/enclave-enforcement.ts';
import { failEnclave } from '../../shared/enclaves/enclave-steps.ts';
import { listEnclaves } from '../../shared/enclaves/enclave-store.ts';
import { DynamoDbDoorbell } from '../../shared/events/dynamodb-doorbell.ts';
import { SignedDoorbellRing } from '../../shared/events/signed-doorbell-ring.ts';
import { type ContractKeys, contractOfKeyEvent, syncContractKey } from '../../shared/keys/contract-keys.ts';
import { KmsContractKeys } from '../../shared/keys/kms-contract-keys.ts';
import type { Dependencies } from '../../shared/runtime/dependencies.ts';
import { SignedJsonClient } from '../../shared/runtime/signed-json-client.ts';
import { LocalSigner } from '../../shared/signing/local-signer.ts';
import { DynamoDbNonceStore } from '../../shared/workflow/dynamodb-nonce-store.ts';
import { DynamoDbTaskTokenStore } from '../../shared/workflow/dynamodb-task-token-store.ts';
import {
  INSTANCE_TAGS,
  type LocalStackHooks,
  type WorkflowPorts,
} from '../../shared/workflow/workflow-ports.ts';
import type { ContractsStack } from '../contracts-stack.ts';
import type { EnclaveConsole } from './local-console.ts';
import { type AgentLogLine, LocalParents } from './local-parents.ts';
import { startLocalDynamoDb } from './services/dynamodb/local-dynamodb.ts';
import { Ec2Error, type Ec2Operation, Ec2Simulator } from './services/ec2/ec2-simulator.ts';
import { SimulatedInstanceControl } from './services/ec2/simulated-instance-control.ts';
import {
  authorizedDatabase,
  authorizedKeyManager,
  authorizedSealer,
  authorizedSigner,
} from './services/iam/authorized-ports.ts';
import { denialMessage, firstDenial } from './services/iam/iam-authorizer.ts';
import { actingAs, currentCaller } from './services/iam/local-caller.ts';
import { LocalCredentials } from './services/iam/local-credentials.ts';
import {
  executeApiArn,
  LOCAL_ACCOUNT,
  LOCAL_REGION,
  type LocalPrincipal,
  type StackPrincipals,
  stackPrincipals,
} from './services/iam/stack-policies.ts';
import { type KmsSimulator, startKmsSimulator } from './services/kms/kms-simulator.ts';
import { pythonInterpreter } from './services/nitro-enclaves/nitro-cli-simulator.ts';
import { LOCAL_DEFAULT_IMAGE, NitroSimulator } from './services/nitro-enclaves/nitro-simulator.ts';
import { type S3Simulator, startS3Simulator } from './services/s3/s3-simulator.ts';
import {
  LocalWorkflow,
  localAttestationWait,
  localStateMachineArn,
} from './services/stepfunctions/local-workflow.ts';
import {
  LOCAL_LAUNCH_TEMPLATE,
  LOCAL_PARENT_NETWORK,
  renderProvisioningDefinition,
} from './services/stepfunctions/provisioning-definition.ts';

/**
 * The enclave half of the local stack: what AWS provides around the provisioning workflow, on one machine.
 * - DynamoDB (dynalite) holds nonces and task tokens, through the deployed adapters;
 * - the provisioning state machine is the definition the CDK code renders, run by {@link LocalWorkflow};
 * - EC2 is the {@link Ec2Simulator}; each simulated instance runs the parent agent's real code
 *   ({@link LocalParents}): IMDSv2, the default EIF from S3, nitro-cli starting the reference responder
 *   over the Nitro simulator, and the document posted to the local API's attestation route signed with
 *   SigV4 as the instance's role session, which the local gateway verifies as API Gateway's IAM authorizer;
 * - the EventBridge rules are bus subscriptions: `EnclaveCreated`/`EnclaveResumed` start an execution.
 */

/** The parent instances' role, as the local `iam` routes accept it. */
export const LOCAL_PARENT_ROLE = 'EnclaveParentRole';
/** The image the simulated parents "boot" (Amazon Linux 2023 with the Nitro Enclaves CLI, in AWS). */
const LOCAL_PARENT_AMI = 'ami-0local0al2023nitro';
/** The workflow table's name in dynalite. */
const WORKFLOW_TABLE = 'enclave-workflow';
/** The doorbell table's name in dynalite. */
const DOORBELL_TABLE = 'enclave-doorbell';
/** The parents' instance profile, which their launch template names besides their image. */
const LOCAL_PARENT_PROFILE = 'arn:aws:iam::000000000000:instance-profile/EnclaveParentProfile';
/** Where the deployment's default EIF lives locally (the `-c eifUrl` of a deployment). */
export const LOCAL_ARTIFACTS = {
  bucket: 'enclave-contracts-local-artifacts',
  key: 'images/default.eif',
} as const;

export interface LocalEnclaveOptions {
  /** WaitForAttestation's local timeout (ms); default 10 s. */
  readonly attestationTimeoutMs?: number;
  /** WaitForAttestation's local heartbeat (ms); default: the deployed share of the timeout. */
  readonly attestationHeartbeatMs?: number;
  /** pending → running of a simulated instance (ms); default 200. */
  readonly bootDelayMs?: number;
  /** How often the parents' agents report their enclave's runtime metrics (ms); default 5 s. */
  readonly metricsIntervalMs?: number;
  /** Where the parent agents' log lines go besides their in-memory log (`npm start` prints them). */
  readonly agentLog?: (line: AgentLogLine) => void;
  /**
   * IAM, locally: the calls the stand-ins serve are authorised against the policies the synthesized stack
   * gives the caller's role (default on). `false` turns it off; `edit` changes the stack before it is
   * synthesized (a test removes one grant and shows the flow fail).
   */
  readonly iam?: false | { readonly edit?: (stack: ContractsStack) => void };
  /** Where the local KMS keeps the contract keys across restarts (in memory when absent). */
  readonly kmsStateFile?: string;
}

export interface LocalEnclaves {
  readonly workflow: WorkflowPorts;
  /** The doorbell on dynalite (shared/events/doorbell.ts), as the deployed scheduled jobs read it. */
  readonly doorbell: DynamoDbDoorbell;
  /** Its ring as the deployed writers send it: signed by hand, authorised as the calling function's role. */
  readonly doorbellRing: SignedDoorbellRing;
  /** The synthesized stack's principals the stand-ins authorise calls for; undefined with `iam: false`. */
  readonly iam: StackPrincipals | undefined;
  readonly local: LocalStackHooks;
  readonly ec2: Ec2Simulator;
  readonly nitro: NitroSimulator;
  /** The parents' agents (their runs and log lines). */
  readonly parents: LocalParents;
  /** S3, holding the deployment's default EIF for the parents (read with their role). */
  readonly s3: S3Simulator;
  /** KMS for the contract keys, its calls authorised by the key policies and the callers' roles. */
  readonly kms: KmsSimulator;
  /**
   * The contract keys as the local functions reach them (each through KMS as its own role): undefined with
   * `iam: false`, where no role exists for a key policy to name.
   */
  readonly contractKeys: ContractKeys | undefined;
  /** The local STS: temporary credentials of role sessions (the parents'; a test's own). */
  readonly credentials: LocalCredentials;
  /**
   * API Gateway's IAM authorizer for the local gateway: signers' keys, and `execute-api:Invoke` decided by
   * the synthesized stack's policies of the signer's role (any verified signer may, with `iam: false`).
   */
  readonly gatewayIam: {
    readonly lookup: LocalCredentials['lookup'];
    readonly authorizeInvoke: (
      callerArn: string,
      method: string,
      path: string,
    ) => Promise<string | undefined>;
  };
  /** What a workload in the enclave reaches (NSM, the parent's IMDS, KMS), while it runs on a parent. */
  enclaveConsole(enclaveId: string): EnclaveConsole | undefined;
  /** Set once the dependencies exist (the runner's steps need them). */
  runner(): LocalWorkflow;
  /** Wires the runner and the agents to the running API. */
  attach(options: { deps: Dependencies; url: string }): void;
  /** The bus subscriber standing in for the EventBridge rule that starts provisioning. */
  onEvent(event: DomainEvent): void;
  close(): Promise<void>;
}

export async function startLocalEnclaves(options: LocalEnclaveOptions = {}): Promise<LocalEnclaves> {
  const dynamo = await startLocalDynamoDb();
  await dynamo.createNonceTable(WORKFLOW_TABLE);
  await dynamo.createDoorbellTable(DOORBELL_TABLE);
  const doorbell = new DynamoDbDoorbell({ tableName: DOORBELL_TABLE, client: dynamo.client });
  // What the request functions send DynamoDB as deployed (signed JSON calls, not the SDK client), on
  // dynalite, each authorised first as the calling function's role.
  const signedDynamo = {
    region: 'eu-central-1',
    endpoint: dynamo.endpoint,
    credentials: async () => ({ accessKeyId: 'local', secretAccessKey: 'local' }),
    beforeSend: (operation: string, input: object) =>
      dynamo.authorizeRequest(`${operation}Command`, input as Record<string, unknown>),
  };
  const doorbellRing = new SignedDoorbellRing({ tableName: DOORBELL_TABLE, ...signedDynamo });
  const workflowCalls = new SignedJsonClient({ service: 'dynamodb', ...signedDynamo });
  // The interpreter the simulated enclaves' responders run on, found now rather than by the first parent.
  void pythonInterpreter();
  const nitro = await NitroSimulator.create();
  // The deployment's default EIF: the simulator's default image, whose bytes the enclave measures.
  const defaultEif = Buffer.from(LOCAL_DEFAULT_IMAGE.eif as string, 'utf8');
  const defaultImage = {
    imageUrl: `s3://${LOCAL_ARTIFACTS.bucket}/${LOCAL_ARTIFACTS.key}`,
    imageSha256: createHash('sha256').update(defaultEif).digest('hex'),
  };
  const faults = new Map<string, SimulationFault>();
  let attached: { deps: Dependencies; url: string; runner: LocalWorkflow } | undefined;
  let closing = false;
  const enforcing = new Set<Promise<unknown>>();

  const { definition } = renderProvisioningDefinition();
  const iam =
    options.iam === false
      ? undefined
      : stackPrincipals(
          {
            launchTemplate: LOCAL_LAUNCH_TEMPLATE,
            parentSubnetIds: LOCAL_PARENT_NETWORK.subnets.map((subnet) => subnet.subnetId),
            parentSecurityGroupId: LOCAL_PARENT_NETWORK.securityGroupId,
            workflowTableName: WORKFLOW_TABLE,
            doorbellTableName: DOORBELL_TABLE,
            stateMachineArn: localStateMachineArn(),
            enclaveArtifacts: defaultImage,
          },
          options.iam?.edit,
        );
  const credentials = new LocalCredentials();
  /**
   * What a role session may do, as IAM decides it for the synthesized stack: the parents' sessions hold the
   * parents' role's policies; any other session (a test's stranger) holds none. Undefined when allowed.
   */
  const decide = async (callerArn: string, action: string, resource: string) => {
    if (!iam) return undefined;
    const role = /:assumed-role\/([^/]+)\//.exec(callerArn)?.[1];
    const principal: LocalPrincipal =
      role === LOCAL_PARENT_ROLE
        ? { ...iam.parent, sessionArn: callerArn }
        : { roleArn: `arn:aws:iam::000000000000:role/${role}`, sessionArn: callerArn, policies: [] };
    return firstDenial(principal, [{ action, resource }]);
  };
  const s3 = await startS3Simulator({
    region: LOCAL_REGION,
    lookup: credentials.lookup,
    authorize: async (callerArn, action, resource) => {
      const denial = await decide(callerArn, action, resource);
      return denial && denialMessage(denial);
    },
  });
  s3.put(LOCAL_ARTIFACTS.bucket, LOCAL_ARTIFACTS.key, defaultEif);
  // KMS for the contract keys: a caller's identity policies are its role's in the synthesized stack (the
  // parents' sessions, the parents' role's); the key policies decide the rest, as in AWS.
  const kms = await startKmsSimulator({
    region: LOCAL_REGION,
    accountId: LOCAL_ACCOUNT,
    lookup: credentials.lookup,
    principalOf: (callerArn) => {
      const role = /:assumed-role\/([^/]+)\//.exec(callerArn)?.[1] ?? '';
      if (iam && role === LOCAL_PARENT_ROLE) return { ...iam.parent, sessionArn: callerArn };
      const known = iam?.roles.get(role);
      return known
        ? { ...known, sessionArn: callerArn }
        : { roleArn: `arn:aws:iam::${LOCAL_ACCOUNT}:role/${role}`, sessionArn: callerArn, policies: [] };
    },
    attestationRoots: [nitro.rootPem],
    ...(options.kmsStateFile ? { stateFile: options.kmsStateFile } : {}),
  });
  /** KMS as `principal`'s role session: its credentials renewed before they run out, as Lambda's are. */
  const kmsAs = (principal: LocalPrincipal): KmsContractKeys => {
    let issued = credentials.issue(principal.sessionArn);
    const client = new SignedJsonClient({
      service: 'kms',
      region: LOCAL_REGION,
      endpoint: kms.url,
      credentials: async () => {
        if (issued.expiration.getTime() - Date.now() < 5 * 60_000)
          issued = credentials.issue(principal.sessionArn);
        return issued;
      },
    });
    return new KmsContractKeys({
      tag: iam!.contractKeys.tag,
      call: (operation, input) => client.call(operation, input),
    });
  };
  const contractKeys: ContractKeys | undefined = iam
    ? {
        manager: kmsAs(iam.contractKeys.sync),
        sync: {
          aliasPrefix: iam.contractKeys.aliasPrefix,
          principals: {
            partition: 'aws',
            accountId: LOCAL_ACCOUNT,
            administratorRoleArn: iam.contractKeys.sync.roleArn,
            dataKeyRoleArn: iam.routes.get('createDataKey')?.roleArn ?? 'arn:aws:iam::000000000000:role/none',
            parentRoleArn: iam.parentRoleArn,
          },
        },
      }
    : undefined;
  const { timeoutMs: waitMs, heartbeatMs } = localAttestationWait(options);
  const parents = new LocalParents({
    nitro,
    credentials,
    tagsOf: (instanceId): Readonly<Record<string, string>> | undefined => ec2.tagsOf(instanceId),
    roleName: LOCAL_PARENT_ROLE,
    s3Endpoint: s3.url,
    defaultImage: { url: defaultImage.imageUrl, sha256: defaultImage.imageSha256 },
    apiUrl: () => attached?.url,
    faultOf: (enclaveId) => faults.get(enclaveId),
    // The deployed agent's waits, scaled to the local wait: heartbeats well inside its heartbeat, the
    // responder and the submission retried within its timeout, a new nonce noticed within 200 ms, metrics
    // every 5 s.
    timing: {
      heartbeatIntervalMs: Math.max(50, Math.floor(heartbeatMs / 4)),
      startTimeoutMs: 30_000,
      responderDeadlineMs: waitMs,
      attestTimeoutMs: 5_000,
      submitDeadlineMs: waitMs,
      watchIntervalMs: 200,
      metricsIntervalMs: options.metricsIntervalMs ?? 5_000,
    },
    ...(options.agentLog ? { log: options.agentLog } : {}),
  });
  const ec2 = new Ec2Simulator({
    bootDelayMs: options.bootDelayMs ?? 200,
    // The launch template the CDK stack creates, as the rendered RunInstances names it.
    launchTemplates: {
      [launchTemplateIdOf(definition)]: {
        ImageId: LOCAL_PARENT_AMI,
        EnclaveOptions: { Enabled: true },
        IamInstanceProfile: { Arn: LOCAL_PARENT_PROFILE },
      },
    },
    subnets: Object.fromEntries(
      LOCAL_PARENT_NETWORK.subnets.map((subnet) => [subnet.subnetId, subnet.availabilityZone]),
    ),
    instanceProfileRoles: iam ? { [LOCAL_PARENT_PROFILE]: iam.parentRoleArn } : {},
    onBoot: parents.onBoot,
    // The rules on the default bus: EC2's state-change events go to the enforcement function, which
    // fails a Running enclave whose parent went down out of band (the pattern's states only).
    onStateChange: (event) => {
      const trigger = triggerOfEvent(event.source, event['detail-type'], event.detail);
      if (trigger && attached) enforceInBackground(attached.deps, trigger);
    },
  });

  /** EC2 calls authorised as `principal`: a denial fails as EC2 fails it. */
  const ec2As = (principal: LocalPrincipal) => async (operation: Ec2Operation, input: unknown) => {
    const denial = await firstDenial(principal, ec2.authorizationChecks(operation, input));
    if (denial) {
      throw new Ec2Error(
        'UnauthorizedOperation',
        `You are not authorized to perform this operation. ${denialMessage(denial)}`,
      );
    }
  };
  /** A Step Functions call authorised as `principal`, failing as Step Functions does. */
  const sfnAs = async (principal: LocalPrincipal, action: string) => {
    const denial = await firstDenial(principal, [
      {
        action,
        resource: localStateMachineArn(),
        // The reference lists no resource for SendTask*, yet AWS authorises them on the state machine
        // that issued the token: its denials name it ("… not authorized to perform: states:SendTaskFailure
        // on resource: arn:aws:states:…:stateMachine:…", NOAA-OWP/hydrovis issue 837), and a grant on the
        // state machine works (aws/aws-cdk PR 8486, tested by the CDK maintainers).
        beyondReference: 'Step Functions authorises SendTask* on the state machine that issued the token',
      },
    ]);
    if (denial) {
      throw Object.assign(new Error(denialMessage(denial)), {
        name: 'AccessDeniedException',
        $fault: 'client',
        $metadata: { httpStatusCode: 400 },
      });
    }
  };
  // DynamoDB, the Step Functions callbacks and EC2 answer as the calling function's role, which the ports
  // that `asFunction` hands a function carry in their call context (see services/iam/local-caller.ts).
  if (iam) {
    dynamo.authorizeWith(async (checks) => {
      const caller = currentCaller();
      const denial = caller && (await firstDenial(caller, checks));
      return denial ? denialMessage(denial) : undefined;
    });
  }
  const asCaller = async (authorize: (principal: LocalPrincipal) => Promise<void>) => {
    const caller = currentCaller();
    if (iam && caller) await authorize(caller);
  };
  const workflow: WorkflowPorts = {
    nonces: new DynamoDbNonceStore({ tableName: WORKFLOW_TABLE, client: workflowCalls }),
    taskTokens: new DynamoDbTaskTokenStore({ tableName: WORKFLOW_TABLE, client: workflowCalls }),
    callbacks: {
      succeed: async (token, output) => {
        await asCaller((caller) => sfnAs(caller, 'states:SendTaskSuccess'));
        return runnerOf().succeed(token, output);
      },
      heartbeat: async (token) => {
        await asCaller((caller) => sfnAs(caller, 'states:SendTaskHeartbeat'));
        return runnerOf().heartbeat(token);
      },
    },
    instances: new SimulatedInstanceControl(ec2, (operation, input) =>
      asCaller((caller) => ec2As(caller)(operation, input)),
    ),
    parentRoleName: LOCAL_PARENT_ROLE,
  };
  const local: LocalStackHooks = {
    recordSimulation: (enclaveId, fault) => faults.set(enclaveId, fault),
    attestationRoots: [nitro.rootPem],
    ...(iam
      ? {
          asFunction: (fn, deps) => {
            const principal =
              'route' in fn
                ? iam.routes.get(fn.route)
                : 'step' in fn
                  ? iam.steps.get(fn.step)
                  : 'job' in fn
                    ? iam.jobs[fn.job]
                    : 'contractKeys' in fn
                      ? iam.contractKeys.sync
                      : iam.enforcement;
            if (!principal) throw new Error(`no function ${JSON.stringify(fn)} in the synthesized stack`);
            // Every port that stands in for an AWS service answers as this function's role: the database
            // as the Data API, the signer as KMS, and the workflow's DynamoDB, Step Functions and EC2.
            // The database acts as the function too: its writes ring the doorbell (DynamoDB) as its role.
            const authorized: Dependencies = {
              ...deps,
              db: actingAs(principal, authorizedDatabase(deps.db, principal, iam.keyPolicies)),
              signer: authorizedSigner(localKeys(deps.signer), principal, iam),
              ...(deps.platformKeys
                ? { platformKeys: authorizedKeyManager(localKeys(deps.platformKeys), principal, iam) }
                : {}),
              ...(deps.secrets
                ? { secrets: authorizedSealer(deps.secrets, principal, iam.keyPolicies) }
                : {}),
              ...(deps.doorbell ? { doorbell: actingAs(principal, deps.doorbell) } : {}),
              // KMS over its protocol, signed as this function's role session.
              ...(deps.contractKeys
                ? { contractKeys: { ...deps.contractKeys, manager: kmsAs(principal) } }
                : {}),
            };
            const ports = deps.workflow;
            if (!ports) return authorized;
            return {
              ...authorized,
              workflow: {
                ...ports,
                nonces: actingAs(principal, ports.nonces),
                taskTokens: actingAs(principal, ports.taskTokens),
                callbacks: actingAs(principal, ports.callbacks),
                instances: actingAs(principal, ports.instances),
              },
            };
          },
        }
      : {}),
  };
  /** The local stack's platform keys behind a port (KMS's stand-in), which the IAM stand-in authorises. */
  function localKeys(port: unknown): LocalSigner {
    if (!(port instanceof LocalSigner))
      throw new Error('the local IAM stand-in serves the local platform keys only');
    return port;
  }
  /** Runs the contract keys' sync function on `contractId`, retried as Lambda retries it. */
  function syncKeyInBackground(deps: Dependencies, contractId: string): void {
    const asSync = local.asFunction?.({ contractKeys: true }, deps) ?? deps;
    const run = retryTransient(
      () => syncContractKey(asSync, contractId),
      () => closing,
    );
    enforcing.add(run);
    void run.finally(() => enforcing.delete(run));
  }
  /** The enforcement function's view of the dependencies. */
  const asEnforcement = (deps: Dependencies) => local.asFunction?.({ enforcement: true }, deps) ?? deps;
  /** Runs the enforcement function on `trigger`, retried as Lambda retries an asynchronous invocation. */
  function enforceInBackground(deps: Dependencies, trigger: EnforcementTrigger): void {
    const run = retryTransient(
      () => enforce(asEnforcement(deps), trigger),
      () => closing,
    );
    enforcing.add(run);
    void run.finally(() => enforcing.delete(run));
  }
  const runnerOf = () => {
    if (!attached) throw new Error('the local enclave platform is not attached to a running API');
    return attached.runner;
  };

  /** The state machine's EC2 calls, authorised as its role. */
  const authorizeEc2 = iam ? ec2As(iam.stateMachine) : undefined;

  return {
    workflow,
    doorbell,
    doorbellRing,
    iam,
    local,
    ec2,
    nitro,
    parents,
    s3,
    kms,
    contractKeys,
    credentials,
    gatewayIam: {
      lookup: credentials.lookup,
      // API Gateway's words: "User: <arn> is not authorized to perform: execute-api:Invoke on resource: <arn>",
      // "… with an explicit deny" for an explicit one.
      authorizeInvoke: async (callerArn, method, path) => {
        const resource = executeApiArn(method, path);
        const denial = await decide(callerArn, 'execute-api:Invoke', resource);
        if (!denial) return undefined;
        const explicit = denial.result === 'ExplicitlyDenied' ? ' with an explicit deny' : '';
        return `User: ${callerArn} is not authorized to perform: execute-api:Invoke on resource: ${resource}${explicit}`;
      },
    },
    runner: runnerOf,
    enclaveConsole(enclaveId) {
      const instance = ec2
        .inventory()
        .find((i) => i.tags[INSTANCE_TAGS.enclaveId] === enclaveId && i.state === 'running');
      const console = instance && parents.consoleOf(instance.instanceId);
      return (
        console && {
          enclaveId,
          instanceId: instance.instanceId,
          ...console,
          kmsUrl: kms.url,
          region: LOCAL_REGION,
        }
      );
    },
    attach({ deps, url }) {
      const runner = new LocalWorkflow({
        definition,
        deps,
        ec2,
        ...(authorizeEc2 ? { authorizeEc2 } : {}),
        // Step Functions' status-change event for an execution that skipped its Catch, locally: the same
        // enforcement compensates it.
        onUncaughtEnd: (execution, status) => {
          enforceInBackground(deps, {
            kind: 'execution',
            enclaveId: execution.input.enclaveId,
            executionArn: execution.executionArn,
            status,
          });
        },
        ...(options.attestationTimeoutMs === undefined
          ? {}
          : { attestationTimeoutMs: options.attestationTimeoutMs }),
        ...(options.attestationHeartbeatMs === undefined
          ? {}
          : { attestationHeartbeatMs: options.attestationHeartbeatMs }),
      });
      attached = { deps, url, runner };
    },
    onEvent(event) {
      if (event.type === 'EnclaveCreated' || event.type === 'EnclaveResumed') {
        runnerOf().start({ enclaveId: event.aggregateId });
        return;
      }
      // The enforcement rule: EventBridge's detail is the event's payload with its envelope ids.
      const detail = {
        eventId: event.id,
        aggregateType: event.aggregateType,
        aggregateId: event.aggregateId,
        ...(event.payload as object),
      };
      const trigger = enforcementTriggerOf(event.type, detail);
      if (trigger && attached) enforceInBackground(attached.deps, trigger);
      // The contract keys' rule: the key of the contract the event names is synced.
      const contractId = contractKeys ? contractOfKeyEvent(event.type, detail) : null;
      if (contractId && attached) syncKeyInBackground(attached.deps, contractId);
    },
    async close() {
      closing = true;
      await Promise.all(enforcing);
      await attached?.runner.stopAll();
      await ec2.settled();
      // The parents still running go down with the stack: their agents stop as on a stopped instance.
      ec2.close();
      await parents.close();
      await s3.close();
      await kms.close();
      await dynamo.close();
    },
  };
}

/**
 * A restarted local stack keeps its database but not its simulated EC2 or state machine executions: the
 * enclaves a previous run left live (Initializing, Running, Suspended) have no parent any more. They are
 * failed with that reason, audited as any failure, so no record claims a parent that does not exist.
 * @returns the ids of the enclaves failed.
 */
export async function failOrphanedEnclaves(deps: Dependencies): Promise<string[]> {
  const failed: string[] = [];
  for (const status of ['Initializing', 'Running', 'Suspended'] as const) {
    for (;;) {
      const live = await listEnclaves(deps.db, { status, limit: 100 });
      if (live.length === 0) break;
      for (const enclave of live) {
        await failEnclave(deps, {
          enclaveId: enclave.id,
          reason: {
            code: 'local-stack-restarted',
            message:
              'The local stack restarted: its simulated parent instance and workflow execution are gone.',
          },
        });
        failed.push(enclave.id);
      }
    }
  }
  return failed;
}

/**
 * Lambda's asynchronous retries, locally: a transient failure (an instance still pending, EC2 throttling)
 * is tried again with backoff; anything else is reported once and dropped (in AWS: the dead-letter queue).
 */
async function retryTransient(run: () => Promise<unknown>, stopped: () => boolean): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await run();
      return;
    } catch (error) {
      const transient = (error as { transient?: unknown }).transient === true;
      if (!transient || attempt >= 20 || stopped()) {
        console.error('enclave enforcement failed:', error instanceof Error ? error.message : error);
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, Math.min(50 * 2 ** attempt, 1000)));
    }
  }
}

/** The launch template id the rendered RunInstances state uses. */
function launchTemplateIdOf(definition: object): string {
  const states = (
    definition as {
      States: Record<string, { Parameters?: { LaunchTemplate?: { LaunchTemplateId?: string } } }>;
    }
  ).States;
  const id = Object.values(states).find((s) => s.Parameters?.LaunchTemplate?.LaunchTemplateId)?.Parameters
    ?.LaunchTemplate?.LaunchTemplateId;
  if (!id) throw new Error('the rendered definition launches no instance from a launch template');
  return id;
}
