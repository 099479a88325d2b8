/**
 * `npm run bench:api`: the API's throughput and latency on a real PostgreSQL server, with two floors on the
 * same database in the same run (the machines are shared and noisy: compare ratios, not absolutes):
 * - raw single-row INSERTs of the same contract row from node-postgres (the write floor for
 *   `POST /contracts`: same table, indexes and payload, without the audit record, event and checks);
 * - a bare `node:http` + node-postgres server answering the same GET by id, JWT check included (the read
 *   floor for `GET /contracts/{id}`).
 * Load comes from autocannon in a separate process so it does not share the servers' event loop.
 * Progress goes to stderr (a line per phase), the summary alone to stdout (see `bench-output.ts`).
 *
 * Environment: BENCH_SECONDS (each load run, default 8); TEST_DATABASE_URL (a PostgreSQL server to run on;
 * otherwise a throwaway server is started from the installed binaries, found through PG_BIN, then
 * /usr/lib/postgresql/<version>/bin, then PATH).
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { jwtVerify } from 'jose';
import pg from 'pg';
import { startLocalStack } from '../../infra/local/local-stack.ts';
import { SEEDED_IDENTITIES, seededSubject } from '../../infra/local/seed.ts';
import { LOCAL_AUDIENCE, LOCAL_ISSUER } from '../../infra/local/services/cognito/local-auth.ts';
// @ts-expect-error: a plain ESM helper shared with the test runner, without type declarations
import { startPostgresServer } from '../support/postgres-server.mjs';
import { progress, summary } from './bench-output.ts';

const REPO = join(import.meta.dirname, '..', '..');
const step = (line: string) => progress('bench:api', line);
const DURATION = Number(process.env.BENCH_SECONDS ?? 8);
const POOL = 10;
const seeded = { provider: SEEDED_IDENTITIES[0].id };
const createBody = readFileSync(join(REPO, 'test/fixtures/contract-create.json'), 'utf8');

interface Load {
  readonly rps: number;
  readonly p50: number;
  readonly p99: number;
  readonly errors: number;
  readonly non2xx: number;
}

function autocannon(name: string, args: string[]): Promise<Load> {
  step(`${name}: ${DURATION} s of load from autocannon`);
  return new Promise((resolve, reject) => {
    const child = spawn(join(REPO, 'node_modules/.bin/autocannon'), ['-j', '-d', String(DURATION), ...args], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`autocannon exited ${code}`));
      const r = JSON.parse(out) as {
        requests: { average: number };
        latency: { p50: number; p99: number };
        errors: number;
        non2xx: number;
      };
      resolve({
        rps: r.requests.average,
        p50: r.latency.p50,
        p99: r.latency.p99,
        errors: r.errors,
        non2xx: r.non2xx,
      });
    });
  });
}

/**
 * Single-row INSERTs from node-postgres, POOL at a time, for DURATION seconds. `contracts` writes the same
 * row a create writes (same table, indexes and payload: the essential work of a create); `minimal` writes
 * into a table with no secondary index, for reference.
 */
async function rawInsertRate(url: string, target: 'contracts' | 'minimal'): Promise<number> {
  step(
    `raw single-row INSERTs into ${target === 'minimal' ? 'a minimal table' : 'contracts'}: ${DURATION} s`,
  );
  const pool = new pg.Pool({ connectionString: url, max: POOL });
  pool.on('error', () => undefined);
  await pool.query(
    'CREATE TABLE IF NOT EXISTS bench_raw (id uuid PRIMARY KEY, title text NOT NULL, terms jsonb NOT NULL, created_at timestamptz NOT NULL)',
  );
  const body = JSON.parse(createBody) as {
    title: string;
    description: string;
    consumerId: string;
    terms: { validity: { end: string } };
  };
  const terms = JSON.stringify(body.terms);
  const insert =
    target === 'minimal'
      ? (id: string) =>
          pool.query(
            'INSERT INTO bench_raw (id, title, terms, created_at) VALUES ($1, $2, $3::jsonb, now())',
            [id, body.title, terms],
          )
      : (id: string) =>
          pool.query(
            `INSERT INTO contracts (id, title, description, provider_id, consumer_id, status, terms, signatures, version,
               content_version, content_digest, ever_signed, valid_until, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, 'Draft', $6::jsonb, '[]'::jsonb, 1, 1, $7, false, $8, now(), now())`,
            [
              id,
              body.title,
              body.description,
              seeded.provider,
              body.consumerId,
              terms,
              'a'.repeat(64),
              body.terms.validity.end,
            ],
          );
  let count = 0;
  const stopAt = Date.now() + DURATION * 1000;
  const started = Date.now();
  await Promise.all(
    Array.from({ length: POOL }, async () => {
      while (Date.now() < stopAt) {
        await insert(randomUUID());
        count++;
      }
    }),
  );
  const rate = count / ((Date.now() - started) / 1000);
  await pool.end();
  return rate;
}

async function bareGetServer(url: string, publicKey: Parameters<typeof jwtVerify>[1]) {
  const pool = new pg.Pool({ connectionString: url, max: POOL });
  const server = createServer(async (req, res) => {
    try {
      const token = (req.headers.authorization ?? '').replace(/^Bearer /, '');
      await jwtVerify(token, publicKey, {
        issuer: LOCAL_ISSUER,
        audience: LOCAL_AUDIENCE,
        algorithms: ['ES256'],
      });
      const id = (req.url ?? '').split('/').pop();
      const { rows } = await pool.query('SELECT * FROM contracts WHERE id = $1', [id]);
      res.writeHead(rows[0] ? 200 : 404, { 'content-type': 'application/json' });
      res.end(JSON.stringify(rows[0] ?? {}));
    } catch {
      res.writeHead(401);
      res.end();
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: async () => {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
      await pool.end();
    },
  };
}

step(
  process.env.TEST_DATABASE_URL
    ? 'PostgreSQL: the server TEST_DATABASE_URL names'
    : 'PostgreSQL: starting a throwaway server',
);
const ownServer = process.env.TEST_DATABASE_URL ? undefined : await startPostgresServer();
const serverUrl: string | undefined = process.env.TEST_DATABASE_URL ?? ownServer?.url;
if (!serverUrl) {
  console.error('bench:api needs PostgreSQL: install the postgresql package or set TEST_DATABASE_URL');
  process.exit(2);
}
// An interrupted run stops the server it started rather than leave it running.
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    step(`${signal}: stopping`);
    ownServer?.stop();
    process.exit(130);
  });
}
const admin = new pg.Client({ connectionString: serverUrl });
admin.on('error', () => undefined);
await admin.connect();
const dbName = `bench_${randomUUID().replaceAll('-', '')}`;
await admin.query(`CREATE DATABASE ${dbName}`);
const dbUrl = new URL(serverUrl);
dbUrl.pathname = `/${dbName}`;

// The outbox publisher and expiry sweep are separate functions in AWS: keep them out of the API's process.
step(`the local stack on database ${dbName}`);
const stack = await startLocalStack({ databaseUrl: dbUrl.href, scheduledJobs: false });
const token = await stack.issuer.mint(seededSubject('provider'));
const auth = ['-H', `authorization=Bearer ${token}`];
const created = await fetch(`${stack.url}/api/v1/contracts`, {
  method: 'POST',
  headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
  body: createBody,
});
const contractId = ((await created.json()) as { id: string }).id;
const api = `${stack.url}/api/v1`;

const results: Record<string, Load> = {};
results['POST /contracts @32'] = await autocannon('POST /contracts @32', [
  '-c',
  '32',
  '-m',
  'POST',
  ...auth,
  '-H',
  'content-type=application/json',
  '-b',
  createBody,
  `${api}/contracts`,
]);
results['GET /contracts/{id} @32'] = await autocannon('GET /contracts/{id} @32', [
  '-c',
  '32',
  ...auth,
  `${api}/contracts/${contractId}`,
]);
results['GET /contracts/{id} @8'] = await autocannon('GET /contracts/{id} @8', [
  '-c',
  '8',
  ...auth,
  `${api}/contracts/${contractId}`,
]);
results['GET /contracts?limit=20 @32'] = await autocannon('GET /contracts?limit=20 @32', [
  '-c',
  '32',
  ...auth,
  `${api}/contracts?limit=20`,
]);
await stack.close();

const bare = await bareGetServer(dbUrl.href, stack.issuer.publicKey);
results['bare GET @32 (floor)'] = await autocannon('bare node:http + node-postgres GET @32 (floor)', [
  '-c',
  '32',
  ...auth,
  `${bare.url}/contracts/${contractId}`,
]);
await bare.close();
const rawInsert = await rawInsertRate(dbUrl.href, 'contracts');
const minimalInsert = await rawInsertRate(dbUrl.href, 'minimal');

step('done: dropping the database');
await admin.query(`DROP DATABASE ${dbName} WITH (FORCE)`);
await admin.end();
ownServer?.stop();

summary(`PostgreSQL ${serverUrl.replace(/\/\/[^@]*@/, '//')}, ${DURATION}s per run, pool ${POOL}`);
summary('');
summary(
  'route'.padEnd(30),
  'req/s'.padStart(9),
  'p50 ms'.padStart(8),
  'p99 ms'.padStart(8),
  'errors'.padStart(7),
  'non-2xx'.padStart(8),
);
for (const [name, r] of Object.entries(results)) {
  summary(
    name.padEnd(30),
    r.rps.toFixed(0).padStart(9),
    String(r.p50).padStart(8),
    String(r.p99).padStart(8),
    String(r.errors).padStart(7),
    String(r.non2xx).padStart(8),
  );
}
summary('raw INSERT contracts (floor)'.padEnd(30), rawInsert.toFixed(0).padStart(9));
summary(
  'raw INSERT minimal table'.padEnd(30),
  minimalInsert.toFixed(0).padStart(9),
  '  (reference: create/minimal =',
  (results['POST /contracts @32']!.rps / minimalInsert).toFixed(2),
  ')',
);

const createRatio = results['POST /contracts @32']!.rps / rawInsert;
const getRatio = results['GET /contracts/{id} @32']!.rps / results['bare GET @32 (floor)']!.rps;
summary('');
summary('targets: create/raw-insert >= 0.25, get/bare-get >= 0.7, get-p99-ms@8 <= 15');
summary(
  `create/raw-insert=${createRatio.toFixed(2)} get/bare-get=${getRatio.toFixed(2)} get-p99-ms@8=${results['GET /contracts/{id} @8']!.p99}`,
);
