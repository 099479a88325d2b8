#!/usr/bin/env node
// `npm test`: runs the whole vitest suite. When a PostgreSQL server binary is on the machine (Debian's
// `postgresql` package), it starts a throwaway server on a loopback port for the node-postgres adapter
// suites and stops it afterwards; without one it says plainly that those suites are skipped. In CI
// (CI=true) a missing server is an error, so the adapter suites always run there.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startPostgresServer } from './support/postgres-server.mjs';

const ci = process.env.CI === 'true' || process.env.CI === '1';

let stopServer = () => {};
const env = { ...process.env };

if (!env.TEST_DATABASE_URL) {
  const server = await startPostgresServer();
  if (server) {
    env.TEST_DATABASE_URL = server.url;
    console.log(`test PostgreSQL server (${server.bin}) at ${server.url}`);
    stopServer = () => server.stop();
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
  // Vitest also fails a run on unhandled errors (listed above as "Unhandled Errors") with no test failed.
  if (status !== 0 && r.numFailedTests === 0) {
    console.log(`the run failed (exit ${status}) without a failed test: see "Unhandled Errors" above`);
  }
}
rmSync(reportDir, { recursive: true, force: true });
process.exit(status);
