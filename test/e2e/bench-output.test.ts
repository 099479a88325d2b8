import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { expect, it } from 'vitest';
// @ts-expect-error: a plain ESM helper shared with the test runner, without type declarations
import { findPgBin } from '../support/postgres-server.mjs';

/**
 * The benchmarks, run for real with small settings: one progress line per phase on stderr, where the log
 * lines (Powertools JSON) go too, and the summary alone on stdout, ending with its machine-readable line.
 */
const REPO = join(import.meta.dirname, '..', '..');

function bench(script: string, env: Record<string, string>) {
  return new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
    const child = spawn('npm', ['run', '--silent', script], { cwd: REPO, env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

function expectSummaryOnly(stdout: string, lastLine: RegExp) {
  const lines = stdout.trimEnd().split('\n');
  for (const line of lines) expect(line).not.toMatch(/^\s*[{[]/);
  expect(lines.at(-1)).toMatch(lastLine);
}

it('bench:provisioning: progress and logs on stderr, the summary alone on stdout', async () => {
  const run = await bench('bench:provisioning', { BENCH_SEQUENTIAL: '2', BENCH_CONCURRENT: '2' });
  expect(run.status, run.stderr).toBe(0);
  expectSummaryOnly(run.stdout, /^seq-p50-ms=\d+ seq-p95-ms=\d+ conc-p50-ms=\d+ p50\/floor=[\d.]+$/);
  expect(run.stdout.trimEnd().split('\n')).toHaveLength(4);
  const progress = run.stderr.split('\n').filter((l) => l.startsWith('[bench:provisioning] '));
  expect(progress.map((l) => l.split(' ')[1])).toEqual([
    'the',
    'an',
    'warm-up:',
    'sequential:',
    'concurrent:',
    'floor:',
    'floor:',
  ]);
  // The attestation heartbeats the handlers log are kept, on stderr.
  expect(run.stderr).toMatch(/^\{"level":"INFO","message":"attestation heartbeat"/m);
}, 300_000);

it.runIf(process.env.TEST_DATABASE_URL || findPgBin())(
  'bench:api: progress on stderr, the summary alone on stdout',
  async () => {
    const run = await bench('bench:api', { BENCH_SECONDS: '1' });
    expect(run.status, run.stderr).toBe(0);
    expectSummaryOnly(run.stdout, /^create\/raw-insert=[\d.]+ get\/bare-get=[\d.]+ get-p99-ms@8=\d+$/);
    expect(run.stdout).toMatch(/^PostgreSQL .*, 1s per run, pool \d+$/m);
    const progress = run.stderr.split('\n').filter((l) => l.startsWith('[bench:api] '));
    expect(progress.length).toBeGreaterThanOrEqual(10);
    expect(progress.filter((l) => l.includes('of load from autocannon'))).toHaveLength(5);
  },
  300_000,
);
