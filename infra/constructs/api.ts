import { gzipSync } from 'node:zlib';
import { ArnFormat, Duration, RemovalPolicy, Stack, Tags, Validations } from 'aws-cdk-lib';
import { AccessLogFormat } from 'aws-cdk-lib/aws-apigateway';
import * as apigw from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpIamAuthorizer, HttpJwtAuthorizer } from 'aws-cdk-lib/aws-apigatewayv2-authorizers';
import * as cognito from 'aws-cdk-lib/aws-cognito';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import { Construct } from 'constructs';
import { openApiDocument } from '../../shared/http/openapi.ts';
import {
  type Grant,
  ROUTES,
  type RouteDefinition,
  type RouteId,
  usesWorkflow,
} from '../../shared/http/routes.ts';
import { adaptersOf } from '../../shared/runtime/adapters.ts';
import { AppFunction, FunctionRole } from './app-function.ts';
import type { ContractKeys } from './contract-keys.ts';
import type { CredentialKey } from './credential-key.ts';
import type { Database } from './database.ts';
import { acknowledgeWildcards } from './enclave-parents.ts';
import type { EnclaveWorkflow } from './enclave-workflow.ts';
import { EncryptedLogGroup, type LogSettings } from './observability.ts';
import type { SigningKey } from './signing-key.ts';

/** The tag that marks a function as one of an API's route functions; its value is the API's id. */
export const API_FUNCTION_TAG = 'enclave-contracts:api';

/**
 * A Lambda proxy integration (payload 2.0) that API Gateway calls with a role ({@link ContractsApi.invokeRole})
 * rather than through a permission in the function's resource policy.
 */
class RoleInvokedLambdaIntegration extends apigw.HttpRouteIntegration {
  constructor(
    id: string,
    private readonly fn: lambda.IFunction,
    private readonly role: iam.IRole,
  ) {
    super(id);
  }

  bind(): apigw.HttpRouteIntegrationConfig {
    return {
      type: apigw.HttpIntegrationType.AWS_PROXY,
      uri: this.fn.functionArn,
      payloadFormatVersion: apigw.PayloadFormatVersion.VERSION_2_0,
      credentials: apigw.IntegrationCredentials.fromRole(this.role),
    };
  }
}

/** Props of {@link ContractsApi}. */
export interface ContractsApiProps {
  readonly database: Database;
  readonly signingKey: SigningKey;
  /**
   * The key that seals the TOTP seeds (the `sealSecrets` and `openSecrets` grants, and those routes'
   * `CREDENTIAL_KEY_ID`).
   * @default none (a route with either grant then fails the synth)
   */
  readonly credentialKey?: CredentialKey;
  /**
   * The contracts' keys (the `wrapDataKeys` grant, and those routes' `CONTRACT_KEY_TAG`).
   * @default none (a route with the grant then fails the synth)
   */
  readonly contractKeys?: ContractKeys;
  /** Where the access logs and the route functions' logs go. */
  readonly logs: LogSettings;
  /** The runtime configuration every route function gets (database and signer ids). */
  readonly environment: Readonly<Record<string, string>>;
  /**
   * The provisioning workflow: the `taskCallback` grant, the workflow configuration of the routes that use
   * it, and the parent role, the only principal allowed to call the `iam` routes.
   * @default none (a route with `auth: 'iam'` or the `taskCallback` grant then fails the synth)
   */
  readonly workflow?: Pick<
    EnclaveWorkflow,
    'grantTaskCallback' | 'grantTaskHeartbeat' | 'environment' | 'parentRole'
  >;
  /**
   * The routes to serve. Always the route table in the deployed stack; a subset only where a test needs one.
   * @default ROUTES (shared/http/routes.ts)
   */
  readonly routes?: readonly RouteDefinition[];
  /** Steady-state requests per second across the stage. @default 50 */
  readonly rateLimit?: number;
  /** @default 100 */
  readonly burstLimit?: number;
}

/**
 * The public HTTP API: an API Gateway HTTP API built from the route table, one Lambda function per route
 * (so each route holds exactly the permissions its row in the table declares), Cognito as the identity
 * provider, and a JWT authorizer on every route whose `auth` is `jwt`. The API's default authorizer is the
 * JWT authorizer too, so a route can only be public when the table says `auth: 'none'`. Routes whose `auth`
 * is `iam` are called by the enclave parents with SigV4: API Gateway's IAM authorizer, and
 * `execute-api:Invoke` on exactly those routes for the parent role (nothing else in the stack holds it).
 *
 * The `$default` stage deploys automatically, is throttled, and writes JSON access logs to an encrypted
 * log group kept for a year (the audit record of who called what).
 */
export class ContractsApi extends Construct {
  readonly httpApi: apigw.HttpApi;
  readonly stage: apigw.HttpStage;
  readonly userPool: cognito.UserPool;
  readonly userPoolClient: cognito.UserPoolClient;
  readonly authorizer: HttpJwtAuthorizer;
  /** SigV4-signed requests of the enclave parents (routes whose `auth` is `iam`). */
  readonly iamAuthorizer = new HttpIamAuthorizer();
  readonly accessLogs: EncryptedLogGroup;
  /**
   * The route functions' logs, one group for all (each stream is named after its function): a log group
   * per route would cost one of CloudFormation's 500 resources per route for nothing a query cannot filter.
   */
  readonly functionLogs: EncryptedLogGroup;
  /**
   * The role API Gateway invokes the route functions with: `lambda:InvokeFunction` on the functions tagged
   * with this API's id ({@link API_FUNCTION_TAG}), instead of a resource policy statement (an
   * `AWS::Lambda::Permission`) per route.
   */
  readonly invokeRole: iam.Role;
  /** The function of each route, by route id. */
  readonly functions: ReadonlyMap<string, AppFunction>;
  /**
   * The route functions' execution roles, one per set of grants: functions granted the same hold the same
   * permissions whether their roles are one or many, and a role per route would cost one of CloudFormation's
   * 500 resources per route. CloudTrail still names the function (its session is the function's name).
   */
  private readonly roles = new Map<string, FunctionRole>();

  constructor(scope: Construct, id: string, props: ContractsApiProps) {
    super(scope, id);

    this.userPool = new cognito.UserPool(this, 'UserPool', {
      // Identities are created by an admin (POST /identities), never by self sign-up.
      selfSignUpEnabled: false,
      signInAliases: { email: true },
      // Parties sign binding contracts: every account has a second factor (TOTP; no SMS, which is phishable
      // and costs per message).
      mfa: cognito.Mfa.REQUIRED,
      mfaSecondFactor: { otp: true, sms: false },
      passwordPolicy: {
        minLength: 14,
        requireLowercase: true,
        requireUppercase: true,
        requireDigits: true,
        requireSymbols: true,
        tempPasswordValidity: Duration.days(3),
      },
      accountRecovery: cognito.AccountRecovery.EMAIL_ONLY,
      featurePlan: cognito.FeaturePlan.PLUS,
      standardThreatProtectionMode: cognito.StandardThreatProtectionMode.FULL_FUNCTION,
      deletionProtection: true,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    this.userPoolClient = this.userPool.addClient('Client', {
      authFlows: { userSrp: true },
      // Clients sign in with SRP and send the token; no hosted UI or redirect. CDK's default would enable the
      // code and implicit grants with every scope and https://example.com as the callback.
      disableOAuth: true,
      generateSecret: false,
      preventUserExistenceErrors: true,
      enableTokenRevocation: true,
      accessTokenValidity: Duration.minutes(60),
      idTokenValidity: Duration.minutes(60),
      refreshTokenValidity: Duration.days(1),
    });
    const region = Stack.of(this).region;
    this.authorizer = new HttpJwtAuthorizer(
      'CognitoJwt',
      `https://cognito-idp.${region}.amazonaws.com/${this.userPool.userPoolId}`,
      // Cognito ID tokens carry the client id in `aud`, access tokens in `client_id`: API Gateway checks both.
      { jwtAudience: [this.userPoolClient.userPoolClientId] },
    );

    this.httpApi = new apigw.HttpApi(this, 'HttpApi', {
      description: 'Enclave contracts API',
      createDefaultStage: false,
      defaultAuthorizer: this.authorizer,
    });
    this.accessLogs = new EncryptedLogGroup(this, 'AccessLogs', { settings: props.logs });
    this.stage = new apigw.HttpStage(this, 'DefaultStage', {
      httpApi: this.httpApi,
      stageName: '$default',
      autoDeploy: true,
      throttle: { rateLimit: props.rateLimit ?? 50, burstLimit: props.burstLimit ?? 100 },
      detailedMetricsEnabled: true,
      accessLogSettings: {
        destination: new apigw.LogGroupLogDestination(this.accessLogs),
        format: AccessLogFormat.custom(
          JSON.stringify({
            requestId: '$context.requestId',
            requestTime: '$context.requestTime',
            ip: '$context.identity.sourceIp',
            userAgent: '$context.identity.userAgent',
            subject: '$context.authorizer.claims.sub',
            // The caller of an iam route: the parent role's session (the instance id).
            principal: '$context.identity.userArn',
            routeKey: '$context.routeKey',
            status: '$context.status',
            responseLength: '$context.responseLength',
            latency: '$context.responseLatency',
            integrationLatency: '$context.integrationLatency',
            integrationError: '$context.integrationErrorMessage',
            authorizerError: '$context.authorizer.error',
          }),
        ),
      },
    });

    this.functionLogs = new EncryptedLogGroup(this, 'FunctionLogs', { settings: props.logs });
    const functionArns = Stack.of(this).formatArn({
      service: 'lambda',
      resource: 'function',
      resourceName: '*',
      arnFormat: ArnFormat.COLON_RESOURCE_NAME,
    });
    this.invokeRole = new iam.Role(this, 'InvokeRole', {
      assumedBy: new iam.ServicePrincipal('apigateway.amazonaws.com'),
      description: "API Gateway's role for invoking the API's route functions (those tagged with its id)",
      inlinePolicies: {
        InvokeRouteFunctions: new iam.PolicyDocument({
          statements: [
            new iam.PolicyStatement({
              actions: ['lambda:InvokeFunction'],
              resources: [functionArns],
              conditions: {
                StringEquals: { [`aws:ResourceTag/${API_FUNCTION_TAG}`]: this.httpApi.apiId },
              },
            }),
          ],
        }),
      },
    });
    acknowledgeWildcards(
      this.invokeRole,
      [functionArns],
      `lambda:InvokeFunction only on the functions tagged ${API_FUNCTION_TAG}=<this API's id> (condition aws:ResourceTag), which are this API's route functions.`,
    );

    const routes = props.routes ?? ROUTES;
    const functions = new Map<string, AppFunction>();
    for (const route of routes) functions.set(route.id, this.addRoute(route, props));
    this.functions = functions;
    const iamRoutes = routes.filter((r) => r.auth === 'iam');
    if (iamRoutes.length > 0)
      this.grantInvokeIamRoutes(requireWorkflow(props, iamRoutes[0]!).parentRole, iamRoutes);
  }

  /**
   * `execute-api:Invoke` on exactly these routes (method and path, each path parameter one `*`), any
   * stage. Only routes behind the IAM authorizer evaluate it; the JWT routes ignore IAM permissions.
   */
  private grantInvokeIamRoutes(grantee: iam.IGrantable, routes: readonly RouteDefinition[]): iam.Grant {
    const resourceArns = routes.map((r) =>
      this.httpApi.arnForExecuteApi(r.method, r.path.replace(/\{[^}]+\}/g, '*'), '*'),
    );
    const grant = iam.Grant.addToPrincipal({ grantee, actions: ['execute-api:Invoke'], resourceArns });
    acknowledgeWildcards(
      grantee,
      resourceArns,
      `execute-api:Invoke on the routes whose auth is iam (${routes.map((r) => `${r.method} ${r.path}`).join(', ')}) alone: any stage, each path parameter a *.`,
    );
    return grant;
  }

  /** The API's base URL (the `$default` stage). */
  get url(): string {
    return this.httpApi.apiEndpoint;
  }

  private addRoute(route: RouteDefinition, props: ContractsApiProps): AppFunction {
    const fn = new AppFunction(this, route.id, {
      entry: route.handler,
      description: `${route.method} ${route.path}: ${route.summary}`.slice(0, 256),
      adapters: adaptersOf(route.grants),
      constants: ROUTE_CONSTANTS[route.id as RouteId]?.(),
      logs: props.logs,
      logGroup: this.functionLogs,
      role: this.roleFor(route),
      environment: {
        ...props.environment,
        ...(usesWorkflow(route) ? requireWorkflow(props, route).environment : {}),
        ...(usesSecrets(route) ? requireCredentialKey(props, route).environment : {}),
        ...(route.grants.some((g) => g === 'wrapDataKeys')
          ? requireContractKeys(props, route).environment
          : {}),
      },
    });
    for (const grant of route.grants) this.applyGrant(grant, fn, route, props);
    Tags.of(fn.function).add(API_FUNCTION_TAG, this.httpApi.apiId);

    const httpRoute = new apigw.HttpRoute(this, `${route.id}Route`, {
      httpApi: this.httpApi,
      routeKey: apigw.HttpRouteKey.with(route.path, apigw.HttpMethod[route.method]),
      integration: new RoleInvokedLambdaIntegration(`${route.id}Integration`, fn.function, this.invokeRole),
      authorizer: {
        jwt: this.authorizer,
        iam: this.iamAuthorizer,
        none: new apigw.HttpNoneAuthorizer(),
      }[route.auth],
    });
    if (route.auth === 'none') {
      Validations.of(httpRoute).acknowledge({
        id: 'AwsSolutions-APIG4',
        reason: `${route.method} ${route.path} is public by design (auth: 'none' in shared/http/routes.ts): ${route.summary}. It reads no party's data.`,
      });
    }
    return fn;
  }

  /** The execution role of the routes granted exactly what `route` is. */
  private roleFor(route: RouteDefinition): FunctionRole {
    const grants = [...new Set(route.grants)].sort();
    const key = grants.join('+');
    let role = this.roles.get(key);
    if (!role) {
      const id = `Role${grants.map((g) => g[0]!.toUpperCase() + g.slice(1)).join('') || 'Logs'}`;
      role = new FunctionRole(this, id, {
        assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
        description: `Execution role of the API routes granted ${grants.join(', ') || 'nothing but their logs'}`,
      });
      this.roles.set(key, role);
    }
    return role;
  }

  private applyGrant(grant: Grant, fn: AppFunction, route: RouteDefinition, props: ContractsApiProps): void {
    switch (grant) {
      case 'database':
        props.database.grantDataApiAccess(fn);
        return;
      case 'sign':
        props.signingKey.grantSign(fn);
        return;
      case 'rotatePlatformKey':
        props.signingKey.grantRotate(fn);
        return;
      case 'taskCallback':
        requireWorkflow(props, route).grantTaskCallback(fn);
        return;
      case 'taskHeartbeat':
        requireWorkflow(props, route).grantTaskHeartbeat(fn);
        return;
      case 'sealSecrets':
        requireCredentialKey(props, route).grantSeal(fn);
        return;
      case 'openSecrets':
        requireCredentialKey(props, route).grantOpen(fn);
        return;
      case 'wrapDataKeys':
        requireContractKeys(props, route).grantWrap(fn);
        return;
      default: {
        const unknown: never = grant;
        throw new Error(`route grant ${String(unknown)} has no CDK mapping`);
      }
    }
  }
}

/** What a route's bundle carries computed at synth (see `AppFunctionProps.constants`). */
const ROUTE_CONSTANTS: Partial<Record<RouteId, () => Record<string, unknown>>> = {
  // functions/api/openapi/get.ts: the document, serialized, instead of its generation on every cold start;
  // gzipped and base64: a `define` is one esbuild argument, and Linux refuses one over 128 KiB (E2BIG),
  // which the plain JSON outgrew.
  getOpenApi: () => ({
    __OPENAPI_GZIP__: gzipSync(Buffer.from(JSON.stringify(openApiDocument()), 'utf8')).toString('base64'),
  }),
};

/** Whether `route` seals or opens secrets under the credential key. */
function usesSecrets(route: RouteDefinition): boolean {
  return route.grants.some((g) => g === 'sealSecrets' || g === 'openSecrets');
}

function requireContractKeys(props: ContractsApiProps, route: RouteDefinition): ContractKeys {
  if (!props.contractKeys)
    throw new Error(`route ${route.id} wraps data keys, but no contract keys were given`);
  return props.contractKeys;
}

function requireCredentialKey(props: ContractsApiProps, route: RouteDefinition): CredentialKey {
  if (!props.credentialKey) {
    throw new Error(`route ${route.id} seals or opens secrets, but no credential key was given`);
  }
  return props.credentialKey;
}

function requireWorkflow(
  props: ContractsApiProps,
  route: RouteDefinition,
): NonNullable<ContractsApiProps['workflow']> {
  if (!props.workflow) {
    throw new Error(
      `route ${route.id} needs the provisioning workflow (auth iam or a task grant), but none was given`,
    );
  }
  return props.workflow;
}
