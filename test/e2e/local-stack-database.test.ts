import { afterAll, describe, expect, it } from 'vitest';
import { type LocalStack, startLocalStack } from '../../infra/local/local-stack.ts';
import { serverDatabase } from '../support/databases.ts';

/**
 * One local stack per server database: a second one would publish the first's outbox to its own bus and
 * provision the first's enclaves on its own simulated EC2.
 */
describe.runIf(process.env.TEST_DATABASE_URL)('a local stack on a PostgreSQL server database', () => {
  const open: LocalStack[] = [];
  const drops: (() => Promise<void>)[] = [];
  afterAll(async () => {
    for (const stack of open) await stack.close();
    for (const drop of drops) await drop();
  });

  it('refuses a second stack on the same database, directly or through the Data API, until the first closes', async () => {
    const database = (await serverDatabase())!;
    drops.push(() => database.drop());
    const other = (await serverDatabase())!;
    drops.push(() => other.drop());
    const first = await startLocalStack({ databaseUrl: database.url, scheduledJobs: false });
    open.push(first);

    for (const options of [{}, { viaDataApi: true }]) {
      await expect(
        startLocalStack({ ...options, databaseUrl: database.url, scheduledJobs: false }),
      ).rejects.toThrow(/^another local stack is running on database test_[0-9a-f]+: give each stack/);
    }
    // Another database of the same server is free.
    const beside = await startLocalStack({ databaseUrl: other.url, scheduledJobs: false });
    await beside.close();

    await first.close();
    open.length = 0;
    const second = await startLocalStack({
      viaDataApi: true,
      databaseUrl: database.url,
      scheduledJobs: false,
    });
    open.push(second);
    expect((await fetch(`${second.url}/api/v1/health`)).status).toBe(200);
  });
});
