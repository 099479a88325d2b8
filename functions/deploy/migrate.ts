import { fileURLToPath } from 'node:url';
import { Logger } from '@aws-lambda-powertools/logger';
import type { CloudFormationCustomResourceEvent } from 'aws-lambda';
import { loadMigrations, migrate } from '../../shared/database/migrate.ts';
import * as z from '../../shared/domain/zod.ts';
import { mapStacksWhenBundled } from '../../shared/runtime/source-mapped-stacks.ts';
import { DataApiTargetSchema, openDeploymentDatabase } from './deployment-database.ts';

/**
 * The schema migration custom resource (infra/constructs/database.ts): on Create and Update it applies the
 * migrations not yet recorded, through the Data API; on Delete it does nothing (a stack update that replaces
 * the resource, or a deleted stack, must never drop data).
 *
 * The SQL files are copied next to this bundle at build time (`migrations/`), so the code and the schema
 * it expects are deployed together.
 */
const MIGRATIONS_DIR = fileURLToPath(new URL('./migrations/', import.meta.url));

/** One physical id for the schema of the database: re-runs are updates, never replacements. */
const PHYSICAL_ID = 'schema-migrations';

const PropertiesSchema = z.extend(DataApiTargetSchema, {
  /** Not read: it is there so CloudFormation sends an Update whenever a migration changes. */
  MigrationsHash: z.string().check(z.minLength(1)),
});

mapStacksWhenBundled(import.meta.url);

const logger = new Logger();

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
    const applied = await migrate(db, await loadMigrations(MIGRATIONS_DIR));
    logger.info('schema migrated', { applied, migrationsHash: properties.MigrationsHash });
    return {
      PhysicalResourceId: PHYSICAL_ID,
      Data: { Applied: applied.length, MigrationsHash: properties.MigrationsHash },
    };
  } finally {
    await db.close();
  }
}
