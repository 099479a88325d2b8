import { Duration, Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import * as targets from 'aws-cdk-lib/aws-scheduler-targets';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import type { Adapter } from '../../shared/runtime/adapters.ts';
import { AppFunction } from './app-function.ts';
import { deadLetterQueue } from './dead-letter-queue.ts';
import type { LogSettings } from './observability.ts';

/** Props of {@link ScheduledJob}. */
export interface ScheduledJobProps {
  /** The handler module, relative to the repository root (e.g. `functions/events/publish-outbox.ts`); exports `handler`. */
  readonly entry: string;
  /** What the job does; the description of the function and of its schedule. */
  readonly description: string;
  /** The adapters its function is built with (see `AppFunctionProps.adapters`). */
  readonly adapters: readonly Adapter[];
  /**
   * How often the job runs (an EventBridge Scheduler `rate(...)`, whole minutes, at least one). Also the
   * longest a run may wait to start: a run that could not start within one period is dropped, because the
   * next one supersedes it.
   */
  readonly every: Duration;
  /**
   * How often Lambda retries a run whose function failed (0 to 2). Retrying is the job's call: 0 when the
   * next run is the retry anyway (retrying would only overlap it with the next one), more when a run is
   * safe to repeat and worth finishing before the next.
   */
  readonly retryAttempts: number;
  /** The function's runtime configuration (see `shared/runtime/config.ts`). */
  readonly environment: Readonly<Record<string, string>>;
  /** Where the function's logs go and for how long. */
  readonly logs: LogSettings;
  /**
   * How long a run may take (the function's timeout). Longer than `every` lets consecutive runs overlap (the
   * outbox publisher's runs do, so one is always looking). @default 1 minute
   */
  readonly timeout?: Duration;
}

/**
 * A function run on a schedule by EventBridge Scheduler, with the queue its failed runs land in.
 *
 * - The function is an {@link AppFunction} with a one-minute timeout (unless `timeout`) and no permissions beyond its logs and
 *   traces: grant what the job needs on {@link function} (`database.grantDataApiAccess(job.function)`).
 * - A run that still fails after its retries, whether the function failed or the schedule could not invoke
 *   it, is kept in {@link deadLetterQueue} (SSE, TLS only, 14 days) instead of disappearing; alarm on its
 *   depth.
 * - The schedule assumes a role of its own, assumable by EventBridge Scheduler of this account only and
 *   allowed to invoke this function only (rather than the stack-wide role the target would create).
 *
 * Construct layout (logical ids follow it, so it is part of the deployed contract): the function is the
 * job's default child, so its resources are named after the job id alone (`<id>/Function`, `<id>/Role`,
 * ...), and the dead-letter queue, schedule role and schedule are created next to the job, in `scope`, as
 * `<id>DeadLetters`, `<id>ScheduleRole` and `<id>Schedule`. That is where they were before this construct
 * was extracted from `EventBus`; the extraction kept every logical id. As a consequence, `Tags.of(job)` or
 * `Validations.of(job)` reach the function only: use the scope (or the resource itself) for the rest.
 *
 * @example
 * const job = new ScheduledJob(this, 'ExpireContracts', {
 *   entry: 'functions/events/expire-contracts.ts',
 *   description: 'Expires contracts whose term has ended',
 *   every: Duration.hours(1),
 *   retryAttempts: 2,
 *   environment,
 *   logs,
 * });
 * database.grantDataApiAccess(job.function);
 */
export class ScheduledJob extends Construct {
  /** The function each run invokes; grant it what the job needs. */
  readonly function: AppFunction;
  /** Runs that failed after their retries (function errors and undeliverable invocations). */
  readonly deadLetterQueue: sqs.Queue;
  readonly schedule: scheduler.Schedule;

  constructor(scope: Construct, id: string, props: ScheduledJobProps) {
    super(scope, id);
    this.deadLetterQueue = deadLetterQueue(scope, `${id}DeadLetters`);
    // `Default`: hidden from logical ids, so the function's resources are named as if it were the job.
    this.function = new AppFunction(this, 'Default', {
      entry: props.entry,
      description: props.description,
      adapters: props.adapters,
      logs: props.logs,
      environment: props.environment,
      timeout: props.timeout ?? Duration.minutes(1),
      deadLetterQueue: this.deadLetterQueue,
      retryAttempts: props.retryAttempts,
    });
    const role = new iam.Role(scope, `${id}ScheduleRole`, {
      assumedBy: new iam.ServicePrincipal('scheduler.amazonaws.com', {
        conditions: { StringEquals: { 'aws:SourceAccount': Stack.of(this).account } },
      }),
      description: `Invokes ${this.node.path} on schedule`,
    });
    this.function.acknowledgeInvokeGrant(role, 'The schedule role');
    this.schedule = new scheduler.Schedule(scope, `${id}Schedule`, {
      description: props.description,
      schedule: scheduler.ScheduleExpression.rate(props.every),
      target: new targets.LambdaInvoke(this.function.function, {
        role,
        retryAttempts: 2,
        // A run that could not start within one period is superseded by the next one.
        maxEventAge: props.every,
        deadLetterQueue: this.deadLetterQueue,
      }),
    });
  }
}
