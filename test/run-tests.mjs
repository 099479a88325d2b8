#!/usr/bin/env node
// `npm test`: runs the whole vitest suite. When a PostgreSQL server binary is on the machine (Debian's
// `postgresql` package), it starts a throwaway server on a loopback port for the node-postgres adapter
// suites and stops it afterwards; without one it says plainly that those suites are skipped. In CI
// (CI=true) a missing server is an error, so the adapter suites always run there.
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const ci = process.env.CI === 'true' || process.env.CI === '1';

function findPgBin() {
  if (process.env.PG_BIN && existsSync(join(process.env.PG_BIN, 'pg_ctl'))) return process.env.PG_BIN;
  const root = '/usr/lib/postgresql';
  if (existsSync(root)) {
    const versions = readdirSync(root)
      .filter((v) => existsSync(join(root, v, 'bin', 'pg_ctl')))
      .sort((a, b) => Number(b) - Number(a));
    if (versions.length) return join(root, versions[0], 'bin');
  }
  const which = spawnSync('sh', ['-c', 'command -v pg_ctl'], { encoding: 'utf8' });
  return which.status === 0 ? join(which.stdout.trim(), '..') : undefined;
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

/** initdb refuses to run as root: run the server as the `postgres` system user when we are root. */
function asServerUser(cmd, args) {
  const isRoot = process.getuid?.() === 0;
  const result = isRoot
    ? spawnSync('runuser', ['-u', 'postgres', '--', cmd, ...args], { encoding: 'utf8' })
    : spawnSync(cmd, args, { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`${cmd} failed: ${result.stderr || result.stdout}`);
  return result;
}

let stopServer = () => {};
const env = { ...process.env };

if (!env.TEST_DATABASE_URL) {
  const bin = findPgBin();
  if (bin) {
    const dir = mkdtempSync(join(tmpdir(), 'pg-test-'));
    if (process.getuid?.() === 0) {
      spawnSync('chown', ['-R', 'postgres:postgres', dir]);
      chmodSync(dir, 0o700);
    }
    const data = join(dir, 'data');
    const port = await freePort();
    asServerUser(join(bin, 'initdb'), [
      '-D',
      data,
      '-U',
      'postgres',
      '--auth=trust',
      '-E',
      'UTF8',
      '--no-locale',
    ]);
    asServerUser(join(bin, 'pg_ctl'), [
      '-D',
      data,
      '-l',
      join(dir, 'server.log'),
      '-w',
      '-t',
      '60',
      '-o',
      `-c listen_addresses=127.0.0.1 -p ${port} -k ${dir} -c fsync=off -c max_connections=200`,
      'start',
    ]);
    env.TEST_DATABASE_URL = `postgres://postgres@127.0.0.1:${port}/postgres`;
    console.log(`test PostgreSQL server (${bin}) on 127.0.0.1:${port}`);
    stopServer = () => {
      try {
        asServerUser(join(bin, 'pg_ctl'), ['-D', data, '-m', 'immediate', 'stop']);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    };
  } else if (ci) {
    console.error(
      "CI=true but no PostgreSQL server binary was found: install Debian's postgresql package (.ci/run does).",
    );
    process.exit(1);
  } else {
    console.log(
      'No PostgreSQL server binary found: the node-postgres adapter suites are SKIPPED (install postgresql or set TEST_DATABASE_URL to run them).',
    );
  }
}

let status = 1;
const reportDir = mkdtempSync(join(tmpdir(), 'vitest-report-'));
const report = join(reportDir, 'report.json');
try {
  const run = spawnSync(
    'vitest',
    ['run', '--reporter=default', '--reporter=json', `--outputFile.json=${report}`, ...process.argv.slice(2)],
    { stdio: 'inherit', env },
  );
  status = run.status ?? 1;
} finally {
  stopServer();
}
// One plain closing line that any CI can read: 'N passed, N failed, N skipped'.
if (existsSync(report)) {
  const r = JSON.parse(readFileSync(report, 'utf8'));
  console.log(
    `${r.numPassedTests} passed, ${r.numFailedTests} failed, ${r.numPendingTests + r.numTodoTests} skipped`,
  );
}
rmSync(reportDir, { recursive: true, force: true });
process.exit(status);
