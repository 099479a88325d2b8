import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { STATES } from '../../shared/enclaves/provisioning-workflow.ts';
import { stackDatabase, stackDatabases } from '../support/databases.ts';
import {
  type ProvisioningContext,
  provisioningHarness,
  startProvisioningStack,
} from '../support/provisioning.ts';

/**
 * The provisioning workflow on the deployed database path (the production Data API adapter against the
 * Data API emulator) and on a real PostgreSQL server: the steps' claims, activations and failures are the
 * same single-statement audited writes there as on PGlite (enclave-provisioning.test.ts covers every path).
 */
describe.each(stackDatabases(['data-api', 'postgres']))('provisioning on $name', ({ database }) => {
  let context: ProvisioningContext;
  let drop = async () => {};

  beforeAll(async () => {
    const opened = await stackDatabase(database);
    drop = opened.drop;
    context = await startProvisioningStack({
      ...opened.options,
      // Generous waits: this test is about the databases, not the timeouts, and CI machines are loaded.
      enclaves: { bootDelayMs: 20, attestationTimeoutMs: 15_000, attestationHeartbeatMs: 15_000 },
    });
  });
  afterAll(async () => {
    await context?.stack.close();
    await drop();
  });

  const { create, settle, instancesOf, executionOf } = provisioningHarness(() => context);

  it('reaches Running, and a wrong image reaches Failed with its parent terminated', async () => {
    const [good, bad] = await Promise.all([create(), create('wrong-image')]);
    const [running, failed] = await Promise.all([
      settle(good, ['Running', 'Failed'], 20_000),
      settle(bad, ['Running', 'Failed'], 20_000),
    ]);
    expect(running.status, running.statusReason ?? '').toBe('Running');
    expect(failed.status).toBe('Failed');
    expect(failed.statusReason).toMatch(/^pcr_mismatch: /);
    expect(instancesOf(good).map((i) => i.state)).toEqual(['running']);
    expect(instancesOf(bad).map((i) => i.state)).toEqual(['terminated']);
    expect(executionOf(good).path.at(-1)).toBe(STATES.provisioned);
    expect(executionOf(bad).path.at(-1)).toBe(STATES.provisioningFailed);
    const trail = await context.provider.get<{
      records: { action: string }[];
      verification: { valid: boolean };
    }>(`/audit?entityId=${good}`);
    expect(trail.body.verification.valid).toBe(true);
    expect(trail.body.records.map((r) => r.action)).toEqual(['create', 'provision', 'activate']);
  });
});
