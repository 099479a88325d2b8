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
  options: { retry?: Partial<DataApiRetryOptions>; secretUsers?: Readonly<Record<string, string>> } = {},
): Promise<{
  /** Signed in with the emulator's own secret: the backend's user (the master user, locally). */
  db: DataApiDatabase;
  /** The adapter signed in with another secret (one of `secretUsers`), as a function configured with it. */
  withSecret(secretArn: string): DataApiDatabase;
  emulator: DataApiEmulator;
  close(): Promise<void>;
}> {
  const emulator = await startDataApiEmulator({
    backend,
    ...(options.secretUsers ? { secretUsers: options.secretUsers } : {}),
  });
  const client = new RDSDataClient({
    endpoint: emulator.endpoint,
    region: 'eu-central-1',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    // The adapter owns the retry policy (DatabaseResumingException is not retried by the SDK).
    maxAttempts: 1,
  });
  const opened: DataApiDatabase[] = [];
  const withSecret = (secretArn: string) => {
    const db = new DataApiDatabase({
      resourceArn: emulator.resourceArn,
      secretArn,
      database: 'postgres',
      client,
      ...(options.retry ? { retry: options.retry } : {}),
    });
    opened.push(db);
    return db;
  };
  const db = withSecret(emulator.secretArn);
  return {
    db,
    withSecret,
    emulator,
    async close() {
      for (const each of opened) await each.close();
      client.destroy();
      await emulator.close();
    },
  };
}
