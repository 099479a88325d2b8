import { Logger } from '@aws-lambda-powertools/logger';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { CloudFormationCustomResourceEvent } from 'aws-lambda';
import { setApplicationUser } from '../../shared/database/database-users.ts';
import { loadMigrations, migrate } from '../../shared/database/migrate.ts';
import * as z from '../../shared/domain/zod.ts';
import { mapStacksWhenBundled } from '../../shared/runtime/source-mapped-stacks.ts';
import { DataApiTargetSchema, openDeploymentDatabase } from './deployment-database.ts';

/**
 * The schema migration custom resource (infra/constructs/database.ts): on Create and Update it applies the
 * migrations not yet recorded, through the Data API as the master user, then makes sure the application's
 * login user (the one its secret names now) exists, a member of the application role: created from the
 * secret's password the first time, left to the rotation afterwards. On Delete it does nothing (a stack
 * update that replaces the resource, or a deleted stack, must never drop data).
 *
 * The SQL files are copied next to this bundle at build time (`migrations/`), so the code and the schema
 * it expects are deployed together: `loadMigrations()` reads `migrations/` beside the module that holds it,
 * which in the bundle is the bundle itself, and unbundled (tests) is shared/database/migrations.
 */
/** One physical id for the schema of the database: re-runs are updates, never replacements. */
const PHYSICAL_ID = 'schema-migrations';

const PropertiesSchema = z.extend(DataApiTargetSchema, {
  /** The application's secret: its current user is created when missing. */
  ApplicationSecretArn: z.optional(z.string().check(z.minLength(1))),
  /** Not read: it is there so CloudFormation sends an Update whenever a migration changes. */
  MigrationsHash: z.string().check(z.minLength(1)),
});

mapStacksWhenBundled(import.meta.url);

const logger = new Logger();
const secrets = new SecretsManagerClient({});

/** The application's user and password, as its secret holds them now (never logged). */
async function applicationCredentials(secretArn: string): Promise<{ username: string; password: string }> {
  const { SecretString } = await secrets.send(new GetSecretValueCommand({ SecretId: secretArn }));
  const parsed = z.safeParse(
    z.looseObject({ username: z.string().check(z.minLength(1)), password: z.string().check(z.minLength(1)) }),
    JSON.parse(SecretString ?? 'null'),
  );
  if (!parsed.success) throw new Error(`the secret ${secretArn} holds no username and password`);
  return { username: parsed.data.username, password: parsed.data.password };
}

/** The reply the CDK `Provider` framework expects from an `onEvent` handler. */
export interface MigrationResult {
  readonly PhysicalResourceId: string;
  readonly Data?: { readonly Applied: number; readonly MigrationsHash: string };
}

export async function handler(event: CloudFormationCustomResourceEvent): Promise<MigrationResult> {
  if (event.RequestType === 'Delete') return { PhysicalResourceId: event.PhysicalResourceId };

  const properties = z.parse(PropertiesSchema, event.ResourceProperties);
  // A long index build or backfill outlasts the Data API's 45 s on a large table: it finishes on the
  // cluster, and the next deployment (every statement can run again) finds it done.
  const db = openDeploymentDatabase(properties, { continueAfterTimeout: true });
  try {
    const applied = await migrate(db, await loadMigrations());
    logger.info('schema migrated', { applied, migrationsHash: properties.MigrationsHash });
    if (properties.ApplicationSecretArn) {
      const credentials = await applicationCredentials(properties.ApplicationSecretArn);
      const { created } = await setApplicationUser(db, credentials, { keepExistingPassword: true });
      logger.info('application user', { username: credentials.username, created });
    }
    return {
      PhysicalResourceId: PHYSICAL_ID,
      Data: { Applied: applied.length, MigrationsHash: properties.MigrationsHash },
    };
  } finally {
    await db.close();
  }
}
