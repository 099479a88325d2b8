import { Duration, Stack, Validations } from 'aws-cdk-lib';
import type * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { type ICommandHooks, NodejsFunction, OutputFormat } from 'aws-cdk-lib/aws-lambda-nodejs';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct, type IConstruct } from 'constructs';
import { type Adapter, bundleDefines } from '../../shared/runtime/adapters.ts';
import { PROJECT_ROOT, projectPath } from '../project-paths.ts';
import { EncryptedLogGroup, type LogSettings } from './observability.ts';

/** The service name Powertools stamps on every log line, metric and trace. */
export const SERVICE_NAME = 'enclave-contracts';

/**
 * Lambda's Node.js 24 runtime, the current LTS (cdk-nag's AwsSolutions-L1 flags any older one). This
 * aws-cdk-lib knows it; with an older one, declare it: `new lambda.Runtime('nodejs24.x', RuntimeFamily.NODEJS)`.
 */
export const NODE_RUNTIME = lambda.Runtime.NODEJS_24_X;

/**
 * Packages that only the local stack uses (PGlite, node-postgres). The runtime picks the Data API adapter in
 * AWS, so they are replaced in every bundle by a stub that throws if used (infra/bundling/local-only-driver.ts
 * says why a plain `external` is not enough for an ESM bundle).
 */
export const LOCAL_ONLY_MODULES = ['@electric-sql/pglite', 'pg'] as const;
const LOCAL_ONLY_STUB = './infra/bundling/local-only-driver.ts';

/**
 * Built-in modules the bundles load with `require` instead of importing them as ES modules, which on
 * Node.js 24 costs a cold start far more (infra/bundling/node-http.ts says why).
 */
const REQUIRED_BUILTINS: Readonly<Record<string, string>> = {
  http: './infra/bundling/node-http.ts',
  'node:http': './infra/bundling/node-http.ts',
};

/**
 * AWS SDK packages replaced in the bundles by the part of them that can apply in Lambda: the credential
 * chain reads the execution role's credentials where Lambda puts them, and bundles nothing that reads
 * profiles, SSO caches or instance metadata (infra/bundling/aws-credentials.ts says why).
 */
const LAMBDA_SDK_REPLACEMENTS: Readonly<Record<string, string>> = {
  '@aws-sdk/credential-provider-node': './infra/bundling/aws-credentials.ts',
};

/**
 * How every function is bundled, in esbuild's terms: what {@link AppFunction} asks `NodejsFunction` for, and
 * what the benchmarks and bundle tests that run esbuild themselves use.
 */
export const LAMBDA_ESBUILD_OPTIONS = {
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node24',
  mainFields: ['module', 'main'],
  minify: true,
} as const;

/** ESM bundles still meet CommonJS dependencies that call `require`; give them one. */
export const ESM_REQUIRE_BANNER =
  "import { createRequire } from 'module'; const require = createRequire(import.meta.url);";

/** Props of {@link AppFunction}. */
export interface AppFunctionProps {
  /** The handler module, relative to the repository root (e.g. `functions/api/contracts/create.ts`); exports `handler`. */
  readonly entry: string;
  readonly description: string;
  /**
   * The adapters its composition root builds (`adaptersOf` its grants, in shared/runtime/adapters.ts):
   * only these are bundled, so a function parses and constructs nothing it may not use.
   */
  readonly adapters: readonly Adapter[];
  /**
   * Values known at synth that the code reads as compile-time constants (esbuild `define`: each name
   * becomes its value, as JSON), so that no cold start computes them.
   * @default none
   */
  readonly constants?: Readonly<Record<string, unknown>>;
  /** Where the function's logs go and for how long. */
  readonly logs: LogSettings;
  /**
   * A log group shared with other functions of one concern (the API's routes): Lambda names each stream
   * `YYYY/MM/DD/<function name>[<version>]<environment id>`, so every line still tells its function.
   * @default a log group of its own
   */
  readonly logGroup?: EncryptedLogGroup;
  /** The runtime configuration (see `shared/runtime/config.ts`); `POWERTOOLS_*` are added here. */
  readonly environment?: Readonly<Record<string, string>>;
  /** @default 25 seconds: under API Gateway's 30 s limit, above the ~15 s an auto-paused Aurora takes to resume */
  readonly timeout?: Duration;
  /** @default 512 MiB (CPU grows with memory; 512 keeps JSON canonicalisation and ECDSA checks fast) */
  readonly memorySize?: number;
  /** @default no reservation (a new account's 10-concurrency quota cannot spare any) */
  readonly reservedConcurrentExecutions?: number;
  /**
   * Where failed asynchronous invocations go. Only for functions invoked asynchronously (schedules,
   * events); API functions are invoked synchronously and answer their caller instead.
   * @default none
   */
  readonly deadLetterQueue?: sqs.IQueue;
  /** Asynchronous retries. @default Lambda's default (2) */
  readonly retryAttempts?: number;
  /** Extra steps around esbuild, e.g. copying the SQL migrations next to the bundle. */
  readonly commandHooks?: ICommandHooks;
  /**
   * A role to run with instead of one of its own: only the role of functions whose grants are exactly this
   * one's and whose logs go to the same group (the API's routes share one per set of grants), so each still
   * holds no more than it needs.
   * @default a role of its own
   */
  readonly role?: FunctionRole;
  /**
   * For the one function that connects to PostgreSQL itself (the secret rotation): the subnets and security
   * groups it runs in, and node-postgres bundled (every other bundle replaces it with a stub).
   * @default outside any VPC, no PostgreSQL driver
   */
  readonly directDatabaseAccess?: {
    readonly vpc: ec2.IVpc;
    readonly vpcSubnets: ec2.SubnetSelection;
    readonly securityGroups: readonly ec2.ISecurityGroup[];
  };
}

/**
 * The project's one Lambda function shape, so no function is configured by hand: Node.js 24 on ARM64,
 * an ESM bundle built by the local esbuild (no Docker), minified with source maps, X-Ray tracing active,
 * JSON logs into a CMK-encrypted log group with a bounded retention (its own, or its concern's), and a role
 * of its own (or shared with functions granted exactly the same) that starts with nothing but writing to that
 * log group. Access is added with the `grantXxx`
 * methods of the resources (`database.grantDataApiAccess(fn)`), never with hand-written policies; the
 * grants land in the role's inline policy ({@link FunctionRole}).
 *
 * @example
 * const fn = new AppFunction(this, 'CreateContract', {
 *   entry: 'functions/api/contracts/create.ts',
 *   description: 'POST /api/v1/contracts',
 *   adapters: adaptersOf(['database']),
 *   logs: observability.logSettings,
 *   environment: runtimeEnvironment,
 * });
 * database.grantDataApiAccess(fn);
 */
export class AppFunction extends Construct implements iam.IGrantable {
  readonly function: NodejsFunction;
  /** The adapters it is built with: what its grants must cover (the stack grants the doorbell by them). */
  readonly adapters: readonly Adapter[];
  /** The execution role: the function's only identity; no AWS managed policy is attached. */
  readonly role: FunctionRole;
  readonly logGroup: EncryptedLogGroup;

  constructor(scope: Construct, id: string, props: AppFunctionProps) {
    super(scope, id);
    this.adapters = props.adapters;
    this.logGroup = props.logGroup ?? new EncryptedLogGroup(this, 'LogGroup', { settings: props.logs });
    this.role =
      props.role ??
      new FunctionRole(this, 'Role', {
        assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
        description: `Execution role of ${props.description}`,
      });
    // Instead of AWSLambdaBasicExecutionRole (logs:* on every log group): this log group only. The log
    // group exists before the function, so logs:CreateLogGroup is not needed. (In a shared group, the
    // streams are not narrowed to the function's: their names hold the function's generated name, which
    // the role cannot reference without a cycle. The audit trail is in the database, not in these logs.)
    this.role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
        resources: [this.logGroup.logGroupArn],
      }),
    );

    this.function = new NodejsFunction(this, 'Function', {
      entry: projectPath(props.entry),
      handler: 'handler',
      description: props.description,
      runtime: NODE_RUNTIME,
      architecture: lambda.Architecture.ARM_64,
      memorySize: props.memorySize ?? 512,
      timeout: props.timeout ?? Duration.seconds(25),
      role: this.role,
      logGroup: this.logGroup,
      loggingFormat: lambda.LoggingFormat.JSON,
      applicationLogLevelV2: lambda.ApplicationLogLevel.INFO,
      systemLogLevelV2: lambda.SystemLogLevel.WARN,
      // Tracing is switched on below, with its permissions in a policy of their own.
      reservedConcurrentExecutions: props.reservedConcurrentExecutions,
      deadLetterQueue: props.deadLetterQueue,
      retryAttempts: props.retryAttempts,
      ...(props.directDatabaseAccess
        ? {
            vpc: props.directDatabaseAccess.vpc,
            vpcSubnets: props.directDatabaseAccess.vpcSubnets,
            securityGroups: [...props.directDatabaseAccess.securityGroups],
          }
        : {}),
      environment: {
        ...props.environment,
        POWERTOOLS_SERVICE_NAME: SERVICE_NAME,
        // No --enable-source-maps: it parses the map on every cold start. Stacks are mapped when rendered
        // (shared/runtime/source-mapped-stacks.ts), from the map shipped beside the bundle.
      },
      projectRoot: PROJECT_ROOT,
      depsLockFilePath: projectPath('package-lock.json'),
      bundling: {
        format: OutputFormat.ESM,
        target: LAMBDA_ESBUILD_OPTIONS.target,
        mainFields: [...LAMBDA_ESBUILD_OPTIONS.mainFields],
        banner: ESM_REQUIRE_BANNER,
        minify: LAMBDA_ESBUILD_OPTIONS.minify,
        sourceMap: true,
        // Stack traces map to file and line; the sources themselves need not ship (a third of the map's size).
        sourcesContent: false,
        forceDockerBundling: false,
        // Nothing external, not even the AWS SDK: the versions tested are the versions run, and a minified
        // bundle starts faster than the runtime's copy of the SDK loads.
        // (node-postgres names its optional native binding in a require that nothing here reaches.)
        externalModules: props.directDatabaseAccess ? ['pg-native'] : [],
        // Relative to the project root, where esbuild runs.
        esbuildArgs: {
          '--alias': [
            ...LOCAL_ONLY_MODULES.filter((name) => !(props.directDatabaseAccess && name === 'pg')).map(
              (name) => `${name}=${LOCAL_ONLY_STUB}`,
            ),
            ...Object.entries({ ...REQUIRED_BUILTINS, ...LAMBDA_SDK_REPLACEMENTS }).map(
              ([name, shim]) => `${name}=${shim}`,
            ),
          ],
        },
        define: {
          ...bundleDefines(props.adapters),
          ...Object.fromEntries(
            Object.entries(props.constants ?? {}).map(([k, v]) => [k, JSON.stringify(v)]),
          ),
        },
        commandHooks: props.commandHooks,
      },
    });

    // X-Ray active tracing. Set on the L1 rather than with `tracing: ACTIVE`, which would put the X-Ray
    // statement (resource `*`: X-Ray has no resource-level permissions) into the role's default policy, where
    // acknowledging the wildcard would also hide any later one. The wildcard lives alone in one customer
    // managed policy that every function's role attaches (one resource per stack, not one per function).
    (this.function.node.defaultChild as lambda.CfnFunction).tracingConfig = { mode: lambda.Tracing.ACTIVE };
    this.role.addManagedPolicy(xrayWritePolicy(Stack.of(this)));
  }

  /**
   * Acknowledges, on `scope` (the invoker's role or policy), cdk-nag's IAM5 finding that `grantInvoke` gives:
   * it names this function and `<arn>:*`, its versions and aliases. The wildcard reaches no other function.
   */
  acknowledgeInvokeGrant(scope: IConstruct, invoker: string): void {
    const cfn = this.function.node.defaultChild as lambda.CfnFunction;
    const logicalId = Stack.of(this).resolve(cfn.logicalId) as string;
    Validations.of(scope).acknowledge({
      id: `AwsSolutions-IAM5[Resource::<${logicalId}.Arn>:*]`,
      reason: `${invoker} may invoke ${this.node.path} and its versions/aliases (the :* that lambda grantInvoke adds) and no other function.`,
    });
  }

  get grantPrincipal(): iam.IPrincipal {
    return this.role;
  }
}

/**
 * A function's execution role whose grants are one inline policy of the role itself, instead of CDK's
 * separate `AWS::IAM::Policy` resource: one CloudFormation resource less per function, the same IAM
 * (a `Policy` resource is an inline policy too, with the same 10,240-character budget per role). The
 * function still waits for its grants, since it depends on the role that holds them.
 */
export class FunctionRole extends iam.Role {
  /** Every statement granted to the role (rendered as its inline policy `Grants`). */
  readonly grantsPolicy: iam.PolicyDocument;

  constructor(scope: Construct, id: string, props: iam.RoleProps) {
    const grants = new iam.PolicyDocument();
    super(scope, id, { ...props, inlinePolicies: { ...props.inlinePolicies, Grants: grants } });
    this.grantsPolicy = grants;
  }

  override addToPrincipalPolicy(statement: iam.PolicyStatement): iam.AddToPrincipalPolicyResult {
    this.grantsPolicy.addStatements(statement);
    return { statementAdded: true, policyDependable: this };
  }
}

/** The stack's one X-Ray write policy (see {@link AppFunction}), created on first use. */
function xrayWritePolicy(stack: Stack): iam.IManagedPolicy {
  const id = 'XRayWrite';
  const existing = stack.node.tryFindChild(id);
  if (existing instanceof iam.ManagedPolicy) return existing;
  if (existing) throw new Error(`${stack.node.path}/${id} exists and is not the X-Ray write policy`);
  const policy = new iam.ManagedPolicy(stack, id, {
    description: 'X-Ray trace writes of the stack functions (X-Ray has no resource-level permissions).',
    statements: [
      new iam.PolicyStatement({
        actions: ['xray:PutTraceSegments', 'xray:PutTelemetryRecords'],
        resources: ['*'],
      }),
    ],
  });
  Validations.of(policy).acknowledge({
    id: 'AwsSolutions-IAM5[Resource::*]',
    reason:
      'xray:PutTraceSegments and xray:PutTelemetryRecords support no resource-level permissions (Resource must be *); this policy holds nothing else.',
  });
  return policy;
}
