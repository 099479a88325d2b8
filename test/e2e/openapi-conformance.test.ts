import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { URI } from 'otpauth';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { localOrigin } from '../../infra/local/local-stack.ts';
import { createCheckpoint } from '../../shared/audit/audit-checkpoints.ts';
import { instanceSessionArn } from '../../shared/http/instance-caller.ts';
import { openApiDocument } from '../../shared/http/openapi.ts';
import { errorStatusesOf, ifMatchRequired, ROUTES, type RouteDefinition } from '../../shared/http/routes.ts';
import { ApiClient, observedStatuses, PartyKey, seeded } from '../support/api-client.ts';
import { CREATE_FIXTURE } from '../support/contracts.ts';
import { serverDatabase } from '../support/databases.ts';
import { conformanceProxy } from '../support/openapi-conformance.ts';
import {
  ENCLAVE_FIXTURE,
  type Enclave,
  type ProvisioningContext,
  provisioningHarness,
  startProvisioningStack,
} from '../support/provisioning.ts';
import { SoftwareAuthenticator } from '../support/webauthn-authenticator.ts';

/**
 * The OpenAPI document is the contract the server keeps. Every response here is validated against the
 * document the server serves (status declared for the operation, required headers present, media type
 * and body matching their schemas): the README walk-through through a checking proxy, then each route's
 * error paths. At the end, every status the document declares for an operation has been answered by it,
 * except the few named in UNPRODUCED with the reason and the suite that produces them.
 */
const REPO = join(import.meta.dirname, '..', '..');
const walkthrough = /```bash walkthrough\n([\s\S]*?)```/.exec(
  readFileSync(join(REPO, 'README.md'), 'utf8'),
)?.[1];

/** Declared statuses this file does not produce, each with why and where it is produced instead. */
const UNPRODUCED: Record<string, string> = {
  'rotatePlatformKey 409':
    'a rotation meeting another in flight needs a second database session: test/integration/platform-key-registry.test.ts (PostgreSQL server)',
  'submitAttestation 410':
    'a wait past its deadline (test/e2e/attestation-heartbeat.test.ts and enclave-provisioning.test.ts, also held to the document)',
  'sendAttestationHeartbeat 410':
    'a wait past its deadline (test/e2e/attestation-heartbeat.test.ts, also held to the document)',
};
for (const id of ['getHealth', 'getOpenApi']) {
  UNPRODUCED[`${id} 500`] = 'touches no database: only an unexpected fault of the function itself';
}

/**
 * A request in flight under an Idempotency-Key holds a transaction-scoped advisory lock on (caller, key);
 * another one meets it and is a 409. Holding that lock from a second session needs a PostgreSQL server
 * (PGlite is one session): without one (outside CI), that 409 is not produced here.
 */
const server = await serverDatabase();
if (!server) {
  for (const id of ['createContract', 'createEnclave']) {
    UNPRODUCED[`${id} 409`] = 'idempotency-key-in-use needs a PostgreSQL server (TEST_DATABASE_URL)';
  }
}

let context: ProvisioningContext;
let dataDir: string;
const harness = provisioningHarness(() => context);
const client = {} as Record<'provider' | 'consumer' | 'admin' | 'auditor' | 'anonymous' | 'ghost', ApiClient>;
const keys = { provider: new PartyKey('ES256'), consumer: new PartyKey('ES256') };
const kids = { provider: '', consumer: '' };

beforeAll(async () => {
  // Through the Data API emulator, to make the database unavailable or failing on demand; no scheduled
  // jobs, so nothing in the background takes an injected fault (the harness publishes events itself).
  dataDir = mkdtempSync(join(tmpdir(), 'conformance-'));
  context = await startProvisioningStack({
    dataDir,
    scheduledJobs: false,
    viaDataApi: true,
    databaseUrl: server?.url,
    dataApiRetry: { maxAttempts: 2, baseDelayMs: 1, maxDelayMs: 2, maxElapsedMs: 200 },
  });
  const { stack } = context;
  for (const who of ['provider', 'consumer', 'admin', 'auditor'] as const)
    client[who] = await ApiClient.as(stack, who);
  client.anonymous = ApiClient.anonymous(stack);
  // A valid token whose subject has no identity: every bearer route answers it 403.
  client.ghost = await ApiClient.as(stack, { subject: 'local|nobody-registered' });
  kids.provider = await keys.provider.register(client.provider, seeded.provider);
  kids.consumer = await keys.consumer.register(client.consumer, seeded.consumer);
});
afterAll(async () => {
  await context?.stack.close();
  await server?.drop();
  rmSync(dataDir, { recursive: true, force: true });
});

/** Holds the lock a request in flight under `key` holds, from another session, while `during` runs. */
async function inFlight<T>(callerId: string, key: string, during: () => Promise<T>): Promise<T> {
  const session = new pg.Client({ connectionString: server!.url });
  await session.connect();
  try {
    await session.query('BEGIN');
    await session.query(`SELECT pg_advisory_xact_lock(hashtextextended($1::uuid || ':' || $2, 7261))`, [
      callerId,
      key,
    ]);
    return await during();
  } finally {
    await session.query('ROLLBACK');
    await session.end();
  }
}

function bash(code: string, env: Record<string, string>): Promise<{ status: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn('bash', ['-c', code], { cwd: REPO, env: { ...process.env, ...env } });
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    child.stderr.on('data', (d) => {
      out += d;
    });
    child.on('close', (status) => resolve({ status, out }));
  });
}

it('serves the document it is generated as', async () => {
  const res = await client.anonymous.get('/openapi.json');
  expect(res.status).toBe(200);
  expect(res.body).toEqual(JSON.parse(JSON.stringify(openApiDocument())));
});

it('takes a contract from Draft to Active and back to Terminated, with an enclave provisioned under it, exactly as the README shows, every response as the document says', async () => {
  expect(walkthrough, 'README.md has a ```bash walkthrough block').toBeDefined();
  // The outbox published as `npm start` publishes it (here by hand: the injected faults below must not
  // meet a background job), and every exchange checked by a proxy.
  const publisher = setInterval(() => void context.stack.publishEvents().catch(() => undefined), 200);
  // And the audit checkpoint job (every 10 s with `npm start`), which the evidence step waits for.
  const checkpoints = setInterval(
    () => void createCheckpoint(context.stack.deps).catch(() => undefined),
    1_000,
  );
  const proxy = await conformanceProxy(context.stack.url);
  try {
    const run = await bash(walkthrough!, { API: `${proxy.url}/api/v1`, LOCAL_DATA_DIR: dataDir });
    expect(run.status, run.out).toBe(0);
    const lines = run.out.trim().split('\n');
    expect(lines).toContain('3.1.0');
    expect(lines.filter((l) => l === 'PendingSignature')).toHaveLength(2);
    expect(lines).toEqual(
      expect.arrayContaining(['Proposed', 'Approved', 'Active', 'provider', 'consumer', 'platform']),
    );
    expect(lines).toEqual(expect.arrayContaining(['Suspended', 'Terminated', 'true', '204']));
    expect(lines).toContain('["create","edit","sign","sign","activate","suspend","resume","terminate"]');
    // The enclave: Running with a verified attestation, suspended (attestation voided), resumed through
    // provisioning, a simulated wrong image refused, and terminated with its contract.
    expect(lines).toEqual(
      expect.arrayContaining(['Running', 'verified', 'voided', 'Initializing', 'Failed', 'pcr_mismatch']),
    );
    expect(lines.filter((l) => l === 'Running')).toHaveLength(2);
    expect(lines.filter((l) => l === 'Terminated')).toHaveLength(2);
    // Every signature verified again, and the evidence checked offline with the platform's keys pinned.
    expect(lines).toEqual(expect.arrayContaining(['provider,consumer,platform', 'evidence: valid']));
    expect(lines.at(-1)).toMatch(/^walk-through complete: [0-9a-f-]{36}$/);
    expect(proxy.verdicts.flatMap((v) => v.mismatches)).toEqual([]);
    expect(proxy.verdicts.length).toBeGreaterThan(40);
    for (const v of proxy.verdicts) {
      if (!v.operationId) continue;
      const seen = observedStatuses.get(v.operationId) ?? new Set<number>();
      observedStatuses.set(v.operationId, seen.add(Number(v.exchange.split('→ ')[1])));
    }
  } finally {
    clearInterval(publisher);
    clearInterval(checkpoints);
    await proxy.close();
    // Quiet before the probes below inject database faults: no execution or instance still at work.
    await context.stack.publishEvents();
    await context.stack.enclaves.runner().idle();
    await context.stack.enclaves.ec2.settled();
  }
}, 180_000);

// ---- fixtures: one resource of each kind, in the states the probes need -------------------------------

type Contract = { id: string; version: number; status: string; signingPayload: string };

async function draft(body: unknown = CREATE_FIXTURE): Promise<Contract> {
  const res = await client.provider.post<Contract>('/contracts', body);
  expect(res.status, res.text).toBe(201);
  return res.body;
}

async function sign(party: 'provider' | 'consumer', c: Contract): Promise<Contract> {
  const res = await client[party].post<Contract>(`/contracts/${c.id}/sign`, {
    type: 'digital',
    kid: kids[party],
    signature: keys[party].sign(c.signingPayload),
  });
  expect(res.status, res.text).toBe(200);
  return res.body;
}

async function active(): Promise<Contract> {
  const signed = await sign('consumer', await sign('provider', await draft()));
  const res = await client.provider.post<Contract>(`/contracts/${signed.id}/activate`);
  expect(res.status, res.text).toBe(200);
  return res.body;
}

async function runningEnclave(): Promise<Enclave> {
  // A silent simulated agent: this test plays the parent, so no second submission races its own (a 409).
  const id = await harness.create('no-callback');
  const instanceId = await harness.waitUntilWaiting(id);
  const parent = await harness.asInstance(instanceId);
  const heartbeat = await parent.post(`/enclaves/${id}/attestation/heartbeat`, { phase: 'attesting' });
  expect(heartbeat.status, heartbeat.text).toBe(202);
  const document = Buffer.from(await harness.attestAsParent(id)).toString('base64');
  const submitted = await parent.post(`/enclaves/${id}/attestation`, { document });
  expect(submitted.status, submitted.text).toBe(202);
  return harness.settle(id, ['Running']);
}

/** The id of an identity registered just now. */
async function newcomerId(): Promise<string> {
  const res = await client.admin.post<{ id: string }>('/identities', {
    name: `someone-${randomUUID().slice(0, 8)}`,
    displayName: 'Someone',
    roles: ['consumer'],
  });
  expect(res.status, res.text).toBe(201);
  return res.body.id;
}

/** A client for an identity registered just now, which no function has cached yet. */
async function newcomer(): Promise<ApiClient> {
  const subject = `local|newcomer-${randomUUID()}`;
  const res = await client.admin.post('/identities', {
    name: `newcomer-${randomUUID().slice(0, 8)}`,
    displayName: 'Newcomer',
    roles: ['consumer'],
    subject,
  });
  expect(res.status, res.text).toBe(201);
  return ApiClient.as(context.stack, { subject });
}

/** A software authenticator of the local relying party (test/support/webauthn-authenticator.ts). */
const authenticator = () =>
  new SoftwareAuthenticator({ origin: localOrigin(context.stack.url), rpId: 'localhost' });

/** Registers a passkey for `identityId` through the two registration routes. */
async function registerPasskey(who: ApiClient, identityId: string, a = authenticator()) {
  const options = await who.post<{ publicKey: { challenge: string } }>(
    `/identities/${identityId}/webauthn/registration-options`,
  );
  expect(options.status, options.text).toBe(200);
  const res = await who.post<{ id: string }>(`/identities/${identityId}/webauthn/registrations`, {
    response: a.register(options.body.publicKey.challenge),
  });
  expect(res.status, res.text).toBe(201);
  return res.body;
}

const sample = (reportedAt = new Date().toISOString()) => ({
  reportedAt,
  cpuUtilizationPercent: 12.5,
  memoryUsedMiB: 512,
});

// ---- each route's shape: what every route answers whatever it does ------------------------------------

interface Target {
  readonly path: string;
  readonly body?: unknown;
  readonly client: ApiClient;
}

let targets: Record<string, Target>;
let running: Enclave;
let parent: ApiClient;
let stranger: ApiClient;

describe('every route, refused as its shape says', () => {
  beforeAll(async () => {
    const contract = await active();
    const { body: sets } = await client.provider.get<{ items: { id: string }[] }>(
      `/contracts/${context.contractId}/measurements`,
    );
    running = await runningEnclave();
    // A well-formed document from the enclave's parent: refused for what it is, not for its shape.
    const document = Buffer.from(await harness.attestAsParent(running.id)).toString('base64');
    parent = await harness.asInstance(running.instanceId!);
    stranger = harness.asSession(instanceSessionArn('SomeOtherRole', running.instanceId!));
    const c = `/contracts/${contract.id}`;
    const e = `/enclaves/${running.id}`;
    const pendingTotp = (
      await client.consumer.post<{ credential: { id: string } }>(`/identities/${seeded.consumer}/totp`)
    ).body;
    const consumerPasskey = await registerPasskey(client.consumer, seeded.consumer);
    targets = {
      getHealth: { path: '/health', client: client.anonymous },
      getOpenApi: { path: '/openapi.json', client: client.anonymous },
      listPlatformKeys: { path: '/platform/keys', client: client.anonymous },
      rotatePlatformKey: { path: '/platform/keys/rotations', client: client.admin },
      getMyIdentity: { path: '/identities/me', client: client.provider },
      getIdentity: { path: `/identities/${seeded.provider}`, client: client.admin },
      createIdentity: {
        path: '/identities',
        body: { name: `lab-${randomUUID().slice(0, 8)}`, displayName: 'Lab', roles: ['consumer'] },
        client: client.admin,
      },
      listIdentities: { path: '/identities', client: client.admin },
      registerKey: {
        path: `/identities/${seeded.consumer}/keys`,
        body: await new PartyKey('EdDSA').registration(seeded.consumer),
        client: client.admin,
      },
      listKeys: { path: `/identities/${seeded.consumer}/keys`, client: client.provider },
      rotateKey: {
        path: `/identities/${seeded.consumer}/keys/${await new PartyKey('ES256').register(client.consumer, seeded.consumer)}/rotate`,
        body: await new PartyKey('ES256').registration(seeded.consumer),
        client: client.admin,
      },
      revokeKey: {
        path: `/identities/${seeded.consumer}/keys/${await new PartyKey('ES256').register(client.consumer, seeded.consumer)}`,
        client: client.admin,
      },
      setIdentityStatus: {
        path: `/identities/${await newcomerId()}/status`,
        body: { status: 'suspended', reason: 'conformance' },
        client: client.admin,
      },
      enrolTotp: { path: `/identities/${seeded.consumer}/totp`, client: client.consumer },
      listTotpCredentials: { path: `/identities/${seeded.consumer}/totp`, client: client.consumer },
      confirmTotp: {
        path: `/identities/${seeded.consumer}/totp/${pendingTotp.credential.id}/confirmation`,
        body: { code: '000000' },
        client: client.consumer,
      },
      revokeTotp: {
        path: `/identities/${seeded.consumer}/totp/${pendingTotp.credential.id}`,
        client: client.admin,
      },
      webauthnRegistrationOptions: {
        path: `/identities/${seeded.consumer}/webauthn/registration-options`,
        client: client.consumer,
      },
      registerPasskey: {
        path: `/identities/${seeded.consumer}/webauthn/registrations`,
        body: { response: authenticator().register('bm90LWlzc3VlZA') },
        client: client.consumer,
      },
      listPasskeys: { path: `/identities/${seeded.consumer}/webauthn/credentials`, client: client.consumer },
      revokePasskey: {
        path: `/identities/${seeded.consumer}/webauthn/credentials/${consumerPasskey.id}`,
        client: client.admin,
      },
      webauthnAuthenticationOptions: {
        path: `/identities/${seeded.consumer}/webauthn/authentication-options`,
        body: { signingPayload: 'a payload' },
        client: client.consumer,
      },
      createContract: { path: '/contracts', body: CREATE_FIXTURE, client: client.provider },
      listContracts: { path: '/contracts', client: client.provider },
      getContract: { path: c, client: client.provider },
      getContractEvidence: { path: `${c}/evidence`, client: client.provider },
      getContractKey: { path: `${c}/key`, client: client.provider },
      createDataKey: { path: `${c}/data-keys`, client: client.provider },
      verifyContractSignatures: { path: `${c}/signatures/verification`, client: client.provider },
      updateContract: { path: c, body: { title: 'Edited' }, client: client.provider },
      deleteContract: { path: c, client: client.provider },
      signContract: {
        path: `${c}/sign`,
        body: { type: 'digital', kid: kids.provider, signature: keys.provider.sign(contract.signingPayload) },
        client: client.provider,
      },
      activateContract: { path: `${c}/activate`, client: client.provider },
      suspendContract: { path: `${c}/suspend`, body: { reason: 'audit' }, client: client.provider },
      resumeContract: { path: `${c}/resume`, body: {}, client: client.admin },
      terminateContract: { path: `${c}/terminate`, body: { reason: 'ended' }, client: client.provider },
      proposeMeasurementSet: {
        path: `${c}/measurements`,
        body: { pcr0: '1'.repeat(96), pcr1: '2'.repeat(96), pcr2: '3'.repeat(96) },
        client: client.provider,
      },
      listMeasurementSets: { path: `${c}/measurements`, client: client.provider },
      approveMeasurementSet: {
        path: `/contracts/${context.contractId}/measurements/${sets.items[0]!.id}/approve`,
        body: { kid: kids.consumer, signature: keys.consumer.sign('not the payload') },
        client: client.consumer,
      },
      createEnclave: {
        path: '/enclaves',
        body: { ...ENCLAVE_FIXTURE, contractId: context.contractId },
        client: client.provider,
      },
      listEnclaves: { path: '/enclaves', client: client.provider },
      getEnclave: { path: e, client: client.provider },
      updateEnclave: {
        path: e,
        body: { name: 'renamed', configuration: ENCLAVE_FIXTURE.configuration },
        client: client.provider,
      },
      deleteEnclave: { path: e, client: client.provider },
      suspendEnclave: { path: `${e}/suspend`, body: { reason: 'check' }, client: client.provider },
      resumeEnclave: { path: `${e}/resume`, body: {}, client: client.provider },
      terminateEnclave: { path: `${e}/terminate`, body: { reason: 'done' }, client: client.provider },
      getEnclaveAttestation: { path: `${e}/attestation`, client: client.provider },
      submitAttestation: { path: `${e}/attestation`, body: { document }, client: parent },
      sendAttestationHeartbeat: {
        path: `${e}/attestation/heartbeat`,
        body: { phase: 'attesting' },
        client: parent,
      },
      reportEnclaveMetrics: { path: `${e}/metrics`, body: sample(), client: parent },
      listEnclaveMetrics: { path: `${e}/metrics`, client: client.provider },
      getAuditTrail: { path: `/audit?entityId=${contract.id}`, client: client.auditor },
    };
  });

  const routes = ROUTES as readonly RouteDefinition[];
  type Probe = {
    client?: ApiClient;
    path?: string;
    body?: unknown;
    rawBody?: string;
    headers?: Record<string, string>;
  };
  const send = (route: RouteDefinition, t: Target, { client: who, path, ...options }: Probe = {}) =>
    (who ?? t.client).request(route.method, path ?? t.path, {
      ...(t.body !== undefined && options.rawBody === undefined ? { body: t.body } : {}),
      ...options,
    });

  it('has a target for every route', () => {
    expect(Object.keys(targets).sort()).toEqual(routes.map((r) => r.id).sort());
  });

  it.each(routes.map((r) => [r.id, r] as const))('%s', async (id, route) => {
    const t = targets[id]!;
    const statuses = errorStatusesOf(route);
    const expectStatus = async (status: number, res: Promise<{ status: number; text: string }>) => {
      const answer = await res;
      expect(answer.status, `${id}: ${answer.text}`).toBe(status);
    };
    // 400: a query parameter the route does not take.
    const sep = t.path.includes('?') ? '&' : '?';
    await expectStatus(400, send(route, t, { path: `${t.path}${sep}unexpected=1` }));
    // 413: a body over 256 KiB, on any route.
    await expectStatus(
      413,
      send(route, t, {
        rawBody: JSON.stringify({ padding: 'x'.repeat(300_000) }),
        headers: { 'content-type': 'application/json' },
      }),
    );
    if (statuses.includes(401)) await expectStatus(401, send(route, t, { client: client.anonymous }));
    if (statuses.includes(403)) {
      await expectStatus(403, send(route, t, { client: route.auth === 'iam' ? stranger : client.ghost }));
    }
    if (statuses.includes(415)) {
      await expectStatus(
        415,
        send(route, t, { rawBody: JSON.stringify(t.body), headers: { 'content-type': 'text/plain' } }),
      );
    }
    // An If-Match that would pass, where one is required, so that only the refusal probed is met.
    const ifMatch = ifMatchRequired(route) ? { 'if-match': '*' } : undefined;
    if (statuses.includes(404) && route.request?.params) {
      const path = t.path.replace(
        /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/,
        randomUUID(),
      );
      await expectStatus(404, send(route, t, { path, ...(ifMatch ? { headers: ifMatch } : {}) }));
    }
    if (statuses.includes(428)) await expectStatus(428, send(route, t));
    if (statuses.includes(412))
      await expectStatus(412, send(route, t, { headers: { 'if-match': '"999999"' } }));
    if (route.request?.headers?.includes('Idempotency-Key')) {
      const key = `conformance-${randomUUID()}`;
      const first = await send(route, t, { headers: { 'idempotency-key': key } });
      expect(first.status, first.text).toBe(201);
      const again = await send(route, t, { headers: { 'idempotency-key': key } });
      expect(again.headers.get('idempotent-replayed')).toBe('true');
      const field = id === 'createContract' ? 'title' : 'name';
      const other = { ...(t.body as object), [field]: `other-${randomUUID().slice(0, 8)}` };
      await expectStatus(422, send(route, t, { body: other, headers: { 'idempotency-key': key } }));
      if (server) {
        // The same key while a first request with it is still in flight: 409, and nothing is created.
        const racing = `conformance-${randomUUID()}`;
        const callerId = id === 'createIdentity' ? seeded.admin : seeded.provider;
        await inFlight(callerId, racing, () =>
          expectStatus(409, send(route, t, { headers: { 'idempotency-key': racing } })),
        );
        const after = await send(route, t, { body: other, headers: { 'idempotency-key': racing } });
        expect(after.status, after.text).toBe(201);
      }
    }
    // 503 and 500: the database unavailable, then failing outright, on every route that reaches it. The
    // caller is one the function has not met yet: a known caller's identity is cached for a few seconds,
    // and `GET /identities/me` would not reach the database at all.
    if (route.grants.includes('database')) {
      const caller = route.auth === 'jwt' && id === 'getMyIdentity' ? { client: await newcomer() } : {};
      context.stack.dataApi!.injectFaults('ServiceUnavailableError', 1000);
      try {
        await expectStatus(503, send(route, t, { ...caller, ...(ifMatch ? { headers: ifMatch } : {}) }));
      } finally {
        context.stack.dataApi!.clearFaults();
      }
      if ('client' in caller) caller.client = await newcomer();
      context.stack.dataApi!.injectFaults('StatementTimeoutException', 1);
      try {
        await expectStatus(500, send(route, t, { ...caller, ...(ifMatch ? { headers: ifMatch } : {}) }));
      } finally {
        context.stack.dataApi!.clearFaults();
      }
    }
  });
});

// ---- business rules: the 409s, 410s and 422s each route declares --------------------------------------

describe('every business-rule refusal the document declares', () => {
  it('identity status: suspended (200), unchanged (409), its requests refused (403), revoked for good (409), never its own (409)', async () => {
    const subject = `local|status-${randomUUID()}`;
    const created = await client.admin.post<{ id: string }>('/identities', {
      name: `status-${randomUUID().slice(0, 8)}`,
      displayName: 'Status',
      roles: ['consumer'],
      subject,
    });
    const path = `/identities/${created.body.id}/status`;
    const who = await ApiClient.as(context.stack, { subject });
    expect((await who.get('/identities/me')).status).toBe(200);
    const suspended = await client.admin.put<{ status: string }>(path, {
      status: 'suspended',
      reason: 'review',
    });
    expect(suspended.status, suspended.text).toBe(200);
    expect(suspended.body.status).toBe('suspended');
    expect((await client.admin.put(path, { status: 'suspended', reason: 'again' })).status).toBe(409);
    const refused = await who.get<{ type: string }>('/identities/me');
    expect(refused.status).toBe(403);
    expect(refused.body.type).toMatch(/\/identity-suspended$/);
    expect((await client.admin.put(path, { status: 'active', reason: 'cleared' })).status).toBe(200);
    expect((await client.admin.put(path, { status: 'revoked', reason: 'left' })).status).toBe(200);
    expect((await client.admin.put(path, { status: 'active', reason: 'undo' })).status).toBe(409);
    expect(
      (await client.admin.put(`/identities/${seeded.admin}/status`, { status: 'suspended', reason: 'x' }))
        .status,
    ).toBe(409);
  });

  it('second factors: enrolled (201) up to the pending limit (409), confirmed (200) once (409), a wrong code (422), listed (200), revoked (200) once (409)', async () => {
    const base = `/identities/${seeded.provider}/totp`;
    type Enrolment = { credential: { id: string }; otpauthUri: string };
    const enrolled: Enrolment[] = [];
    for (;;) {
      const res = await client.provider.post<Enrolment>(base);
      if (res.status === 409) break;
      expect(res.status, res.text).toBe(201);
      enrolled.push(res.body);
    }
    expect(enrolled.length).toBeGreaterThan(0);
    const [first, second] = [enrolled[0]!, enrolled[1] ?? enrolled[0]!];
    const confirmation = (e: Enrolment) => `${base}/${e.credential.id}/confirmation`;
    const code = URI.parse(first.otpauthUri).generate();
    const wrong = String((Number(code) + 500_000) % 1_000_000).padStart(6, '0');
    expect((await client.provider.post(confirmation(first), { code: wrong })).status).toBe(422);
    expect((await client.provider.post(confirmation(first), { code })).status).toBe(200);
    expect((await client.provider.post(confirmation(first), { code })).status).toBe(409);
    expect((await client.provider.get(base)).status).toBe(200);
    expect((await client.admin.delete(`${base}/${second.credential.id}`)).status).toBe(200);
    expect((await client.admin.delete(`${base}/${second.credential.id}`)).status).toBe(409);
  });

  it('passkeys: options (200) up to the open challenges (409), registered (201) once (409), a bad answer (422), listed (200), revoked (200) once (409); sign options (200) without a passkey (422) or past the open challenges (409)', async () => {
    const who = await newcomer();
    const { body: me } = await who.get<{ id: string }>('/identities/me');
    const base = `/identities/${me.id}/webauthn`;
    const signOptions = () => who.post(`${base}/authentication-options`, { signingPayload: 'a payload' });
    expect((await signOptions()).status).toBe(422);
    const a = authenticator();
    const passkey = await registerPasskey(who, me.id, a);
    expect((await signOptions()).status).toBe(200);
    const again = await who.post<{ publicKey: { challenge: string } }>(`${base}/registration-options`);
    expect(
      (await who.post(`${base}/registrations`, { response: a.register(again.body.publicKey.challenge) }))
        .status,
    ).toBe(409);
    const late = await who.post<{ publicKey: { challenge: string } }>(`${base}/registration-options`);
    const unverified = authenticator().register(late.body.publicKey.challenge, { uv: false });
    expect((await who.post(`${base}/registrations`, { response: unverified })).status).toBe(422);
    expect((await who.get(`${base}/credentials`)).status).toBe(200);
    for (;;) {
      const res = await who.post(`${base}/registration-options`);
      if (res.status === 409) break;
      expect(res.status, res.text).toBe(200);
    }
    expect((await signOptions()).status).toBe(409);
    expect((await client.admin.delete(`${base}/credentials/${passkey.id}`)).status).toBe(200);
    expect((await who.delete(`${base}/credentials/${passkey.id}`)).status).toBe(409);
  });

  it('identities: a name taken (409), a key twice (409), a wrong proof (422), a key rotated or revoked twice (409); reading one (200)', async () => {
    const name = `dup-${randomUUID().slice(0, 8)}`;
    const body = { name, displayName: 'Dup', roles: ['consumer'] };
    expect((await client.admin.post('/identities', body)).status).toBe(201);
    expect((await client.admin.post('/identities', body)).status).toBe(409);
    const key = new PartyKey('ES256');
    const registration = await key.registration(seeded.consumer);
    expect((await client.consumer.post(`/identities/${seeded.consumer}/keys`, registration)).status).toBe(
      201,
    );
    expect((await client.consumer.post(`/identities/${seeded.consumer}/keys`, registration)).status).toBe(
      409,
    );
    const wrongProof = {
      ...(await new PartyKey('ES256').registration(seeded.consumer)),
      proof: registration.proof,
    };
    expect((await client.consumer.post(`/identities/${seeded.consumer}/keys`, wrongProof)).status).toBe(422);
    // Rotation: the successor registered (201); the old key rotated already (409); a wrong proof (422).
    const kid = (
      await client.consumer.get<{ keys: { kid: string }[] }>(`/identities/${seeded.consumer}/keys`)
    ).body.keys.at(-1)!.kid;
    const rotatePath = `/identities/${seeded.consumer}/keys/${kid}/rotate`;
    const successor = await new PartyKey('EdDSA').registration(seeded.consumer);
    expect((await client.consumer.post(rotatePath, { ...successor, proof: registration.proof })).status).toBe(
      422,
    );
    expect((await client.consumer.post(rotatePath, successor)).status).toBe(201);
    expect(
      (await client.consumer.post(rotatePath, await new PartyKey('ES256').registration(seeded.consumer)))
        .status,
    ).toBe(409);
    // Revocation (200), and a second one (409).
    const revokePath = `/identities/${seeded.consumer}/keys/${kid}`;
    expect((await client.consumer.delete(revokePath)).status).toBe(200);
    expect((await client.consumer.delete(revokePath)).status).toBe(409);
    expect((await client.consumer.get(`/identities/${seeded.consumer}`)).status).toBe(200);
    expect((await client.provider.get(`/identities/${seeded.consumer}`)).status).toBe(404);
  });

  it('contracts: each action from a state that forbids it (409) or breaking a guard (422)', async () => {
    const { provider, admin } = client;
    // create: a self-contract (422)
    expect(
      (await provider.post('/contracts', { ...CREATE_FIXTURE, consumerId: seeded.provider })).status,
    ).toBe(422);
    const act = await active();
    const c = `/contracts/${act.id}`;
    const etag = `"${act.version}"`;
    // update an Active contract (409); terms whose validity ended (422)
    expect((await provider.put(c, { title: 'x' }, { 'if-match': etag })).status).toBe(409);
    const d = await draft();
    const past = {
      ...CREATE_FIXTURE.terms,
      validity: { start: '2020-01-01T00:00:00Z', end: '2021-01-01T00:00:00Z' },
    };
    expect(
      (await provider.put(`/contracts/${d.id}`, { terms: past }, { 'if-match': `"${d.version}"` })).status,
    ).toBe(422);
    // delete an Active contract (409); a draft once signed (422)
    expect((await provider.delete(c, { 'if-match': etag })).status).toBe(409);
    const signed = await sign('provider', await draft());
    const edited = await provider.put<Contract>(
      `/contracts/${signed.id}`,
      { title: 'y' },
      { 'if-match': `"${signed.version}"` },
    );
    expect(edited.body.status).toBe('Draft');
    expect(
      (await provider.delete(`/contracts/${signed.id}`, { 'if-match': `"${edited.body.version}"` })).status,
    ).toBe(422);
    // sign an Active contract (409); a bad signature (422)
    expect(
      (
        await provider.post(`${c}/sign`, {
          type: 'digital',
          kid: kids.provider,
          signature: keys.provider.sign(act.signingPayload),
        })
      ).status,
    ).toBe(409);
    const d2 = await draft();
    expect(
      (
        await provider.post(`/contracts/${d2.id}/sign`, {
          type: 'digital',
          kid: kids.provider,
          signature: keys.provider.sign('other'),
        })
      ).status,
    ).toBe(422);
    // activate a Draft (409); one signed by one party only (422)
    expect((await provider.post(`/contracts/${d2.id}/activate`)).status).toBe(409);
    const half = await sign('provider', await draft());
    expect((await provider.post(`/contracts/${half.id}/activate`)).status).toBe(422);
    // suspend a Draft (409); resume an Active one (409); terminate a never-signed draft (422)
    expect((await provider.post(`/contracts/${d2.id}/suspend`, { reason: 'r' })).status).toBe(409);
    expect((await admin.post(`${c}/resume`, {})).status).toBe(409);
    expect((await provider.post(`/contracts/${d2.id}/terminate`, { reason: 'r' })).status).toBe(422);
    // a terminated contract: terminate again (409)
    expect((await provider.post(`${c}/terminate`, { reason: 'done' })).status).toBe(200);
    expect((await provider.post(`${c}/terminate`, { reason: 'again' })).status).toBe(409);
    // measurements on a terminated contract (409); a bad approval signature (422); approving twice (409)
    const image = { pcr0: '4'.repeat(96), pcr1: '5'.repeat(96), pcr2: '6'.repeat(96) };
    expect((await provider.post(`${c}/measurements`, image)).status).toBe(409);
    const live = await active();
    const proposed = await provider.post<{ id: string; signingPayload: string }>(
      `/contracts/${live.id}/measurements`,
      image,
    );
    expect(proposed.status).toBe(201);
    const approve = `/contracts/${live.id}/measurements/${proposed.body.id}/approve`;
    expect(
      (await client.consumer.post(approve, { kid: kids.consumer, signature: keys.consumer.sign('other') }))
        .status,
    ).toBe(422);
    const approval = { kid: kids.consumer, signature: keys.consumer.sign(proposed.body.signingPayload) };
    expect((await client.consumer.post(approve, approval)).status).toBe(200);
    expect((await client.consumer.post(approve, approval)).status).toBe(409);
  });

  it('contract keys: the key (200) once its sync ran, a data key (200) for the provider, none while the key is not ready or the contract not Active (409)', async () => {
    const live = await active();
    const key = `/contracts/${live.id}/key`;
    const dataKeys = `/contracts/${live.id}/data-keys`;
    // Before its sync ran (the event not yet published), the key is not ready.
    expect((await client.provider.post(dataKeys)).status).toBe(409);
    const deadline = Date.now() + 15_000;
    while ((await client.provider.get(key)).status !== 200) {
      if (Date.now() > deadline) throw new Error('the contract key was never created');
      await context.stack.publishEvents();
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    expect((await client.provider.post(dataKeys)).status).toBe(200);
    expect((await client.provider.post(`/contracts/${live.id}/suspend`, { reason: 'r' })).status).toBe(200);
    expect((await client.provider.post(dataKeys)).status).toBe(409);
  });

  it('resuming a contract whose validity ended is a 422', async () => {
    const soon = new Date(Date.now() + 3_000).toISOString();
    const body = {
      ...CREATE_FIXTURE,
      terms: { ...CREATE_FIXTURE.terms, validity: { start: '2026-01-01T00:00:00Z', end: soon } },
    };
    const signed = await sign('consumer', await sign('provider', await draft(body)));
    expect((await client.provider.post(`/contracts/${signed.id}/activate`)).status).toBe(200);
    expect((await client.provider.post(`/contracts/${signed.id}/suspend`, { reason: 'pause' })).status).toBe(
      200,
    );
    await new Promise((resolve) => setTimeout(resolve, Date.parse(soon) - Date.now() + 50));
    expect((await client.admin.post(`/contracts/${signed.id}/resume`, {})).status).toBe(422);
  });

  it('enclaves: each action from a status that forbids it (409) or breaking a rule (422)', async () => {
    const { provider } = client;
    // create: an unknown contract (404), a contract not Active (422), an image nobody approved (422)
    const fixture = { ...ENCLAVE_FIXTURE, contractId: context.contractId };
    expect((await provider.post('/enclaves', { ...fixture, contractId: randomUUID() })).status).toBe(404);
    const notActive = await draft();
    expect((await provider.post('/enclaves', { ...fixture, contractId: notActive.id })).status).toBe(422);
    const unapproved = {
      ...fixture.configuration,
      image: { ...fixture.configuration.image, pcr0: '7'.repeat(96) },
    };
    expect((await provider.post('/enclaves', { ...fixture, configuration: unapproved })).status).toBe(422);
    const enclave = await runningEnclave();
    const e = `/enclaves/${enclave.id}`;
    const me = await harness.asInstance(enclave.instanceId!);
    // metrics from the future (422); the parent's heartbeat or document once Running (409)
    const ahead = new Date(Date.now() + 3_600_000).toISOString();
    expect((await me.post(`${e}/metrics`, sample(ahead))).status).toBe(422);
    expect((await me.post(`${e}/metrics`, sample())).status).toBe(202);
    expect((await me.post(`${e}/attestation/heartbeat`, { phase: 'attesting' })).status).toBe(409);
    const document = Buffer.from(await harness.attestAsParent(enclave.id)).toString('base64');
    expect((await me.post(`${e}/attestation`, { document })).status).toBe(409);
    expect((await provider.get(`${e}/attestation`)).status).toBe(200);
    expect((await provider.get(`${e}/metrics`)).status).toBe(200);
    // edit a Running enclave (409); resume a Running one (409)
    const current = (await provider.get<Enclave>(e)).body;
    expect(
      (
        await provider.put(
          e,
          { name: 'x', configuration: fixture.configuration },
          { 'if-match': `"${current.version}"` },
        )
      ).status,
    ).toBe(409);
    expect((await provider.post(`${e}/resume`, {})).status).toBe(409);
    // suspend (200), suspend again (409), metrics while Suspended (409), an incompatible edit (422)
    expect((await provider.post(`${e}/suspend`, { reason: 'pause' })).status).toBe(200);
    expect((await provider.post(`${e}/suspend`, { reason: 'again' })).status).toBe(409);
    expect((await me.post(`${e}/metrics`, sample())).status).toBe(409);
    const suspended = (await provider.get<Enclave>(e)).body;
    const configuration = fixture.configuration as typeof fixture.configuration & {
      securityPolicies: Record<string, unknown>;
    };
    const debug = {
      ...configuration,
      securityPolicies: { ...configuration.securityPolicies, debugMode: true },
    };
    expect(
      (await provider.put(e, { configuration: debug }, { 'if-match': `"${suspended.version}"` })).status,
    ).toBe(422);
    expect(
      (
        await provider.put(
          e,
          { name: 'renamed', configuration: fixture.configuration },
          { 'if-match': `"${suspended.version}"` },
        )
      ).status,
    ).toBe(200);
    // resume while its contract is suspended (422)
    expect((await provider.post(`/contracts/${context.contractId}/suspend`, { reason: 'hold' })).status).toBe(
      200,
    );
    expect((await provider.post(`${e}/resume`, {})).status).toBe(422);
    expect((await client.admin.post(`/contracts/${context.contractId}/resume`, {})).status).toBe(200);
    // terminate (200), then terminate, delete again (409)
    const before = (await provider.get<Enclave>(e)).body;
    expect((await provider.delete(e, { 'if-match': `"${before.version}"` })).status).toBe(200);
    const after = (await provider.get<Enclave>(e)).body;
    expect((await provider.post(`${e}/terminate`, { reason: 'again' })).status).toBe(409);
    expect((await provider.delete(e, { 'if-match': `"${after.version}"` })).status).toBe(409);
    const other = await harness.create();
    expect((await provider.post(`/enclaves/${other}/terminate`, { reason: 'done' })).status).toBe(200);
  });

  it('audit: an entity with no trail is a 404', async () => {
    expect((await client.auditor.get(`/audit?entityId=${randomUUID()}`)).status).toBe(404);
  });
});

it('has answered every status the document declares, for every operation', () => {
  const missing: string[] = [];
  for (const route of ROUTES as readonly RouteDefinition[]) {
    const seen = observedStatuses.get(route.id) ?? new Set<number>();
    for (const status of [...Object.keys(route.responses).map(Number), ...errorStatusesOf(route)]) {
      if (!seen.has(status) && !UNPRODUCED[`${route.id} ${status}`]) missing.push(`${route.id} ${status}`);
    }
  }
  expect(missing).toEqual([]);
  // Each exception names a status the document does declare.
  for (const entry of Object.keys(UNPRODUCED)) {
    const [id, status] = entry.split(' ');
    const route = (ROUTES as readonly RouteDefinition[]).find((r) => r.id === id)!;
    expect([...Object.keys(route.responses).map(Number), ...errorStatusesOf(route)], entry).toContain(
      Number(status),
    );
  }
});
