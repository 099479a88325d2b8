/**
 * The parent agent's real code (infra/parent-agent) through every phase, against stand-ins that enforce what
 * the services enforce: IMDSv2 (session tokens, tags, the instance role's credentials), S3 and the API
 * (each request's SigV4 signature verified with the credentials IMDS handed out, the caller named by the
 * instance's role session), and nitro-cli, whose "enclave" is the reference responder answering the
 * attestation protocol with the Nitro simulator as its NSM. The document the API receives must verify with
 * the platform's verifier: the tag's nonce bound, the fetched image's PCRs, the instance's PCR4.
 * Then each bad condition: it must end in a clear log line and an exit status, never a hang.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Sha256 } from '@smithy/core/checksum';
import { HttpRequest } from '@smithy/core/protocols';
import { SignatureV4 } from '@smithy/signature-v4';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { verifySigV4 } from '../../infra/local/services/apigateway/sigv4-verifier.ts';
import { type ImdsSimulator, startImdsSimulator } from '../../infra/local/services/ec2/imds-simulator.ts';
import { NitroCliSimulator } from '../../infra/local/services/nitro-enclaves/nitro-cli-simulator.ts';
import {
  imageMeasurements,
  NitroSimulator,
} from '../../infra/local/services/nitro-enclaves/nitro-simulator.ts';
import {
  type AgentConfig,
  type AgentPorts,
  abortableSleep,
  EXIT,
  runAgent,
} from '../../infra/parent-agent/agent.ts';
import { AgentApi } from '../../infra/parent-agent/agent-api.ts';
import {
  requestAttestation,
  requestMetrics,
  tcpConnector,
} from '../../infra/parent-agent/attestation-client.ts';
import { fetchImage } from '../../infra/parent-agent/image-fetch.ts';
import { Imds } from '../../infra/parent-agent/imds.ts';
import { NitroCli } from '../../infra/parent-agent/nitro-cli.ts';
import { buildPolicy, verifyAttestation } from '../../shared/attestation/index.ts';
import { instanceSessionArn } from '../../shared/http/instance-caller.ts';
import { INSTANCE_TAGS } from '../../shared/workflow/workflow-ports.ts';

const REGION = 'eu-central-1';
const ROLE = 'EnclaveParentRole';
const INSTANCE = 'i-0a1b2c3d4e5f60718';
const ENCLAVE = '6f1c1b1e-7a51-4c55-9c0e-1a2b3c4d5e6f';
const EIF = Buffer.from('an enclave image: kernel, ramdisks and the training runner');
const EIF_SHA256 = createHash('sha256').update(EIF).digest('hex');
const credentials = {
  accessKeyId: 'ASIAPARENTINSTANCE01',
  secretAccessKey: randomBytes(30).toString('base64'),
  sessionToken: randomBytes(60).toString('base64'),
};
/** Another instance's credentials, of the same role: valid, but naming another caller. */
const otherCredentials = {
  accessKeyId: 'ASIAPARENTINSTANCE02',
  secretAccessKey: randomBytes(30).toString('base64'),
  sessionToken: randomBytes(60).toString('base64'),
};
const principals = new Map([
  [credentials.accessKeyId, { ...credentials, callerArn: instanceSessionArn(ROLE, INSTANCE) }],
  [
    otherCredentials.accessKeyId,
    { ...otherCredentials, callerArn: instanceSessionArn(ROLE, 'i-0fffffffffffffff0') },
  ],
]);

interface Received {
  readonly route: string;
  readonly body: Record<string, unknown>;
  readonly callerArn: string;
}

let simulator: NitroSimulator;
let imds: ImdsSimulator;
let tags: Record<string, string>;
let api: { server: Server; url: string; received: Received[]; refusals: number };
/** How the API answers a document: its status and problem type, in turn; then 202. */
let documentAnswers: { status: number; type?: string }[] = [];
/** How the API answers metrics samples, in turn; then 202. */
let metricsAnswers: { status: number; type?: string }[] = [];
let s3: { server: Server; url: string; mode: 'serve' | 'stall' | 'corrupt' | 'missing' };
let nitro: NitroCliSimulator;
let logs: { level: string; message: string; fields?: Record<string, unknown> }[];
let dir: string;

async function readBody(request: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

beforeAll(async () => {
  simulator = await NitroSimulator.create();
  const apiServer = createServer(async (request, response) => {
    const body = await readBody(request);
    const verdict = await verifySigV4(
      { method: request.method!, url: request.url!, headers: request.headers, body },
      { service: 'execute-api', region: REGION, lookup: (key) => principals.get(key) },
    );
    if (!verdict.ok) {
      api.refusals++;
      response.writeHead(403, { 'content-type': 'application/json' });
      response.end(JSON.stringify({ message: verdict.message }));
      return;
    }
    const route = /^\/api\/v1\/enclaves\/([^/]+)\/(.+)$/.exec(request.url!);
    api.received.push({
      route: route?.[2] ?? request.url!,
      body: JSON.parse(body),
      callerArn: verdict.callerArn,
    });
    const answer =
      route?.[2] === 'attestation'
        ? documentAnswers.shift()
        : route?.[2] === 'metrics'
          ? metricsAnswers.shift()
          : undefined;
    if (answer && answer.status >= 300) {
      response.writeHead(answer.status, { 'content-type': 'application/problem+json' });
      response.end(JSON.stringify({ type: answer.type ?? 'about:blank', detail: 'refused by the test' }));
      return;
    }
    response.writeHead(route?.[2] === 'attestation' ? 202 : 200, { 'content-type': 'application/json' });
    response.end('{}');
  });
  api = { server: apiServer, url: `${await listen(apiServer)}/api/v1`, received: [], refusals: 0 };
  const s3Server = createServer(async (request, response) => {
    const verdict = await verifySigV4(
      { method: request.method!, url: request.url!, headers: request.headers, body: '' },
      { service: 's3', region: REGION, lookup: (key) => principals.get(key), uriEscapePath: false },
    );
    if (!verdict.ok) {
      response.writeHead(403);
      response.end();
      return;
    }
    if (s3.mode === 'missing' || request.url !== '/artifacts-bucket/images/default.eif') {
      response.writeHead(404);
      response.end();
      return;
    }
    response.writeHead(200, { 'content-length': String(EIF.length) });
    if (s3.mode === 'stall') {
      response.write(EIF.subarray(0, 10)); // then nothing
      return;
    }
    response.end(s3.mode === 'corrupt' ? Buffer.concat([EIF.subarray(1), Buffer.from('!')]) : EIF);
  });
  s3 = { server: s3Server, url: await listen(s3Server), mode: 'serve' };
});
afterAll(async () => {
  api?.server.close();
  s3?.server.closeAllConnections();
  s3?.server.close();
});
afterEach(async () => {
  await nitro?.terminate();
  await imds?.close();
});

interface Setup {
  readonly config?: Partial<AgentConfig>;
  readonly responder?: 'python' | 'silent';
  readonly imageTag?: string;
}

/** One parent: its IMDS, nitro-cli and the agent's real adapters; the agent runs until `stop()`. */
async function startParent(setup: Setup = {}) {
  tags = {
    [INSTANCE_TAGS.enclaveId]: ENCLAVE,
    [INSTANCE_TAGS.attestationNonce]: randomBytes(32).toString('base64'),
    [INSTANCE_TAGS.imageUrl]: setup.imageTag ?? '',
    [INSTANCE_TAGS.imageSha256]: setup.imageTag ? EIF_SHA256 : '',
    [INSTANCE_TAGS.cpuCount]: '2',
    [INSTANCE_TAGS.memoryMiB]: '2048',
  };
  imds = await startImdsSimulator({
    instanceId: INSTANCE,
    region: REGION,
    tags: () => tags,
    role: {
      name: ROLE,
      credentials: () => ({ ...credentials, expiration: new Date(Date.now() + 6 * 3600_000) }),
    },
  });
  nitro = new NitroCliSimulator({ simulator, instanceId: INSTANCE, responder: setup.responder ?? 'python' });
  api.received = [];
  api.refusals = 0;
  logs = [];
  dir = mkdtempSync(join(tmpdir(), 'parent-agent-'));
  const metadata = new Imds({ endpoint: imds.url, timeoutMs: 500 });
  const config: AgentConfig = {
    imagePath: join(dir, 'enclave.eif'),
    defaultImage: { url: 's3://artifacts-bucket/images/default.eif', sha256: EIF_SHA256 },
    enclaveCid: 16,
    heartbeatIntervalMs: 50,
    startTimeoutMs: 10_000,
    responderDeadlineMs: 1_000,
    attestTimeoutMs: 2_000,
    submitDeadlineMs: 2_000,
    watchIntervalMs: 50,
    metricsIntervalMs: 60_000,
    ...setup.config,
  };
  const ports: AgentPorts = {
    imds: metadata,
    api: (identity) =>
      new AgentApi({
        apiUrl: api.url,
        enclaveId: identity.enclaveId,
        region: identity.region,
        credentials: () => metadata.credentials(),
        sleep: (ms) => new Promise((resolve) => setTimeout(resolve, Math.min(ms, 20))),
      }),
    fetchImage: (source, path, onProgress) =>
      fetchImage(source, path, {
        region: REGION,
        credentials: () => metadata.credentials(),
        s3Endpoint: s3.url,
        stallMs: 300,
        onProgress,
      }),
    nitro: new NitroCli(nitro.run),
    attest: (cid, request, timeoutMs) => {
      const port = nitro.portOf(cid);
      // An enclave whose responder is not listening: a connection refused, as vsock answers.
      return requestAttestation(tcpConnector('127.0.0.1', port ?? 1), request, { timeoutMs });
    },
    metrics: (cid, timeoutMs) =>
      requestMetrics(tcpConnector('127.0.0.1', nitro.portOf(cid) ?? 1), { timeoutMs }),
    defaultResources: () => ({ cpuCount: 2, memoryMiB: 1024 }),
    log: (level, message, fields) => logs.push({ level, message, ...(fields ? { fields } : {}) }),
    sleep: abortableSleep,
    now: Date.now,
  };
  const stopper = new AbortController();
  const exit = runAgent(config, ports, stopper.signal);
  return { exit, stop: () => stopper.abort(), config };
}

async function until(condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out; log: ${JSON.stringify(logs)}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

const documents = () => api.received.filter((r) => r.route === 'attestation');
const phases = () =>
  api.received.filter((r) => r.route === 'attestation/heartbeat').map((r) => r.body.phase as string);

function verifies(document: string, nonceTag: string) {
  const nonce = new Uint8Array(Buffer.from(nonceTag, 'base64'));
  // The fetched image's PCR0/1/2 and this instance's PCR4.
  const measured = simulator.expectedPcrs({ instanceId: INSTANCE, image: { eif: EIF } });
  expect(measured[0]).toBe(imageMeasurements({ eif: EIF }).pcr0);
  expect(measured[4]).toBe(createHash('sha384').update(Buffer.alloc(48)).update(INSTANCE).digest('hex'));
  return verifyAttestation(
    Buffer.from(document, 'base64'),
    buildPolicy({ measurements: [measured], expectedNonce: nonce, requireFreshness: true, maxAgeMs: 60_000 }),
    { at: new Date(), trustedRoots: [simulator.rootPem] },
  );
}

describe('the parent agent', () => {
  it('boots, fetches the default image, starts the enclave, attests with the tag nonce and submits, signed as its instance', async () => {
    const parent = await startParent();
    await until(() => documents().length === 1);
    parent.stop();
    expect(await parent.exit).toBe(EXIT.stopped);
    // Every phase reported in order (several heartbeats per phase may go out while it works).
    expect([...new Set(phases())]).toEqual(['booting', 'fetching-image', 'starting-enclave', 'attesting']);
    expect(api.received.every((r) => r.callerArn === instanceSessionArn(ROLE, INSTANCE))).toBe(true);
    expect(api.refusals).toBe(0);
    const result = verifies(documents()[0]!.body.document as string, tags[INSTANCE_TAGS.attestationNonce]!);
    expect(result.ok ? 'ok' : result.code).toBe('ok');
    // IMDSv2 only: one token for every read.
    expect(imds.requests.filter((r) => r.method === 'PUT')).toHaveLength(1);
    expect(imds.requests.every((r) => r.status === 200 || r.status === 404)).toBe(true);
  });

  it("fetches an enclave's own image from its https source tag, not the default", async () => {
    const parent = await startParent({ imageTag: 'https://127.0.0.1:1/own.eif' });
    expect(await parent.exit).toBe(EXIT.failed);
    // The https source is tried (and unreachable here), never the default one.
    expect(logs.at(-1)?.message).toMatch(/the image source did not answer/);
  });

  it("reports the enclave's runtime metrics every interval once attested, as the instance", async () => {
    const parent = await startParent({ config: { metricsIntervalMs: 100 } });
    const samples = () => api.received.filter((r) => r.route === 'metrics');
    await until(() => samples().length >= 2);
    parent.stop();
    expect(await parent.exit).toBe(EXIT.stopped);
    // Never before the document: metrics are of an attested enclave.
    const firstSample = api.received.findIndex((r) => r.route === 'metrics');
    expect(api.received.findIndex((r) => r.route === 'attestation')).toBeLessThan(firstSample);
    for (const { body, callerArn } of samples()) {
      expect(callerArn).toBe(instanceSessionArn(ROLE, INSTANCE));
      expect(Object.keys(body).sort()).toEqual([
        'cpuUtilizationPercent',
        'memoryUsedMiB',
        'reportedAt',
        'uptimeSeconds',
      ]);
      expect(Math.abs(Date.parse(body.reportedAt as string) - Date.now())).toBeLessThan(10_000);
      expect(body.cpuUtilizationPercent).toBeGreaterThanOrEqual(0);
      expect(body.cpuUtilizationPercent).toBeLessThanOrEqual(100);
      expect(Number.isInteger(body.memoryUsedMiB) && (body.memoryUsedMiB as number) > 0).toBe(true);
      expect(Number.isInteger(body.uptimeSeconds)).toBe(true);
    }
  });

  it("stops reporting metrics when the enclave's configuration disables them, and goes on running", async () => {
    metricsAnswers = [{ status: 409, type: 'https://problems.enclave-contracts.dev/metrics-disabled' }];
    const parent = await startParent({ config: { metricsIntervalMs: 50 } });
    await until(() => logs.some((l) => /configuration disables metrics/.test(l.message)));
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(api.received.filter((r) => r.route === 'metrics')).toHaveLength(1);
    // A new nonce is still attested: the agent watches on.
    tags[INSTANCE_TAGS.attestationNonce] = randomBytes(32).toString('base64');
    await until(() => documents().length === 2);
    parent.stop();
    expect(await parent.exit).toBe(EXIT.stopped);
  });

  it('goes on after a metrics round fails (the API unavailable), and reports the next', async () => {
    metricsAnswers = [{ status: 400, type: 'https://problems.enclave-contracts.dev/validation-failed' }];
    const parent = await startParent({ config: { metricsIntervalMs: 50 } });
    await until(() => api.received.filter((r) => r.route === 'metrics').length >= 2);
    expect(logs.some((l) => l.message === 'metrics not reported')).toBe(true);
    parent.stop();
    expect(await parent.exit).toBe(EXIT.stopped);
  });

  it('attests again when a new execution tags a new nonce, and stops cleanly', async () => {
    const parent = await startParent();
    await until(() => documents().length === 1);
    tags[INSTANCE_TAGS.attestationNonce] = randomBytes(32).toString('base64');
    await until(() => documents().length === 2);
    parent.stop();
    expect(await parent.exit).toBe(EXIT.stopped);
    const second = verifies(documents()[1]!.body.document as string, tags[INSTANCE_TAGS.attestationNonce]!);
    expect(second.ok).toBe(true);
  });

  it('retries while the wait is not open yet, then submits', async () => {
    documentAnswers = [
      { status: 409, type: 'https://problems.enclave-contracts.dev/attestation-wait-not-open' },
      { status: 503 },
    ];
    const parent = await startParent();
    await until(() => logs.some((l) => l.message === 'document accepted: the platform verifies it'));
    parent.stop();
    expect(await parent.exit).toBe(EXIT.stopped);
    expect(documents()).toHaveLength(3);
  });

  it('does not send a refused document again, and exits so that systemd does not restart it', async () => {
    documentAnswers = [{ status: 422, type: 'https://problems.enclave-contracts.dev/attestation-refused' }];
    const parent = await startParent();
    expect(await parent.exit).toBe(EXIT.refused);
    expect(documents()).toHaveLength(1);
    expect(logs.at(-1)).toMatchObject({
      level: 'error',
      message: 'the API refused the attestation document',
      fields: { status: 422 },
    });
  });
});

describe('the parent agent under bad conditions', () => {
  it('refuses an image whose digest does not match, and starts nothing', async () => {
    s3.mode = 'corrupt';
    try {
      const parent = await startParent();
      expect(await parent.exit).toBe(EXIT.failed);
      expect(logs.at(-1)?.message).toMatch(/SHA-256 is [0-9a-f]{64}, not the pinned .*: refused/);
      expect(await nitro.run('nitro-cli', ['describe-enclaves'], 1000)).toMatchObject({ stdout: '[]' });
      expect(documents()).toEqual([]);
    } finally {
      s3.mode = 'serve';
    }
  });

  it('abandons a stalled download', async () => {
    s3.mode = 'stall';
    try {
      const parent = await startParent();
      expect(await parent.exit).toBe(EXIT.failed);
      expect(logs.at(-1)?.message).toMatch(/stalled: no byte for 300 ms after 10 bytes/);
    } finally {
      s3.mode = 'serve';
    }
  });

  it('says so when the image is not there', async () => {
    s3.mode = 'missing';
    try {
      const parent = await startParent();
      expect(await parent.exit).toBe(EXIT.failed);
      expect(logs.at(-1)?.message).toBe('the image source answered 404');
    } finally {
      s3.mode = 'serve';
    }
  });

  it('fails when IMDS does not answer', async () => {
    const parent = await startParent();
    imds.fail(503, 1000);
    await parent.exit.catch(() => {});
    // It may have read some metadata before the outage: either way, it ends with the IMDS failure.
    const last = logs.at(-1)!;
    expect(last.level).toBe('error');
    expect(last.message).toMatch(/IMDS answered 503/);
  });

  it('fails without an enclave-id tag, before anything else', async () => {
    const parent = startParent();
    delete tags[INSTANCE_TAGS.enclaveId];
    expect(await (await parent).exit).toBe(EXIT.failed);
    expect(logs.at(-1)?.message).toBe(`the instance has no ${INSTANCE_TAGS.enclaveId} tag`);
    expect(api.received).toEqual([]);
  });

  it('gives up on an enclave that never answers, within its deadline', async () => {
    const started = Date.now();
    const parent = await startParent({ responder: 'silent' });
    expect(await parent.exit).toBe(EXIT.failed);
    expect(Date.now() - started).toBeLessThan(8_000);
    expect(logs.at(-1)?.message).toMatch(/^the enclave did not attest: connect ECONNREFUSED/);
    // It kept heartbeating while it waited.
    expect(phases().filter((p) => p === 'attesting').length).toBeGreaterThan(1);
  });

  it('ends with a failure when the enclave stops after it attested', async () => {
    const parent = await startParent();
    await until(() => documents().length === 1);
    await nitro.terminate();
    expect(await parent.exit).toBe(EXIT.failed);
    expect(logs.at(-1)?.message).toBe('the enclave is no longer running');
  });
});

describe('the API stand-in verifies SigV4 as API Gateway does', () => {
  async function post(sign: typeof credentials, tamper?: (headers: Record<string, string>) => void) {
    const client = new AgentApi({
      apiUrl: api.url,
      enclaveId: ENCLAVE,
      region: REGION,
      credentials: async () => ({ ...sign, expiration: new Date(Date.now() + 3600_000) }),
    });
    if (!tamper) return client.heartbeat('booting');
    // Re-send a signed request with one change, as an attacker holding a captured request would.
    const original = globalThis.fetch;
    globalThis.fetch = ((url: string, init: RequestInit) => {
      const headers = { ...(init.headers as Record<string, string>) };
      tamper(headers);
      return original(url, { ...init, headers });
    }) as typeof fetch;
    try {
      return await client.heartbeat('booting');
    } finally {
      globalThis.fetch = original;
    }
  }

  it("names the caller by the credentials' session: another instance's are another caller", async () => {
    api.received = [];
    await post(otherCredentials);
    expect(api.received[0]!.callerArn).toBe(instanceSessionArn(ROLE, 'i-0fffffffffffffff0'));
  });

  it('refuses a wrong signature, an unknown key, a missing token and a stale date', async () => {
    api.refusals = 0;
    expect(await post({ ...credentials, secretAccessKey: 'wrong' })).toMatchObject({ status: 403 });
    expect(await post({ ...credentials, accessKeyId: 'ASIAUNKNOWN' })).toMatchObject({ status: 403 });
    expect(
      await post(credentials, (headers) => {
        delete headers['x-amz-security-token'];
      }),
    ).toMatchObject({ status: 403 });
    expect(
      await post(credentials, (headers) => {
        headers['x-amz-date'] = '20200101T000000Z';
      }),
    ).toMatchObject({ status: 403 });
    expect(api.refusals).toBe(4);
  });

  it('verifies over the headers the signature names only: no x-amz-content-sha256, unsigned extras', async () => {
    // A signer that sends no payload-hash header (the enclave's stdlib Python, most hand-written ones): AWS
    // hashes the body it received. A header added after signing is not covered, and not refused.
    const body = '{"state":"booting"}';
    const signed = await new SignatureV4({
      service: 'execute-api',
      region: REGION,
      credentials,
      sha256: Sha256,
      applyChecksum: false,
    }).sign(
      new HttpRequest({
        method: 'POST',
        protocol: 'http:',
        hostname: 'api.local',
        path: '/api/v1/x',
        headers: { host: 'api.local', 'content-type': 'application/json' },
        body,
      }),
    );
    const verify = (headers: Record<string, string>, payload = body) =>
      verifySigV4(
        { method: 'POST', url: '/api/v1/x', headers, body: payload },
        { service: 'execute-api', region: REGION, lookup: (key) => principals.get(key) },
      );
    const headers = signed.headers as Record<string, string>;
    expect(headers['x-amz-content-sha256']).toBeUndefined();
    expect(await verify(headers)).toMatchObject({ ok: true });
    expect(
      await verify({ ...headers, 'user-agent': 'added later', 'accept-encoding': 'identity' }),
    ).toMatchObject({
      ok: true,
    });
    expect(await verify(headers, '{"state":"running"}')).toMatchObject({ ok: false, status: 403 });
    expect(await verify({ ...headers, 'content-type': 'text/plain' })).toMatchObject({ ok: false });
  });
});
