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
import { instanceSessionArn } from '../../shared/http/instance-caller.ts';
import type { Dependencies } from '../../shared/runtime/dependencies.ts';
import { SignedJsonClient } from '../../shared/runtime/signed-json-client.ts';
import { DynamoDbNonceStore } from '../../shared/workflow/dynamodb-nonce-store.ts';
import { DynamoDbTaskTokenStore } from '../../shared/workflow/dynamodb-task-token-store.ts';
import {
  INSTANCE_TAGS,
  type LocalStackHooks,
  type WorkflowPorts,
} from '../../shared/workflow/workflow-ports.ts';
import type { ContractsStack } from '../contracts-stack.ts';
import type { LocalIssuer } from './services/cognito/local-auth.ts';
import { startLocalDynamoDb } from './services/dynamodb/local-dynamodb.ts';
import {
  Ec2Error,
  type Ec2Instance,
  type Ec2Operation,
  Ec2Simulator,
  type ParentAgentFault,
  parentAgent,
} from './services/ec2/ec2-simulator.ts';
import { SimulatedInstanceControl } from './services/ec2/simulated-instance-control.ts';
import { authorizedDatabase, authorizedSigner } from './services/iam/authorized-ports.ts';
import { denialMessage, firstDenial } from './services/iam/iam-authorizer.ts';
import { actingAs, currentCaller } from './services/iam/local-caller.ts';
import { type LocalPrincipal, type StackPrincipals, stackPrincipals } from './services/iam/stack-policies.ts';
import { LOCAL_DEFAULT_IMAGE, NitroSimulator } from './services/nitro-enclaves/nitro-simulator.ts';
import { LocalWorkflow, localStateMachineArn } from './services/stepfunctions/local-workflow.ts';
import {
  LOCAL_LAUNCH_TEMPLATE,
  LOCAL_PARENT_NETWORK,
  renderProvisioningDefinition,
} from './services/stepfunctions/provisioning-definition.ts';

/**
 * The enclave half of the local stack: what AWS provides around the provisioning workflow, on one machine.
 * - DynamoDB (dynalite) holds nonces and task tokens, through the deployed adapters;
 * - the provisioning state machine is the definition the CDK code renders, run by {@link LocalWorkflow};
 * - EC2 is the {@link Ec2Simulator}; each simulated instance boots the Nitro simulator and plays the parent
 *   agent: it reads the nonce from its tags (IMDS instance tags, in AWS), has the enclave attest, and
 *   posts the document to the local API's attestation route, authenticated as its instance session;
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

export interface LocalEnclaveOptions {
  /** WaitForAttestation's local timeout (ms); default 10 s. */
  readonly attestationTimeoutMs?: number;
  /** WaitForAttestation's local heartbeat (ms); default: the deployed share of the timeout. */
  readonly attestationHeartbeatMs?: number;
  /** pending → running of a simulated instance (ms); default 200. */
  readonly bootDelayMs?: number;
  /**
   * IAM, locally: the calls the stand-ins serve are authorised against the policies the synthesized stack
   * gives the caller's role (default on). `false` turns it off; `edit` changes the stack before it is
   * synthesized (a test removes one grant and shows the flow fail).
   */
  readonly iam?: false | { readonly edit?: (stack: ContractsStack) => void };
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
  /** Set once the dependencies exist (the runner's steps need them). */
  runner(): LocalWorkflow;
  /** Wires the runner and the agents to the running API. */
  attach(options: { deps: Dependencies; url: string; issuer: LocalIssuer }): void;
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
  const nitro = await NitroSimulator.create();
  const faults = new Map<string, SimulationFault>();
  let attached: { deps: Dependencies; url: string; issuer: LocalIssuer; runner: LocalWorkflow } | undefined;
  let closing = false;
  const enforcing = new Set<Promise<unknown>>();

  const enclaveOf = (instance: Ec2Instance) =>
    instance.Tags.find((t) => t.Key === INSTANCE_TAGS.enclaveId)?.Value;
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
          },
          options.iam?.edit,
        );
  const agent = parentAgent({
    simulator: nitro,
    image: LOCAL_DEFAULT_IMAGE,
    faultFor: (instance) => {
      const enclaveId = enclaveOf(instance);
      return enclaveId === undefined ? undefined : (faults.get(enclaveId) as ParentAgentFault | undefined);
    },
    // The agent reads its nonce from the instance tags (IMDSv2 `meta-data/tags/instance/…` in AWS).
    fetchChallenge: async (instance) => {
      const nonce = instance.Tags.find((t) => t.Key === INSTANCE_TAGS.attestationNonce)?.Value;
      return nonce === undefined ? null : new Uint8Array(Buffer.from(nonce, 'base64'));
    },
    submit: async (instance, document) => {
      const enclaveId = enclaveOf(instance);
      if (!attached || enclaveId === undefined) return;
      await submitWithRetry(attached, enclaveId, instance.InstanceId, document, () => closing);
    },
    heartbeat: async (instance, phase) => {
      const enclaveId = enclaveOf(instance);
      if (!attached || enclaveId === undefined) return;
      // Best effort, as the real agent's: the wait may not be open yet (409), which changes nothing.
      await postAsInstance(attached, enclaveId, instance.InstanceId, 'attestation/heartbeat', { phase })
        .then((response) => response.arrayBuffer())
        .catch(() => undefined);
    },
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
    onBoot: agent,
    // The rules on the default bus: EC2's state-change events go to the enforcement function, which
    // fails a Running enclave whose parent went down out of band (the pattern's states only).
    onStateChange: (event) => {
      const trigger = triggerOfEvent(event.source, event['detail-type'], event.detail);
      if (trigger && attached) enforceInBackground(attached.deps, trigger);
    },
    // The agent watches its nonce tag: a resume that finds the parent still running re-attests it too.
    onTagsChanged: agent,
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
                    : iam.enforcement;
            if (!principal) throw new Error(`no function ${JSON.stringify(fn)} in the synthesized stack`);
            // Every port that stands in for an AWS service answers as this function's role: the database
            // as the Data API, the signer as KMS, and the workflow's DynamoDB, Step Functions and EC2.
            // The database acts as the function too: its writes ring the doorbell (DynamoDB) as its role.
            const authorized: Dependencies = {
              ...deps,
              db: actingAs(principal, authorizedDatabase(deps.db, principal, iam.keyPolicies)),
              signer: authorizedSigner(deps.signer, principal, iam.keyPolicies),
              ...(deps.doorbell ? { doorbell: actingAs(principal, deps.doorbell) } : {}),
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
    runner: runnerOf,
    attach({ deps, url, issuer }) {
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
      attached = { deps, url, issuer, runner };
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
    },
    async close() {
      closing = true;
      await Promise.all(enforcing);
      await attached?.runner.stopAll();
      await ec2.settled();
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
 * Posts the document as the agent does: signed as its instance session, retried while the workflow is
 * not yet waiting (the instance can boot before WaitForAttestation has recorded its token).
 */
async function submitWithRetry(
  target: { url: string; issuer: LocalIssuer },
  enclaveId: string,
  instanceId: string,
  document: Uint8Array,
  stopped: () => boolean,
): Promise<void> {
  const body = { document: Buffer.from(document).toString('base64') };
  for (let attempt = 0; attempt < 100 && !stopped(); attempt++) {
    let response: Response;
    try {
      response = await postAsInstance(target, enclaveId, instanceId, 'attestation', body);
    } catch {
      return; // the API went away
    }
    const problem = response.ok
      ? undefined
      : ((await response.json().catch(() => ({}))) as { type?: string });
    if (response.status !== 409 || !problem?.type?.endsWith('/attestation-wait-not-open')) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** A POST to one of the enclave's `iam` routes, authenticated as the parent's instance session. */
async function postAsInstance(
  target: { url: string; issuer: LocalIssuer },
  enclaveId: string,
  instanceId: string,
  route: 'attestation' | 'attestation/heartbeat',
  body: object,
): Promise<Response> {
  const token = await target.issuer.mintInstance(instanceSessionArn(LOCAL_PARENT_ROLE, instanceId));
  return fetch(`${target.url}/api/v1/enclaves/${enclaveId}/${route}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
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
