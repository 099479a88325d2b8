import { randomUUID } from 'node:crypto';
import type { Database } from '../database/database.ts';
import type { Signer } from '../signing/signer.ts';
import type { WorkflowPorts } from '../workflow/workflow-ports.ts';
import { parseConfig, type RuntimeConfig } from './config.ts';
import type { Dependencies } from './dependencies.ts';

/**
 * Composition root: builds the adapters once per cold start from the parsed configuration. Each adapter is
 * imported dynamically so a Lambda bundle evaluates only the one it uses. The local stack and tests
 * install their own dependencies with `useRuntime` before any handler runs.
 */
let current: Promise<Dependencies> | undefined;

export function runtime(): Promise<Dependencies> {
  current ??= buildRuntime(parseConfig(process.env));
  return current;
}

/** Installs the dependencies every handler of this process will use (local stack, tests). */
export function useRuntime(deps: Dependencies): void {
  current = Promise.resolve(deps);
}

/**
 * The deployed composition. It never sets `Dependencies.local`: the local-only features (simulation
 * faults, debug-mode enclaves, the simulator's attestation root) exist only where the local stack installs
 * them with `useRuntime`, whatever the environment says.
 */
export async function buildRuntime(config: RuntimeConfig): Promise<Dependencies> {
  const workflow = await openWorkflow(config);
  return {
    db: await openDatabase(config),
    signer: await openSigner(config),
    now: () => new Date(),
    newId: randomUUID,
    region: config.AWS_REGION,
    ...(workflow ? { workflow } : {}),
  };
}

/** The workflow ports when the function is configured for them (`WORKFLOW_TABLE_NAME`), else none. */
async function openWorkflow(config: RuntimeConfig): Promise<WorkflowPorts | undefined> {
  const tableName = config.WORKFLOW_TABLE_NAME;
  if (!tableName) return undefined;
  const [
    { DynamoDBClient },
    { DynamoDbNonceStore },
    { DynamoDbTaskTokenStore },
    { SfnTaskCallback },
    { Ec2InstanceControl },
  ] = await Promise.all([
    import('@aws-sdk/client-dynamodb'),
    import('../workflow/dynamodb-nonce-store.ts'),
    import('../workflow/dynamodb-task-token-store.ts'),
    import('../workflow/sfn-task-callback.ts'),
    import('../workflow/ec2-instance-control.ts'),
  ]);
  // One DynamoDB client for both stores (same table); SDK clients are built here, once per cold start.
  const dynamodb = new DynamoDBClient({});
  return {
    nonces: new DynamoDbNonceStore({ tableName, client: dynamodb }),
    taskTokens: new DynamoDbTaskTokenStore({ tableName, client: dynamodb }),
    callbacks: new SfnTaskCallback(),
    instances: new Ec2InstanceControl(),
    // Empty: every `iam` route refuses (fail closed) rather than trusting an unconfigured role.
    parentRoleName: config.PARENT_ROLE_NAME ?? '',
  };
}

async function openDatabase(config: RuntimeConfig): Promise<Database> {
  const db = config.database;
  switch (db.DATABASE_DRIVER) {
    case 'data-api': {
      const { DataApiDatabase } = await import('../database/data-api-database.ts');
      const { RDSDataClient } = await import('@aws-sdk/client-rds-data');
      return new DataApiDatabase({
        resourceArn: db.DATA_API_RESOURCE_ARN,
        secretArn: db.DATA_API_SECRET_ARN,
        database: db.DATABASE_NAME,
        ...(db.DATA_API_ENDPOINT
          ? {
              client: new RDSDataClient({
                endpoint: db.DATA_API_ENDPOINT,
                region: config.AWS_REGION ?? 'eu-central-1',
                credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
                // The adapter owns the retry policy (DatabaseResumingException is not retried by the SDK).
                maxAttempts: 1,
              }),
            }
          : {}),
      });
    }
    case 'postgres': {
      const { PostgresDatabase } = await import('../database/postgres-database.ts');
      return new PostgresDatabase(db.DATABASE_URL);
    }
    case 'pglite': {
      const { PgliteDatabase } = await import('../database/pglite-database.ts');
      return PgliteDatabase.open(db.PGLITE_DATA_DIR);
    }
  }
}

async function openSigner(config: RuntimeConfig): Promise<Signer> {
  if (config.SIGNER === 'kms') {
    const { KmsSigner } = await import('../signing/kms-signer.ts');
    return new KmsSigner({ keyId: config.SIGNING_KEY_ID! });
  }
  const { LocalSigner } = await import('../signing/local-signer.ts');
  return LocalSigner.create();
}
