import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { seededSubject } from '../../infra/local/seed.ts';
import { LOCAL_AUDIENCE, LOCAL_ISSUER, LocalIssuer } from '../../infra/local/services/cognito/local-auth.ts';

/**
 * `npm start` as a person runs it, as real processes (npm, tsx, the server): one Powertools JSON line per
 * request with why a 401 was refused and never a token; a port already in use is one sentence and exit
 * status 1; SIGTERM to npm or SIGINT to the server stops the server and every process under npm, and says
 * so. Linux: the process tree is read from /proc.
 */
const REPO = join(import.meta.dirname, '..', '..');
const scratch = mkdtempSync(join(tmpdir(), 'local-start-'));
const dataDir = join(scratch, 'data');
const running: ChildProcess[] = [];
/** Processes seen under npm, ended here if a failed test left them behind. */
const seen = new Set<number>();
afterAll(() => {
  for (const child of running)
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  for (const pid of seen) if (alive(pid)) process.kill(pid, 'SIGKILL');
  rmSync(scratch, { recursive: true, force: true });
});

interface Started {
  readonly child: ChildProcess;
  readonly stdout: () => string;
  readonly stderr: () => string;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function npmStart(env: Record<string, string>): Started {
  const child = spawn('npm', ['start'], {
    cwd: REPO,
    env: { ...process.env, PORT: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.push(child);
  let out = '';
  let err = '';
  child.stdout!.on('data', (d) => {
    out += d;
  });
  child.stderr!.on('data', (d) => {
    err += d;
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('close', (code, signal) => resolve({ code, signal })),
  );
  return { child, stdout: () => out, stderr: () => err, exited };
}

async function until<T>(what: string, probe: () => T | undefined, timeoutMs = 150_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** The URL `npm start` prints once it serves. */
async function listening(started: Started): Promise<string> {
  return until('listening on', () => {
    if (started.child.exitCode !== null) throw new Error(`npm start exited: ${started.stderr()}`);
    return /listening on (http:\/\/\S+)/.exec(started.stdout())?.[1];
  });
}

/** Every process below `pid`, with its command line, from /proc. */
function descendants(pid: number): { pid: number; parent: number; command: string }[] {
  const all = readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .flatMap((name) => {
      try {
        const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
        const parent = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
        const command = readFileSync(`/proc/${name}/cmdline`, 'utf8').replaceAll('\0', ' ');
        return [{ pid: Number(name), parent, command }];
      } catch {
        return []; // gone meanwhile
      }
    });
  const below: { pid: number; parent: number; command: string }[] = [];
  const queue = [pid];
  while (queue.length > 0) {
    const next = queue.shift()!;
    for (const p of all.filter((q) => q.parent === next)) {
      below.push(p);
      queue.push(p.pid);
    }
  }
  return below;
}

/** A process that exists and is not a zombie. */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

function accepts(url: string): Promise<boolean> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = connect(Number(port), hostname);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** Sends `signal` to `target` and checks that npm, the server and every process under npm are gone. */
async function expectCleanStop(started: Started, url: string, signal: NodeJS.Signals, target: number) {
  const tree = descendants(started.child.pid!);
  expect(tree.length).toBeGreaterThan(0);
  for (const p of tree) seen.add(p.pid);
  process.kill(target, signal);
  let timer: NodeJS.Timeout | undefined;
  const { code } = await Promise.race([
    started.exited,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const left = tree.filter((p) => alive(p.pid)).map((p) => `${p.pid} ${p.command}`);
        reject(
          new Error(`npm start did not end within 30 s of ${signal}; still running:\n${left.join('\n')}`),
        );
      }, 30_000);
    }),
  ]).finally(() => clearTimeout(timer));
  expect(code, started.stderr()).toBe(0);
  expect(started.stdout()).toContain(`${signal}: stopping the local stack`);
  expect(started.stdout()).toMatch(
    /\nstopped: the server, the database and the local AWS stand-ins are closed\n$/,
  );
  await until(
    'every process under npm to end',
    () => (tree.every((p) => !alive(p.pid)) ? true : undefined),
    10_000,
  );
  expect(await accepts(url)).toBe(false);
}

describe('npm start', () => {
  let first: Started;
  let url: string;

  it('logs one Powertools JSON line per request, with why a 401 was refused, and never a token', async () => {
    first = npmStart({ LOCAL_DATA_DIR: dataDir });
    url = await listening(first);
    const api = `${url}/api/v1`;
    const issuer = LocalIssuer.load(dataDir);
    const now = Math.floor(Date.now() / 1000);
    const valid = await issuer.mint(seededSubject('provider'));
    const expired = await issuer.signClaims({
      token_use: 'access',
      iss: LOCAL_ISSUER,
      aud: LOCAL_AUDIENCE,
      sub: seededSubject('provider'),
      iat: now - 600,
      exp: now - 60,
    });
    const foreign = await LocalIssuer.ephemeral().mint(seededSubject('provider'));
    const get = (path: string, authorization?: string) =>
      fetch(`${api}${path}`, authorization ? { headers: { authorization } } : {}).then((r) => r.status);

    expect(await get('/health')).toBe(200);
    expect(await get('/identities/me', `Bearer ${valid}`)).toBe(200);
    expect(await get('/identities/me')).toBe(401);
    expect(await get('/identities/me', `Bearer ${expired}`)).toBe(401);
    expect(await get('/identities/me', `Bearer ${foreign}`)).toBe(401);
    expect(await get('/identities/me', 'Basic cHJvdmlkZXI6cy1zZWNyZXQ=')).toBe(401);
    expect(await get('/identities/me', 'Bearer not.a-jwt')).toBe(401);
    const created = await fetch(`${api}/contracts?q=q-secret`, {
      method: 'POST',
      headers: { authorization: `Bearer ${valid}`, 'content-type': 'application/json' },
      body: JSON.stringify({ title: 'b-secret' }),
    });
    expect(created.status).toBe(400);
    expect(await get('/contracts/11111111-1111-4111-8111-111111111111', `Bearer ${valid}`)).toBe(404);

    const requestLines = () =>
      first
        .stdout()
        .split('\n')
        .filter((line) => line.startsWith('{'))
        .map((line) => JSON.parse(line) as Record<string, unknown>)
        .filter((line) => line.message === 'request');
    const lines = await until('nine request lines', () => {
      const found = requestLines();
      return found.length >= 9 ? found : undefined;
    });
    expect(lines).toHaveLength(9);
    for (const line of lines) {
      // The functions' format: Powertools Logger, service enclave-contracts.
      expect(line).toMatchObject({
        level: 'INFO',
        service: 'enclave-contracts',
        sampling_rate: expect.any(Number),
        timestamp: expect.stringMatching(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}/),
        component: 'local-gateway',
        requestId: expect.stringMatching(/^[0-9a-f-]{36}$/),
        method: expect.stringMatching(/^(GET|POST)$/),
        status: expect.any(Number),
        durationMs: expect.any(Number),
      });
    }
    const [health, me, missing, stale, forged, basic, malformed, create, byId] = lines;
    expect(health).toMatchObject({ route: '/api/v1/health', status: 200 });
    expect(health).not.toHaveProperty('callerId');
    expect(me).toMatchObject({ route: '/api/v1/identities/me', status: 200, callerId: 'local|provider' });
    expect(missing).toMatchObject({ status: 401, reason: 'no Authorization header' });
    expect(stale).toMatchObject({ status: 401, reason: expect.stringMatching(/^token expired/) });
    expect(forged).toMatchObject({ status: 401, reason: expect.stringMatching(/^bad signature/) });
    expect(basic).toMatchObject({ status: 401, reason: 'the Authorization header holds no bearer token' });
    expect(malformed).toMatchObject({ status: 401, reason: 'malformed token' });
    for (const refused of [missing, stale, forged, basic, malformed])
      expect(refused).not.toHaveProperty('callerId');
    expect(create).toMatchObject({ method: 'POST', route: '/api/v1/contracts', status: 400 });
    expect(byId).toMatchObject({ route: '/api/v1/contracts/{id}', status: 404, callerId: 'local|provider' });

    const everything = first.stdout() + first.stderr();
    const logged = everything.slice(everything.indexOf('listening on'));
    for (const secret of [
      valid,
      expired,
      foreign,
      'cHJvdmlkZXI6cy1zZWNyZXQ=',
      'not.a-jwt',
      'q-secret',
      'b-secret',
    ])
      expect(logged).not.toContain(secret);
  }, 200_000);

  it('a port already in use ends it with one sentence and exit status 1, before anything is opened', async () => {
    const port = new URL(url).port;
    const second = npmStart({ LOCAL_DATA_DIR: join(scratch, 'second'), PORT: port });
    const { code } = await second.exited;
    expect(code).toBe(1);
    const stderr = second.stderr().trim();
    expect(stderr).toBe(
      `port ${port} on 127.0.0.1 is already in use: stop the other process or set PORT to a free port (e.g. PORT=${Number(port) + 1} npm start)`,
    );
    expect(second.stdout()).not.toContain('database:');
    expect(readdirSync(scratch)).not.toContain('second');
  }, 120_000);

  it('SIGTERM to npm stops the server and everything under npm, and says so', async () => {
    await expectCleanStop(first, url, 'SIGTERM', first.child.pid!);
  }, 120_000);

  it('SIGINT to the server process does the same, on a restart with the same data folder', async () => {
    const again = npmStart({ LOCAL_DATA_DIR: dataDir });
    const againUrl = await listening(again);
    // The server is the deepest process running start.ts (npm runs tsx, which runs the server).
    const tree = descendants(again.child.pid!).filter((p) => p.command.includes('infra/local/start.ts'));
    const server = tree.find((p) => !tree.some((q) => q.parent === p.pid));
    expect(server).toBeDefined();
    await expectCleanStop(again, againUrl, 'SIGINT', server!.pid);
  }, 200_000);
});
