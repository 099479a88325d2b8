import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { actingAs } from '../../infra/local/services/iam/local-caller.ts';
import { WORKFLOW_TIMING } from '../../shared/enclaves/provisioning-workflow.ts';
import { newInstanceId } from '../support/enclaves.ts';
import {
  type Enclave,
  type ProvisioningContext,
  provisioningHarness,
  startProvisioningStack,
} from '../support/provisioning.ts';

/**
 * WaitForAttestation's heartbeat, end to end through the rendered state machine: a parent that goes silent
 * is compensated at the heartbeat, long before the timeout; heartbeats keep a slow parent's wait open past
 * the heartbeat (but never past the timeout); and the heartbeat route refuses what the attestation route
 * refuses, changing nothing.
 */
const HEARTBEAT_MS = 600;
const TIMEOUT_MS = 4000;
let context: ProvisioningContext;

beforeAll(async () => {
  context = await startProvisioningStack({
    enclaves: { attestationTimeoutMs: TIMEOUT_MS, attestationHeartbeatMs: HEARTBEAT_MS, bootDelayMs: 20 },
  });
});
afterAll(async () => context?.stack.close());

const harness = provisioningHarness(() => context);
const { asInstance, create, settle, settleInstances, waitUntilWaiting } = harness;

async function heartbeat(enclaveId: string, instanceId: string, body: unknown = { phase: 'fetching-image' }) {
  return (await asInstance(instanceId)).post<Record<string, unknown>>(
    `/enclaves/${enclaveId}/attestation/heartbeat`,
    body,
  );
}

/** Heartbeats every `everyMs` until `forMs` have passed or the wait refuses one; the answers' statuses. */
async function keepAlive(enclaveId: string, instanceId: string, forMs: number, everyMs = 100) {
  const statuses: number[] = [];
  const until = Date.now() + forMs;
  while (Date.now() < until) {
    const res = await heartbeat(enclaveId, instanceId);
    statuses.push(res.status);
    if (res.status !== 202) break;
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
  return statuses;
}

async function versionOf(enclaveId: string): Promise<number> {
  return (await context.provider.get<Enclave>(`/enclaves/${enclaveId}`)).body.version;
}

/** The enclave's own audit records (actions, in order). */
async function trailOf(enclaveId: string): Promise<string[]> {
  const { body } = await context.provider.get<{ records: { action: string }[] }>(
    `/audit?entityId=${enclaveId}`,
  );
  return body.records.map((r) => r.action);
}

async function outboxCount(): Promise<number> {
  const { rows } = await context.stack.deps.db.query<{ n: number }>('SELECT count(*)::int AS n FROM outbox');
  return rows[0]!.n;
}

describe('the attestation wait heartbeat', () => {
  it('a silent parent misses the heartbeat: Failed with that reason, its parent terminated', async () => {
    const id = await create('no-callback');
    const enclave = await settle(id, ['Failed']);
    expect(enclave.statusReason).toMatch(
      new RegExp(
        `^attestation_timeout: .*no heartbeat for ${WORKFLOW_TIMING.attestationHeartbeatSeconds} seconds`,
      ),
    );
    expect(harness.executionOf(id).path).toContain('Compensate');
    await settleInstances(id, 'terminated');
    await harness.assertNoOrphans();
  });

  it('heartbeats keep a slow parent waiting past the heartbeat, and its document then completes the wait', async () => {
    const id = await create('no-callback');
    const instanceId = await waitUntilWaiting(id);
    const version = await versionOf(id);
    const trail = await trailOf(id);
    const outbox = await outboxCount();
    // Three heartbeat periods, far longer than a silent wait survives.
    const statuses = await keepAlive(id, instanceId, 3 * HEARTBEAT_MS);
    expect(new Set(statuses)).toEqual(new Set([202]));
    expect(statuses.length).toBeGreaterThan(3);
    const res = await heartbeat(id, instanceId, { phase: 'attesting' });
    expect(res.body).toEqual({ enclaveId: id, instanceId, phase: 'attesting', status: 'waiting' });
    // The parent keeps beating while the checks below run (on a loaded machine they outlast the 600 ms the
    // wait stays open after a heartbeat); the beats change nothing, which is what the checks hold.
    let beating = true;
    const beats = (async () => {
      while (beating) {
        await heartbeat(id, instanceId, { phase: 'attesting' });
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    })();
    // Heartbeats are not changes: no version, no audit record, no event.
    expect(await versionOf(id)).toBe(version);
    expect(await harness.refusalsOf(id)).toEqual([]);
    expect(await trailOf(id)).toEqual(trail);
    expect(await outboxCount()).toBe(outbox);
    expect((await context.provider.get<Enclave>(`/enclaves/${id}`)).body.status).toBe('Initializing');

    const document = await harness.attestAsParent(id);
    beating = false;
    await beats;
    const submitted = await (await asInstance(instanceId)).post(`/enclaves/${id}/attestation`, {
      document: Buffer.from(document).toString('base64'),
    });
    expect(submitted.status, submitted.text).toBe(202);
    const enclave = await settle(id, ['Running', 'Failed']);
    expect(enclave.status, enclave.statusReason ?? '').toBe('Running');
    // The wait is over: a later heartbeat is refused (the enclave no longer awaits an attestation).
    const late = await heartbeat(id, instanceId);
    expect(late.status).toBe(409);
    expect(late.body.type).toMatch(/\/attestation-not-awaited$/);
    await harness.assertNoOrphans();
  });

  it('heartbeats never outlast the timeout', async () => {
    const id = await create('no-callback');
    const instanceId = await waitUntilWaiting(id);
    const statuses = await keepAlive(id, instanceId, 3 * TIMEOUT_MS);
    // Accepted until the wait timed out, then refused: the wait is gone or the enclave already Failed.
    expect(statuses.slice(0, -1).every((s) => s === 202)).toBe(true);
    expect([409, 410]).toContain(statuses.at(-1));
    const enclave = await settle(id, ['Failed']);
    expect(enclave.statusReason).toMatch(
      new RegExp(`^attestation_timeout: .*more than ${WORKFLOW_TIMING.attestationTimeoutSeconds} seconds`),
    );
    await settleInstances(id, 'terminated');
    await harness.assertNoOrphans();
  });

  it('a heartbeat the task no longer takes is 410, or 409 when the document completed the wait meanwhile', async () => {
    const id = await create('no-callback');
    const instanceId = await waitUntilWaiting(id);
    const { callbacks, taskTokens } = context.stack.deps.workflow!;
    const heartbeatOf = callbacks.heartbeat;
    try {
      // Step Functions answers TaskTimedOut (the wait ended between the read and the heartbeat).
      callbacks.heartbeat = async () => 'gone';
      const late = await heartbeat(id, instanceId);
      expect(late.status).toBe(410);
      expect(late.body.type).toMatch(/\/attestation-wait-expired$/);
      // The document took the wait between the read and the heartbeat: not "too late", already submitted.
      // The submission route takes it (as its own function: this runs within the heartbeat route's call).
      const submission = context.stack.enclaves.iam!.routes.get('submitAttestation')!;
      callbacks.heartbeat = async () => {
        expect(typeof (await actingAs(submission, taskTokens).take(id, { instanceId }))).toBe('object');
        return 'gone';
      };
      const raced = await heartbeat(id, instanceId);
      expect(raced.status).toBe(409);
      expect(raced.body.type).toMatch(/\/attestation-already-submitted$/);
    } finally {
      callbacks.heartbeat = heartbeatOf;
    }
    expect(await harness.refusalsOf(id)).toEqual([]);
    await context.provider.post(`/enclaves/${id}/terminate`, { reason: 'done' });
    await settleInstances(id, 'terminated');
  });

  it('refuses other instances (audited), users and malformed bodies, and changes nothing', async () => {
    const id = await create('no-callback');
    const instanceId = await waitUntilWaiting(id);
    const version = await versionOf(id);

    const foreign = await heartbeat(id, newInstanceId());
    expect(foreign.status).toBe(403);
    expect(foreign.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(await harness.refusalsOf(id)).toEqual([
      expect.objectContaining({ action: 'attestation-heartbeat', code: 'wrong-instance' }),
    ]);

    const user = await context.provider.post(`/enclaves/${id}/attestation/heartbeat`, { phase: 'booting' });
    expect([401, 403]).toContain(user.status);

    for (const body of [{}, { phase: 'sleeping' }, { phase: 'booting', extra: 1 }, [], 'booting']) {
      const res = await heartbeat(id, instanceId, body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    }
    expect((await heartbeat('00000000-0000-4000-8000-000000000000', instanceId)).status).toBe(404);

    expect(await versionOf(id)).toBe(version);
    expect(await harness.refusalsOf(id)).toHaveLength(1);
    // The parent's own heartbeat still works: none of the refusals used up or ended the wait.
    expect((await heartbeat(id, instanceId)).status).toBe(202);
    await context.provider.post(`/enclaves/${id}/terminate`, { reason: 'done' });
    await settleInstances(id, 'terminated');
  });
});
