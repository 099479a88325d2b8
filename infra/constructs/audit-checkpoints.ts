import { Duration } from 'aws-cdk-lib';
import { Construct } from 'constructs';
import { adaptersOf } from '../../shared/runtime/adapters.ts';
import type { Database } from './database.ts';
import type { Doorbell } from './doorbell.ts';
import type { LogSettings } from './observability.ts';
import { ScheduledJob } from './scheduled-job.ts';
import type { SigningKey } from './signing-key.ts';

/** Props of {@link AuditCheckpoints}. */
export interface AuditCheckpointsProps {
  readonly database: Database;
  /** Read before each run: no ring since the last checkpoint means no audit head grew. */
  readonly doorbell: Doorbell;
  /** The platform key the checkpoints are signed with. */
  readonly signingKey: SigningKey;
  /** Where the job's logs go. */
  readonly logs: LogSettings;
  /** The runtime configuration every function gets (database and signer ids). */
  readonly environment: Readonly<Record<string, string>>;
  /**
   * How often a checkpoint is taken: the longest an audit entry waits to be anchored by a signed
   * checkpoint. @default 5 minutes
   */
  readonly every?: Duration;
}

/**
 * Signed checkpoints over the tamper-evident audit chains: a scheduled job
 * (`functions/events/checkpoint-audit.ts`) that puts the heads of the chains that grew since the last
 * checkpoint into an RFC 6962 Merkle tree, chains it to the previous checkpoint's root and signs it with the
 * platform key (`shared/audit/audit-checkpoints.ts`).
 *
 * It may run statements through the Data API, and sign with the platform key and read its public half (the
 * signer names each signature by the key's JWK thumbprint); nothing else. A failed run is retried (taking a checkpoint is safe to repeat: a run anchors whatever heads
 * are still uncovered, and two concurrent runs cannot fork the checkpoint chain), then kept in the job's
 * dead-letter queue.
 */
export class AuditCheckpoints extends Construct {
  readonly job: ScheduledJob;

  constructor(scope: Construct, id: string, props: AuditCheckpointsProps) {
    super(scope, id);
    this.job = new ScheduledJob(this, 'Job', {
      entry: 'functions/events/checkpoint-audit.ts',
      description: 'Signs a checkpoint over the heads of the audit chains',
      adapters: adaptersOf(['database', 'sign', 'watchDoorbell']),
      every: props.every ?? Duration.minutes(5),
      retryAttempts: 2,
      environment: props.environment,
      logs: props.logs,
    });
    props.database.grantDataApiAccess(this.job.function);
    props.doorbell.grantWatch(this.job.function);
    props.signingKey.grantSign(this.job.function);
  }
}
