import { Duration, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import * as events from 'aws-cdk-lib/aws-events';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import * as targets from 'aws-cdk-lib/aws-scheduler-targets';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { AppFunction } from './app-function.ts';
import type { Database } from './database.ts';
import type { LogSettings } from './observability.ts';

/** Props of {@link EventBus}. */
export interface EventBusProps {
  readonly database: Database;
  /** Where the scheduled functions' logs go. */
  readonly logs: LogSettings;
  /** The runtime configuration every function gets (database and signer ids). */
  readonly environment: Readonly<Record<string, string>>;
  /** Encrypts the bus. @default a new CMK with yearly rotation */
  readonly encryptionKey?: kms.IKey;
  /** How long published events are kept for replay. @default 365 days */
  readonly archiveRetention?: Duration;
  /** How often the outbox is drained; the upper bound of publication latency. @default 1 minute */
  readonly publishEvery?: Duration;
  /** How often contracts past their end date are expired. @default 1 hour */
  readonly expireEvery?: Duration;
}

/** A function run on a schedule, with the queue its failed runs land in. */
export interface ScheduledJob {
  readonly function: AppFunction;
  /** Runs that failed after their retries (function errors and undeliverable invocations). */
  readonly deadLetterQueue: sqs.Queue;
}

/**
 * The domain event bus: an EventBridge custom bus encrypted with a customer-managed key, with a dead-letter
 * queue for events it cannot encrypt or decrypt, an encrypted archive for replay, and the two scheduled jobs
 * around it. Domain events are written to the outbox table in the
 * transaction of the change that raised them; the outbox publisher (run by EventBridge Scheduler) moves them
 * onto this bus, and delivery is at least once, so consumers must be idempotent. The contract expirer, also
 * scheduled, ends contracts whose term is over.
 *
 * Each job has its own dead-letter queue: a run that still fails after its retries is kept there (and
 * alarmed on by the stack) instead of disappearing.
 */
export class EventBus extends Construct {
  readonly bus: events.EventBus;
  readonly encryptionKey: kms.IKey;
  /** Events the bus could not encrypt or decrypt. */
  readonly deadLetterQueue: sqs.Queue;
  readonly archiveKey: kms.Key;
  readonly archive: events.Archive;
  readonly outboxPublisher: ScheduledJob;
  readonly contractExpirer: ScheduledJob;

  constructor(scope: Construct, id: string, props: EventBusProps) {
    super(scope, id);
    this.encryptionKey =
      props.encryptionKey ??
      new kms.Key(this, 'Key', {
        description: 'Encrypts the domain event bus of enclave contracts',
        enableKeyRotation: true,
        removalPolicy: RemovalPolicy.RETAIN,
      });
    // Events the bus cannot encrypt or decrypt (e.g. the key disabled) land here instead of being lost.
    this.deadLetterQueue = new sqs.Queue(this, 'BusDeadLetters', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    Validations.of(this.deadLetterQueue).acknowledge({
      id: 'AwsSolutions-SQS3',
      reason:
        "This queue is the event bus's dead-letter queue (AWS::Events::EventBus DeadLetterConfig), which cdk-nag does not recognise as a DLQ use; a DLQ has no DLQ of its own.",
    });
    this.bus = new events.EventBus(this, 'Bus', {
      description: 'Domain events of enclave contracts (published from the transactional outbox)',
      kmsKey: this.encryptionKey,
      deadLetterQueue: this.deadLetterQueue,
    });
    // EventBridge delivers to a bus DLQ only when the queue policy lets it, for this bus alone.
    this.deadLetterQueue.addToResourcePolicy(
      new iam.PolicyStatement({
        principals: [new iam.ServicePrincipal('events.amazonaws.com')],
        actions: ['sqs:SendMessage'],
        resources: [this.deadLetterQueue.queueArn],
        conditions: { ArnEquals: { 'aws:SourceArn': this.bus.eventBusArn } },
      }),
    );
    // A key of its own: the archive's key policy names the bus, and the bus names its key, so one key for
    // both would be a circular dependency. (`bus.archive()` also drops `kmsKey`; hence `new Archive`.)
    this.archiveKey = new kms.Key(this, 'ArchiveKey', {
      description: 'Encrypts the archive of the domain event bus of enclave contracts',
      enableKeyRotation: true,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    this.archive = new events.Archive(this, 'Archive', {
      sourceEventBus: this.bus,
      description: 'Every domain event, for replay',
      eventPattern: { account: [Stack.of(this).account] },
      retention: props.archiveRetention ?? Duration.days(365),
      kmsKey: this.archiveKey,
    });

    this.outboxPublisher = this.scheduledJob('PublishOutbox', props, {
      entry: 'functions/events/publish-outbox.ts',
      description: 'Publishes the transactional outbox to the domain event bus',
      every: props.publishEvery ?? Duration.minutes(1),
      // The next run is the retry: retrying a failed run would only overlap it with the next one.
      retryAttempts: 0,
      environment: { ...props.environment, ...this.environment },
    });
    props.database.grantDataApiAccess(this.outboxPublisher.function);
    this.grantPutEvents(this.outboxPublisher.function);

    this.contractExpirer = this.scheduledJob('ExpireContracts', props, {
      entry: 'functions/events/expire-contracts.ts',
      description: 'Expires contracts whose term has ended',
      every: props.expireEvery ?? Duration.hours(1),
      retryAttempts: 2,
      environment: props.environment,
    });
    props.database.grantDataApiAccess(this.contractExpirer.function);
  }

  /** The runtime configuration of a function that publishes to this bus (`EVENT_BUS_NAME`). */
  get environment(): Readonly<Record<string, string>> {
    return { EVENT_BUS_NAME: this.bus.eventBusName };
  }

  /** `events:PutEvents` on this bus only. */
  grantPutEvents(grantee: iam.IGrantable): iam.Grant {
    return this.bus.grantPutEventsTo(grantee);
  }

  private scheduledJob(
    id: string,
    props: EventBusProps,
    job: {
      entry: string;
      description: string;
      every: Duration;
      retryAttempts: number;
      environment: Readonly<Record<string, string>>;
    },
  ): ScheduledJob {
    const deadLetterQueue = new sqs.Queue(this, `${id}DeadLetters`, {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    const fn = new AppFunction(this, id, {
      entry: job.entry,
      description: job.description,
      logs: props.logs,
      environment: job.environment,
      timeout: Duration.minutes(1),
      deadLetterQueue,
      retryAttempts: job.retryAttempts,
    });
    // A role per schedule (rather than the stack-wide one the target would create), assumable by
    // EventBridge Scheduler of this account only, and allowed to invoke this job's function only.
    const role = new iam.Role(this, `${id}ScheduleRole`, {
      assumedBy: new iam.ServicePrincipal('scheduler.amazonaws.com', {
        conditions: { StringEquals: { 'aws:SourceAccount': Stack.of(this).account } },
      }),
      description: `Invokes ${fn.node.path} on schedule`,
    });
    fn.acknowledgeInvokeGrant(role, 'The schedule role');
    new scheduler.Schedule(this, `${id}Schedule`, {
      description: job.description,
      schedule: scheduler.ScheduleExpression.rate(job.every),
      target: new targets.LambdaInvoke(fn.function, {
        role,
        retryAttempts: 2,
        // A run that could not start within one period is superseded by the next one.
        maxEventAge: job.every,
        deadLetterQueue,
      }),
    });
    return { function: fn, deadLetterQueue };
  }
}
