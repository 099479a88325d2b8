import { Duration, Validations } from 'aws-cdk-lib';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import type { Construct } from 'constructs';

/**
 * A dead-letter queue as every one of the stack's is: SQS-managed encryption, TLS only, messages kept 14
 * days (the longest SQS allows) for an operator to read after the alarm on it fired.
 * @param reason why cdk-nag's "no DLQ of its own" finding does not apply (a DLQ has none).
 */
export function deadLetterQueue(
  scope: Construct,
  id: string,
  reason = 'This queue is a dead-letter queue (of EventBridge rule targets or Lambda); a DLQ has no DLQ of its own.',
): sqs.Queue {
  const queue = new sqs.Queue(scope, id, {
    encryption: sqs.QueueEncryption.SQS_MANAGED,
    enforceSSL: true,
    retentionPeriod: Duration.days(14),
  });
  Validations.of(queue).acknowledge({ id: 'AwsSolutions-SQS3', reason });
  return queue;
}
