import { ArnFormat, Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
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
   * Who is told when any alarm fires or clears: an email address subscribed to {@link Observability.alarmTopic}
   * (the subscription waits for its confirmation link). Other subscribers (chat, ticketing) subscribe to the
   * topic, an output of the stack.
   * @default no subscription
   */
  readonly alarmEmail?: string;
  /**
   * Who is paged when an alarm that needs someone now fires (a compensation that failed leaves a parent
   * running outside any contract): an email address or an HTTPS endpoint (an on-call service's integration
   * URL) subscribed to {@link Observability.pageTopic}.
   * @default no subscription
   */
  readonly pageEndpoint?: string;
}

/** How urgently an alarm needs a person: `notify` (the alarm topic) or `page` (both topics). */
export type AlarmSeverity = 'notify' | 'page';

/**
 * The stack's observability plumbing: the customer-managed key every log group is encrypted with, the
 * retention they share, and the few alarms that matter (API 5xx, function errors, dead-letter queue depth).
 * Tracing is switched on per function by `AppFunction` (X-Ray active).
 */
export class Observability extends Construct {
  /** The CMK of all log groups; its policy lets CloudWatch Logs of this account and region use it. */
  readonly logKey: kms.Key;
  readonly logSettings: LogSettings;
  /** Every alarm notifies this topic when it fires and when it clears. */
  readonly alarmTopic: sns.Topic;
  /** The alarms that need someone now notify this one too. */
  readonly pageTopic: sns.Topic;
  /** Encrypts both topics; CloudWatch may use it to publish the alarms, nothing else outside this account. */
  readonly topicKey: kms.Key;

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
    this.topicKey = new kms.Key(this, 'AlarmTopicKey', {
      description: 'Encrypts the alarm and paging topics of the contracts stack',
      enableKeyRotation: true,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    // CloudWatch publishes an alarm's notification to an encrypted topic only when the key lets it (SNS
    // asks KMS on its behalf): its service principal, for alarms of this account only.
    this.topicKey.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'AllowCloudWatchAlarmsOfThisAccount',
        principals: [new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
        actions: ['kms:Decrypt', 'kms:GenerateDataKey*'],
        resources: ['*'],
        conditions: { StringEquals: { 'aws:SourceAccount': stack.account } },
      }),
    );
    const topic = (id: string, displayName: string) =>
      new sns.Topic(this, id, { displayName, masterKey: this.topicKey, enforceSSL: true });
    this.alarmTopic = topic('AlarmTopic', 'Enclave contracts: alarms');
    this.pageTopic = topic('PageTopic', 'Enclave contracts: page on-call');
    if (props.alarmEmail)
      this.alarmTopic.addSubscription(new subscriptions.EmailSubscription(props.alarmEmail));
    if (props.pageEndpoint) {
      this.pageTopic.addSubscription(
        props.pageEndpoint.startsWith('https://')
          ? new subscriptions.UrlSubscription(props.pageEndpoint, {
              protocol: sns.SubscriptionProtocol.HTTPS,
            })
          : new subscriptions.EmailSubscription(props.pageEndpoint),
      );
    }
  }

  /**
   * Routes an alarm to the topics of its severity, when it fires and when it clears (so a page is closed by
   * its recovery). Every alarm of the stack goes through here.
   */
  route(alarm: cloudwatch.Alarm, severity: AlarmSeverity = 'notify'): cloudwatch.Alarm {
    const topics = severity === 'page' ? [this.alarmTopic, this.pageTopic] : [this.alarmTopic];
    for (const topic of topics) {
      alarm.addAlarmAction(new actions.SnsAction(topic));
      alarm.addOkAction(new actions.SnsAction(topic));
    }
    return alarm;
  }

  /** Fires when the metric reaches `threshold` within one period (default: any occurrence in 5 minutes). */
  alarmOn(
    id: string,
    metric: cloudwatch.IMetric,
    description: string,
    threshold = 1,
    severity: AlarmSeverity = 'notify',
  ): cloudwatch.Alarm {
    const alarm = new cloudwatch.Alarm(this, id, {
      metric,
      threshold,
      evaluationPeriods: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      alarmDescription: description,
    });
    return this.route(alarm, severity);
  }

  /** The default period of the alarms, exposed so callers build their metrics alike. */
  static readonly ALARM_PERIOD = Duration.minutes(5);
}
