import { RDSDataClient } from '@aws-sdk/client-rds-data';
import { DataApiDatabase } from '../../../../shared/database/data-api-database.ts';
import type { DataApiRetryOptions } from '../../../../shared/database/data-api-retry.ts';
import { type DataApiBackend, type DataApiEmulator, startDataApiEmulator } from './data-api-emulator.ts';

/**
 * The production Data API adapter, through the real SDK client, against a local emulator over `backend`:
 * how the local stack's `--data-api` mode and the Data API test suites reach the database.
 */
export async function openLocalDataApi(
  backend: DataApiBackend,
  options: { retry?: Partial<DataApiRetryOptions> } = {},
): Promise<{ db: DataApiDatabase; emulator: DataApiEmulator; close(): Promise<void> }> {
  const emulator = await startDataApiEmulator({ backend });
  const client = new RDSDataClient({
    endpoint: emulator.endpoint,
    region: 'eu-central-1',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    // The adapter owns the retry policy (DatabaseResumingException is not retried by the SDK).
    maxAttempts: 1,
  });
  const db = new DataApiDatabase({
    resourceArn: emulator.resourceArn,
    secretArn: emulator.secretArn,
    database: 'postgres',
    client,
    ...(options.retry ? { retry: options.retry } : {}),
  });
  return {
    db,
    emulator,
    async close() {
      await db.close();
      client.destroy();
      await emulator.close();
    },
  };
}
