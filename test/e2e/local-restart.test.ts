import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { startLocalStack } from '../../infra/local/local-stack.ts';
import { ApiClient } from '../support/api-client.ts';
import { contractParties } from '../support/contract-parties.ts';

/**
 * `npm start` keeps its database in the data folder, but the simulated EC2 and the running executions live
 * in memory: after a restart, enclaves the previous run left live are failed with that reason instead of
 * claiming parents that no longer exist.
 */
const FIXTURE = JSON.parse(
  readFileSync(new URL('../fixtures/enclave-create.json', import.meta.url), 'utf8'),
) as {
  configuration: { image: { pcr0: string; pcr1: string; pcr2: string } };
} & Record<string, unknown>;
const dataDir = mkdtempSync(join(tmpdir(), 'local-restart-'));
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

it('fails the enclaves a previous run left live, audited, and leaves final ones alone', async () => {
  const first = await startLocalStack({ dataDir, enclaves: { bootDelayMs: 20 } });
  let running: string;
  let failed: string;
  try {
    const parties = await contractParties(first.deps);
    const contractId = await parties.activeContract();
    const { pcr0, pcr1, pcr2 } = FIXTURE.configuration.image;
    await parties.measurementSet(contractId, { pcr0, pcr1, pcr2 });
    const provider = await ApiClient.as(first, 'provider');
    running = (await provider.post<{ id: string }>('/enclaves', { ...FIXTURE, contractId })).body.id;
    failed = (
      await provider.post<{ id: string }>('/enclaves', {
        ...FIXTURE,
        contractId,
        simulation: { fault: 'wrong-image' },
      })
    ).body.id;
    const deadline = Date.now() + 15_000;
    for (;;) {
      await first.publishEvents();
      const a = (await provider.get<{ status: string }>(`/enclaves/${running}`)).body.status;
      const b = (await provider.get<{ status: string }>(`/enclaves/${failed}`)).body.status;
      if (a === 'Running' && b === 'Failed') break;
      if (Date.now() > deadline) throw new Error(`not settled: ${a}, ${b}`);
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  } finally {
    await first.close();
  }

  const second = await startLocalStack({ dataDir });
  try {
    const provider = await ApiClient.as(second, 'provider');
    const after = (
      await provider.get<{ status: string; statusReason: string; version: number }>(`/enclaves/${running}`)
    ).body;
    expect(after.status).toBe('Failed');
    expect(after.statusReason).toMatch(/^local-stack-restarted: /);
    const untouched = (await provider.get<{ statusReason: string }>(`/enclaves/${failed}`)).body;
    expect(untouched.statusReason).toMatch(/^pcr_mismatch: /);
    const trail = await provider.get<{ records: { action: string }[]; verification: { valid: boolean } }>(
      `/audit?entityId=${running}`,
    );
    expect(trail.body.verification.valid).toBe(true);
    expect(trail.body.records.map((r) => r.action).at(-1)).toBe('fail');
  } finally {
    await second.close();
  }
}, 60_000);
