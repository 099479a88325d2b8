import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalStack, startLocalStack } from '../../infra/local/local-stack.ts';
import { STATES } from '../../shared/enclaves/provisioning-workflow.ts';
import { INSTANCE_TAGS } from '../../shared/workflow/workflow-ports.ts';
import { ApiClient } from '../support/api-client.ts';
import { contractParties } from '../support/contract-parties.ts';

/**
 * The provisioning workflow on the deployed database path (the production Data API adapter against the
 * Data API emulator) and on a real PostgreSQL server: the steps' claims, activations and failures are the
 * same single-statement audited writes there as on PGlite (enclave-provisioning.test.ts covers every path).
 */
const FIXTURE = JSON.parse(
  readFileSync(new URL('../fixtures/enclave-create.json', import.meta.url), 'utf8'),
) as {
  configuration: { image: { pcr0: string; pcr1: string; pcr2: string } };
} & Record<string, unknown>;

const MODES = [
  { name: 'the Data API emulator', options: { viaDataApi: true } },
  ...(process.env.TEST_DATABASE_URL
    ? [{ name: 'PostgreSQL', options: { databaseUrl: process.env.TEST_DATABASE_URL } }]
    : []),
];

describe.each(MODES)('provisioning on $name', ({ options }) => {
  let stack: LocalStack;
  let provider: ApiClient;
  let contractId: string;

  beforeAll(async () => {
    stack = await startLocalStack({
      ...options,
      enclaves: { bootDelayMs: 20, attestationTimeoutMs: 1500, attestationHeartbeatMs: 1500 },
    });
    const parties = await contractParties(stack.deps);
    contractId = await parties.activeContract();
    const { pcr0, pcr1, pcr2 } = FIXTURE.configuration.image;
    await parties.measurementSet(contractId, { pcr0, pcr1, pcr2 });
    provider = await ApiClient.as(stack, 'provider');
  });
  afterAll(async () => stack?.close());

  async function settle(
    id: string,
  ): Promise<{ status: string; statusReason: string | null; instanceId: string }> {
    const deadline = Date.now() + 20_000;
    for (;;) {
      await stack.publishEvents();
      const { body } = await provider.get<{
        status: string;
        statusReason: string | null;
        instanceId: string;
      }>(`/enclaves/${id}`);
      if (body.status === 'Running' || body.status === 'Failed') {
        await stack.enclaves.runner().idle();
        await stack.enclaves.ec2.settled();
        return body;
      }
      if (Date.now() > deadline) throw new Error(`enclave ${id} stayed ${body.status}`);
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }

  it('reaches Running, and a wrong image reaches Failed with its parent terminated', async () => {
    const good = (await provider.post<{ id: string }>('/enclaves', { ...FIXTURE, contractId })).body.id;
    const bad = (
      await provider.post<{ id: string }>('/enclaves', {
        ...FIXTURE,
        contractId,
        simulation: { fault: 'wrong-image' },
      })
    ).body.id;
    const [running, failed] = await Promise.all([settle(good), settle(bad)]);
    expect(running.status, running.statusReason ?? '').toBe('Running');
    expect(failed.status).toBe('Failed');
    expect(failed.statusReason).toMatch(/^pcr_mismatch: /);
    const inventory = stack.enclaves.ec2.inventory();
    const of = (id: string) => inventory.filter((i) => i.tags[INSTANCE_TAGS.enclaveId] === id);
    expect(of(good).map((i) => i.state)).toEqual(['running']);
    expect(of(bad).map((i) => i.state)).toEqual(['terminated']);
    const runs = stack.enclaves.runner().executions();
    expect(runs.find((e) => e.input.enclaveId === good)!.path.at(-1)).toBe(STATES.provisioned);
    expect(runs.find((e) => e.input.enclaveId === bad)!.path.at(-1)).toBe(STATES.provisioningFailed);
    const trail = await provider.get<{ records: { action: string }[]; verification: { valid: boolean } }>(
      `/audit?entityId=${good}`,
    );
    expect(trail.body.verification.valid).toBe(true);
    expect(trail.body.records.map((r) => r.action)).toEqual(['create', 'provision', 'activate']);
  });
});
