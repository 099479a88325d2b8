import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CfnResource, CustomResource, Duration, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as rds from 'aws-cdk-lib/aws-rds';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import { APPLICATION_USER, PASSWORD_EXCLUDED_CHARACTERS } from '../../shared/database/database-users.ts';
import { projectPath } from '../project-paths.ts';
import { AppFunction } from './app-function.ts';
import { deploymentProvider } from './deployment-step.ts';
import { EncryptedLogGroup, type LogSettings } from './observability.ts';

/** The SQL migrations, relative to the repository root; bundled next to the migration function. */
export const MIGRATIONS_SOURCE = 'shared/database/migrations';

/** The folder, inside the migration function's bundle, the migrations are copied to. */
export const MIGRATIONS_BUNDLE_DIR = 'migrations';

/** The file names `loadMigrations` (shared/database/migrate.ts) applies; anything else is not a migration. */
const MIGRATION_FILE = /^\d{4}-[a-z0-9-]+\.sql$/;

/**
 * A SHA-256 over the names and contents of the migrations, in the order they are applied. It is a property
 * of the migration custom resource, so CloudFormation re-runs the migrations exactly when they change.
 */
export function migrationsHash(dir: string = projectPath(MIGRATIONS_SOURCE)): string {
  const hash = createHash('sha256');
  for (const name of readdirSync(dir)
    .filter((f) => MIGRATION_FILE.test(f))
    .sort()) {
    hash
      .update(name)
      .update('\0')
      .update(readFileSync(join(dir, name)))
      .update('\0');
  }
  return hash.digest('hex');
}

/** The Data API's statement and transaction actions (what CDK's `grantDataApiAccess` grants). */
const DATA_API_ACTIONS = [
  'rds-data:BatchExecuteStatement',
  'rds-data:BeginTransaction',
  'rds-data:CommitTransaction',
  'rds-data:ExecuteStatement',
  'rds-data:RollbackTransaction',
] as const;

/** Props of {@link Database}. */
export interface DatabaseProps {
  readonly vpc: ec2.IVpc;
  /** Isolated subnets in at least two Availability Zones. */
  readonly vpcSubnets: ec2.SubnetSelection;
  /** The Secrets Manager endpoint the rotation function reaches Secrets Manager through (opened to it here). */
  readonly secretsManagerEndpoint: ec2.IConnectable;
  /** Where the database's and the migration function's logs go. */
  readonly logs: LogSettings;
  /** Encrypts the cluster storage (and its snapshots). @default a new CMK with yearly rotation */
  readonly storageEncryptionKey?: kms.IKey;
  /** Encrypts the credentials secrets (master and application). @default a new CMK with yearly rotation */
  readonly secretEncryptionKey?: kms.IKey;
  /** @default 'contracts' */
  readonly databaseName?: string;
  /** Fixed so the stack can own the exported log group's name. @default 'enclave-contracts' */
  readonly clusterIdentifier?: string;
  /** Aurora capacity units; 0 lets the cluster pause when idle. @default 0 */
  readonly minCapacity?: number;
  /** @default 4 */
  readonly maxCapacity?: number;
  /** Idle time before an auto-pause (only with `minCapacity: 0`). @default 30 minutes */
  readonly autoPause?: Duration;
  /** @default 14 days */
  readonly backupRetention?: Duration;
  /** @default 30 days */
  readonly credentialRotation?: Duration;
}

/**
 * The contracts database: Aurora PostgreSQL Serverless v2, reached by the functions only through the RDS
 * Data API (HTTPS + IAM), so no function needs to sit in the VPC or hold a connection pool.
 *
 * Two users sign in, each with its secret: the master user only migrates (and creates the first admin); the
 * functions sign in as an application user whose privileges are those of migration 0013 (the audit trail
 * append-only). Both secrets are encrypted with a customer-managed key and rotate every 30 days through our
 * own rotation function (functions/deploy/rotate-database-secret.ts, Node.js like every other function: the
 * hosted Python templates run on whatever runtime CloudFormation picks), in the isolated subnets, reaching
 * the cluster over TLS and Secrets Manager through its VPC endpoint. The master rotates in place; the
 * application's secret alternates between two users, so calls in flight on the previous one never fail.
 * Storage is encrypted with a customer-managed key; deletion protection, automated backups, IAM database
 * authentication and PostgreSQL log export are on.
 *
 * The schema is migrated on every deployment that changes it: a custom resource runs
 * `functions/deploy/migrate.ts` (the same `migrate()` runner as the local stack, over the Data API) with
 * the SQL files bundled next to it, and the migrations' content hash as a property.
 */
export class Database extends Construct {
  readonly cluster: rds.DatabaseCluster;
  readonly databaseName: string;
  /** The credentials the functions' Data API calls sign in with: the application user's (attached to the cluster). */
  readonly secret: secretsmanager.ISecret;
  /** The master user's credentials: the deployment steps' (migrations, first admin), nobody else's. */
  readonly masterSecret: secretsmanager.ISecret;
  /**
   * The secrets' rotations (master, application). Created (and so first run) only after the migrations:
   * add a dependency on them for every other deployment step that uses the master secret.
   */
  readonly rotationSchedules: readonly secretsmanager.CfnRotationSchedule[];
  /** The function that rotates both secrets. */
  readonly rotationFunction: AppFunction;
  readonly storageEncryptionKey: kms.IKey;
  readonly secretEncryptionKey: kms.IKey;
  /** The schema migration custom resource; depend on it to run after the schema is current. */
  readonly migrations: CustomResource;
  /** The function behind {@link migrations}. */
  readonly migrationFunction: AppFunction;

  constructor(scope: Construct, id: string, props: DatabaseProps) {
    super(scope, id);
    this.databaseName = props.databaseName ?? 'contracts';
    const clusterIdentifier = props.clusterIdentifier ?? 'enclave-contracts';
    this.storageEncryptionKey =
      props.storageEncryptionKey ??
      new kms.Key(this, 'StorageKey', {
        description: 'Encrypts the storage and snapshots of the contracts Aurora cluster',
        enableKeyRotation: true,
        removalPolicy: RemovalPolicy.RETAIN,
      });
    this.secretEncryptionKey =
      props.secretEncryptionKey ??
      new kms.Key(this, 'SecretKey', {
        description: 'Encrypts the credentials secret of the contracts Aurora cluster',
        enableKeyRotation: true,
        removalPolicy: RemovalPolicy.RETAIN,
      });

    // Created before the cluster, under the name Aurora exports to, so that the logs are encrypted and
    // expire (Aurora would otherwise create the group itself: unencrypted, kept forever).
    const postgresLog = new EncryptedLogGroup(this, 'PostgresLog', {
      settings: props.logs,
      logGroupName: `/aws/rds/cluster/${clusterIdentifier}/postgresql`,
    });

    this.cluster = new rds.DatabaseCluster(this, 'Cluster', {
      engine: rds.DatabaseClusterEngine.auroraPostgres({ version: rds.AuroraPostgresEngineVersion.VER_17_9 }),
      clusterIdentifier,
      writer: rds.ClusterInstance.serverlessV2('Writer', { publiclyAccessible: false }),
      serverlessV2MinCapacity: props.minCapacity ?? 0,
      serverlessV2MaxCapacity: props.maxCapacity ?? 4,
      serverlessV2AutoPauseDuration:
        (props.minCapacity ?? 0) === 0 ? (props.autoPause ?? Duration.minutes(30)) : undefined,
      vpc: props.vpc,
      vpcSubnets: props.vpcSubnets,
      // Not the default 5432: nothing connects by port but the rotation function, which reads it from the secret.
      port: 5433,
      defaultDatabaseName: this.databaseName,
      credentials: rds.Credentials.fromGeneratedSecret('contracts_admin', {
        encryptionKey: this.secretEncryptionKey,
        excludeCharacters: PASSWORD_EXCLUDED_CHARACTERS,
      }),
      storageEncryptionKey: this.storageEncryptionKey,
      enableDataApi: true,
      iamAuthentication: true,
      deletionProtection: true,
      removalPolicy: RemovalPolicy.SNAPSHOT,
      backup: { retention: props.backupRetention ?? Duration.days(14), preferredWindow: '01:00-02:00' },
      preferredMaintenanceWindow: 'sun:02:30-sun:03:30',
      cloudwatchLogsExports: ['postgresql'],
      copyTagsToSnapshot: true,
    });
    this.cluster.node.addDependency(postgresLog);
    if (!this.cluster.secret) throw new Error('the cluster was created without a credentials secret');
    this.masterSecret = this.cluster.secret;
    // The application's user, created by the migration step from this secret (it names its master in
    // `masterarn`, which tells the rotation function to alternate users) and attached for host and port.
    this.secret = new rds.DatabaseSecret(this, 'ApplicationSecret', {
      username: APPLICATION_USER,
      dbname: this.databaseName,
      masterSecret: this.masterSecret,
      encryptionKey: this.secretEncryptionKey,
      excludeCharacters: PASSWORD_EXCLUDED_CHARACTERS,
    }).attach(this.cluster);

    const rotation = this.createRotation(props);
    this.rotationFunction = rotation.fn;
    this.rotationSchedules = rotation.schedules;
    this.migrationFunction = new AppFunction(this, 'Migrate', {
      entry: 'functions/deploy/migrate.ts',
      description: 'Applies the SQL schema migrations through the Data API on deployment',
      // Not the composition root's: the custom resource names its cluster, secret and database itself.
      adapters: [],
      logs: props.logs,
      // A cold, auto-paused cluster takes ~15 s to resume; DDL on a large table can take minutes.
      timeout: Duration.minutes(10),
      commandHooks: {
        beforeBundling: () => [],
        beforeInstall: () => [],
        afterBundling: (inputDir: string, outputDir: string) => [
          `mkdir -p "${outputDir}/${MIGRATIONS_BUNDLE_DIR}"`,
          `cp -R "${inputDir}/${MIGRATIONS_SOURCE}/." "${outputDir}/${MIGRATIONS_BUNDLE_DIR}/"`,
        ],
      },
    });
    this.grantMasterDataApiAccess(this.migrationFunction);
    // It creates the application's first user from that secret.
    this.grantSecretRead(this.migrationFunction, this.secret);
    this.migrations = this.createMigrations(this.migrationFunction, props.logs);
    // A schedule's creation rotates at once: after the migrations, never while they run on the master's
    // password (single-user rotation changes it before the secret's AWSCURRENT follows), and never before
    // the application's user exists.
    for (const schedule of this.rotationSchedules)
      schedule.addDependency(this.migrations.node.defaultChild as CfnResource);
  }

  /** The rotation function, in the isolated subnets, and the schedules of both secrets. */
  private createRotation(props: DatabaseProps): {
    fn: AppFunction;
    schedules: secretsmanager.CfnRotationSchedule[];
  } {
    const securityGroup = new ec2.SecurityGroup(this, 'RotationSecurityGroup', {
      vpc: props.vpc,
      description:
        'The database secrets rotation function: to the cluster and the Secrets Manager endpoint only',
      allowAllOutbound: false,
    });
    const fn = new AppFunction(this, 'RotateSecrets', {
      entry: 'functions/deploy/rotate-database-secret.ts',
      description: 'Rotates the database secrets (master in place, application between two users)',
      adapters: [],
      logs: props.logs,
      timeout: Duration.minutes(1),
      environment: {
        DATABASE_NAME: this.databaseName,
        // The RDS certificate authorities Lambda's Node.js runtime ships, added to Node's default store.
        NODE_EXTRA_CA_CERTS: '/var/runtime/ca-cert.pem',
      },
      directDatabaseAccess: { vpc: props.vpc, vpcSubnets: props.vpcSubnets, securityGroups: [securityGroup] },
    });
    this.cluster.connections.allowDefaultPortFrom(fn.function, 'Secret rotation function');
    props.secretsManagerEndpoint.connections.allowDefaultPortFrom(fn.function, 'Secret rotation function');
    // Secrets Manager invokes it, for this account's secrets only.
    fn.function.addPermission('InvokedBySecretsManager', {
      principal: new iam.ServicePrincipal('secretsmanager.amazonaws.com'),
      sourceAccount: Stack.of(this).account,
    });
    const secrets = [this.masterSecret, this.secret];
    iam.Grant.addToPrincipal({
      grantee: fn.function,
      actions: [
        'secretsmanager:DescribeSecret',
        'secretsmanager:GetSecretValue',
        'secretsmanager:PutSecretValue',
        'secretsmanager:UpdateSecretVersionStage',
      ],
      resourceArns: secrets.map((secret) => secret.secretArn),
    });
    // GetRandomPassword acts on no resource (Service Authorization Reference: resource "*").
    iam.Grant.addToPrincipal({
      grantee: fn.function,
      actions: ['secretsmanager:GetRandomPassword'],
      resourceArns: ['*'],
    });
    Validations.of(fn.role).acknowledge({
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason:
        'secretsmanager:GetRandomPassword acts on no resource (Service Authorization Reference: resource "*"); every other action names the two secrets and their key.',
    });
    iam.Grant.addToPrincipal({
      grantee: fn.function,
      actions: ['kms:Decrypt', 'kms:GenerateDataKey'],
      resourceArns: [this.secretEncryptionKey.keyArn],
      conditions: {
        StringEquals: { 'kms:ViaService': `secretsmanager.${Stack.of(this).region}.amazonaws.com` },
      },
    });
    const every = (props.credentialRotation ?? Duration.days(30)).toDays();
    const schedules = secrets.map(
      (secret, i) =>
        new secretsmanager.CfnRotationSchedule(this, i === 0 ? 'MasterRotation' : 'ApplicationRotation', {
          secretId: secret.secretArn,
          rotationLambdaArn: fn.function.functionArn,
          rotationRules: { scheduleExpression: `rate(${every} days)` },
        }),
    );
    for (const schedule of schedules) schedule.node.addDependency(fn.role);
    return { fn, schedules };
  }

  /**
   * The runtime configuration of a function that uses this database through the Data API
   * (`DATABASE_DRIVER=data-api` and the ids of `shared/runtime/config.ts`). Identifiers, not permissions:
   * access is given by {@link grantDataApiAccess}.
   */
  get environment(): Readonly<Record<string, string>> {
    // The application's secret: the functions never sign in as the master user.
    return {
      DATABASE_DRIVER: 'data-api',
      DATA_API_RESOURCE_ARN: this.cluster.clusterArn,
      DATA_API_SECRET_ARN: this.secret.secretArn,
      DATABASE_NAME: this.databaseName,
    };
  }

  /**
   * How a deployment step's custom resource names the database it runs statements on (as properties): as
   * the master user (grant it {@link grantMasterDataApiAccess}).
   */
  get dataApiProperties(): { ResourceArn: string; SecretArn: string; Database: string } {
    return {
      ResourceArn: this.cluster.clusterArn,
      SecretArn: this.masterSecret.secretArn,
      Database: this.databaseName,
    };
  }

  /**
   * Lets the grantee run statements through the Data API: the `rds-data` statement and transaction actions
   * on this cluster, and reading this cluster's secret (with decryption through Secrets Manager only).
   * Nothing else: no `rds-db:connect`, no other secret.
   */
  grantDataApiAccess(grantee: iam.IGrantable): iam.Grant {
    return this.grantDataApiAccessAs(grantee, this.secret);
  }

  /** {@link grantDataApiAccess} signed in as the master user: for the deployment steps only. */
  grantMasterDataApiAccess(grantee: iam.IGrantable): iam.Grant {
    return this.grantDataApiAccessAs(grantee, this.masterSecret);
  }

  private grantDataApiAccessAs(grantee: iam.IGrantable, secret: secretsmanager.ISecret): iam.Grant {
    // What `cluster.grantDataApiAccess` grants, all in the grantee's own policy: CDK's version puts the
    // decryption into the secret key's policy, naming the grantee's role there, which makes a cycle once
    // the role holds its grants inline (role → cluster → secret → key → role).
    const statements = iam.Grant.addToPrincipal({
      grantee,
      actions: [...DATA_API_ACTIONS],
      resourceArns: [this.cluster.clusterArn],
    });
    this.grantSecretRead(grantee, secret);
    return statements;
  }

  /** Reading `secret` (one of this database's), decrypted through Secrets Manager only. */
  private grantSecretRead(grantee: iam.IGrantable, secret: secretsmanager.ISecret): void {
    iam.Grant.addToPrincipal({
      grantee,
      actions: ['secretsmanager:GetSecretValue', 'secretsmanager:DescribeSecret'],
      resourceArns: [secret.secretArn],
    });
    iam.Grant.addToPrincipal({
      grantee,
      actions: ['kms:Decrypt'],
      resourceArns: [this.secretEncryptionKey.keyArn],
      conditions: {
        StringEquals: { 'kms:ViaService': `secretsmanager.${Stack.of(this).region}.amazonaws.com` },
      },
    });
  }

  private createMigrations(fn: AppFunction, logs: LogSettings): CustomResource {
    const provider = deploymentProvider(this, 'MigrationsProvider', fn, logs);
    const migrations = new CustomResource(this, 'Migrations', {
      serviceToken: provider.serviceToken,
      resourceType: 'Custom::SchemaMigrations',
      properties: {
        ...this.dataApiProperties,
        ApplicationSecretArn: this.secret.secretArn,
        MigrationsHash: migrationsHash(),
      },
    });
    // The writer instance must be up before the Data API can run anything: every resource of the cluster.
    for (const part of this.cluster.node.findAll()) {
      if (part instanceof CfnResource) migrations.node.addDependency(part);
    }
    return migrations;
  }
}
