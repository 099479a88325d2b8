// A throwaway PostgreSQL server for tests and benchmarks: initdb into a temp dir, pg_ctl start on a free
// loopback port, stop and delete on request. As root (CI), the server runs as the `postgres` user, because
// initdb refuses to run as root.
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export function findPgBin() {
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

export function freePort() {
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

/**
 * Starts a server on a data directory that outlives it (the scale benchmark keeps its data sets between
 * runs): `initdb` when `dir` holds no cluster yet, then `pg_ctl start` on a free loopback port with
 * `settings` (`name=value` strings) added to the command line; `stop` leaves the data in place. Returns
 * undefined when no server binary is installed; `created` says whether the cluster is new.
 */
export async function startPersistentPostgresServer(dir, settings = []) {
  const bin = findPgBin();
  if (!bin) return undefined;
  mkdirSync(dir, { recursive: true });
  const server = await startOn(bin, dir, settings);
  return { ...server, stop: () => pgCtl(bin, server.data, ['-m', 'fast', '-t', '120', 'stop']) };
}

/** Starts a server; returns its URL and a stop function, or undefined when no server binary is installed. */
export async function startPostgresServer() {
  const bin = findPgBin();
  if (!bin) return undefined;
  const dir = mkdtempSync(join(tmpdir(), 'pg-test-'));
  const server = await startOn(bin, dir, ['fsync=off', 'max_connections=200']);
  return {
    bin,
    url: server.url,
    stop() {
      try {
        pgCtl(bin, server.data, ['-m', 'immediate', 'stop']);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}

/** `initdb` in `dir/data` unless a cluster is there, then `pg_ctl start` on a free loopback port. */
async function startOn(bin, dir, settings) {
  const data = join(dir, 'data');
  if (process.getuid?.() === 0) {
    spawnSync('chown', ['postgres:postgres', dir]);
    chmodSync(dir, 0o700);
  }
  const created = !existsSync(join(data, 'PG_VERSION'));
  if (created) {
    rmSync(data, { recursive: true, force: true });
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
  }
  // A server a crash left running (its postmaster.pid) is stopped first: its port is not known here.
  if (existsSync(join(data, 'postmaster.pid'))) {
    try {
      pgCtl(bin, data, ['-m', 'fast', '-t', '120', 'stop']);
    } catch {
      // not running after all (a stale pid file): pg_ctl start copes with that
    }
  }
  const port = await freePort();
  // The superuser the tests connect as is trusted; every other user signs in with its SCRAM password, as on
  // Aurora, so a test of database users and their rotation proves which password works.
  const hba = join(dir, 'pg_hba.conf');
  writeFileSync(
    hba,
    [
      'local all all trust',
      'host all postgres 127.0.0.1/32 trust',
      'host all all 127.0.0.1/32 scram-sha-256',
      '',
    ].join('\n'),
    { mode: 0o644 },
  );
  const options = [
    `-c listen_addresses=127.0.0.1 -p ${port} -k ${dir} -c hba_file=${hba}`,
    ...settings.map((s) => `-c ${s}`),
  ];
  const log = join(dir, 'server.log');
  pgCtl(bin, data, ['-l', log, '-w', '-t', '120', '-o', options.join(' '), 'start']);
  return { bin, created, data, url: `postgres://postgres@127.0.0.1:${port}/postgres` };
}

function pgCtl(bin, data, args) {
  return asServerUser(join(bin, 'pg_ctl'), ['-D', data, ...args]);
}
