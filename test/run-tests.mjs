#!/usr/bin/env node
// `npm test`: runs the whole vitest suite (`npm test -- <files or vitest options>` runs a part). When a
// PostgreSQL server binary is on the machine (Debian's `postgresql` package), it starts a throwaway server on
// a loopback port for the node-postgres adapter suites and stops it afterwards; without one it says plainly
// that those suites are skipped. In CI (CI=true) a missing server is an error, so the adapter suites always
// run there.
//
// The last line is one plain count any CI can read, `N passed, N failed, N skipped`, where "failed" counts
// every failure, not only failed tests: files that failed to load, hooks that failed or timed out, suites
// without tests and unhandled errors too (see test/support/summary-reporter.mjs), e.g.
// `1270 passed, 3 failed (1 test, 1 file failed to load, 1 hook failed), 5 skipped, 2 not run (a hook before
// them failed)`. The exit code is non-zero whenever that count is.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { startPostgresServer } from './support/postgres-server.mjs';
import { closingLine, failureLines, failures } from './support/summary-reporter.mjs';

const ci = process.env.CI === 'true' || process.env.CI === '1';
// This repository's vitest, run by this Node.js (the pinned one under `npm test`), whatever the PATH says.
const vitest = join(dirname(createRequire(import.meta.url).resolve('vitest/package.json')), 'vitest.mjs');
const summaryReporter = join(import.meta.dirname, 'support', 'summary-reporter.mjs');

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
      "No PostgreSQL server binary found: the node-postgres adapter suites are SKIPPED (install Debian's " +
        'postgresql package, `apt-get install postgresql`, or set PG_BIN to its bin directory or ' +
        'TEST_DATABASE_URL to a server to run them).',
    );
  }
}

// The signing page's browser suite needs Debian's Chromium; CI must run it.
if (ci && !existsSync(env.CHROMIUM_BIN ?? '/usr/bin/chromium')) {
  console.error(
    "CI=true but no Chromium at /usr/bin/chromium: install Debian's chromium package (.ci/run does).",
  );
  process.exit(1);
}

let status = 1;
const summaryDir = mkdtempSync(join(tmpdir(), 'vitest-summary-'));
const summaryFile = join(summaryDir, 'summary.json');
try {
  const run = spawnSync(
    process.execPath,
    [vitest, 'run', '--reporter=default', `--reporter=${summaryReporter}`, ...process.argv.slice(2)],
    { stdio: 'inherit', env: { ...env, RUN_TESTS_SUMMARY: summaryFile } },
  );
  status = run.status ?? 1;
} finally {
  stopServer();
}
if (existsSync(summaryFile)) {
  const summary = JSON.parse(readFileSync(summaryFile, 'utf8'));
  for (const line of failureLines(summary)) console.log(line);
  if (status !== 0 && failures(summary) === 0) {
    console.log(`the run failed (exit ${status}) without a counted failure: see the errors above`);
  }
  console.log(closingLine(summary));
  if (failures(summary) > 0 && status === 0) status = 1;
} else {
  // e.g. `npm test -- --help`, a config that does not load, or vitest killed.
  console.log(`vitest ended (exit ${status}) without finishing a run: nothing was counted`);
}
rmSync(summaryDir, { recursive: true, force: true });
process.exit(status);
