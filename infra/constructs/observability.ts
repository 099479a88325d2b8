import { ArnFormat, Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';

/**
 * How a construct keeps its log groups: encrypted with this key, for this long. Every construct that
 * writes logs takes one, so that no log group in the stack is left unencrypted or kept forever by accident.
 */
export interface LogSettings {
  /** A customer-managed key whose policy lets CloudWatch Logs use it (see {@link Observability.logKey}). */
  readonly encryptionKey: kms.IKey;
  readonly retention: logs.RetentionDays;
}

/** Props of {@link EncryptedLogGroup}. */
export interface EncryptedLogGroupProps {
  readonly settings: LogSettings;
  /**
   * A fixed name, for log groups a service writes to by convention (Aurora's
   * `/aws/rds/cluster/<id>/postgresql`), so that the stack owns it before the service creates it.
   * @default a generated name
   */
  readonly logGroupName?: string;
}

/**
 * A log group encrypted with the stack's log key and with a bounded retention. Retained on stack deletion:
 * access logs, function logs and database logs are audit evidence and outlive the stack.
 */
export class EncryptedLogGroup extends logs.LogGroup {
  constructor(scope: Construct, id: string, props: EncryptedLogGroupProps) {
    super(scope, id, {
      logGroupName: props.logGroupName,
      encryptionKey: props.settings.encryptionKey,
      retention: props.settings.retention,
      removalPolicy: RemovalPolicy.RETAIN,
    });
  }
}

/** Props of {@link Observability}. */
export interface ObservabilityProps {
  /**
   * Retention of every log group of the stack. API access logs, function logs (which carry the audit
   * context of each request) and database logs are audit-relevant, hence a year by default.
   * @default logs.RetentionDays.ONE_YEAR
   */
  readonly logRetention?: logs.RetentionDays;
  /**
   * What an alarm does when it fires, e.g. an `SnsAction` to the on-call topic.
   * @default alarms only change state (visible in the console and to any later subscriber)
   */
  readonly alarmAction?: cloudwatch.IAlarmAction;
}

/**
 * The stack's observability plumbing: the customer-managed key every log group is encrypted with, the
 * retention they share, and the few alarms that matter (API 5xx, function errors, dead-letter queue depth).
 * Tracing is switched on per function by `AppFunction` (X-Ray active).
 */
export class Observability extends Construct {
  /** The CMK of all log groups; its policy lets CloudWatch Logs of this account and region use it. */
  readonly logKey: kms.Key;
  readonly logSettings: LogSettings;
  private readonly alarmAction: cloudwatch.IAlarmAction | undefined;

  constructor(scope: Construct, id: string, props: ObservabilityProps = {}) {
    super(scope, id);
    const stack = Stack.of(this);
    this.logKey = new kms.Key(this, 'LogKey', {
      description: 'Encrypts the CloudWatch log groups of the contracts stack',
      enableKeyRotation: true,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    // CloudWatch Logs encrypts with the caller's key only when the key policy lets the regional logs
    // service use it, and only for log groups of this account and region (the encryption context).
    this.logKey.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'AllowCloudWatchLogsOfThisAccount',
        principals: [new iam.ServicePrincipal(`logs.${stack.region}.amazonaws.com`)],
        actions: ['kms:Encrypt', 'kms:Decrypt', 'kms:ReEncrypt*', 'kms:GenerateDataKey*', 'kms:Describe*'],
        resources: ['*'],
        conditions: {
          ArnLike: {
            'kms:EncryptionContext:aws:logs:arn': stack.formatArn({
              service: 'logs',
              resource: 'log-group',
              resourceName: '*',
              arnFormat: ArnFormat.COLON_RESOURCE_NAME,
            }),
          },
        },
      }),
    );
    this.logSettings = {
      encryptionKey: this.logKey,
      retention: props.logRetention ?? logs.RetentionDays.ONE_YEAR,
    };
    this.alarmAction = props.alarmAction;
  }

  /** Fires when the metric reaches `threshold` within one period (default: any occurrence in 5 minutes). */
  alarmOn(id: string, metric: cloudwatch.IMetric, description: string, threshold = 1): cloudwatch.Alarm {
    const alarm = new cloudwatch.Alarm(this, id, {
      metric,
      threshold,
      evaluationPeriods: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      alarmDescription: description,
    });
    if (this.alarmAction) alarm.addAlarmAction(this.alarmAction);
    return alarm;
  }

  /** The default period of the alarms, exposed so callers build their metrics alike. */
  static readonly ALARM_PERIOD = Duration.minutes(5);
}
