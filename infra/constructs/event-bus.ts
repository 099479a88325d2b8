import { Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as events from 'aws-cdk-lib/aws-events';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { OUTBOX_PUBLISHER_SCHEDULE } from '../../shared/events/outbox-publisher.ts';
import { adaptersOf } from '../../shared/runtime/adapters.ts';
import type { Database } from './database.ts';
import { deadLetterQueue } from './dead-letter-queue.ts';
import type { Doorbell } from './doorbell.ts';
import type { LogSettings } from './observability.ts';
import { ScheduledJob } from './scheduled-job.ts';

/** Props of {@link EventBus}. */
export interface EventBusProps {
  readonly database: Database;
  /** What the scheduled jobs watch instead of querying the database while nothing is written. */
  readonly doorbell: Doorbell;
  /** Where the scheduled functions' logs go. */
  readonly logs: LogSettings;
  /** The runtime configuration every function gets (database and signer ids). */
  readonly environment: Readonly<Record<string, string>>;
  /** Encrypts the bus. @default a new CMK with yearly rotation */
  readonly encryptionKey?: kms.IKey;
  /** How long published events are kept for replay. @default 365 days */
  readonly archiveRetention?: Duration;
  /**
   * How often a run of the outbox publisher starts; each run lasts 30 s longer (overlapping the next), and
   * looks again every second. @default 1 minute
   */
  readonly publishEvery?: Duration;
  /** How often contracts past their end date are expired. @default 1 hour */
  readonly expireEvery?: Duration;
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
    this.deadLetterQueue = deadLetterQueue(
      this,
      'BusDeadLetters',
      "This queue is the event bus's dead-letter queue (AWS::Events::EventBus DeadLetterConfig), which cdk-nag does not recognise as a DLQ use; a DLQ has no DLQ of its own.",
    );
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

    // Each job's construct id names its resources' logical ids (see ScheduledJob): keep them.
    const publishEvery = props.publishEvery ?? Duration.minutes(OUTBOX_PUBLISHER_SCHEDULE.everyMs / 60_000);
    this.outboxPublisher = new ScheduledJob(this, 'PublishOutbox', {
      entry: 'functions/events/publish-outbox.ts',
      description: 'Publishes the transactional outbox to the domain event bus',
      // Its EventBridge client is its own (functions/events/publish-outbox.ts): no adapter holds one.
      adapters: adaptersOf(['database', 'watchDoorbell']),
      every: publishEvery,
      // Each run outlasts the period, so the next starts while it still looks: the outbox is never unwatched.
      timeout: Duration.seconds(publishEvery.toSeconds() + OUTBOX_PUBLISHER_SCHEDULE.overlapMs / 1000),
      // The next run is the retry: retrying a failed run would only overlap it with the next one.
      retryAttempts: 0,
      environment: { ...props.environment, ...this.environment },
      logs: props.logs,
    });
    props.database.grantDataApiAccess(this.outboxPublisher.function);
    props.doorbell.grantWatch(this.outboxPublisher.function);
    this.grantPutEvents(this.outboxPublisher.function);

    this.contractExpirer = new ScheduledJob(this, 'ExpireContracts', {
      entry: 'functions/events/expire-contracts.ts',
      description: 'Expires contracts whose term has ended',
      adapters: adaptersOf(['database', 'watchDoorbell']),
      every: props.expireEvery ?? Duration.hours(1),
      retryAttempts: 2,
      environment: props.environment,
      logs: props.logs,
    });
    props.database.grantDataApiAccess(this.contractExpirer.function);
    props.doorbell.grantWatch(this.contractExpirer.function);
  }

  /** The runtime configuration of a function that publishes to this bus (`EVENT_BUS_NAME`). */
  get environment(): Readonly<Record<string, string>> {
    return { EVENT_BUS_NAME: this.bus.eventBusName };
  }

  /** `events:PutEvents` on this bus only. */
  grantPutEvents(grantee: iam.IGrantable): iam.Grant {
    return this.bus.grantPutEventsTo(grantee);
  }
}
