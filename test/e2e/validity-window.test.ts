import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { LocalStack } from '../../infra/local/local-stack.ts';
import { startLocalStack } from '../../infra/local/local-stack.ts';
import { sql } from '../../shared/database/database.ts';
import { STATES } from '../../shared/enclaves/provisioning-workflow.ts';
import { ApiClient, type ApiResponse, PartyKey, seeded } from '../support/api-client.ts';
import { CREATE_FIXTURE } from '../support/contracts.ts';
import { activateAsWorkflow } from '../support/enclaves.ts';
import { ENCLAVE_FIXTURE, type Enclave, provisioningHarness } from '../support/provisioning.ts';

/**
 * The contract validity window `[start, end)` holds at every step (issue 8, section 3), over HTTP and
 * through the rendered provisioning workflow. The stack's clock (`deps.now`) is pinned at the boundary
 * instants instead of waiting for them; the expiry sweep does not run (`scheduledJobs: false`), so a
 * contract whose window has ended is still Active here, and every refusal is the window's own check.
 */

/** The stack's clock: the real time, or the instant a test pinned (reset after each test). */
let pinned: number | undefined;
let stack: LocalStack;
let provider: ApiClient;
let consumer: ApiClient;
const keys = { provider: new PartyKey('ES256'), consumer: new PartyKey('ES384') };
const kids = { provider: '', consumer: '' };
/** The contract the provisioning harness creates its enclaves under (set by the test that uses it). */
let harnessContractId = '';

beforeAll(async () => {
  stack = await startLocalStack({
    scheduledJobs: false,
    now: () => new Date(pinned ?? Date.now()),
    enclaves: { bootDelayMs: 20 },
  });
  [provider, consumer] = await Promise.all([
    ApiClient.as(stack, 'provider'),
    ApiClient.as(stack, 'consumer'),
  ]);
  kids.provider = await keys.provider.register(provider, seeded.provider);
  kids.consumer = await keys.consumer.register(consumer, seeded.consumer);
});
afterAll(async () => stack?.close());
afterEach(() => {
  pinned = undefined;
});

const {
  attestAsParent,
  asInstance,
  create,
  executionOf,
  instancesOf,
  settle,
  settleInstances,
  waitUntilWaiting,
} = provisioningHarness(() => ({ stack, provider, contractId: harnessContractId }));

const iso = (ms: number) => new Date(ms).toISOString();
const parties = { provider: () => provider, consumer: () => consumer } as const;
type Party = keyof typeof parties;

function expectProblem(res: ApiResponse, status: number, type: string): void {
  expect(res.status, res.text).toBe(status);
  expect(res.headers.get('content-type')).toBe('application/problem+json');
  expect(res.body.type).toBe(`https://problems.enclave-contracts.dev/${type}`);
}

/** A contract under the fixture's terms with this window, signed by both parties (PendingSignature). */
async function signedContract(validity: { start: string; end: string }): Promise<string> {
  const created = await provider.post<{ id: string; signingPayload: string }>('/contracts', {
    ...CREATE_FIXTURE,
    terms: { ...CREATE_FIXTURE.terms, validity },
  });
  expect(created.status, created.text).toBe(201);
  for (const party of ['provider', 'consumer'] as const) {
    const signed = await parties[party]().post(`/contracts/${created.body.id}/sign`, {
      type: 'digital',
      kid: kids[party],
      signature: keys[party].sign(created.body.signingPayload),
    });
    expect(signed.status, signed.text).toBe(200);
  }
  return created.body.id;
}

/** An Active contract whose window ends at `end` (it opened in 2026), with the fixture image approved. */
async function activeContractEndingAt(end: string): Promise<string> {
  const id = await signedContract({ start: CREATE_FIXTURE.terms.validity.start, end });
  const activated = await consumer.post<{ status: string }>(`/contracts/${id}/activate`);
  expect(activated.status, activated.text).toBe(200);
  const { pcr0, pcr1, pcr2 } = ENCLAVE_FIXTURE.configuration.image;
  const setId = await propose(id, { pcr0, pcr1, pcr2 });
  for (const party of ['provider', 'consumer'] as const)
    expect((await approve(id, setId, party)).status).toBe(200);
  return id;
}

async function propose(contractId: string, m: { pcr0: string; pcr1: string; pcr2: string }): Promise<string> {
  const res = await provider.post<{ id: string }>(`/contracts/${contractId}/measurements`, m);
  expect(res.status, res.text).toBe(201);
  return res.body.id;
}

async function approve(contractId: string, setId: string, party: Party) {
  const path = `/contracts/${contractId}/measurements/${setId}`;
  const { body } = await parties[party]().get<{ items: { id: string; signingPayload: string }[] }>(
    `/contracts/${contractId}/measurements`,
  );
  const payload = body.items.find((s) => s.id === setId)!.signingPayload;
  return parties[party]().post<{ status?: string; detail?: string }>(`${path}/approve`, {
    kid: kids[party],
    signature: keys[party].sign(payload),
  });
}

async function contractStatus(id: string): Promise<string> {
  return (await provider.get<{ status: string }>(`/contracts/${id}`)).body.status;
}

async function enclaveCount(): Promise<number> {
  const { rows } = await stack.deps.db.query<{ n: number }>('SELECT count(*)::int AS n FROM enclaves');
  return rows[0]!.n;
}

/** The `contract-outside-validity` issue of a 422 `enclave-incompatible`, naming the instant. */
function outsideValidity(instantText: string) {
  return expect.objectContaining({
    requirement: 'contract-outside-validity',
    field: 'contractId',
    message: expect.stringContaining(instantText),
  });
}

describe('the provisioning workflow inside the validity window only', () => {
  // First in the file: its outbox publishing must not start executions for the other tests' enclaves.
  it('does not make an enclave Running 0.7 s after validity.end: Activate refuses, the execution compensates', async () => {
    // Near enough that the attestation document is still fresh (5 min) when the clock jumps past the end.
    const end = iso(Date.now() + 120_000);
    harnessContractId = await activeContractEndingAt(end);
    const id = await create('no-callback');
    const instanceId = await waitUntilWaiting(id);
    const document = await attestAsParent(id);

    pinned = Date.parse(end) + 700;
    const submitted = await (await asInstance(instanceId)).post(`/enclaves/${id}/attestation`, {
      document: Buffer.from(document).toString('base64'),
    });
    expect(submitted.status, submitted.text).toBe(202);
    const enclave = await settle(id, ['Running', 'Failed']);

    expect(enclave.status).toBe('Failed');
    expect(enclave.statusReason).toContain(`the contract validity window ended at ${end}`);
    expect(enclave.attestation).toBeNull(); // nothing verified was ever stored
    const execution = executionOf(id);
    expect(execution.path).toContain(STATES.verifyAttestation);
    expect(execution.path).toContain(STATES.activate);
    expect(execution.path.slice(execution.path.indexOf(STATES.activate) + 1)).toContain(STATES.compensate);
    await settleInstances(id, 'terminated');
    expect(instancesOf(id).map((i) => i.state)).toEqual(['terminated']);
    // Never Running, not even for a moment: the audit trail has no activation.
    const { rows } = await stack.deps.db.query<{ action: string }>(
      'SELECT action FROM audit_log WHERE entity_id = :id ORDER BY seq',
      { id: sql.uuid(id) },
    );
    expect(rows.map((r) => r.action)).not.toContain('activate');
    // The sweep has not run: the refusal was the window's own check.
    expect(await contractStatus(harnessContractId)).toBe('Active');
  });
});

describe('contract activation', () => {
  it('is refused one millisecond before validity.start with a 422 naming it, and not offered; allowed at it', async () => {
    const start = Date.now() + 3_600_000;
    const id = await signedContract({ start: iso(start), end: iso(start + 86_400_000) });

    pinned = start - 1;
    const before = await consumer.get<{ availableActions: string[] }>(`/contracts/${id}`);
    expect(before.body.availableActions).not.toContain('activate');
    const early = await consumer.post(`/contracts/${id}/activate`);
    expectProblem(early, 422, 'transition-guard-failed');
    expect(early.body.detail).toBe(`Cannot activate: the contract validity window opens at ${iso(start)}.`);
    expect(await contractStatus(id)).toBe('PendingSignature');
    const listed = await consumer.get<{ items: { id: string; availableActions: string[] }[] }>(
      '/contracts?limit=100',
    );
    expect(listed.body.items.find((c) => c.id === id)?.availableActions).not.toContain('activate');

    pinned = start;
    const at = await consumer.get<{ availableActions: string[] }>(`/contracts/${id}`);
    expect(at.body.availableActions).toContain('activate');
    const activated = await consumer.post<{ status: string }>(`/contracts/${id}/activate`);
    expect(activated.status, activated.text).toBe(200);
    expect(activated.body.status).toBe('Active');
  });
});

describe('at validity.end, before the expiry sweep marked the contract Expired', () => {
  it('no enclave is created or resumed and no measurement set approved; one millisecond earlier all three are', async () => {
    const end = iso(Date.now() + 600_000);
    const contractId = await activeContractEndingAt(end);
    const body = { ...structuredClone(ENCLAVE_FIXTURE), contractId };
    // A Suspended enclave to resume, and a proposed set to approve.
    const created = await provider.post<Enclave>('/enclaves', body);
    expect(created.status, created.text).toBe(201);
    await activateAsWorkflow(stack.deps, created.body);
    const suspended = await provider.post<Enclave>(`/enclaves/${created.body.id}/suspend`, {
      reason: 'pause',
    });
    expect(suspended.status, suspended.text).toBe(200);
    const setId = await propose(contractId, {
      pcr0: 'd'.repeat(96),
      pcr1: 'e'.repeat(96),
      pcr2: 'f'.repeat(96),
    });

    for (const delta of [0, 1]) {
      pinned = Date.parse(end) + delta;
      const enclaves = await enclaveCount();
      const refusedCreate = await provider.post<{ errors: unknown[] }>('/enclaves', body);
      expectProblem(refusedCreate, 422, 'enclave-incompatible');
      expect(refusedCreate.body.errors).toEqual([outsideValidity(`ended at ${end}`)]);
      expect(await enclaveCount()).toBe(enclaves);

      const refusedResume = await provider.post<{ errors: unknown[] }>(
        `/enclaves/${created.body.id}/resume`,
        {},
      );
      expectProblem(refusedResume, 422, 'enclave-incompatible');
      expect(refusedResume.body.errors).toEqual([outsideValidity(`ended at ${end}`)]);
      const after = await provider.get<Enclave>(`/enclaves/${created.body.id}`);
      expect(after.body).toMatchObject({ status: 'Suspended', version: suspended.body.version });

      const refusedApproval = await approve(contractId, setId, 'provider');
      expectProblem(refusedApproval, 422, 'contract-outside-validity');
      expect(refusedApproval.body.detail).toBe(
        `Cannot approve image measurements: the contract validity window ended at ${end}.`,
      );
    }
    expect(await contractStatus(contractId)).toBe('Active');
    // An edit runs nothing (resume checks the window), so the contract's standing is not held against it.
    const edited = await provider.put<Enclave>(
      `/enclaves/${created.body.id}`,
      { name: 'renamed', configuration: created.body.configuration },
      { 'if-match': `"${suspended.body.version}"` },
    );
    expect(edited.status, edited.text).toBe(200);

    pinned = Date.parse(end) - 1;
    expect((await provider.post('/enclaves', body)).status).toBe(201);
    const resumed = await provider.post<Enclave>(`/enclaves/${created.body.id}/resume`, {});
    expect(resumed.status, resumed.text).toBe(200);
    expect(resumed.body.status).toBe('Initializing');
    const approved = await approve(contractId, setId, 'provider');
    expect(approved.status, approved.text).toBe(200);
  });
});

describe('measurement approval', () => {
  it('is refused one millisecond before validity.start with a 422 naming it; allowed at it', async () => {
    const start = Date.now() + 3_600_000;
    const created = await provider.post<{ id: string }>('/contracts', {
      ...CREATE_FIXTURE,
      terms: { ...CREATE_FIXTURE.terms, validity: { start: iso(start), end: iso(start + 86_400_000) } },
    });
    expect(created.status, created.text).toBe(201);
    // Proposing ahead of the window is fine: nothing runs on a proposal.
    const setId = await propose(created.body.id, {
      pcr0: 'a'.repeat(96),
      pcr1: 'b'.repeat(96),
      pcr2: 'c'.repeat(96),
    });

    pinned = start - 1;
    const early = await approve(created.body.id, setId, 'consumer');
    expectProblem(early, 422, 'contract-outside-validity');
    expect(early.body.detail).toBe(
      `Cannot approve image measurements: the contract validity window opens at ${iso(start)}.`,
    );

    pinned = start;
    const approved = await approve(created.body.id, setId, 'consumer');
    expect(approved.status, approved.text).toBe(200);
  });
});
