import { RDSDataClient } from '@aws-sdk/client-rds-data';
import { DataApiDatabase } from '../../shared/database/data-api-database.ts';
import * as z from '../../shared/domain/zod.ts';

/**
 * How a deployment step's custom resource names the database it runs statements on: the properties
 * `Database.dataApiProperties` renders (infra/constructs/database.ts). Each step extends the schema with
 * its own properties.
 */
export const DataApiTargetSchema = z.object({
  ResourceArn: z.string().check(z.minLength(1)),
  SecretArn: z.string().check(z.minLength(1)),
  Database: z.string().check(z.minLength(1)),
});
export type DataApiTarget = z.infer<typeof DataApiTargetSchema>;

// The adapter owns the retry policy (the SDK does not retry DatabaseResumingException); no second layer.
const client = new RDSDataClient({ maxAttempts: 1 });

/** The database a deployment step names, through the Data API adapter the functions use. */
export function openDeploymentDatabase(
  target: DataApiTarget,
  options: { readonly continueAfterTimeout?: boolean } = {},
): DataApiDatabase {
  return new DataApiDatabase({
    resourceArn: target.ResourceArn,
    secretArn: target.SecretArn,
    database: target.Database,
    client,
    ...options,
  });
}
