import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalStack, startLocalStack } from '../../infra/local/local-stack.ts';
import {
  SECURITY_REFUSAL_ENTITY_TYPE,
  securityRefusalChainId,
} from '../../shared/audit/security-refusals.ts';
import { sql } from '../../shared/database/database.ts';
import {
  type EnclaveData,
  LocalCreateEnclaveSchema,
  type SimulationFault,
} from '../../shared/domain/enclave.ts';
import { applyContractStatusToEnclaves, createEnclave } from '../../shared/enclaves/enclave-service.ts';
import { instanceSessionArn } from '../../shared/http/instance-caller.ts';
import type { Dependencies } from '../../shared/runtime/dependencies.ts';
import { useRuntime } from '../../shared/runtime/runtime.ts';
import type { WorkflowPorts } from '../../shared/workflow/workflow-ports.ts';
import { ApiClient } from '../support/api-client.ts';
import { type ContractParties, contractParties } from '../support/contract-parties.ts';
import { stackDatabase, stackDatabases } from '../support/databases.ts';
import { activateAsWorkflow, newInstanceId } from '../support/enclaves.ts';

/**
 * The enclave API over HTTP against the local stack: creation checked as provisioning would check it,
 * parties-only visibility, the lifecycle with ETags and If-Match, the platform's contract-status sweep, the
 * attestation record, and metrics from the parent instance (in process, with the IAM authorizer's context
 * as API Gateway builds it).
 */
const ENCLAVE_FIXTURE = JSON.parse(
  readFileSync(new URL('../fixtures/enclave-create.json', import.meta.url), 'utf8'),
) as { contractId: string; configuration: { image: { pcr0: string; pcr1: string; pcr2: string } } } & Record<
  string,
  unknown
>;
const IMAGE = ENCLAVE_FIXTURE.configuration.image;

/** The configuration fields the tests change. */
interface MutableConfig {
  resources: { cpuCount: number; memoryMiB: number };
  networkPolicies: { minTlsVersion: string };
  securityPolicies: { debugMode: boolean };
  observability: { metricsEnabled: boolean };
  image: { pcr2: string };
}

type Who = 'provider' | 'consumer' | 'admin' | 'auditor' | 'outsider';
type Enclave = EnclaveData & Record<string, unknown>;

let stack: LocalStack;
let parties: ContractParties;
let deps: Dependencies;
const clients = {} as Record<Who, ApiClient>;
let reportMetrics: (
  event: APIGatewayProxyEventV2,
  context: Context,
) => Promise<APIGatewayProxyStructuredResultV2>;

async function activeContractWithImage(): Promise<string> {
  const contractId = await parties.activeContract();
  await parties.measurementSet(contractId, { pcr0: IMAGE.pcr0, pcr1: IMAGE.pcr1, pcr2: IMAGE.pcr2 });
  return contractId;
}

function bodyFor(contractId: string, overrides: Record<string, unknown> = {}) {
  return { ...structuredClone(ENCLAVE_FIXTURE), contractId, ...overrides };
}

async function create(contractId: string, who: Who = 'provider'): Promise<Enclave> {
  const res = await clients[who].post<Enclave>('/enclaves', bodyFor(contractId));
  expect(res.status, res.text).toBe(201);
  return res.body;
}

/** The workflow's Validate claim and Activate step (after a verified attestation). */
async function run(enclave: Enclave, instanceId = newInstanceId()): Promise<Enclave> {
  return (await activateAsWorkflow(deps, enclave, instanceId)) as Enclave;
}

async function count(table: 'enclaves' | 'audit_log' | 'outbox' | 'enclave_metrics'): Promise<number> {
  const { rows } = await stack.deps.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table}`);
  return rows[0]!.n;
}

async function eventsOf(enclaveId: string): Promise<{ type: string; payload: Record<string, unknown> }[]> {
  const { rows } = await stack.deps.db.query<{ event_type: string; payload: Record<string, unknown> }>(
    'SELECT event_type, payload FROM outbox WHERE aggregate_id = :id ORDER BY occurred_at, event_type',
    { id: sql.uuid(enclaveId) },
  );
  return rows.map((r) => ({ type: r.event_type, payload: r.payload }));
}

/** The same suite on the embedded database, through the Data API path, and on a real server when given. */
const MODES = stackDatabases().map((mode, index) => ({ ...mode, index }));

describe.each(MODES)('on $name', ({ database, index }) => {
  let drop = async () => {};
  beforeAll(async () => {
    const opened = await stackDatabase(database);
    drop = opened.drop;
    const { options } = opened;
    // The outbox is not published: the local provisioning workflow and the enforcement rule must not act on
    // the enclaves this suite drives by hand (it plays the workflow's Activate and the platform's sweep).
    stack = await startLocalStack({ ...options, scheduledJobs: false });
    // The iam routes accept sessions of the parent role only: the local stack's, or one for this suite.
    deps = stack.deps.workflow
      ? stack.deps
      : { ...stack.deps, workflow: { parentRoleName: 'EnclaveParentRole' } as WorkflowPorts };
    useRuntime(deps);
    // One module instance per mode, composed with this mode's dependencies (as one Lambda container would be).
    const metricsModule = `${new URL('../../functions/api/enclaves/metrics-post.ts', import.meta.url).href}?mode=${index}`;
    ({ handler: reportMetrics } = (await import(
      /* @vite-ignore */ metricsModule
    )) as typeof import('../../functions/api/enclaves/metrics-post.ts'));
    parties = await contractParties(deps);
    for (const who of ['provider', 'consumer', 'admin', 'auditor', 'outsider'] as const) {
      clients[who] = await ApiClient.as(stack, who);
    }
  });
  afterAll(async () => {
    await stack?.close();
    await drop();
  });

  describe('POST /enclaves', () => {
    it('creates an Initializing enclave under the contract provider, audited, with EnclaveCreated', async () => {
      const contractId = await activeContractWithImage();
      const res = await clients.consumer.post<Enclave>('/enclaves', bodyFor(contractId));
      expect(res.status, res.text).toBe(201);
      expect(res.headers.get('etag')).toBe('"1"');
      expect(res.body).toMatchObject({
        status: 'Initializing',
        version: 1,
        contractId,
        providerId: parties.provider.id,
        attestation: null,
        metrics: null,
        instanceId: null,
        provisioningId: null,
      });
      expect(await eventsOf(res.body.id)).toEqual([
        {
          type: 'EnclaveCreated',
          payload: { enclaveId: res.body.id, contractId, status: 'Initializing', version: 1 },
        },
      ]);
      const trail = await clients.auditor.get<{ records: { action: string; actorId: string }[] }>(
        `/audit?entityId=${res.body.id}`,
      );
      expect(trail.body.records).toMatchObject([{ action: 'create', actorId: parties.consumer.id }]);
      expect((await create(contractId, 'admin')).providerId).toBe(parties.provider.id);
    });

    it('answers 404 to a non-party and 403 to an auditor, and stores nothing', async () => {
      const contractId = await activeContractWithImage();
      const before = await count('enclaves');
      expect((await clients.outsider.post('/enclaves', bodyFor(contractId))).status).toBe(404);
      expect((await clients.auditor.post('/enclaves', bodyFor(contractId))).status).toBe(403);
      expect(
        (await clients.provider.post('/enclaves', bodyFor('00000000-0000-4000-8000-000000000001'))).status,
      ).toBe(404);
      expect(await count('enclaves')).toBe(before);
    });

    it('refuses with 422 listing every unmet requirement, and stores nothing', async () => {
      const contractId = await activeContractWithImage();
      const body = bodyFor(contractId, { region: 'us-east-1' }) as unknown as {
        configuration: MutableConfig;
      };
      body.configuration.securityPolicies.debugMode = true;
      body.configuration.networkPolicies.minTlsVersion = '1.2';
      body.configuration.image.pcr2 = 'f'.repeat(96);
      const before = { enclaves: await count('enclaves'), outbox: await count('outbox') };
      const res = await clients.provider.post<{ type: string; errors: { field: string }[] }>(
        '/enclaves',
        body,
      );
      expect(res.status).toBe(422);
      expect(res.body.type).toMatch(/enclave-not-provisionable$/);
      expect(res.body.errors.map((e) => e.field)).toEqual(
        expect.arrayContaining([
          'region',
          'configuration.networkPolicies.minTlsVersion',
          'configuration.securityPolicies.debugMode',
          'configuration.image',
        ]),
      );
      expect({ enclaves: await count('enclaves'), outbox: await count('outbox') }).toEqual(before);
    });

    it('refuses a contract that is not Active with 422 contract-not-active', async () => {
      const draft = await clients.provider.post<{ id: string }>(
        '/contracts',
        JSON.parse(readFileSync(new URL('../fixtures/contract-create.json', import.meta.url), 'utf8')),
      );
      const res = await clients.provider.post<{ errors: { field: string; message: string }[] }>(
        '/enclaves',
        bodyFor(draft.body.id),
      );
      expect(res.status).toBe(422);
      expect(res.body.errors).toContainEqual(expect.objectContaining({ field: 'contractId' }));
    });

    it('replays an Idempotency-Key and refuses its reuse for another body', async () => {
      const contractId = await activeContractWithImage();
      const key = { 'idempotency-key': `enclave-${randomBytes(6).toString('hex')}` };
      const first = await clients.provider.post<Enclave>('/enclaves', bodyFor(contractId), key);
      const again = await clients.provider.post<Enclave>('/enclaves', bodyFor(contractId), key);
      expect(first.status).toBe(201);
      expect(again.status).toBe(201);
      expect(again.headers.get('idempotent-replayed')).toBe('true');
      expect(again.body.id).toBe(first.body.id);
      const other = await clients.provider.post('/enclaves', bodyFor(contractId, { name: 'other' }), key);
      expect(other.status).toBe(422);
    });

    it('refuses simulation outside the local stack (400, body.simulation) and hands it to the local hooks', async () => {
      const contractId = await activeContractWithImage();
      const before = await count('enclaves');
      const res = await clients.provider.post<{ errors: { field: string }[] }>(
        '/enclaves',
        bodyFor(contractId, { simulation: { fault: 'debug-mode' } }),
      );
      if (stack.deps.local === undefined) {
        expect(res.status).toBe(400);
        expect(res.body.errors).toContainEqual(expect.objectContaining({ field: 'body.simulation' }));
        expect(await count('enclaves')).toBe(before);
      } else {
        expect(res.status).toBe(201);
      }
      const recorded: [string, SimulationFault][] = [];
      const local = {
        attestationRoots: [],
        recordSimulation: (id: string, fault: SimulationFault) => void recorded.push([id, fault]),
      };
      const created = await createEnclave(
        { ...deps, local },
        parties.provider,
        LocalCreateEnclaveSchema.parse(bodyFor(contractId, { simulation: { fault: 'no-callback' } })),
      );
      expect(recorded).toEqual([[created.body.id, 'no-callback']]);
    });
  });

  describe('reading enclaves', () => {
    it('shows an enclave to its parties, admins and auditors only (404 otherwise)', async () => {
      const e = await create(await activeContractWithImage());
      for (const who of ['provider', 'consumer', 'admin', 'auditor'] as const) {
        const res = await clients[who].get<Enclave>(`/enclaves/${e.id}`);
        expect(res.status).toBe(200);
        expect(res.headers.get('etag')).toBe('"1"');
      }
      expect((await clients.outsider.get(`/enclaves/${e.id}`)).status).toBe(404);
      const listed = await clients.outsider.get<{ items: Enclave[] }>('/enclaves');
      expect(listed.body.items.map((x) => x.id)).not.toContain(e.id);
    });

    it('lists newest first with filters and an opaque cursor', async () => {
      const contractId = await activeContractWithImage();
      const made = [await create(contractId), await create(contractId), await create(contractId)];
      const first = await clients.consumer.get<{ items: Enclave[]; nextCursor: string }>(
        `/enclaves?contractId=${contractId}&limit=2`,
      );
      expect(first.body.items.map((e) => e.id)).toEqual([made[2]!.id, made[1]!.id]);
      const second = await clients.consumer.get<{ items: Enclave[]; nextCursor: string | null }>(
        `/enclaves?contractId=${contractId}&limit=2&cursor=${first.body.nextCursor}`,
      );
      expect(second.body).toEqual({
        items: [expect.objectContaining({ id: made[0]!.id })],
        nextCursor: null,
      });
      const running = await clients.admin.get<{ items: Enclave[] }>(
        `/enclaves?contractId=${contractId}&status=Running`,
      );
      expect(running.body.items).toEqual([]);
      expect((await clients.consumer.get('/enclaves?cursor=bm90LWEtY3Vyc29y')).status).toBe(400);
      expect((await clients.consumer.get('/enclaves?limit=101')).status).toBe(400);
      expect((await clients.consumer.get('/enclaves?status=Stopped')).status).toBe(400);
    });

    it('answers the attestation record, or 404 no-attestation before one', async () => {
      const e = await create(await activeContractWithImage());
      const none = await clients.consumer.get<{ type: string }>(`/enclaves/${e.id}/attestation`);
      expect(none.status).toBe(404);
      expect(none.body.type).toMatch(/no-attestation$/);
      const running = await run(e);
      const res = await clients.auditor.get(`/enclaves/${e.id}/attestation`);
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({
        enclaveId: e.id,
        status: 'Running',
        instanceId: running.instanceId,
        attestation: { verdict: 'verified' },
      });
      expect((await clients.outsider.get(`/enclaves/${e.id}/attestation`)).status).toBe(404);
    });
  });

  describe('the enclave lifecycle over HTTP', () => {
    it('suspends (voiding the attestation), edits, resumes into Initializing, and terminates', async () => {
      const running = await run(await create(await activeContractWithImage()));
      const path = `/enclaves/${running.id}`;
      const v = running.version;

      expect(
        (await clients.consumer.post(`${path}/suspend`, { reason: 'r' }, { 'if-match': '"1"' })).status,
      ).toBe(412);
      expect((await clients.auditor.post(`${path}/suspend`, { reason: 'r' })).status).toBe(403);
      expect(
        (
          await clients.consumer.put(
            path,
            { configuration: ENCLAVE_FIXTURE.configuration },
            { 'if-match': `"${v}"` },
          )
        ).status,
      ).toBe(409);

      const suspended = await clients.consumer.post<Enclave>(
        `${path}/suspend`,
        { reason: 'pause training' },
        { 'if-match': `"${v}"` },
      );
      expect(suspended.status).toBe(200);
      expect(suspended.body).toMatchObject({
        status: 'Suspended',
        version: v + 1,
        statusReason: 'pause training',
        attestation: { verdict: 'voided', reason: 'pause training' },
      });
      expect(suspended.headers.get('etag')).toBe(`"${v + 1}"`);
      const attestation = await clients.provider.get(`${path}/attestation`);
      expect(attestation.body).toMatchObject({ status: 'Suspended', attestation: { verdict: 'voided' } });

      const config = structuredClone(ENCLAVE_FIXTURE.configuration) as unknown as MutableConfig;
      expect((await clients.provider.put(path, { configuration: config })).status).toBe(428);
      config.observability.metricsEnabled = false; // the contract requires audit logging
      const incompatible = await clients.provider.put<{ errors: { field: string }[] }>(
        path,
        { configuration: config },
        { 'if-match': `"${v + 1}"` },
      );
      expect(incompatible.status).toBe(422);
      expect(incompatible.body.errors).toContainEqual(
        expect.objectContaining({ field: 'configuration.observability.metricsEnabled' }),
      );
      config.observability.metricsEnabled = true;
      config.resources.cpuCount = 8;
      const edited = await clients.provider.put<Enclave>(
        path,
        { name: 'renamed', configuration: config },
        { 'if-match': `"${v + 1}"` },
      );
      expect(edited.status, edited.text).toBe(200);
      // New resources: the stopped parent no longer fits and is retired (resume launches a new one).
      expect(edited.body).toMatchObject({
        status: 'Suspended',
        name: 'renamed',
        version: v + 2,
        instanceId: null,
      });

      const resumed = await clients.admin.post<Enclave>(`${path}/resume`, {});
      expect(resumed.status).toBe(200);
      expect(resumed.body).toMatchObject({
        status: 'Initializing',
        version: v + 3,
        provisioningId: null,
        statusReason: null,
        instanceId: null,
      });
      expect(running.instanceId).not.toBeNull();

      expect((await clients.auditor.post(`${path}/terminate`, { reason: 'x' })).status).toBe(403);
      expect((await clients.provider.post(`${path}/terminate`, {})).status).toBe(400);
      const terminated = await clients.provider.post<Enclave>(`${path}/terminate`, { reason: 'done' });
      expect(terminated.body).toMatchObject({ status: 'Terminated', statusReason: 'done', version: v + 4 });
      expect((await clients.provider.post(`${path}/terminate`, { reason: 'again' })).status).toBe(409);
      expect((await clients.provider.post(`${path}/resume`, {})).status).toBe(409);

      const events = (await eventsOf(running.id)).map((e) => e.type);
      expect(events).toEqual(
        expect.arrayContaining([
          'EnclaveCreated',
          'EnclaveActivated',
          'EnclaveSuspended',
          'EnclaveUpdated',
          'EnclaveResumed',
          'EnclaveTerminated',
        ]),
      );
      const suspendedEvent = (await eventsOf(running.id)).find((e) => e.type === 'EnclaveSuspended')!;
      expect(suspendedEvent.payload).toEqual({
        enclaveId: running.id,
        contractId: running.contractId,
        status: 'Suspended',
        version: v + 1,
        reason: 'pause training',
        instanceId: running.instanceId,
      });
      const trail = await clients.admin.get<{
        records: { action: string }[];
        verification: { valid: boolean };
      }>(`/audit?entityId=${running.id}`);
      expect(trail.body.verification.valid).toBe(true);
      expect(trail.body.records.map((r) => r.action)).toEqual([
        'create',
        'provision',
        'activate',
        'suspend',
        'edit',
        'resume',
        'terminate',
      ]);
    });

    it('DELETE needs If-Match and terminates with "deleted by <caller>", answering the enclave', async () => {
      const e = await create(await activeContractWithImage());
      expect((await clients.provider.delete(`/enclaves/${e.id}`)).status).toBe(428);
      expect((await clients.provider.delete(`/enclaves/${e.id}`, { 'if-match': '"7"' })).status).toBe(412);
      expect((await clients.outsider.delete(`/enclaves/${e.id}`, { 'if-match': '"1"' })).status).toBe(404);
      const deleted = await clients.provider.delete<Enclave>(`/enclaves/${e.id}`, { 'if-match': '"1"' });
      expect(deleted.status).toBe(200);
      expect(deleted.body).toMatchObject({
        status: 'Terminated',
        statusReason: 'deleted by provider',
        version: 2,
      });
      expect((await clients.provider.get(`/enclaves/${e.id}`)).body).toMatchObject({ status: 'Terminated' });
    });

    it('settles concurrent writes like contracts: one wins, the other sees 409 (or 412 with a stale If-Match)', async () => {
      const a = await run(await create(await activeContractWithImage()));
      const both = await Promise.all([
        clients.provider.post(`/enclaves/${a.id}/terminate`, { reason: 'one' }),
        clients.consumer.post(`/enclaves/${a.id}/terminate`, { reason: 'two' }),
      ]);
      expect(both.map((r) => r.status).sort()).toEqual([200, 409]);
      const b = await run(await create(await activeContractWithImage()));
      const tag = { 'if-match': `"${b.version}"` };
      const raced = await Promise.all([
        clients.provider.post(`/enclaves/${b.id}/suspend`, { reason: 'one' }, tag),
        clients.consumer.post(`/enclaves/${b.id}/terminate`, { reason: 'two' }, tag),
      ]);
      expect(raced.map((r) => r.status).sort()).toEqual([200, 412]);
      const trail = await clients.admin.get<{ records: unknown[]; verification: { valid: boolean } }>(
        `/audit?entityId=${b.id}`,
      );
      expect(trail.body.records).toHaveLength(b.version + 1);
      expect(trail.body.verification.valid).toBe(true);
    });

    it('resumes only under an Active contract', async () => {
      const contractId = await activeContractWithImage();
      const running = await run(await create(contractId));
      await clients.provider.post(`/enclaves/${running.id}/suspend`, { reason: 'r' });
      await clients.provider.post(`/contracts/${contractId}/suspend`, { reason: 'hold' });
      const res = await clients.provider.post<{ type: string }>(`/enclaves/${running.id}/resume`, {});
      expect(res.status).toBe(422);
      expect((await clients.provider.get(`/enclaves/${running.id}`)).body).toMatchObject({
        status: 'Suspended',
      });
    });
  });

  describe('applyContractStatusToEnclaves', () => {
    it('suspends Running enclaves of a suspended contract, terminates the live ones of a terminated one, idempotently', async () => {
      const contractId = await activeContractWithImage();
      const a = await run(await create(contractId));
      const b = await run(await create(contractId));
      const initializing = await create(contractId);
      expect(await applyContractStatusToEnclaves(deps, contractId)).toEqual({
        suspended: [],
        terminated: [],
      });

      await clients.consumer.post(`/contracts/${contractId}/suspend`, { reason: 'audit' });
      const first = await applyContractStatusToEnclaves(deps, contractId);
      expect(first.suspended.sort()).toEqual([a.id, b.id].sort());
      expect(first.terminated).toEqual([]);
      expect(await applyContractStatusToEnclaves(deps, contractId)).toEqual({
        suspended: [],
        terminated: [],
      });
      const suspended = await clients.provider.get<Enclave>(`/enclaves/${a.id}`);
      expect(suspended.body).toMatchObject({
        status: 'Suspended',
        statusReason: 'contract suspended',
        attestation: { verdict: 'voided' },
      });

      await clients.provider.post(`/contracts/${contractId}/terminate`, { reason: 'end' });
      const second = await applyContractStatusToEnclaves(deps, contractId);
      expect(second.terminated.sort()).toEqual([a.id, b.id, initializing.id].sort());
      expect(await applyContractStatusToEnclaves(deps, contractId)).toEqual({
        suspended: [],
        terminated: [],
      });
      const terminated = await clients.provider.get<Enclave>(`/enclaves/${initializing.id}`);
      expect(terminated.body).toMatchObject({ status: 'Terminated', statusReason: 'contract terminated' });
      const trail = await clients.admin.get<{ records: { action: string; actorId: string | null }[] }>(
        `/audit?entityId=${a.id}`,
      );
      expect(trail.body.records.slice(-2)).toMatchObject([
        { action: 'suspend', actorId: null },
        { action: 'terminate', actorId: null },
      ]);
    });
  });

  describe('metrics', () => {
    const sample = (reportedAt = new Date().toISOString()) => ({
      reportedAt,
      cpuUtilizationPercent: 42.5,
      memoryUsedMiB: 2048,
      uptimeSeconds: 60,
    });

    function post(enclaveId: string, instanceId: string | null, body: unknown) {
      const event = {
        version: '2.0',
        routeKey: 'POST /api/v1/enclaves/{id}/metrics',
        rawPath: `/api/v1/enclaves/${enclaveId}/metrics`,
        rawQueryString: '',
        headers: { 'content-type': 'application/json' },
        pathParameters: { id: enclaveId },
        isBase64Encoded: false,
        body: JSON.stringify(body),
        requestContext: {
          accountId: '000000000000',
          apiId: 'local',
          domainName: 'localhost',
          domainPrefix: 'localhost',
          requestId: randomBytes(8).toString('hex'),
          routeKey: 'POST /api/v1/enclaves/{id}/metrics',
          stage: '$default',
          time: new Date().toISOString(),
          timeEpoch: Date.now(),
          http: {
            method: 'POST',
            path: `/api/v1/enclaves/${enclaveId}/metrics`,
            protocol: 'HTTP/1.1',
            sourceIp: '127.0.0.1',
            userAgent: 'test',
          },
          ...(instanceId
            ? {
                authorizer: {
                  iam: { userArn: instanceSessionArn(deps.workflow!.parentRoleName, instanceId) },
                },
              }
            : {}),
        },
      } as unknown as APIGatewayProxyEventV2;
      return reportMetrics(event, {} as Context);
    }

    it('accepts samples from the parent instance only, without a version change, and lists them newest first', async () => {
      const running = await run(await create(await activeContractWithImage()));
      const t0 = Date.now() - 60_000;
      for (const offset of [0, 10_000, 20_000]) {
        const res = await post(running.id, running.instanceId, sample(new Date(t0 + offset).toISOString()));
        expect(res.statusCode, res.body).toBe(202);
      }
      // an agent's retry of the same sample is accepted and stored once
      expect(
        (await post(running.id, running.instanceId, sample(new Date(t0).toISOString()))).statusCode,
      ).toBe(202);

      const got = await clients.consumer.get<Enclave>(`/enclaves/${running.id}`);
      expect(got.body.version).toBe(running.version);
      expect(got.body.metrics).toMatchObject({ reportedAt: new Date(t0 + 20_000).toISOString() });

      const page = await clients.auditor.get<{ items: { reportedAt: string }[]; nextCursor: string }>(
        `/enclaves/${running.id}/metrics?limit=2`,
      );
      expect(page.status).toBe(200);
      expect(page.body.items.map((s) => Date.parse(s.reportedAt))).toEqual([t0 + 20_000, t0 + 10_000]);
      const rest = await clients.provider.get<{ items: { reportedAt: string }[]; nextCursor: string | null }>(
        `/enclaves/${running.id}/metrics?limit=2&cursor=${page.body.nextCursor}`,
      );
      expect(rest.body.items.map((s) => Date.parse(s.reportedAt))).toEqual([t0]);
      expect(rest.body.nextCursor).toBeNull();
      expect((await clients.outsider.get(`/enclaves/${running.id}/metrics`)).status).toBe(404);
    });

    it('refuses another instance with 403 and a security-refusal audit record, changing nothing else', async () => {
      const running = await run(await create(await activeContractWithImage()));
      const intruder = newInstanceId();
      const before = { metrics: await count('enclave_metrics'), outbox: await count('outbox') };
      const res = await post(running.id, intruder, sample());
      expect(res.statusCode).toBe(403);
      expect({ metrics: await count('enclave_metrics'), outbox: await count('outbox') }).toEqual(before);
      const chain = securityRefusalChainId('enclave', running.id);
      const trail = await clients.auditor.get<{
        records: { entityType: string; action: string; data: Record<string, unknown> }[];
        verification: { valid: boolean };
      }>(`/audit?entityId=${chain}`);
      expect(trail.status).toBe(200);
      expect(trail.body.verification.valid).toBe(true);
      expect(trail.body.records).toMatchObject([
        {
          entityType: SECURITY_REFUSAL_ENTITY_TYPE,
          action: 'refuse',
          data: {
            entityType: 'enclave',
            entityId: running.id,
            action: 'report-metrics',
            code: 'wrong-instance',
            callerArn: instanceSessionArn(deps.workflow!.parentRoleName, intruder),
          },
        },
      ]);
      // the enclave's own chain is untouched and can still advance
      expect((await clients.provider.post(`/enclaves/${running.id}/suspend`, { reason: 'r' })).status).toBe(
        200,
      );
      expect((await post(running.id, newInstanceId(), sample())).statusCode).toBe(403);
      const again = await clients.auditor.get<{ records: unknown[] }>(`/audit?entityId=${chain}`);
      expect(again.body.records).toHaveLength(2);
    });

    it('refuses a suspended enclave (409), a missing caller (401) and bad samples (400)', async () => {
      const running = await run(await create(await activeContractWithImage()));
      expect((await post(running.id, null, sample())).statusCode).toBe(401);
      expect(
        (await post(running.id, running.instanceId, { ...sample(), cpuUtilizationPercent: 101 })).statusCode,
      ).toBe(400);
      expect((await post(running.id, running.instanceId, { ...sample(), extra: 1 })).statusCode).toBe(400);
      const future = new Date(Date.now() + 3_600_000).toISOString();
      expect((await post(running.id, running.instanceId, sample(future))).statusCode).toBe(422);
      await clients.provider.post(`/enclaves/${running.id}/suspend`, { reason: 'r' });
      expect((await post(running.id, running.instanceId, sample())).statusCode).toBe(409);
      expect(
        (await post('00000000-0000-4000-8000-000000000009', running.instanceId, sample())).statusCode,
      ).toBe(404);
    });

    it('is not reachable with a user token', async () => {
      const running = await run(await create(await activeContractWithImage()));
      const res = await clients.provider.post(`/enclaves/${running.id}/metrics`, sample());
      expect([401, 403]).toContain(res.status);
      expect(
        await stack.deps.db.query('SELECT 1 FROM enclave_metrics WHERE enclave_id = :id', {
          id: sql.uuid(running.id),
        }),
      ).toMatchObject({ rows: [] });
    });
  });
});
