import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalStack, startLocalStack } from '../../infra/local/local-stack.ts';
import { sql } from '../../shared/database/database.ts';
import type { EnclaveData } from '../../shared/domain/enclave.ts';
import { findContractKey } from '../../shared/keys/contract-keys.ts';
import { ApiClient, PartyKey, seeded } from '../support/api-client.ts';
import { activateAsWorkflow } from '../support/enclaves.ts';

/**
 * Every role, and a stranger, against every endpoint: who succeeds, who is refused with which status,
 * and that a refused request changed nothing.
 */
const createBody = JSON.parse(
  readFileSync(new URL('../fixtures/contract-create.json', import.meta.url), 'utf8'),
);
type Who = 'provider' | 'consumer' | 'admin' | 'auditor' | 'outsider' | 'anonymous';
const EVERYONE: Who[] = ['provider', 'consumer', 'admin', 'auditor', 'outsider', 'anonymous'];
type State = 'Draft' | 'PendingSignature' | 'Active' | 'Suspended';
const MEASUREMENTS = { pcr0: 'a'.repeat(96), pcr1: 'b'.repeat(96), pcr2: 'c'.repeat(96) };
const enclaveBody = JSON.parse(
  readFileSync(new URL('../fixtures/enclave-create.json', import.meta.url), 'utf8'),
) as { configuration: { image: { pcr0: string; pcr1: string; pcr2: string } } };
const IMAGE = {
  pcr0: enclaveBody.configuration.image.pcr0,
  pcr1: enclaveBody.configuration.image.pcr1,
  pcr2: enclaveBody.configuration.image.pcr2,
};

let stack: LocalStack;
const clients = {} as Record<Who, ApiClient>;
const keys = { provider: new PartyKey('ES384'), consumer: new PartyKey('PS256') };
const kids = {} as Record<'provider' | 'consumer', string>;

beforeAll(async () => {
  // The outbox is not published: the local provisioning workflow and the enforcement rule must not act on
  // the enclaves this suite puts in each status by hand (their versions are compared after a refusal).
  stack = await startLocalStack({ scheduledJobs: false });
  for (const who of EVERYONE)
    clients[who] = who === 'anonymous' ? ApiClient.anonymous(stack) : await ApiClient.as(stack, who);
  kids.provider = await keys.provider.register(clients.provider, seeded.provider);
  kids.consumer = await keys.consumer.register(clients.consumer, seeded.consumer);
});
afterAll(async () => stack?.close());

type C = { id: string; version: number; signingPayload: string };

async function sign(party: 'provider' | 'consumer', c: C): Promise<C> {
  const res = await clients[party].post<C>(`/contracts/${c.id}/sign`, {
    type: 'digital',
    kid: kids[party],
    signature: keys[party].sign(c.signingPayload),
  });
  expect(res.status).toBe(200);
  return res.body;
}

async function contractIn(state: State): Promise<C> {
  let c = (await clients.provider.post<C>('/contracts', createBody)).body;
  if (state === 'Draft') return c;
  c = await sign('provider', c);
  c = await sign('consumer', c);
  if (state === 'PendingSignature') return c;
  c = (await clients.provider.post<C>(`/contracts/${c.id}/activate`)).body;
  if (state === 'Active') return c;
  return (await clients.provider.post<C>(`/contracts/${c.id}/suspend`, { reason: 'matrix' })).body;
}

/** Publishes the outbox until the contract's key exists (its sync runs on the ContractActivated event). */
async function keyOf(contractId: string): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (!(await findContractKey(stack.deps.db, contractId))) {
    if (Date.now() > deadline) throw new Error(`contract ${contractId} never got its key`);
    await stack.publishEvents();
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

async function versionOf(id: string): Promise<number | undefined> {
  const { rows } = await stack.deps.db.query<{ version: number }>(
    'SELECT version FROM contracts WHERE id = :id',
    { id: sql.uuid(id) },
  );
  return rows[0]?.version;
}

interface Case {
  readonly name: string;
  readonly state: State;
  readonly call: (client: ApiClient, c: C, who: Who) => Promise<{ status: number }>;
  readonly allowed: Partial<Record<Who, number>>;
  /** Status for identities that may see the contract but not do this. */
  readonly denied?: number;
}

const contractCases: Case[] = [
  {
    name: 'GET /contracts/{id}',
    state: 'Draft',
    call: (k, c) => k.get(`/contracts/${c.id}`),
    allowed: { provider: 200, consumer: 200, admin: 200, auditor: 200 },
  },
  {
    name: 'GET /contracts/{id}/evidence',
    state: 'Active',
    call: (k, c) => k.get(`/contracts/${c.id}/evidence`),
    allowed: { provider: 200, consumer: 200, admin: 200, auditor: 200 },
  },
  {
    name: 'GET /contracts/{id}/key',
    state: 'Active',
    call: async (k, c) => {
      await keyOf(c.id);
      return k.get(`/contracts/${c.id}/key`);
    },
    allowed: { provider: 200, consumer: 200, admin: 200, auditor: 200 },
  },
  {
    name: 'POST /contracts/{id}/data-keys',
    state: 'Active',
    call: async (k, c) => {
      await keyOf(c.id);
      return k.post(`/contracts/${c.id}/data-keys`);
    },
    allowed: { provider: 200 },
    denied: 403,
  },
  {
    name: 'GET /contracts/{id}/signatures/verification',
    state: 'Active',
    call: (k, c) => k.get(`/contracts/${c.id}/signatures/verification`),
    allowed: { provider: 200, consumer: 200, admin: 200, auditor: 200 },
  },
  {
    name: 'PUT /contracts/{id}',
    state: 'Draft',
    call: (k, c) => k.put(`/contracts/${c.id}`, { title: 'x' }, { 'if-match': `"${c.version}"` }),
    allowed: { provider: 200, consumer: 200, admin: 200 },
    denied: 403,
  },
  {
    name: 'DELETE /contracts/{id}',
    state: 'Draft',
    call: (k, c) => k.delete(`/contracts/${c.id}`, { 'if-match': `"${c.version}"` }),
    allowed: { provider: 204, admin: 204 },
    denied: 403,
  },
  {
    name: 'POST /contracts/{id}/sign',
    state: 'Draft',
    call: (k, c, who) =>
      k.post(`/contracts/${c.id}/sign`, {
        type: 'digital',
        kid: who === 'consumer' ? kids.consumer : kids.provider,
        signature: (who === 'consumer' ? keys.consumer : keys.provider).sign(c.signingPayload),
      }),
    allowed: { provider: 200, consumer: 200 },
    denied: 403,
  },
  {
    name: 'POST /contracts/{id}/activate',
    state: 'PendingSignature',
    call: (k, c) => k.post(`/contracts/${c.id}/activate`),
    allowed: { provider: 200, consumer: 200 },
    denied: 403,
  },
  {
    name: 'POST /contracts/{id}/suspend',
    state: 'Active',
    call: (k, c) => k.post(`/contracts/${c.id}/suspend`, { reason: 'r' }),
    allowed: { provider: 200, consumer: 200, admin: 200 },
    denied: 403,
  },
  {
    name: 'POST /contracts/{id}/resume',
    state: 'Suspended',
    call: (k, c) => k.post(`/contracts/${c.id}/resume`, {}),
    allowed: { provider: 200, admin: 200 },
    denied: 403,
  },
  {
    name: 'POST /contracts/{id}/terminate',
    state: 'Active',
    call: (k, c) => k.post(`/contracts/${c.id}/terminate`, { reason: 'r' }),
    allowed: { provider: 200, consumer: 200, admin: 200 },
    denied: 403,
  },
  {
    name: 'POST /contracts/{id}/measurements',
    state: 'Draft',
    call: (k, c) => k.post(`/contracts/${c.id}/measurements`, MEASUREMENTS),
    allowed: { provider: 201, consumer: 201 },
    denied: 403,
  },
  {
    name: 'GET /contracts/{id}/measurements',
    state: 'Draft',
    call: (k, c) => k.get(`/contracts/${c.id}/measurements`),
    allowed: { provider: 200, consumer: 200, admin: 200, auditor: 200 },
  },
  {
    name: 'POST /contracts/{id}/measurements/{mid}/approve',
    state: 'Draft',
    call: async (k, c, who) => {
      const proposed = await clients.provider.post<{ id: string; signingPayload: string }>(
        `/contracts/${c.id}/measurements`,
        MEASUREMENTS,
      );
      const party = who === 'consumer' ? 'consumer' : 'provider';
      return k.post(`/contracts/${c.id}/measurements/${proposed.body.id}/approve`, {
        kid: kids[party],
        signature: keys[party].sign(proposed.body.signingPayload),
      });
    },
    allowed: { provider: 200, consumer: 200 },
    denied: 403,
  },
  {
    name: 'GET /audit',
    state: 'Draft',
    call: (k, c) => k.get(`/audit?entityId=${c.id}`),
    allowed: { provider: 200, consumer: 200, admin: 200, auditor: 200 },
  },
];

describe.each(contractCases)('$name', (testCase) => {
  it.each(EVERYONE)('as %s', async (who) => {
    const c = await contractIn(testCase.state);
    const res = await testCase.call(clients[who], c, who);
    const expected =
      testCase.allowed[who] ??
      (who === 'anonymous' ? 401 : who === 'outsider' ? 404 : (testCase.denied ?? 403));
    expect(res.status).toBe(expected);
    if (res.status >= 400) expect(await versionOf(c.id)).toBe(c.version);
  });
});

const identityCases: {
  name: string;
  call: (k: ApiClient) => Promise<{ status: number }>;
  expected: Record<Who, number>;
}[] = [
  {
    name: 'GET /identities/me',
    call: (k) => k.get('/identities/me'),
    expected: { provider: 200, consumer: 200, admin: 200, auditor: 200, outsider: 200, anonymous: 401 },
  },
  {
    name: 'GET /identities',
    call: (k) => k.get('/identities'),
    expected: { provider: 403, consumer: 403, admin: 200, auditor: 200, outsider: 403, anonymous: 401 },
  },
  {
    name: 'POST /identities',
    call: (k) =>
      k.post('/identities', {
        name: `n-${Math.random().toString(36).slice(2, 10)}`,
        displayName: 'N',
        roles: ['consumer'],
      }),
    expected: { provider: 403, consumer: 403, admin: 201, auditor: 403, outsider: 403, anonymous: 401 },
  },
  {
    // 403, not 404: GET on the same path answers everyone, so the identity's existence is no secret.
    name: 'POST /identities/{provider}/keys',
    call: async (k) =>
      k.post(
        `/identities/${seeded.provider}/keys`,
        await new PartyKey('ES256').registration(seeded.provider),
      ),
    expected: { provider: 201, consumer: 403, admin: 201, auditor: 403, outsider: 403, anonymous: 401 },
  },
  {
    // Itself, admins and auditors; anyone else learns nothing about it (404).
    name: 'GET /identities/{consumer}',
    call: (k) => k.get(`/identities/${seeded.consumer}`),
    expected: { provider: 404, consumer: 200, admin: 200, auditor: 200, outsider: 404, anonymous: 401 },
  },
  {
    name: 'GET /identities/{id}/keys',
    call: (k) => k.get(`/identities/${seeded.consumer}/keys`),
    expected: { provider: 200, consumer: 200, admin: 200, auditor: 200, outsider: 200, anonymous: 401 },
  },
  {
    name: 'POST /contracts',
    call: (k) => k.post('/contracts', { ...createBody, providerId: seeded.provider }),
    expected: { provider: 201, consumer: 403, admin: 201, auditor: 403, outsider: 403, anonymous: 401 },
  },
  {
    name: 'GET /contracts',
    call: (k) => k.get('/contracts'),
    expected: { provider: 200, consumer: 200, admin: 200, auditor: 200, outsider: 200, anonymous: 401 },
  },
  {
    name: 'GET /platform/keys',
    call: (k) => k.get('/platform/keys'),
    expected: { provider: 200, consumer: 200, admin: 200, auditor: 200, outsider: 200, anonymous: 200 },
  },
  {
    name: 'POST /platform/keys/rotations',
    call: (k) => k.post('/platform/keys/rotations'),
    expected: { provider: 403, consumer: 403, admin: 201, auditor: 403, outsider: 403, anonymous: 401 },
  },
  {
    name: 'GET /openapi.json',
    call: (k) => k.get('/openapi.json'),
    expected: { provider: 200, consumer: 200, admin: 200, auditor: 200, outsider: 200, anonymous: 200 },
  },
  {
    name: 'GET /health',
    call: (k) => k.get('/health'),
    expected: { provider: 200, consumer: 200, admin: 200, auditor: 200, outsider: 200, anonymous: 200 },
  },
];

describe.each(identityCases)('$name', (testCase) => {
  it.each(EVERYONE)('as %s', async (who) => {
    const res = await testCase.call(clients[who]);
    expect(res.status).toBe(testCase.expected[who]);
  });
});

it('refuses a valid token whose subject has no identity with 403, and a forged token with 401', async () => {
  const ghost = await ApiClient.as(stack, { subject: 'local|ghost' });
  expect((await ghost.get('/contracts')).status).toBe(403);
  const forged = new ApiClient(stack.url, `${(await stack.issuer.mint('local|admin')).slice(0, -4)}AAAA`);
  expect((await forged.get('/contracts')).status).toBe(401);
  const expired = new ApiClient(stack.url, await stack.issuer.mint('local|admin', { ttlSeconds: -10 }));
  expect((await expired.get('/contracts')).status).toBe(401);
});

// ---------------------------------------------------------------------------------------------------------
// Enclaves: the contract's parties and admins act, auditors only read (403), anyone else gets 404.

type EnclaveState = 'Initializing' | 'Running' | 'Suspended';
type E = Pick<EnclaveData, 'id' | 'version' | 'contractId' | 'configuration'>;

/** An Active contract whose parties both approved the enclave fixture's image. */
async function contractForEnclaves(): Promise<C> {
  const c = await contractIn('Active');
  const proposed = await clients.provider.post<{ id: string; signingPayload: string }>(
    `/contracts/${c.id}/measurements`,
    IMAGE,
  );
  for (const party of ['provider', 'consumer'] as const) {
    const res = await clients[party].post(`/contracts/${c.id}/measurements/${proposed.body.id}/approve`, {
      kid: kids[party],
      signature: keys[party].sign(proposed.body.signingPayload),
    });
    expect(res.status).toBe(200);
  }
  return c;
}

async function enclaveIn(state: EnclaveState): Promise<E> {
  const c = await contractForEnclaves();
  const created = await clients.provider.post<E>('/enclaves', { ...enclaveBody, contractId: c.id });
  expect(created.status).toBe(201);
  if (state === 'Initializing') return created.body;
  const running = (await activateAsWorkflow(stack.deps, created.body)) as E;
  if (state === 'Running') return running;
  return (await clients.provider.post<E>(`/enclaves/${running.id}/suspend`, { reason: 'matrix' })).body;
}

async function enclaveVersionOf(id: string): Promise<number | undefined> {
  const { rows } = await stack.deps.db.query<{ version: number }>(
    'SELECT version FROM enclaves WHERE id = :id',
    { id: sql.uuid(id) },
  );
  return rows[0]?.version;
}

interface EnclaveCase {
  readonly name: string;
  readonly state: EnclaveState;
  readonly call: (client: ApiClient, e: E) => Promise<{ status: number }>;
  readonly allowed: Partial<Record<Who, number>>;
}

const READERS = { provider: 200, consumer: 200, admin: 200, auditor: 200 } as const;
const ACTORS = { provider: 200, consumer: 200, admin: 200 } as const;

const enclaveCases: EnclaveCase[] = [
  {
    name: 'GET /enclaves/{id}',
    state: 'Initializing',
    call: (k, e) => k.get(`/enclaves/${e.id}`),
    allowed: READERS,
  },
  {
    name: 'GET /enclaves/{id}/attestation',
    state: 'Running',
    call: (k, e) => k.get(`/enclaves/${e.id}/attestation`),
    allowed: READERS,
  },
  {
    name: 'GET /enclaves/{id}/metrics',
    state: 'Running',
    call: (k, e) => k.get(`/enclaves/${e.id}/metrics`),
    allowed: READERS,
  },
  {
    name: 'PUT /enclaves/{id}',
    state: 'Suspended',
    call: (k, e) =>
      k.put(
        `/enclaves/${e.id}`,
        { configuration: (enclaveBody as { configuration: unknown }).configuration },
        {
          'if-match': `"${e.version}"`,
        },
      ),
    allowed: ACTORS,
  },
  {
    name: 'DELETE /enclaves/{id}',
    state: 'Initializing',
    call: (k, e) => k.delete(`/enclaves/${e.id}`, { 'if-match': `"${e.version}"` }),
    allowed: ACTORS,
  },
  {
    name: 'POST /enclaves/{id}/suspend',
    state: 'Running',
    call: (k, e) => k.post(`/enclaves/${e.id}/suspend`, { reason: 'r' }),
    allowed: ACTORS,
  },
  {
    name: 'POST /enclaves/{id}/resume',
    state: 'Suspended',
    call: (k, e) => k.post(`/enclaves/${e.id}/resume`, {}),
    allowed: ACTORS,
  },
  {
    name: 'POST /enclaves/{id}/terminate',
    state: 'Running',
    call: (k, e) => k.post(`/enclaves/${e.id}/terminate`, { reason: 'r' }),
    allowed: ACTORS,
  },
];

describe.each(enclaveCases)('$name', (testCase) => {
  it.each(EVERYONE)('as %s', async (who) => {
    const e = await enclaveIn(testCase.state);
    const res = await testCase.call(clients[who], e);
    const expected = testCase.allowed[who] ?? (who === 'anonymous' ? 401 : who === 'outsider' ? 404 : 403);
    expect(res.status).toBe(expected);
    if (res.status >= 400) expect(await enclaveVersionOf(e.id)).toBe(e.version);
  });
});

describe('POST /enclaves', () => {
  const expected: Record<Who, number> = {
    provider: 201,
    consumer: 201,
    admin: 201,
    auditor: 403,
    outsider: 404,
    anonymous: 401,
  };
  it.each(EVERYONE)('as %s', async (who) => {
    const c = await contractForEnclaves();
    const res = await clients[who].post('/enclaves', { ...enclaveBody, contractId: c.id });
    expect(res.status).toBe(expected[who]);
  });
});

describe('GET /enclaves', () => {
  it.each(EVERYONE)('as %s', async (who) => {
    expect((await clients[who].get('/enclaves')).status).toBe(who === 'anonymous' ? 401 : 200);
  });
});

describe('POST /enclaves/{id}/metrics (iam: the parent instance only)', () => {
  it.each(EVERYONE)('refuses a user token as %s', async (who) => {
    const e = await enclaveIn('Running');
    const res = await clients[who].post(`/enclaves/${e.id}/metrics`, {
      reportedAt: new Date().toISOString(),
      cpuUtilizationPercent: 1,
      memoryUsedMiB: 1,
    });
    expect([401, 403]).toContain(res.status);
    const { rows } = await stack.deps.db.query('SELECT 1 FROM enclave_metrics WHERE enclave_id = :id', {
      id: sql.uuid(e.id),
    });
    expect(rows).toEqual([]);
  });
});
