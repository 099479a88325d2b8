import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as cr from 'aws-cdk-lib/custom-resources';
import type { Construct } from 'constructs';
import type { AppFunction } from './app-function.ts';
import { EncryptedLogGroup, type LogSettings } from './observability.ts';

/**
 * The CDK custom resource framework in front of one of our functions (a step of the deployment: the schema
 * migrations, the first admin). The framework function relays CloudFormation's request to `fn`; it gets a
 * role of its own, so that no AWS managed policy is attached: it may write its log group and invoke `fn`,
 * no more. It runs on Graviton like every other function of the stack.
 */
export function deploymentProvider(
  scope: Construct,
  id: string,
  fn: AppFunction,
  logs: LogSettings,
): cr.Provider {
  const frameworkLog = new EncryptedLogGroup(scope, `${id}Log`, { settings: logs });
  const frameworkRole = new iam.Role(scope, `${id}Role`, {
    assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
    description: `Execution role of the custom resource framework of ${fn.node.path}`,
  });
  frameworkRole.addToPrincipalPolicy(
    new iam.PolicyStatement({
      actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
      resources: [frameworkLog.logGroupArn],
    }),
  );
  const provider = new cr.Provider(scope, id, {
    onEventHandler: fn.function,
    logGroup: frameworkLog,
    frameworkOnEventRole: frameworkRole,
  });
  fn.acknowledgeInvokeGrant(frameworkRole, 'The custom resource framework function');
  const framework = provider.node.findChild('framework-onEvent') as lambda.Function;
  (framework.node.defaultChild as lambda.CfnFunction).architectures = [lambda.Architecture.ARM_64.name];
  return provider;
}
