import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { type LocalStack, startLocalStack } from '../../infra/local/local-stack.ts';
import { ApiClient } from '../support/api-client.ts';
import { CREATE_FIXTURE } from '../support/contracts.ts';

/**
 * Data API faults through the whole HTTP path (dev server → handler → Data API adapter → emulator):
 * transient errors are retried and the request succeeds; when they persist the client gets a 503 with
 * Retry-After; non-transient errors are a 500 that reveals nothing; in every failure nothing is written.
 */
let stack: LocalStack;
let provider: ApiClient;

beforeAll(async () => {
  stack = await startLocalStack({
    viaDataApi: true,
    // Only the requests under test reach the emulator: a scheduled job's statement would take a fault meant
    // for them.
    scheduledJobs: false,
    dataApiRetry: { maxAttempts: 5, baseDelayMs: 5, maxDelayMs: 20, maxElapsedMs: 3000 },
  });
  provider = await ApiClient.as(stack, 'provider');
});
afterEach(() => stack.dataApi!.clearFaults());
afterAll(async () => stack?.close());

async function contractCount(): Promise<number> {
  const { rows } = await stack.deps.db.query<{ n: number }>('SELECT count(*)::int AS n FROM contracts');
  return rows[0]!.n;
}

it('retries DatabaseResumingException (Aurora waking from auto-pause) and succeeds', async () => {
  stack.dataApi!.injectFaults('DatabaseResumingException', 3);
  const res = await provider.post('/contracts', CREATE_FIXTURE);
  expect(res.status).toBe(201);
});

it('answers 503 with Retry-After when the database stays unavailable, and writes nothing', async () => {
  const before = await contractCount();
  stack.dataApi!.injectFaults('ServiceUnavailableError', 1000);
  const res = await provider.post('/contracts', CREATE_FIXTURE);
  expect(res.status).toBe(503);
  expect(res.headers.get('content-type')).toBe('application/problem+json');
  expect(res.headers.get('retry-after')).toBe('5');
  expect(res.text).not.toMatch(/Data API|ServiceUnavailable|SQL/);
  stack.dataApi!.clearFaults();
  expect(await contractCount()).toBe(before);
});

it('never retries a statement timeout on a write: a 500 that leaks nothing, and nothing written', async () => {
  const before = await contractCount();
  stack.dataApi!.injectFaults('StatementTimeoutException', 1);
  const res = await provider.post('/contracts', CREATE_FIXTURE);
  expect(res.status).toBe(500);
  expect(res.body).toMatchObject({ type: expect.stringContaining('internal-error'), status: 500 });
  expect(res.text).not.toMatch(/timeout|Statement|Data API/i);
  expect(await contractCount()).toBe(before);
  // the fault was consumed once: the next identical request succeeds
  expect((await provider.post('/contracts', CREATE_FIXTURE)).status).toBe(201);
});
