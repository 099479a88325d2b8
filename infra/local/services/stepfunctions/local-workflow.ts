import { randomUUID } from 'node:crypto';
import {
  ExecutionAbortedError,
  ExecutionError,
  ExecutionTimeoutError,
  type RunOptions,
  StateMachine,
  type StateMachineDefinition,
} from 'aws-local-stepfunctions';
import {
  activateStep,
  awaitAttestationStep,
  challengeStep,
  compensateStep,
  validateStep,
  verifyAttestationStep,
} from '../../../../shared/enclaves/provisioning-steps.ts';
import {
  EC2_INTEGRATION_ERROR,
  type ProvisioningInput,
  STATES,
  type StateName,
  WORKFLOW_TIMING,
} from '../../../../shared/enclaves/provisioning-workflow.ts';
import type { Dependencies } from '../../../../shared/runtime/dependencies.ts';
import type { TaskCallback } from '../../../../shared/workflow/workflow-ports.ts';
import { Ec2Error, type Ec2Operation, type Ec2Simulator } from '../ec2/ec2-simulator.ts';

/**
 * The provisioning state machine, locally: the definition the CDK code renders
 * (`infra/local/services/stepfunctions/provisioning-definition.ts`), run by aws-local-stepfunctions, with
 * - the Lambda tasks mapped to the same step use cases the deployed functions call;
 * - the `aws-sdk:ec2:*` tasks mapped to the EC2 simulator, its errors reported as Step Functions' AWS SDK
 *   integration reports EC2's (`Ec2.Ec2Exception`, the message and the HTTP status in the cause);
 * - WaitForAttestation, whose `.waitForTaskToken` pattern aws-local-stepfunctions does not implement,
 *   run by a handler that records the token through the same step and then waits itself for
 *   `SendTaskSuccess`, which this class receives as the local {@link TaskCallback}.
 *
 * Nothing about the flow is re-implemented here: names, transitions, Retry/Catch, ResultPaths and
 * intrinsic functions are the rendered definition's.
 */

/** The local provisioning state machine's ARN (what the IAM stand-in resolves the stack's to). */
export function localStateMachineArn(region = 'eu-central-1'): string {
  return `arn:aws:states:${region}:000000000000:stateMachine:EnclaveProvisioning`;
}

export interface LocalWorkflowOptions {
  /** The ASL the CDK construct renders. */
  readonly definition: object;
  readonly deps: Dependencies;
  readonly ec2: Ec2Simulator;
  /**
   * Authorises each `aws-sdk:ec2:*` task's call as the state machine's role before the simulator serves it
   * (the local IAM stand-in); throws the call's error when denied. Default: every call is allowed.
   */
  readonly authorizeEc2?: (operation: Ec2Operation, input: unknown) => Promise<void>;
  /**
   * How long WaitForAttestation waits locally before it times out as `States.Timeout` (the deployed
   * machine waits `WORKFLOW_TIMING.attestationTimeoutSeconds`). Default 10 s.
   */
  readonly attestationTimeoutMs?: number;
  /**
   * How long WaitForAttestation may go without a heartbeat locally before it ends as
   * `States.HeartbeatTimeout`. Default: the deployed heartbeat's share of the deployed timeout
   * (`WORKFLOW_TIMING`), applied to {@link attestationTimeoutMs}.
   */
  readonly attestationHeartbeatMs?: number;
  /** Retry intervals of every retrier, locally (ms); default 50, so transient faults retry quickly. */
  readonly retryIntervalMs?: number;
  /** Account and region in the local execution ARNs. */
  readonly region?: string;
  /**
   * Told when an execution ends without its Catch states running: it timed out (the definition's
   * TimeoutSeconds) or was stopped ({@link LocalWorkflow.stop}). Step Functions' status-change event to
   * EventBridge, locally. Not told for executions stopped because the local stack shuts down.
   */
  readonly onUncaughtEnd?: (execution: LocalExecution, status: 'TIMED_OUT' | 'ABORTED') => void;
}

export type LocalExecutionStatus = 'RUNNING' | 'SUCCEEDED' | 'FAILED' | 'TIMED_OUT' | 'ABORTED';

/** One local execution, as an operator would read it in the console. */
export interface LocalExecution {
  readonly executionArn: string;
  readonly input: ProvisioningInput;
  status: LocalExecutionStatus;
  /** States entered, in order (the console's event history, reduced to its path). */
  readonly path: string[];
  output?: unknown;
  error?: string;
  cause?: string;
  /** Settles when the execution ends (never rejects). */
  readonly done: Promise<void>;
}

/** The Lambda steps by state name (what `WORKFLOW_STEPS` deploys as functions). */
const LAMBDA_STEPS: Readonly<Record<string, (deps: Dependencies, input: unknown) => Promise<unknown>>> = {
  [STATES.validate]: validateStep,
  [STATES.challenge]: challengeStep,
  [STATES.verifyAttestation]: verifyAttestationStep,
  [STATES.activate]: activateStep,
  [STATES.compensate]: compensateStep,
};

type TaskHandlers = NonNullable<NonNullable<RunOptions['overrides']>['taskResourceLocalHandlers']>;
type TaskHandler = TaskHandlers[string];

const EC2_PREFIX = 'arn:aws:states:::aws-sdk:ec2:';
const WAIT_FOR_TASK_TOKEN = ':states:::lambda:invoke.waitForTaskToken';

interface Waiter {
  resolve(output: unknown): void;
  reject(error: Error): void;
  /** Restarts the heartbeat timer (SendTaskHeartbeat). */
  beat(): void;
}

export class LocalWorkflow implements TaskCallback {
  private readonly machine: StateMachine;
  private readonly definition: { States: Record<string, { Type: string; Resource?: string }> };
  private readonly runs = new Map<string, LocalExecution>();
  private readonly aborts = new Map<string, () => void>();
  /** The callback token of each running execution (its one waitForTaskToken state). */
  private readonly tokens = new Map<string, string>();
  private shuttingDown = false;
  private readonly waiters = new Map<string, Waiter>();
  private readonly stateMachineArn: string;

  constructor(private readonly options: LocalWorkflowOptions) {
    this.definition = options.definition as LocalWorkflow['definition'];
    this.machine = new StateMachine(options.definition as StateMachineDefinition, {
      // The rendered ARNs name local stand-ins (fake account, fake functions).
      validationOptions: { checkArn: false },
    });
    this.stateMachineArn = localStateMachineArn(options.region);
  }

  /** The state names of the definition (for the test that compares it with the synthesized template). */
  stateNames(): string[] {
    return Object.keys(this.definition.States);
  }

  /** StartExecution: runs in the background; the returned record fills in as it goes. */
  start(input: ProvisioningInput): LocalExecution {
    const name = `${input.enclaveId}-${randomUUID().slice(0, 8)}`;
    const executionArn = `${this.stateMachineArn.replace(':stateMachine:', ':execution:')}:${name}`;
    const token = `local-task-token-${randomUUID()}`;
    const path: string[] = [];
    const run = this.machine.run(input as never, {
      context: {
        Execution: { Id: executionArn, Name: name, StartTime: new Date().toISOString(), Input: input },
        StateMachine: { Id: this.stateMachineArn, Name: 'EnclaveProvisioning' },
        // One token per execution: the local stand-in for `$$.Task.Token` of its one callback task.
        Task: { Token: token },
      } as never,
      overrides: {
        taskResourceLocalHandlers: this.taskHandlers(),
        retryIntervalOverrides: this.retryOverrides(),
        // The relaunch pause is a Wait state: as short locally as a retrier's interval.
        waitTimeOverrides: { [STATES.waitToRelaunch]: this.options.retryIntervalMs ?? 50 },
      },
    });
    const record: LocalExecution = {
      executionArn,
      input,
      status: 'RUNNING',
      path,
      done: Promise.resolve(),
    };
    const history = (async () => {
      for await (const event of run.eventLogs) {
        if (event.type === 'StateEntered') path.push(event.state.name);
      }
    })().catch(() => undefined);
    const done = run.result.then(
      (output) => {
        record.status = 'SUCCEEDED';
        record.output = output;
      },
      (error: unknown) => {
        if (error instanceof ExecutionAbortedError || error instanceof ExecutionTimeoutError) {
          const status = error instanceof ExecutionAbortedError ? 'ABORTED' : 'TIMED_OUT';
          record.status = status;
          if (!this.shuttingDown) this.options.onUncaughtEnd?.(record, status);
          return;
        }
        record.status = 'FAILED';
        const cause =
          error instanceof ExecutionError ? (error.cause as { name?: string; message?: string }) : undefined;
        record.error = cause?.name ?? (error as Error).name;
        record.cause = cause?.message ?? (error as Error).message;
      },
    );
    Object.assign(record, { done: Promise.all([done, history]).then(() => undefined) });
    this.runs.set(executionArn, record);
    this.aborts.set(executionArn, run.abort);
    this.tokens.set(executionArn, token);
    void record.done.then(() => {
      this.aborts.delete(executionArn);
      this.tokens.delete(executionArn);
    });
    return record;
  }

  /** SendTaskSuccess: completes the waiting WaitForAttestation of the execution the token belongs to. */
  async succeed(taskToken: string, output: unknown): Promise<'sent' | 'gone'> {
    const waiter = this.waiters.get(taskToken);
    if (!waiter) return 'gone';
    this.waiters.delete(taskToken);
    // Through JSON, as Step Functions passes `output` (a string of JSON).
    waiter.resolve(JSON.parse(JSON.stringify(output)));
    return 'sent';
  }

  /** SendTaskHeartbeat: the waiting WaitForAttestation's heartbeat timer starts again. */
  async heartbeat(taskToken: string): Promise<'sent' | 'gone'> {
    const waiter = this.waiters.get(taskToken);
    if (!waiter) return 'gone';
    waiter.beat();
    return 'sent';
  }

  executions(): LocalExecution[] {
    return [...this.runs.values()];
  }

  /**
   * StopExecution: the execution ends `ABORTED` without running any Catch (as in Step Functions), and
   * {@link LocalWorkflowOptions.onUncaughtEnd} is told. Resolves when it has ended; false when it was not
   * running.
   */
  async stop(executionArn: string): Promise<boolean> {
    const record = this.runs.get(executionArn);
    const abort = this.aborts.get(executionArn);
    if (!record || !abort) return false;
    abort();
    const token = this.tokens.get(executionArn);
    const waiter = token === undefined ? undefined : this.waiters.get(token);
    if (token !== undefined && waiter) {
      this.waiters.delete(token);
      waiter.reject(new Error('the execution was stopped'));
    }
    await record.done;
    return true;
  }

  /** StopExecution of every running execution (the local stack is shutting down); resolves when they ended. */
  async stopAll(): Promise<void> {
    this.shuttingDown = true;
    for (const abort of this.aborts.values()) abort();
    for (const waiter of this.waiters.values()) waiter.reject(new Error('the local stack is stopping'));
    this.waiters.clear();
    await this.idle();
  }

  /** Resolves once no execution is running (including ones started meanwhile). */
  async idle(): Promise<void> {
    for (;;) {
      const running = this.executions().filter((e) => e.status === 'RUNNING');
      if (running.length === 0) return;
      await Promise.all(running.map((e) => e.done));
    }
  }

  private taskHandlers(): TaskHandlers {
    const ec2 = this.options.ec2.localTaskHandlers() as Record<string, (input: unknown) => Promise<unknown>>;
    const handlers: Record<string, (input: unknown) => Promise<unknown>> = {};
    for (const [name, state] of Object.entries(this.definition.States)) {
      if (state.Type !== 'Task') continue;
      const resource = state.Resource ?? '';
      if (resource.startsWith(EC2_PREFIX)) {
        const call = ec2[resource];
        if (!call) throw new Error(`state ${name}: the EC2 simulator does not serve ${resource}`);
        const action = resource.slice(EC2_PREFIX.length);
        const operation = `${action[0]!.toUpperCase()}${action.slice(1)}` as Ec2Operation;
        const authorize = this.options.authorizeEc2;
        handlers[name] = (input) =>
          (authorize ? authorize(operation, input) : Promise.resolve())
            .then(() => call(input))
            .catch(sdkIntegrationError);
      } else if (resource.endsWith(WAIT_FOR_TASK_TOKEN)) {
        handlers[name] = (input) => this.waitForTaskToken((input as { Payload: unknown }).Payload);
      } else {
        const step = LAMBDA_STEPS[name as StateName];
        if (!step) throw new Error(`state ${name}: no local handler for ${resource}`);
        handlers[name] = (input) => {
          const deps = this.options.deps;
          return step(deps.local?.asFunction?.({ step: name }, deps) ?? deps, input);
        };
      }
    }
    return handlers as Record<string, TaskHandler>;
  }

  private retryOverrides(): Record<string, number> {
    const interval = this.options.retryIntervalMs ?? 50;
    return Object.fromEntries(Object.keys(this.definition.States).map((name) => [name, interval]));
  }

  /**
   * The callback pattern, locally: record the token (the same step as deployed), then wait for it, bounded
   * by the state's timeout and heartbeat as Step Functions bounds it.
   */
  private async waitForTaskToken(payload: unknown): Promise<unknown> {
    const { taskToken } = payload as { taskToken: string };
    const { timeoutMs, heartbeatMs } = localAttestationWait(this.options);
    const timers: { timeout?: NodeJS.Timeout; heartbeat?: NodeJS.Timeout } = {};
    const output = new Promise<unknown>((resolve, reject) => {
      const end = (name: string, message: string) => {
        this.waiters.delete(taskToken);
        reject(Object.assign(new Error(message), { name }));
      };
      const beat = () => {
        clearTimeout(timers.heartbeat);
        timers.heartbeat = setTimeout(
          () => end('States.HeartbeatTimeout', 'WaitForAttestation missed its heartbeat.'),
          heartbeatMs,
        );
      };
      this.waiters.set(taskToken, { resolve, reject, beat });
      // Both timers run from the state's start, as in Step Functions (the token is recorded within it).
      timers.timeout = setTimeout(() => end('States.Timeout', 'WaitForAttestation timed out.'), timeoutMs);
      beat();
    });
    // A stop can reject the waiter while the step below still runs, before anything awaits it: that
    // rejection is handled below (or is moot when the step itself failed), never unhandled.
    output.catch(() => undefined);
    try {
      await awaitAttestationStep(this.options.deps, payload);
      return await output;
    } finally {
      this.waiters.delete(taskToken);
      clearTimeout(timers.timeout);
      clearTimeout(timers.heartbeat);
    }
  }
}

/**
 * An EC2 error as Step Functions' AWS SDK integration reports it (`EC2_INTEGRATION_ERROR` says why and
 * where that is seen): always `Ec2.Ec2Exception`, the cause EC2's message with the service, HTTP status and
 * request id appended, and no error code anywhere.
 */
function sdkIntegrationError(error: unknown): never {
  if (error instanceof Ec2Error) {
    const { httpStatusCode, requestId } = error.$metadata;
    throw Object.assign(
      new Error(`${error.message} (Service: Ec2, Status Code: ${httpStatusCode}, Request ID: ${requestId})`),
      { name: EC2_INTEGRATION_ERROR },
    );
  }
  throw error;
}

/**
 * WaitForAttestation's bounds locally: its timeout (default 10 s) and heartbeat (default: the deployed share
 * of the timeout), which the local parents' agents heartbeat well inside.
 */
export function localAttestationWait(options: {
  readonly attestationTimeoutMs?: number;
  readonly attestationHeartbeatMs?: number;
}): { timeoutMs: number; heartbeatMs: number } {
  const timeoutMs = options.attestationTimeoutMs ?? 10_000;
  const heartbeatMs =
    options.attestationHeartbeatMs ??
    Math.round(
      (timeoutMs * WORKFLOW_TIMING.attestationHeartbeatSeconds) / WORKFLOW_TIMING.attestationTimeoutSeconds,
    );
  return { timeoutMs, heartbeatMs };
}
