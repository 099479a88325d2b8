import { CustomResource, Duration } from 'aws-cdk-lib';
import type * as cognito from 'aws-cdk-lib/aws-cognito';
import * as iam from 'aws-cdk-lib/aws-iam';
import { Construct } from 'constructs';
import { AppFunction } from './app-function.ts';
import type { Database } from './database.ts';
import { deploymentProvider } from './deployment-step.ts';
import type { LogSettings } from './observability.ts';

/** Props of {@link FirstAdmin}. */
export interface FirstAdminProps {
  /** The first admin's email: the Cognito user's name, where Cognito sends the temporary password. */
  readonly email: string;
  readonly userPool: cognito.IUserPool;
  readonly database: Database;
  readonly logs: LogSettings;
}

/**
 * The deployment's first admin (`-c firstAdminEmail=…`): a custom resource that runs once the schema is
 * current, creates the Cognito user (Cognito emails a temporary password) and the identity with the `admin`
 * role bound to its `sub`, audited (functions/deploy/first-admin.ts). Its function may create and read users
 * of this user pool and run statements through the Data API; nothing else.
 */
export class FirstAdmin extends Construct {
  readonly function: AppFunction;
  readonly resource: CustomResource;

  constructor(scope: Construct, id: string, props: FirstAdminProps) {
    super(scope, id);
    // Cognito checks the address too, but only during the deployment, after the database has been built.
    if (!/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(props.email) || props.email.length > 320) {
      throw new Error(`firstAdminEmail must be an email address (got ${JSON.stringify(props.email)})`);
    }
    this.function = new AppFunction(this, 'Function', {
      entry: 'functions/deploy/first-admin.ts',
      description: 'Creates the first admin (Cognito user and identity) on deployment',
      // Not the composition root's: the custom resource names its cluster, secret and database itself.
      adapters: [],
      logs: props.logs,
      // A cold, auto-paused cluster takes ~15 s to resume.
      timeout: Duration.minutes(2),
    });
    props.database.grantMasterDataApiAccess(this.function.role);
    this.function.role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        actions: ['cognito-idp:AdminCreateUser', 'cognito-idp:AdminGetUser'],
        resources: [props.userPool.userPoolArn],
      }),
    );
    const provider = deploymentProvider(this, 'Provider', this.function, props.logs);
    this.resource = new CustomResource(this, 'Resource', {
      serviceToken: provider.serviceToken,
      resourceType: 'Custom::FirstAdmin',
      properties: {
        UserPoolId: props.userPool.userPoolId,
        Email: props.email,
        ...props.database.dataApiProperties,
      },
    });
    this.resource.node.addDependency(props.database.migrations);
  }
}
