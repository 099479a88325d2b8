/**
 * The synthesized stack, checked for what matters to security and operations (not resource counts):
 * encryption with customer-managed keys, the Data API, least-privilege grants per route read from the route
 * table, the JWT authorizer on every non-public route, the Lambda runtime and architecture, log encryption and
 * retention, the scheduled jobs (their grants, schedules and the logical ids they must keep), cdk-nag's
 * AwsSolutions pack, and the function bundles themselves (no local-only driver reaches Lambda; the migration
 * function carries the SQL files and migrates a database through the Data API).
 *
 * The stack is synthesized once for the file, with real esbuild bundling of every function (47 bundles). That
 * takes 2.5 minutes on a shared 2-core machine and took 391 s once on a busy one, so its hook has a timeout of
 * its own (SYNTH_TIMEOUT_MS). The provisioning workflow's own assertions are in enclave-workflow.test.ts.
 */
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import { builtinModules } from 'node:module';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { PGlite } from '@electric-sql/pglite';
import { App, CfnElement, CfnResource as CfnResourceConstruct } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import type { IConstruct } from 'constructs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { API_FUNCTION_TAG } from '../../infra/constructs/api.ts';
import type { AppFunction } from '../../infra/constructs/app-function.ts';
import { MIGRATIONS_SOURCE, migrationsHash } from '../../infra/constructs/database.ts';
import type { ScheduledJob } from '../../infra/constructs/scheduled-job.ts';
import { ContractsStack } from '../../infra/contracts-stack.ts';
import {
  type DataApiEmulator,
  pgliteBackend,
  startDataApiEmulator,
} from '../../infra/local/services/rds-data/data-api-emulator.ts';
import { projectPath } from '../../infra/project-paths.ts';
import { OUTBOX_PUBLISHER_SCHEDULE } from '../../shared/events/outbox-publisher.ts';
import { openApiDocument } from '../../shared/http/openapi.ts';
import { type Grant, ROUTES } from '../../shared/http/routes.ts';
import {
  CONTRACT_ID_TAG_KEY,
  CONTRACT_KEY_DETAIL_TYPES,
  CONTRACT_KEY_TAG_KEY,
} from '../../shared/keys/contract-keys.ts';
import { PLATFORM_KEY_TAG_KEY } from '../../shared/signing/signer.ts';
import { type CfnResource, StackTemplate, type Statement, target } from '../support/stack-template.ts';

/** The actions each grant of the route table may add to a route function's role, and no others. */
const GRANT_ACTIONS: Readonly<Record<Grant, readonly string[]>> = {
  database: [
    'rds-data:BatchExecuteStatement',
    'rds-data:BeginTransaction',
    'rds-data:CommitTransaction',
    'rds-data:ExecuteStatement',
    'rds-data:RollbackTransaction',
    'secretsmanager:DescribeSecret',
    'secretsmanager:GetSecretValue',
    'kms:Decrypt',
    // Writers ring the doorbell (its one item, its key through DynamoDB): see doorbell.test.ts.
    'dynamodb:UpdateItem',
    'kms:Encrypt',
    'kms:GenerateDataKey',
  ],
  sign: ['kms:Sign', 'kms:GetPublicKey'],
  rotatePlatformKey: ['kms:CreateKey', 'kms:TagResource', 'kms:GetPublicKey', 'kms:UpdateAlias'],
  wrapDataKeys: ['kms:GenerateDataKeyWithoutPlaintext'],
  taskCallback: [
    'dynamodb:UpdateItem',
    'kms:Decrypt',
    'kms:Encrypt',
    'kms:GenerateDataKey',
    'kms:DescribeKey',
    'states:SendTaskSuccess',
  ],
  taskHeartbeat: ['dynamodb:GetItem', 'kms:Decrypt', 'kms:DescribeKey', 'states:SendTaskHeartbeat'],
  sealSecrets: ['kms:GenerateDataKey'],
  openSecrets: ['kms:Decrypt'],
};
/** What every function may do whatever its grants: write its own log group and its traces. */
const BASE_ACTIONS = [
  'logs:CreateLogStream',
  'logs:PutLogEvents',
  'xray:PutTraceSegments',
  'xray:PutTelemetryRecords',
];

const PUBLIC_ROUTES = ['getHealth', 'getOpenApi', 'listPlatformKeys'];

const context = JSON.parse(readFileSync(projectPath('cdk.json'), 'utf8')).context as Record<string, unknown>;

let app: App;
let stack: ContractsStack;
let template: Template;
let resources: Record<string, CfnResource>;
let cfn: StackTemplate;
const logicalId = (construct: IConstruct) => cfn.logicalId(construct);
const ofType = (type: string) => cfn.ofType(type);
type Environment = { Variables: Record<string, unknown> };
const roleStatements = (roleId: string) => cfn.roleStatements(roleId);

let assemblyDir: string;

/**
 * The synth runs synchronously, so no timeout can cut it short: vitest compares the time it took with this
 * one afterwards and, when it was longer, fails the hook and skips every test of the file. It is sized for a
 * loaded 2-core machine (391 s seen), not for an idle one.
 */
const SYNTH_TIMEOUT_MS = 600_000;

beforeAll(() => {
  app = new App({ context });
  stack = new ContractsStack(app, 'EnclaveContracts', {
    env: { account: '000000000000', region: 'eu-central-1' },
    // So that its function is bundled and held to every rule below with the others.
    firstAdminEmail: 'admin@example.com',
  });
  assemblyDir = app.synth().directory;
  template = Template.fromStack(stack);
  resources = template.toJSON().Resources as Record<string, CfnResource>;
  cfn = new StackTemplate(stack, resources);
}, SYNTH_TIMEOUT_MS);

// The assembly (the bundles with source maps) is written to a fresh temporary directory per run.
afterAll(() => {
  if (assemblyDir) rmSync(assemblyDir, { recursive: true, force: true });
});

function allows(statements: Statement[], action: string, resourceId: string): boolean {
  return statements.some(
    (s) => s.effect === 'Allow' && s.actions.includes(action) && s.resource.includes(`"${resourceId}"`),
  );
}

/**
 * Whether `statements` allow `action` on this deployment's platform keys: any key of the account and region
 * (`key/*`, the keys a rotation creates have no ARN the template knows), narrowed to those tagged with the
 * stack's name.
 */
function onPlatformKeys(statements: Statement[], action: string): boolean {
  return statements.some(
    (s) =>
      s.effect === 'Allow' &&
      s.actions.includes(action) &&
      s.resource.includes(':key/*') &&
      JSON.stringify(s.condition) ===
        JSON.stringify({
          StringEquals: { [`aws:ResourceTag/${PLATFORM_KEY_TAG_KEY}`]: stack.signingKey.tagValue },
        }),
  );
}

function onContractKeys(statements: Statement[], action: string): boolean {
  return statements.some(
    (s) =>
      s.effect === 'Allow' &&
      s.actions.includes(action) &&
      s.resource.includes(':key/*') &&
      JSON.stringify(s.condition) ===
        JSON.stringify({
          StringEquals: { [`aws:ResourceTag/${CONTRACT_KEY_TAG_KEY}`]: stack.contractKeys.tagValue },
        }),
  );
}

function routeFunction(routeId: string): AppFunction {
  const fn = stack.api.functions.get(routeId);
  if (!fn) throw new Error(`no function for route ${routeId}`);
  return fn;
}

/** The grants a role actually holds, read back from its policies (and the secret key's policy). */
function grantsHeld(fn: AppFunction): Grant[] {
  const statements = roleStatements(logicalId(fn.role));
  const cluster = logicalId(stack.database.cluster);
  const secret = logicalId(stack.database.secret);
  const held: Grant[] = [];
  if (
    allows(statements, 'rds-data:ExecuteStatement', cluster) &&
    allows(statements, 'secretsmanager:GetSecretValue', secret)
  ) {
    held.push('database');
  }
  if (onPlatformKeys(statements, 'kms:Sign') && onPlatformKeys(statements, 'kms:GetPublicKey'))
    held.push('sign');
  if (
    statements.some((s) => s.actions.includes('kms:CreateKey')) &&
    onPlatformKeys(statements, 'kms:UpdateAlias')
  ) {
    held.push('rotatePlatformKey');
  }
  if (onContractKeys(statements, 'kms:GenerateDataKeyWithoutPlaintext')) held.push('wrapDataKeys');
  const credentialKey = logicalId(stack.credentialKey.key);
  if (allows(statements, 'kms:GenerateDataKey', credentialKey)) held.push('sealSecrets');
  if (allows(statements, 'kms:Decrypt', credentialKey)) held.push('openSecrets');
  if (
    allows(statements, 'states:SendTaskSuccess', logicalId(stack.enclaveWorkflow.stateMachine)) &&
    allows(statements, 'dynamodb:UpdateItem', logicalId(stack.enclaveWorkflow.table))
  ) {
    held.push('taskCallback');
  }
  if (
    allows(statements, 'states:SendTaskHeartbeat', logicalId(stack.enclaveWorkflow.stateMachine)) &&
    allows(statements, 'dynamodb:GetItem', logicalId(stack.enclaveWorkflow.table))
  ) {
    held.push('taskHeartbeat');
  }
  return held;
}

/** The functions the stack builds with AppFunction: one per route, per scheduled job, per workflow step, and enforcement. */
function appFunctions(): AppFunction[] {
  return [
    ...stack.api.functions.values(),
    ...scheduledJobs().map((job) => job.function),
    ...Object.values(stack.enclaveWorkflow.steps),
    stack.enclaveWorkflow.enforcement,
  ];
}

function scheduledJobs(): ScheduledJob[] {
  return [
    stack.events.outboxPublisher,
    stack.events.contractExpirer,
    stack.auditCheckpoints.job,
    stack.credentialRotation.job,
  ];
}

/** The schedule that invokes the function, from the template. */
function scheduleOf(fn: AppFunction): CfnResource {
  const schedules = ofType('AWS::Scheduler::Schedule').filter(
    ([, s]) => target((s.Properties.Target as { Arn: unknown }).Arn) === logicalId(fn.function),
  );
  expect(schedules, fn.node.path).toHaveLength(1);
  return schedules[0]![1];
}

function jwtAuthorizerId(): string {
  const [[id]] = ofType('AWS::ApiGatewayV2::Authorizer') as [[string, CfnResource]];
  return id;
}

function assetDirOf(fn: AppFunction): string {
  const code = resources[logicalId(fn.function)]!.Properties.Code as { S3Key: string };
  return join(assemblyDir, `asset.${code.S3Key.replace(/\.zip$/, '')}`);
}

describe('database', () => {
  it('is Aurora PostgreSQL with the Data API on and its storage encrypted with a rotating CMK', () => {
    const [[, cluster]] = ofType('AWS::RDS::DBCluster') as [[string, CfnResource]];
    expect(cluster.Properties).toMatchObject({
      Engine: 'aurora-postgresql',
      EnableHttpEndpoint: true,
      StorageEncrypted: true,
      DeletionProtection: true,
      EnableIAMDatabaseAuthentication: true,
      EnableCloudwatchLogsExports: ['postgresql'],
    });
    expect(cluster.Properties.BackupRetentionPeriod).toBeGreaterThanOrEqual(7);
    const keyId = target(cluster.Properties.KmsKeyId)!;
    expect(resources[keyId]).toMatchObject({
      Type: 'AWS::KMS::Key',
      Properties: { EnableKeyRotation: true },
    });
  });

  it('keeps the master and the application credentials in CMK-encrypted secrets, each rotated by our Node.js function', () => {
    const secrets = ofType('AWS::SecretsManager::Secret');
    expect(secrets).toHaveLength(2);
    for (const [, secret] of secrets) {
      expect(resources[target(secret.Properties.KmsKeyId)!]?.Type).toBe('AWS::KMS::Key');
    }
    const rotation = logicalId(stack.database.rotationFunction.function);
    const schedules = ofType('AWS::SecretsManager::RotationSchedule');
    expect(
      schedules
        .map(([, s]) => s.Properties.SecretId)
        .sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b))),
    ).toEqual(
      [stack.database.secret, stack.database.masterSecret]
        .map((secret) => ({ Ref: logicalId(secret) }))
        .sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b))),
    );
    for (const [, schedule] of schedules) {
      // No hosted Python template: the function of every other function's runtime.
      expect(schedule.Properties.HostedRotationLambda).toBeUndefined();
      expect(schedule.Properties.RotationLambdaARN).toEqual({ 'Fn::GetAtt': [rotation, 'Arn'] });
      // Its creation rotates at once: only after the migrations ran on the master's password and created
      // the application's user.
      expect((schedule as CfnResource & { DependsOn?: string[] }).DependsOn).toEqual(
        expect.arrayContaining([logicalId(stack.database.migrations)]),
      );
    }
    expect(resources[rotation]?.Properties.Runtime).toMatch(/^nodejs\d+\.x$/);
    expect(resources[rotation]?.Properties.VpcConfig).toBeDefined();
    expect((resources[rotation]!.Properties.Environment as Environment).Variables.NODE_EXTRA_CA_CERTS).toBe(
      '/var/runtime/ca-cert.pem',
    );
    // The application's secret names its master, which makes the rotation alternate two users.
    const application = secrets.filter(([, secret]) =>
      JSON.stringify(secret.Properties.GenerateSecretString).includes('contracts_app'),
    );
    expect(application).toHaveLength(1);
    expect(JSON.stringify(application[0]![1].Properties.GenerateSecretString)).toContain('masterarn');
  });

  it('rotates with nothing but the two secrets, their key through Secrets Manager, and a password generator', () => {
    const statements = roleStatements(logicalId(stack.database.rotationFunction.role));
    const secretActions = statements.filter((s) =>
      s.actions.some((a) => a.startsWith('secretsmanager:') && a !== 'secretsmanager:GetRandomPassword'),
    );
    expect(
      secretActions
        .flatMap((s) => [JSON.parse(s.resource)].flat())
        .sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b))),
    ).toEqual(
      [stack.database.secret, stack.database.masterSecret]
        .map((secret) => ({ Ref: logicalId(secret) }))
        .sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b))),
    );
    const kms = statements.filter((s) => s.actions.some((a) => a.startsWith('kms:')));
    expect(kms).toHaveLength(1);
    expect(JSON.stringify(kms[0]!.condition)).toContain('"kms:ViaService":"secretsmanager.');
    const actions = new Set(statements.flatMap((s) => s.actions));
    expect([...actions].filter((a) => !/^(logs|xray|secretsmanager|kms|ec2):/.test(a))).toEqual([]);
    expect([...actions].filter((a) => a.startsWith('rds-data:'))).toEqual([]);
  });

  it('is migrated by a custom resource that re-runs when the migrations change, as the master user', () => {
    template.hasResourceProperties('Custom::SchemaMigrations', {
      ResourceArn: Match.anyValue(),
      SecretArn: { Ref: logicalId(stack.database.masterSecret) },
      ApplicationSecretArn: { Ref: logicalId(stack.database.secret) },
      Database: 'contracts',
      MigrationsHash: migrationsHash(),
    });
  });

  it('gives the functions the application secret, never the master', () => {
    const master = JSON.stringify({ Ref: logicalId(stack.database.masterSecret) });
    const functions = ofType('AWS::Lambda::Function');
    const withDatabase = functions.filter(
      ([, f]) => (f.Properties.Environment as Environment | undefined)?.Variables.DATA_API_SECRET_ARN,
    );
    expect(withDatabase.length).toBeGreaterThan(30);
    for (const [, f] of withDatabase) {
      expect((f.Properties.Environment as Environment).Variables.DATA_API_SECRET_ARN).toEqual({
        Ref: logicalId(stack.database.secret),
      });
    }
    const readers = ofType('AWS::IAM::Role').filter(([, role]) => JSON.stringify(role).includes(master));
    // The deployment steps (migrations, first admin) and the rotation: no function that serves a request.
    const allowed = [
      stack.database.migrationFunction.role,
      stack.database.rotationFunction.role,
      ...(stack.firstAdmin ? [stack.firstAdmin.function.role] : []),
    ].map((r) => logicalId(r));
    expect(readers.map(([id]) => id).filter((id) => !allowed.includes(id))).toEqual([]);
  });
});

describe('API routes', () => {
  it('serves exactly the route table', () => {
    const keys = ofType('AWS::ApiGatewayV2::Route').map(([, r]) => r.Properties.RouteKey);
    expect(keys.sort()).toEqual(ROUTES.map((r) => `${r.method} ${r.path}`).sort());
  });

  it.each(ROUTES.map((r) => [r.id, r] as const))(
    '%s is wired to its own function, behind the JWT authorizer, the IAM authorizer (iam) or none (public)',
    (_id, route) => {
      const [, resource] = ofType('AWS::ApiGatewayV2::Route').find(
        ([, r]) => r.Properties.RouteKey === `${route.method} ${route.path}`,
      )!;
      const integrationId = JSON.stringify(resource.Properties.Target).match(/"Ref":"(\w+)"/)![1]!;
      expect(resources[integrationId]!.Properties).toMatchObject({
        IntegrationType: 'AWS_PROXY',
        PayloadFormatVersion: '2.0',
        CredentialsArn: { 'Fn::GetAtt': [logicalId(stack.api.invokeRole), 'Arn'] },
      });
      expect(target(resources[integrationId]!.Properties.IntegrationUri)).toBe(
        logicalId(routeFunction(route.id).function),
      );
      // The invoke role reaches the function by its tag: the API's id.
      expect(resources[logicalId(routeFunction(route.id).function)]!.Properties.Tags).toContainEqual({
        Key: API_FUNCTION_TAG,
        Value: { Ref: logicalId(stack.api.httpApi) },
      });
      if (route.auth === 'jwt') {
        expect(resource.Properties).toMatchObject({
          AuthorizationType: 'JWT',
          AuthorizerId: { Ref: jwtAuthorizerId() },
        });
      } else if (route.auth === 'iam') {
        expect(resource.Properties.AuthorizationType).toBe('AWS_IAM');
        expect(resource.Properties.AuthorizerId).toBeUndefined();
      } else {
        expect(PUBLIC_ROUTES).toContain(route.id);
        expect(resource.Properties.AuthorizationType).toBe('NONE');
      }
    },
  );

  it('authorizes with Cognito JWTs of the API client', () => {
    template.hasResourceProperties('AWS::ApiGatewayV2::Authorizer', {
      AuthorizerType: 'JWT',
      JwtConfiguration: {
        Audience: [{ Ref: logicalId(stack.api.userPoolClient) }],
        Issuer: Match.objectLike({ 'Fn::Join': Match.anyValue() }),
      },
    });
    template.hasResourceProperties('AWS::Cognito::UserPool', {
      MfaConfiguration: 'ON',
      UserPoolTier: 'PLUS',
      UserPoolAddOns: { AdvancedSecurityMode: 'ENFORCED' },
      AdminCreateUserConfig: { AllowAdminCreateUserOnly: true },
    });
  });

  it('throttles the auto-deployed stage and writes access logs to a CMK-encrypted log group', () => {
    const [[, stage]] = ofType('AWS::ApiGatewayV2::Stage') as [[string, CfnResource]];
    expect(stage.Properties).toMatchObject({
      StageName: '$default',
      AutoDeploy: true,
      DefaultRouteSettings: {
        ThrottlingRateLimit: expect.any(Number),
        ThrottlingBurstLimit: expect.any(Number),
      },
    });
    const destination = target(
      (stage.Properties.AccessLogSettings as { DestinationArn: unknown }).DestinationArn,
    )!;
    expect(resources[destination]?.Properties).toMatchObject({
      KmsKeyId: expect.anything(),
      RetentionInDays: 365,
    });
  });
});

describe('least privilege per route', () => {
  it.each(ROUTES.map((r) => [r.id, r] as const))('%s holds exactly the grants of its route', (_id, route) => {
    const fn = routeFunction(route.id);
    expect(grantsHeld(fn).sort()).toEqual([...route.grants].sort());
    const permitted = new Set([...BASE_ACTIONS, ...route.grants.flatMap((g) => GRANT_ACTIONS[g])]);
    const actions = roleStatements(logicalId(fn.role)).flatMap((s) => s.actions);
    expect(actions.filter((a) => !permitted.has(a))).toEqual([]);
  });

  it('routes share a role only with the routes granted exactly the same, and no other function runs with one', () => {
    const grantsOfRole = new Map<string, Set<string>>();
    for (const route of ROUTES) {
      const roleId = logicalId(routeFunction(route.id).role);
      const sets = grantsOfRole.get(roleId) ?? new Set<string>();
      sets.add([...route.grants].sort().join('+'));
      grantsOfRole.set(roleId, sets);
    }
    for (const [roleId, sets] of grantsOfRole) expect([...sets], roleId).toHaveLength(1);
    const routeFunctions = new Set(stack.api.functions.values());
    for (const fn of appFunctions().filter((f) => !routeFunctions.has(f))) {
      expect(grantsOfRole.has(logicalId(fn.role)), fn.node.path).toBe(false);
    }
  });

  it('createContract can run statements and read the database secret, but cannot sign', () => {
    const statements = roleStatements(logicalId(routeFunction('createContract').role));
    expect(allows(statements, 'rds-data:ExecuteStatement', logicalId(stack.database.cluster))).toBe(true);
    expect(allows(statements, 'secretsmanager:GetSecretValue', logicalId(stack.database.secret))).toBe(true);
    expect(statements.some((s) => s.actions.includes('kms:Sign'))).toBe(false);
  });

  it('activateContract can sign with the platform keys (by tag) and read their public keys', () => {
    const statements = roleStatements(logicalId(routeFunction('activateContract').role));
    expect(onPlatformKeys(statements, 'kms:Sign')).toBe(true);
    expect(onPlatformKeys(statements, 'kms:GetPublicKey')).toBe(true);
    expect(statements.some((s) => s.actions.includes('kms:Sign') && !onPlatformKeys([s], 'kms:Sign'))).toBe(
      false,
    );
  });

  it('only the rotation creates platform keys: tagged as this deployment, P-256 signing keys, the alias moved', () => {
    const holders = [...stack.api.functions]
      .filter(([, fn]) => roleStatements(logicalId(fn.role)).some((s) => s.actions.includes('kms:CreateKey')))
      .map(([id]) => id);
    expect(holders).toEqual(['rotatePlatformKey']);
    const statements = roleStatements(logicalId(routeFunction('rotatePlatformKey').role));
    const create = statements.find((s) => s.actions.includes('kms:CreateKey'))!;
    expect(create.resource).toBe('"*"');
    expect(create.condition).toEqual({
      StringEquals: {
        [`aws:RequestTag/${PLATFORM_KEY_TAG_KEY}`]: stack.signingKey.tagValue,
        'kms:KeySpec': 'ECC_NIST_P256',
        'kms:KeyUsage': 'SIGN_VERIFY',
      },
      'ForAllValues:StringEquals': { 'aws:TagKeys': [PLATFORM_KEY_TAG_KEY] },
    });
    const tag = statements.find((s) => s.actions.includes('kms:TagResource'))!;
    expect(tag.condition).toEqual({
      StringEquals: { [`aws:RequestTag/${PLATFORM_KEY_TAG_KEY}`]: stack.signingKey.tagValue },
      'ForAllValues:StringEquals': { 'aws:TagKeys': [PLATFORM_KEY_TAG_KEY] },
    });
    expect(onPlatformKeys(statements, 'kms:UpdateAlias')).toBe(true);
    expect(onPlatformKeys(statements, 'kms:GetPublicKey')).toBe(true);
    // UpdateAlias on the alias itself, and on no other alias.
    const onAlias = statements.filter(
      (s) => s.actions.includes('kms:UpdateAlias') && s.resource.includes(':alias/'),
    );
    expect(onAlias.map((s) => s.resource)).toEqual([
      expect.stringContaining(`:${stack.signingKey.aliasName}`),
    ]);
    // Never a signature, a key policy, a deletion or a schedule.
    for (const action of [
      'kms:Sign',
      'kms:PutKeyPolicy',
      'kms:ScheduleKeyDeletion',
      'kms:DisableKey',
      'kms:*',
    ]) {
      expect(
        statements.some((s) => s.actions.includes(action)),
        action,
      ).toBe(false);
    }
  });

  it('the platform signing key carries the deployment tag its grants name, and the functions sign through its alias', () => {
    expect(resources[logicalId(stack.signingKey.key)]?.Properties.Tags).toEqual([
      { Key: PLATFORM_KEY_TAG_KEY, Value: stack.signingKey.tagValue },
    ]);
    const fn = resources[logicalId(routeFunction('activateContract').function)]!;
    expect((fn.Properties.Environment as Environment).Variables).toMatchObject({
      SIGNING_KEY_ID: stack.signingKey.aliasName,
      PLATFORM_KEY_TAG: 'EnclaveContracts',
    });
  });

  it('the credential key seals for the enrolment and opens for confirmation and signing, TOTP seeds only', () => {
    const key = logicalId(stack.credentialKey.key);
    const holders = (action: string) =>
      [...stack.api.functions]
        .filter(([, fn]) =>
          roleStatements(logicalId(fn.role)).some(
            (s) => s.actions.includes(action) && s.resource.includes(`"${key}"`),
          ),
        )
        .map(([id]) => id)
        .sort();
    expect(holders('kms:GenerateDataKey')).toEqual(['enrolTotp']);
    expect(holders('kms:Decrypt')).toEqual(['approveMeasurementSet', 'confirmTotp', 'signContract']);
    for (const fn of stack.api.functions.values()) {
      for (const s of roleStatements(logicalId(fn.role)).filter((s) => s.resource.includes(`"${key}"`))) {
        expect(s.condition).toEqual({ StringEquals: { 'kms:EncryptionContext:purpose': 'totp-seed' } });
      }
    }
    // Nothing but the routes reaches it; KMS rotates it yearly; it outlives the stack (sealed seeds need it).
    for (const fn of appFunctions().filter((f) => ![...stack.api.functions.values()].includes(f))) {
      expect(JSON.stringify(roleStatements(logicalId(fn.role))), fn.node.path).not.toContain(`"${key}"`);
    }
    expect(resources[key]?.Properties.EnableKeyRotation).toBe(true);
    expect(resources[key]?.DeletionPolicy).toBe('Retain');
    const { CREDENTIAL_KEY_ID } = (
      resources[logicalId(routeFunction('signContract').function)]!.Properties.Environment as Environment
    ).Variables;
    expect(CREDENTIAL_KEY_ID).toEqual({ 'Fn::GetAtt': [key, 'Arn'] });
    const other = (
      resources[logicalId(routeFunction('getContract').function)]!.Properties.Environment as Environment
    ).Variables;
    expect(other.CREDENTIAL_KEY_ID).toBeUndefined();
  });

  it('getOpenApi has no data access at all', () => {
    const actions = roleStatements(logicalId(routeFunction('getOpenApi').role)).flatMap((s) => s.actions);
    expect(actions.sort()).toEqual([...BASE_ACTIONS].sort());
  });

  it('the secret key decrypts, through Secrets Manager only, for exactly the database routes', () => {
    const secretKey = logicalId(stack.database.secretEncryptionKey);
    const decryptsFor = (roleId: string) =>
      roleStatements(roleId).some(
        (s) =>
          s.actions.includes('kms:Decrypt') &&
          s.resource.includes(`"${secretKey}"`) &&
          JSON.stringify(s.condition) ===
            '{"StringEquals":{"kms:ViaService":"secretsmanager.eu-central-1.amazonaws.com"}}',
      );
    for (const route of ROUTES) {
      expect(decryptsFor(logicalId(routeFunction(route.id).role)), route.id).toBe(
        (route.grants as readonly Grant[]).includes('database'),
      );
    }
    // The key's policy names no function role: it delegates to IAM (the account), so a role's own
    // policy is the whole grant (and the role can hold its grants inline without a cycle).
    const policy = JSON.stringify(resources[secretKey]!.Properties.KeyPolicy);
    for (const fn of appFunctions()) expect(policy).not.toContain(`"${logicalId(fn.role)}"`);
  });
});

describe('functions', () => {
  it('all run Node.js 24 on ARM64', () => {
    const functions = ofType('AWS::Lambda::Function');
    expect(functions.length).toBeGreaterThan(ROUTES.length);
    for (const [id, fn] of functions) {
      expect({ id, runtime: fn.Properties.Runtime, arch: fn.Properties.Architectures }).toEqual({
        id,
        runtime: 'nodejs24.x',
        arch: ['arm64'],
      });
    }
  });

  it('no function role is allowed a wildcard action, and only X-Ray, ec2:DescribeInstances and the conditioned kms:CreateKey get resource *', () => {
    const lambdaRoles = ofType('AWS::IAM::Role').filter(([, r]) =>
      JSON.stringify(r.Properties.AssumeRolePolicyDocument).includes('lambda.amazonaws.com'),
    );
    // Every function's role is among them (the route functions share one per set of grants).
    const checked = new Set(lambdaRoles.map(([id]) => id));
    for (const fn of appFunctions()) expect(checked.has(logicalId(fn.role)), fn.node.path).toBe(true);
    for (const [roleId] of lambdaRoles) {
      for (const statement of roleStatements(roleId)) {
        expect(
          statement.actions.filter((a) => a.includes('*')),
          roleId,
        ).toEqual([]);
      }
    }
    for (const fn of appFunctions()) {
      const roleId = logicalId(fn.role);
      // No AWS managed policy: the one attached is the stack's own X-Ray write policy.
      const managed = (resources[roleId]?.Properties.ManagedPolicyArns as unknown[] | undefined) ?? [];
      expect(
        managed.map((arn) => resources[target(arn) ?? '']?.Type),
        roleId,
      ).toEqual(['AWS::IAM::ManagedPolicy']);
      for (const statement of roleStatements(roleId).filter((s) => s.resource === '"*"')) {
        // Neither supports resource-level permissions.
        // CreateKey names no resource: its conditions (the tag, the key spec and usage) are held by the
        // rotation test above.
        const createsKeys = statement.actions.join() === 'kms:CreateKey' && statement.condition !== undefined;
        expect(
          createsKeys ||
            statement.actions.every((a) => a.startsWith('xray:') || a === 'ec2:DescribeInstances'),
          roleId,
        ).toBe(true);
      }
    }
  });

  it('all trace with X-Ray', () => {
    for (const fn of appFunctions()) {
      expect(resources[logicalId(fn.function)]?.Properties.TracingConfig).toEqual({ Mode: 'Active' });
    }
  });

  it('every log group is encrypted with a CMK and expires', () => {
    const logGroups = ofType('AWS::Logs::LogGroup');
    // Every function logs to a group of the stack: the routes to the API's one, the others to their own.
    for (const fn of appFunctions()) {
      const group = (resources[logicalId(fn.function)]!.Properties.LoggingConfig as { LogGroup: unknown })
        .LogGroup;
      const routeFunction = [...stack.api.functions.values()].includes(fn);
      expect(target(group), fn.node.path).toBe(
        logicalId(routeFunction ? stack.api.functionLogs : fn.logGroup),
      );
      expect(fn.logGroup === stack.api.functionLogs).toBe(routeFunction);
    }
    for (const [id, group] of logGroups) {
      expect(resources[target(group.Properties.KmsKeyId)!]?.Type, id).toBe('AWS::KMS::Key');
      expect(group.Properties.RetentionInDays, id).toBe(365);
    }
  });
});

describe('keys and events', () => {
  it('the platform signing key is an ECC_NIST_P256 SIGN_VERIFY key', () => {
    expect(resources[logicalId(stack.signingKey.key)]?.Properties).toMatchObject({
      KeySpec: 'ECC_NIST_P256',
      KeyUsage: 'SIGN_VERIFY',
    });
  });

  it('the event bus and its archive are encrypted with customer-managed keys', () => {
    const [[, bus]] = ofType('AWS::Events::EventBus') as [[string, CfnResource]];
    const [[, archive]] = ofType('AWS::Events::Archive') as [[string, CfnResource]];
    expect(resources[target(bus.Properties.KmsKeyIdentifier)!]?.Type).toBe('AWS::KMS::Key');
    expect(resources[target(archive.Properties.KmsKeyIdentifier)!]?.Type).toBe('AWS::KMS::Key');
  });

  it("the bus's dead-letter queue accepts messages from this bus only", () => {
    template.hasResourceProperties('AWS::SQS::QueuePolicy', {
      Queues: [{ Ref: logicalId(stack.events.deadLetterQueue) }],
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Effect: 'Allow',
            Principal: { Service: 'events.amazonaws.com' },
            Action: 'sqs:SendMessage',
            Condition: {
              ArnEquals: { 'aws:SourceArn': { 'Fn::GetAtt': [logicalId(stack.events.bus), 'Arn'] } },
            },
          }),
        ]),
      },
    });
  });

  it('only the outbox publisher may put events', () => {
    const bus = logicalId(stack.events.bus);
    const putters = ofType('AWS::IAM::Role')
      .map(([id]) => id)
      .filter((id) => allows(roleStatements(id), 'events:PutEvents', bus));
    expect(putters).toEqual([logicalId(stack.events.outboxPublisher.function.role)]);
  });

  it("overlaps the outbox publisher's runs: the next starts while the previous still looks every second", () => {
    const job = stack.events.outboxPublisher;
    const { everyMs, pollMs, reserveMs } = OUTBOX_PUBLISHER_SCHEDULE;
    expect(scheduleOf(job.function).Properties.ScheduleExpression).toBe(`rate(${everyMs / 60_000} minute)`);
    const timeoutMs = (resources[logicalId(job.function.function)]!.Properties.Timeout as number) * 1000;
    expect(timeoutMs).toBe(OUTBOX_PUBLISHER_SCHEDULE.timeoutMs);
    // A run stops looking when less than pollMs + reserveMs is left: still after the next run starts.
    expect(timeoutMs - pollMs - reserveMs).toBeGreaterThan(everyMs);
  });

  it('runs the outbox publisher and the contract expirer on EventBridge Scheduler', () => {
    for (const job of [stack.events.outboxPublisher, stack.events.contractExpirer]) {
      template.hasResourceProperties('AWS::Scheduler::Schedule', {
        Target: Match.objectLike({
          Arn: { 'Fn::GetAtt': [logicalId(job.function.function), 'Arn'] },
          DeadLetterConfig: { Arn: { 'Fn::GetAtt': [logicalId(job.deadLetterQueue), 'Arn'] } },
        }),
      });
    }
  });
});

describe('scheduled jobs', () => {
  it.each([
    ['PublishOutbox', () => stack.events.outboxPublisher],
    ['ExpireContracts', () => stack.events.contractExpirer],
  ] as const)(
    '%s keeps the logical ids it had before ScheduledJob was extracted from EventBus',
    (id, job) => {
      // Construct ids name the logical ids; a change here replaces the deployed resources (and drops the
      // messages waiting in the dead-letter queue).
      const legacy = {
        PublishOutbox: {
          function: 'EventsPublishOutboxFunctionCA688D5B',
          role: 'EventsPublishOutboxRole9482AE0F',
          logGroup: 'EventsPublishOutboxLogGroupA8257098',
          deadLetterQueue: 'EventsPublishOutboxDeadLetters19ED6F31',
          schedule: 'EventsPublishOutboxScheduleDD9C1226',
        },
        ExpireContracts: {
          function: 'EventsExpireContractsFunction4B8585AC',
          role: 'EventsExpireContractsRoleDBF68252',
          logGroup: 'EventsExpireContractsLogGroup75AC433D',
          deadLetterQueue: 'EventsExpireContractsDeadLettersFB03A4CF',
          schedule: 'EventsExpireContractsSchedule8CDF40F1',
        },
      }[id];
      const j = job();
      expect({
        function: logicalId(j.function.function),
        role: logicalId(j.function.role),
        logGroup: logicalId(j.function.logGroup),
        deadLetterQueue: logicalId(j.deadLetterQueue),
        schedule: logicalId(j.schedule),
      }).toEqual(legacy);
      expect(resources[legacy.schedule]?.Properties.Target).toMatchObject({
        Arn: { 'Fn::GetAtt': [legacy.function, 'Arn'] },
        DeadLetterConfig: { Arn: { 'Fn::GetAtt': [legacy.deadLetterQueue, 'Arn'] } },
      });
    },
  );

  it.each(['PublishOutbox', 'ExpireContracts', 'AuditCheckpoints'])(
    'the %s function waits for the migrations and dead-letters its failed runs',
    (name) => {
      const job = scheduledJobs().find((j) => j.node.path.includes(name))!;
      const fn = resources[logicalId(job.function.function)]!;
      expect((fn as { DependsOn?: string[] }).DependsOn).toContain(logicalId(stack.database.migrations));
      expect(fn.Properties.DeadLetterConfig).toEqual({
        TargetArn: { 'Fn::GetAtt': [logicalId(job.deadLetterQueue), 'Arn'] },
      });
    },
  );

  it('every scheduled job has a schedule role of its own: Scheduler of this account, its function and queue only', () => {
    for (const job of scheduledJobs()) {
      const roleId = target((scheduleOf(job.function).Properties.Target as { RoleArn: unknown }).RoleArn)!;
      expect(
        (resources[roleId]!.Properties.AssumeRolePolicyDocument as { Statement: unknown[] }).Statement,
      ).toEqual([
        {
          Action: 'sts:AssumeRole',
          Effect: 'Allow',
          Principal: { Service: 'scheduler.amazonaws.com' },
          Condition: { StringEquals: { 'aws:SourceAccount': '000000000000' } },
        },
      ]);
      // It invokes the job's function (and its versions), and dead-letters what it could not deliver.
      const statements = roleStatements(roleId);
      expect(statements.flatMap((s) => s.actions).sort()).toEqual([
        'lambda:InvokeFunction',
        'sqs:SendMessage',
      ]);
      for (const statement of statements) {
        const only = statement.actions.includes('lambda:InvokeFunction')
          ? logicalId(job.function.function)
          : logicalId(job.deadLetterQueue);
        const referenced = [...statement.resource.matchAll(/"(?:Ref|Fn::GetAtt)":\[?"(\w+)"/g)].map(
          (m) => m[1],
        );
        expect(new Set(referenced), roleId).toEqual(new Set([only]));
      }
    }
  });

  it('every scheduled job has an alarm on the depth of its dead-letter queue', () => {
    for (const job of scheduledJobs()) {
      template.hasResourceProperties('AWS::CloudWatch::Alarm', {
        MetricName: 'ApproximateNumberOfMessagesVisible',
        Namespace: 'AWS/SQS',
        Dimensions: [
          { Name: 'QueueName', Value: { 'Fn::GetAtt': [logicalId(job.deadLetterQueue), 'QueueName'] } },
        ],
        Threshold: 1,
      });
    }
  });
});

describe('credential rotation report', () => {
  const job = () => stack.credentialRotation.job;

  it('runs functions/events/report-credential-rotation.ts daily with the policy, without retries', () => {
    const fn = resources[logicalId(job().function.function)]!;
    expect((fn.Properties.Environment as Environment).Variables).toMatchObject({
      CREDENTIAL_MAX_AGE_DAYS: '365',
      PLATFORM_KEY_MAX_AGE_DAYS: '365',
    });
    expect(readFileSync(join(assetDirOf(job().function), 'index.mjs'), 'utf8')).toContain(
      'CredentialsDueForRotation',
    );
    expect(scheduleOf(job().function).Properties).toMatchObject({
      ScheduleExpression: 'rate(1 day)',
      State: 'ENABLED',
      Target: { RetryPolicy: { MaximumEventAgeInSeconds: 86_400 } },
    });
    // A failed run is not retried: the next day's supersedes it.
    const invokeConfig = ofType('AWS::Lambda::EventInvokeConfig').find(
      ([, c]) => target(c.Properties.FunctionName) === logicalId(job().function.function),
    );
    expect(invokeConfig?.[1].Properties.MaximumRetryAttempts).toBe(0);
  });

  it('holds the Data API and nothing else (its metrics are log lines, its event an outbox row)', () => {
    const fn = job().function;
    expect(grantsHeld(fn)).toEqual(['database']);
    const actions = roleStatements(logicalId(fn.role)).flatMap((s) => s.actions);
    expect(actions.filter((a) => a.startsWith('cloudwatch:') || a.startsWith('events:'))).toEqual([]);
  });

  it('alarms when the platform key is due for rotation', () => {
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: 'EnclaveContracts',
      MetricName: 'CredentialsDueForRotation',
      Dimensions: [{ Name: 'Kind', Value: 'platform-key' }],
      Threshold: 1,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
    });
  });
});

describe('contract keys', () => {
  const sync = () => stack.contractKeys.sync;

  it('syncs a key after each event that may change it: the rule, retries and dead letters', () => {
    const rule = ofType('AWS::Events::Rule').find(
      ([, r]) => target((r.Properties.Targets as { Arn: unknown }[])[0]!.Arn) === logicalId(sync().function),
    );
    expect(rule).toBeDefined();
    const pattern = rule![1].Properties.EventPattern as { 'detail-type': string[] };
    expect(pattern['detail-type']).toEqual([...CONTRACT_KEY_DETAIL_TYPES]);
    expect((rule![1].Properties.Targets as { RetryPolicy: unknown }[])[0]!.RetryPolicy).toEqual({
      MaximumEventAgeInSeconds: 7200,
      MaximumRetryAttempts: 10,
    });
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      AlarmDescription: Match.stringLikeRegexp('A contract key could not be brought'),
    });
  });

  it('names in its environment the roles the key policies admit: its own, the data-key route, the parents', () => {
    const variables = (resources[logicalId(sync().function)]!.Properties.Environment as Environment)
      .Variables;
    expect(variables.CONTRACT_KEY_TAG).toBe(stack.contractKeys.tagValue);
    expect(variables.CONTRACT_KEY_ALIAS_PREFIX).toBe(stack.contractKeys.aliasPrefix);
    expect(variables.CONTRACT_KEY_ADMIN_ROLE_ARN).toEqual({ 'Fn::GetAtt': [logicalId(sync().role), 'Arn'] });
    expect(variables.CONTRACT_KEY_DATA_ROLE_ARN).toEqual({
      'Fn::GetAtt': [logicalId(routeFunction('createDataKey').role), 'Arn'],
    });
    expect(variables.PARENT_ROLE_ARN).toEqual({
      'Fn::GetAtt': [logicalId(stack.enclaveWorkflow.parents.role), 'Arn'],
    });
  });

  it('creates only tagged symmetric keys and aliases under its prefix; the key policies grant it the rest', () => {
    const statements = roleStatements(logicalId(sync().role));
    const create = statements.find((s) => s.actions.includes('kms:CreateKey'))!;
    expect(create.resource).toBe('"*"');
    const tagKeys = {
      'ForAllValues:StringEquals': { 'aws:TagKeys': [CONTRACT_KEY_TAG_KEY, CONTRACT_ID_TAG_KEY] },
    };
    expect(create.condition).toEqual({
      StringEquals: {
        [`aws:RequestTag/${CONTRACT_KEY_TAG_KEY}`]: stack.contractKeys.tagValue,
        'kms:KeySpec': 'SYMMETRIC_DEFAULT',
        'kms:KeyUsage': 'ENCRYPT_DECRYPT',
      },
      ...tagKeys,
    });
    expect(statements.find((s) => s.actions.includes('kms:TagResource'))!.condition).toEqual({
      StringEquals: { [`aws:RequestTag/${CONTRACT_KEY_TAG_KEY}`]: stack.contractKeys.tagValue },
      ...tagKeys,
    });
    expect(onContractKeys(statements, 'kms:CreateAlias')).toBe(true);
    const aliases = statements.filter(
      (s) => s.actions.includes('kms:CreateAlias') && s.resource.includes(':alias/'),
    );
    expect(aliases.map((s) => s.resource)).toEqual([
      expect.stringContaining(`:${stack.contractKeys.aliasPrefix}*`),
    ]);
    // On every key (the contract keys among them), nothing that uses one: its kms:Decrypt is the database
    // secret's key, through Secrets Manager (the database grant).
    const onAnyKey = statements.filter((s) => s.resource.includes(':key/*') || s.resource === '"*"');
    for (const action of [
      'kms:Decrypt',
      'kms:GenerateDataKey',
      'kms:GenerateDataKeyWithoutPlaintext',
      'kms:PutKeyPolicy',
      'kms:*',
    ]) {
      expect(
        onAnyKey.some((s) => s.actions.includes(action)),
        action,
      ).toBe(false);
    }
  });

  it("gives the parents' role no KMS permission: only the key policies admit it, with an attestation", () => {
    const actions = roleStatements(logicalId(stack.enclaveWorkflow.parents.role)).flatMap((s) => s.actions);
    expect(actions.filter((a) => a.startsWith('kms:') && a !== 'kms:Decrypt')).toEqual([]);
    // Its one kms:Decrypt, if any, is a service key's through a service (not a contract key).
    for (const statement of roleStatements(logicalId(stack.enclaveWorkflow.parents.role))) {
      if (statement.actions.includes('kms:Decrypt')) expect(statement.resource).not.toContain(':key/*');
    }
  });
});

describe('audit checkpoints', () => {
  const job = () => stack.auditCheckpoints.job;

  it('run functions/events/checkpoint-audit.ts on Node.js 24, ARM64', () => {
    const fn = resources[logicalId(job().function.function)]!;
    expect(fn.Properties).toMatchObject({
      Runtime: 'nodejs24.x',
      Architectures: ['arm64'],
      Handler: 'index.handler',
      TracingConfig: { Mode: 'Active' },
    });
    expect(readFileSync(join(assetDirOf(job().function), 'index.mjs'), 'utf8')).toContain(
      'INSERT INTO audit_checkpoints',
    );
  });

  it('run every 5 minutes on EventBridge Scheduler, failed runs kept in the dead-letter queue', () => {
    expect(scheduleOf(job().function).Properties).toMatchObject({
      ScheduleExpression: 'rate(5 minutes)',
      State: 'ENABLED',
      Target: {
        DeadLetterConfig: { Arn: { 'Fn::GetAtt': [logicalId(job().deadLetterQueue), 'Arn'] } },
        RetryPolicy: { MaximumEventAgeInSeconds: 300 },
      },
    });
  });

  it('hold exactly the Data API, kms:Sign and kms:GetPublicKey on the platform keys, and nothing else', () => {
    const fn = job().function;
    expect(grantsHeld(fn).sort()).toEqual(['database', 'sign']);
    const statements = roleStatements(logicalId(fn.role));
    // Besides the grants: its logs and traces, and (Lambda's own dead-letter delivery) its dead-letter queue.
    const permitted = new Set([
      ...BASE_ACTIONS,
      ...GRANT_ACTIONS.database,
      ...GRANT_ACTIONS.sign,
      'sqs:SendMessage',
      // It reads the doorbell before it looks at the database (doorbell.test.ts).
      'dynamodb:GetItem',
    ]);
    expect(statements.flatMap((s) => s.actions).filter((a) => !permitted.has(a))).toEqual([]);
    const secretKey = logicalId(stack.database.secretEncryptionKey);
    const doorbellKey = JSON.stringify({ 'Fn::GetAtt': [logicalId(stack.doorbell.key), 'Arn'] });
    for (const statement of statements) {
      // The doorbell's key, through DynamoDB only (doorbell.test.ts).
      if (statement.resource === doorbellKey) continue;
      if (statement.actions.some((a) => a.startsWith('kms:'))) {
        // The platform keys, or the database secret's key to read the secret through Secrets Manager.
        const onSecretKey = statement.resource === JSON.stringify({ 'Fn::GetAtt': [secretKey, 'Arn'] });
        if (onSecretKey) expect(statement.actions).toEqual(['kms:Decrypt']);
        else expect(onPlatformKeys([statement], statement.actions[0]!)).toBe(true);
      }
      if (statement.actions.includes('sqs:SendMessage')) {
        expect(statement.actions).toEqual(['sqs:SendMessage']);
        expect(statement.resource).toBe(
          JSON.stringify({ 'Fn::GetAtt': [logicalId(job().deadLetterQueue), 'Arn'] }),
        );
      }
    }
  });

  it('can decrypt the database secret through Secrets Manager, and no key policy names the role', () => {
    const roleId = logicalId(job().function.role);
    const secretKey = logicalId(stack.database.secretEncryptionKey);
    expect(
      roleStatements(roleId).some(
        (s) =>
          s.actions.includes('kms:Decrypt') &&
          s.resource.includes(`"${secretKey}"`) &&
          JSON.stringify(s.condition).includes('"kms:ViaService":"secretsmanager.'),
      ),
    ).toBe(true);
    const keysNaming = ofType('AWS::KMS::Key')
      .filter(([, k]) => JSON.stringify(k.Properties.KeyPolicy).includes(`"${roleId}"`))
      .map(([id]) => id);
    expect(keysNaming).toEqual([]);
  });
});

describe('CloudFormation headroom', () => {
  it('leaves room under the 500-resource limit for at least 40 more routes like the largest one', () => {
    const total = Object.keys(resources).length;
    // What one route costs: the resources under its function's construct and under its route's (its role
    // is its set of grants', shared with every route granted the same).
    const paths = stack.node
      .findAll()
      .filter((c): c is CfnElement => CfnElement.isCfnElement(c) && c instanceof CfnResourceConstruct)
      .map((c) => c.node.path);
    const perRoute = Math.max(
      ...ROUTES.map(
        (r) =>
          paths.filter(
            (p) =>
              p.startsWith(`${stack.api.node.path}/${r.id}/`) ||
              p.startsWith(`${stack.api.node.path}/${r.id}Route/`),
          ).length,
      ),
    );
    expect(perRoute).toBeGreaterThanOrEqual(3); // function, integration, route
    expect(total + 40 * perRoute, `${total} resources, ${perRoute} per route`).toBeLessThanOrEqual(500);
  });
});

describe('cdk-nag', () => {
  it('AwsSolutions has no finding left unacknowledged', () => {
    // cdk-nag 3 reports through the validation plugin framework, not annotations: ask the pack directly
    // (the app in infra/app.ts registers the same pack, so `cdk synth` fails on any of these).
    const report = new AwsSolutionsChecks().validateScope(app);
    const findings = report.violations.map(
      (v) => `${v.ruleName}: ${v.violatingResources.map((r) => r.constructPath).join(', ')}`,
    );
    expect(findings).toEqual([]);
  });

  it('CDK itself reports no errors', () => {
    expect(Annotations.fromStack(stack).findError('*', Match.anyValue())).toEqual([]);
  });
});

describe('bundles', () => {
  /** The module specifiers a function's bundle imports, statically or with a literal `import()`. */
  const importsOf = (fn: AppFunction): string[] => {
    const code = readFileSync(join(assetDirOf(fn), 'index.mjs'), 'utf8');
    return [
      // Static imports start a statement (minified: after `;` or `}`); dynamic ones have a literal.
      ...code.matchAll(/(?:^|[;}\n])\s*import\s*(?:[\w$*{},\s]+?from\s*)?["']([^"']+)["']/g),
      ...code.matchAll(/\bimport\(\s*["']([^"']+)["']\s*\)/g),
    ].map((m) => m[1]!);
  };

  it('import nothing but Node.js built-ins (local-only drivers and the AWS SDK are inside or stubbed)', () => {
    const builtins = new Set(builtinModules);
    for (const fn of appFunctions()) {
      const imported = importsOf(fn);
      const external = imported.filter((spec) => !spec.startsWith('node:') && !builtins.has(spec));
      expect(external, fn.node.path).toEqual([]);
    }
  });

  it('load node:http with require, never as an ES module (on Node.js 24 that loads undici at every cold start)', () => {
    for (const fn of appFunctions()) {
      const imported = importsOf(fn);
      expect(
        imported.filter((spec) => spec === 'http' || spec === 'node:http'),
        fn.node.path,
      ).toEqual([]);
    }
  });

  it("carry only the credential sources Lambda has: the execution role's environment and the container endpoint", () => {
    // The SDK's Node.js chain would add profiles, SSO, login, credential processes, web identity and EC2
    // instance metadata, with the STS and SSO clients they call: 115 KB parsed at every cold start.
    const absent =
      /node_modules\/@aws-sdk\/(credential-provider-(node|ini|sso|process|web-identity|login)|nested-clients|token-providers)\/|node_modules\/@smithy\/credential-provider-imds\//;
    for (const fn of appFunctions()) {
      const { sources } = JSON.parse(readFileSync(join(assetDirOf(fn), 'index.mjs.map'), 'utf8')) as {
        sources: string[];
      };
      expect(
        sources.filter((source) => absent.test(source)),
        fn.node.path,
      ).toEqual([]);
      // The local IAM stand-in (AGPL-3.0) is a development dependency: never in a deployed function.
      expect(
        sources.filter((source) => source.includes('@cloud-copilot/')),
        fn.node.path,
      ).toEqual([]);
      if (sources.some((source) => source.includes('node_modules/@aws-sdk/core/'))) {
        expect(
          sources.some((source) => source.endsWith('infra/bundling/aws-credentials.ts')),
          fn.node.path,
        ).toBe(true);
      }
    }
  });

  it('hold the EC2 client only where a function controls instances (Compensate, enforcement)', () => {
    // "AmazonEC2" is the EC2 client's service name: in its bundle whatever the minifier renames.
    const withEc2 = appFunctions().filter((fn) =>
      readFileSync(join(assetDirOf(fn), 'index.mjs'), 'utf8').includes('AmazonEC2'),
    );
    expect(withEc2.map((fn) => fn.node.path).sort()).toEqual(
      [stack.enclaveWorkflow.steps.Compensate, stack.enclaveWorkflow.enforcement]
        .map((fn) => fn.node.path)
        .sort(),
    );
  });

  it('of every API route are at most 600 KB (issue 10: the cold-start budget)', () => {
    for (const [id, fn] of stack.api.functions) {
      const size = statSync(join(assetDirOf(fn), 'index.mjs')).size;
      expect(size / 1024, id).toBeLessThanOrEqual(600);
    }
  });

  it('run without --enable-source-maps: the map is read when a stack is rendered', () => {
    for (const fn of appFunctions()) {
      const cfn = resources[logicalId(fn.function)]!;
      const variables = (cfn.Properties.Environment as { Variables: Record<string, unknown> }).Variables;
      expect(variables.NODE_OPTIONS, fn.node.path).toBeUndefined();
      expect(existsSync(join(assetDirOf(fn), 'index.mjs.map')), fn.node.path).toBe(true);
    }
  });

  describe('the bundled public routes, run as Lambda runs them', () => {
    const run = promisify(execFile);

    /** Plain Node.js 24, the function's own environment from the template, one GET event. */
    async function get(routeId: string, path: string): Promise<{ statusCode: number; body: string }> {
      const fn = stack.api.functions.get(routeId)!;
      const variables = (
        resources[logicalId(fn.function)]!.Properties.Environment as {
          Variables: Record<string, unknown>;
        }
      ).Variables;
      const environment = Object.fromEntries(
        Object.entries(variables).map(([k, v]) => [k, typeof v === 'string' ? v : `arn:aws:test:::${k}`]),
      );
      const event = {
        version: '2.0',
        routeKey: `GET ${path}`,
        rawPath: path,
        rawQueryString: '',
        headers: {},
        isBase64Encoded: false,
        requestContext: { requestId: 'request', http: { method: 'GET', path } },
      };
      const script =
        'const { handler } = await import(process.env.BUNDLE); process.stdout.write(JSON.stringify(await handler(JSON.parse(process.env.EVENT), {})));';
      const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], {
        env: {
          ...environment,
          PATH: process.env.PATH,
          BUNDLE: join(assetDirOf(fn), 'index.mjs'),
          EVENT: JSON.stringify(event),
          AWS_REGION: 'eu-central-1',
          AWS_ACCESS_KEY_ID: 'test',
          AWS_SECRET_ACCESS_KEY: 'test',
        },
      });
      return JSON.parse(stdout.trim().split('\n').at(-1)!) as { statusCode: number; body: string };
    }

    it('GET /health answers 200', async () => {
      const response = await get('getHealth', '/api/v1/health');
      expect(response.statusCode).toBe(200);
      expect(JSON.parse(response.body)).toEqual({ status: 'ok' });
    }, 60_000);

    it('GET /openapi.json answers the document generated from the route table, compiled in at synth', async () => {
      const response = await get('getOpenApi', '/api/v1/openapi.json');
      expect(response.statusCode).toBe(200);
      expect(JSON.parse(response.body)).toEqual(JSON.parse(JSON.stringify(openApiDocument())));
    }, 60_000);
  });

  it('the migration bundle carries the SQL migrations', () => {
    const dir = join(assetDirOf(stack.database.migrationFunction), 'migrations');
    const sources = readdirSync(projectPath(MIGRATIONS_SOURCE)).filter((f) => f.endsWith('.sql'));
    expect(sources.length).toBeGreaterThan(0);
    for (const name of sources) {
      expect(existsSync(join(dir, name)), name).toBe(true);
      expect(readFileSync(join(dir, name), 'utf8')).toBe(
        readFileSync(projectPath(`${MIGRATIONS_SOURCE}/${name}`), 'utf8'),
      );
    }
  });

  describe('the bundled migration function, against the Data API emulator', () => {
    const run = promisify(execFile);
    let pg: PGlite;
    let emulator: DataApiEmulator;

    beforeAll(async () => {
      pg = new PGlite();
      emulator = await startDataApiEmulator({ backend: pgliteBackend(pg) });
    }, 60_000);

    afterAll(async () => {
      await emulator?.close();
      await pg?.close();
    });

    /** Runs the bundle as Lambda would: plain Node.js 24, the handler module, the SDK's endpoint from env. */
    async function invoke(
      event: Record<string, unknown>,
      endpoint = emulator.endpoint,
      credentials: Record<string, string> = { AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test' },
    ): Promise<Record<string, unknown>> {
      const script =
        'const { handler } = await import(process.env.BUNDLE); process.stdout.write(JSON.stringify(await handler(JSON.parse(process.env.EVENT))));';
      const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], {
        env: {
          PATH: process.env.PATH,
          BUNDLE: join(assetDirOf(stack.database.migrationFunction), 'index.mjs'),
          EVENT: JSON.stringify(event),
          AWS_REGION: 'eu-central-1',
          ...credentials,
          AWS_ENDPOINT_URL_RDS_DATA: endpoint,
          POWERTOOLS_LOG_LEVEL: 'WARN',
        },
      });
      return JSON.parse(stdout.trim().split('\n').at(-1)!) as Record<string, unknown>;
    }

    const properties = () => ({
      ServiceToken: 'arn:aws:lambda:eu-central-1:000000000000:function:framework',
      ResourceArn: emulator.resourceArn,
      SecretArn: emulator.secretArn,
      Database: 'postgres',
      MigrationsHash: migrationsHash(),
    });

    it('applies every migration on Create, even while the cluster resumes from auto-pause', async () => {
      emulator.injectFaults('DatabaseResumingException', 2);
      const result = await invoke({ RequestType: 'Create', ResourceProperties: properties() });
      const sources = readdirSync(projectPath(MIGRATIONS_SOURCE)).filter((f) => f.endsWith('.sql'));
      expect(result).toEqual({
        PhysicalResourceId: 'schema-migrations',
        Data: { Applied: sources.length, MigrationsHash: migrationsHash() },
      });
      const applied = await pg.query<{ name: string }>('SELECT name FROM schema_migrations ORDER BY name');
      expect(applied.rows.map((r) => r.name)).toEqual(sources.sort());
    }, 60_000);

    it('applies nothing twice on Update, and drops nothing on Delete', async () => {
      const update = await invoke({
        RequestType: 'Update',
        PhysicalResourceId: 'schema-migrations',
        ResourceProperties: properties(),
        OldResourceProperties: properties(),
      });
      expect(update).toMatchObject({ PhysicalResourceId: 'schema-migrations', Data: { Applied: 0 } });
      const deleted = await invoke({
        RequestType: 'Delete',
        PhysicalResourceId: 'schema-migrations',
        ResourceProperties: properties(),
      });
      expect(deleted).toEqual({ PhysicalResourceId: 'schema-migrations' });
      const left = await pg.query<{ n: number }>('SELECT count(*)::int AS n FROM schema_migrations');
      expect(left.rows[0]!.n).toBeGreaterThan(0);
    }, 60_000);

    /** A pass-through to the emulator that keeps what the bundle's SDK client sends: headers and body. */
    async function recordingProxy(): Promise<{
      endpoint: string;
      sent: { headers: IncomingHttpHeaders; body: Record<string, unknown> }[];
      close: () => Promise<void>;
    }> {
      const sent: { headers: IncomingHttpHeaders; body: Record<string, unknown> }[] = [];
      const proxy = createServer((req, res) => {
        const chunks: Buffer[] = [];
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', async () => {
          const body = Buffer.concat(chunks);
          if (req.url === '/Execute') {
            sent.push({
              headers: req.headers,
              body: JSON.parse(body.toString('utf8')) as Record<string, unknown>,
            });
          }
          const answer = await fetch(`${emulator.endpoint}${req.url}`, {
            method: req.method ?? 'POST',
            headers: { 'content-type': req.headers['content-type'] ?? 'application/json' },
            body,
          });
          res.writeHead(answer.status, { 'content-type': answer.headers.get('content-type') ?? '' });
          res.end(Buffer.from(await answer.arrayBuffer()));
        });
      });
      await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
      const { port } = proxy.address() as AddressInfo;
      return {
        endpoint: `http://127.0.0.1:${port}`,
        sent,
        close: () => new Promise<void>((resolve) => proxy.close(() => resolve())),
      };
    }

    const update = () => ({
      RequestType: 'Update',
      PhysicalResourceId: 'schema-migrations',
      ResourceProperties: properties(),
      OldResourceProperties: properties(),
    });

    it('lets every statement run on past the Data API timeout (continueAfterTimeout), as AWS advises for DDL', async () => {
      const proxy = await recordingProxy();
      try {
        expect(await invoke(update(), proxy.endpoint)).toMatchObject({
          PhysicalResourceId: 'schema-migrations',
        });
        expect(proxy.sent.length).toBeGreaterThan(0);
        for (const { body } of proxy.sent) expect(body.continueAfterTimeout, String(body.sql)).toBe(true);
      } finally {
        await proxy.close();
      }
    }, 60_000);

    it("signs with the execution role's credentials from the environment, as Lambda sets them", async () => {
      const proxy = await recordingProxy();
      try {
        await invoke(update(), proxy.endpoint, {
          AWS_ACCESS_KEY_ID: 'ASIAENVIRONMENTROLE',
          AWS_SECRET_ACCESS_KEY: 'secret',
          AWS_SESSION_TOKEN: 'environment-session',
        });
        expect(proxy.sent.length).toBeGreaterThan(0);
        for (const { headers } of proxy.sent) {
          expect(headers.authorization).toMatch(
            /^AWS4-HMAC-SHA256 Credential=ASIAENVIRONMENTROLE\/\d{8}\/eu-central-1\/rds-data\/aws4_request,/,
          );
          expect(headers['x-amz-security-token']).toBe('environment-session');
        }
      } finally {
        await proxy.close();
      }
    }, 60_000);

    it("signs with the role's credentials from Lambda's container endpoint when the environment has none, read once", async () => {
      // The container credentials endpoint (AWS_CONTAINER_CREDENTIALS_FULL_URI, as Lambda SnapStart uses it):
      // JSON credentials with their expiry, for the authorization token the runtime also provides.
      const asked: (string | undefined)[] = [];
      const endpoint = createServer((req, res) => {
        asked.push(req.headers.authorization);
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify({
            AccessKeyId: 'ASIACONTAINERROLE',
            SecretAccessKey: 'secret',
            Token: 'container-session',
            Expiration: new Date(Date.now() + 3_600_000).toISOString(),
          }),
        );
      });
      await new Promise<void>((resolve) => endpoint.listen(0, '127.0.0.1', resolve));
      const proxy = await recordingProxy();
      try {
        const { port } = endpoint.address() as AddressInfo;
        await invoke(update(), proxy.endpoint, {
          AWS_CONTAINER_CREDENTIALS_FULL_URI: `http://127.0.0.1:${port}/credentials`,
          AWS_CONTAINER_AUTHORIZATION_TOKEN: 'runtime-token',
        });
        expect(proxy.sent.length).toBeGreaterThan(1);
        for (const { headers } of proxy.sent) {
          expect(headers.authorization).toMatch(/Credential=ASIACONTAINERROLE\//);
          expect(headers['x-amz-security-token']).toBe('container-session');
        }
        expect(asked).toEqual(['runtime-token']); // kept until close to its expiry, not read per request
      } finally {
        await proxy.close();
        await new Promise((resolve) => endpoint.close(resolve));
      }
    }, 60_000);

    it('fails, naming the variables Lambda sets, when no credentials are anywhere', async () => {
      await expect(invoke(update(), emulator.endpoint, {})).rejects.toThrow(
        /No AWS credentials: neither AWS_ACCESS_KEY_ID\/AWS_SECRET_ACCESS_KEY nor AWS_CONTAINER_CREDENTIALS_FULL_URI/,
      );
    }, 60_000);
  });
});
