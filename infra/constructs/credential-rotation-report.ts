import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import { Construct } from 'constructs';
import { DEFAULT_ROTATION_POLICY, type RotationPolicy } from '../../shared/identities/credential-rotation.ts';
import { adaptersOf } from '../../shared/runtime/adapters.ts';
import { METRICS_NAMESPACE } from '../../shared/runtime/metrics.ts';
import type { Database } from './database.ts';
import type { LogSettings } from './observability.ts';
import { ScheduledJob } from './scheduled-job.ts';

/** Props of {@link CredentialRotationReport}. */
export interface CredentialRotationReportProps {
  readonly database: Database;
  readonly logs: LogSettings;
  /** The runtime configuration every function gets. */
  readonly environment: Readonly<Record<string, string>>;
  /** How old credentials may get (days, 1 to 99999). @default a year each */
  readonly policy?: RotationPolicy;
}

/**
 * The rotation-age report (shared/identities/credential-rotation.ts): a daily job that counts the
 * identities' credentials and the platform key older than the policy allows, publishes the counts as the
 * metric `EnclaveContracts/CredentialsDueForRotation` (dimension `Kind`) and, when any is due, the
 * `CredentialsDueForRotation` event on the domain bus (through the outbox).
 *
 * It may run statements through the Data API, nothing else (the metrics are log lines in the Embedded
 * Metric Format, the event an outbox row). A failed run is not retried: the next day's supersedes it.
 */
export class CredentialRotationReport extends Construct {
  readonly job: ScheduledJob;
  readonly policy: RotationPolicy;

  constructor(scope: Construct, id: string, props: CredentialRotationReportProps) {
    super(scope, id);
    this.policy = props.policy ?? DEFAULT_ROTATION_POLICY;
    for (const days of [this.policy.maxAgeDays, this.policy.platformKeyMaxAgeDays]) {
      if (!Number.isInteger(days) || days < 1 || days > 99_999) {
        throw new Error(`credential ages are whole days from 1 to 99999 (got ${days})`);
      }
    }
    this.job = new ScheduledJob(this, 'Job', {
      entry: 'functions/events/report-credential-rotation.ts',
      description: 'Reports the credentials due for rotation by age (metric and event)',
      adapters: adaptersOf(['database']),
      every: Duration.days(1),
      retryAttempts: 0,
      environment: {
        ...props.environment,
        CREDENTIAL_MAX_AGE_DAYS: String(this.policy.maxAgeDays),
        PLATFORM_KEY_MAX_AGE_DAYS: String(this.policy.platformKeyMaxAgeDays),
      },
      logs: props.logs,
    });
    props.database.grantDataApiAccess(this.job.function);
  }

  /** The daily count of credentials of `kind` due for rotation (the job's metric). */
  metricDue(kind: string): cloudwatch.Metric {
    return new cloudwatch.Metric({
      namespace: METRICS_NAMESPACE,
      metricName: 'CredentialsDueForRotation',
      dimensionsMap: { Kind: kind },
      statistic: 'Maximum',
      period: Duration.days(1),
    });
  }
}
