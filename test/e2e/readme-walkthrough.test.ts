import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type LocalStack, startLocalStack } from '../../infra/local/local-stack.ts';

/** The README's curl walk-through, run verbatim against a local stack: the README cannot drift. */
const REPO = join(import.meta.dirname, '..', '..');
const readme = readFileSync(join(REPO, 'README.md'), 'utf8');
const script = /```bash walkthrough\n([\s\S]*?)```/.exec(readme)?.[1];

let stack: LocalStack;
let dataDir: string;

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'walkthrough-'));
  stack = await startLocalStack({ dataDir });
});
afterAll(async () => {
  await stack?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

/** Runs bash asynchronously: the dev server lives in this process and must keep serving meanwhile. */
function bash(
  code: string,
  env: Record<string, string>,
): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn('bash', ['-c', code], { cwd: REPO, env: { ...process.env, ...env } });
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

it('takes a contract from Draft to Active and back to Terminated, with an enclave provisioned under it, exactly as the README shows', async () => {
  expect(script, 'README.md has a ```bash walkthrough block').toBeDefined();
  const run = await bash(script!, { API: `${stack.url}/api/v1`, LOCAL_DATA_DIR: dataDir });
  expect(run.status, `${run.stdout}\n${run.stderr}`).toBe(0);
  const lines = run.stdout.trim().split('\n');
  expect(lines).toContain('3.1.0');
  expect(lines.filter((l) => l === 'PendingSignature')).toHaveLength(2);
  expect(lines).toEqual(expect.arrayContaining(['Proposed', 'Approved']));
  expect(lines).toEqual(
    expect.arrayContaining([
      'Active',
      'provider',
      'consumer',
      'platform',
      'Suspended',
      'Terminated',
      'true',
      '204',
    ]),
  );
  expect(lines).toContain('["create","edit","sign","sign","activate","suspend","resume","terminate"]');
  // The enclave: Running with a verified attestation, suspended (attestation voided), resumed through
  // provisioning, a simulated wrong image refused, and terminated with its contract.
  expect(lines).toEqual(
    expect.arrayContaining(['Running', 'verified', 'voided', 'Initializing', 'Failed', 'pcr_mismatch']),
  );
  expect(lines.filter((l) => l === 'Running')).toHaveLength(2);
  expect(lines.filter((l) => l === 'Terminated')).toHaveLength(2);
  expect(lines.at(-1)).toMatch(/^walk-through complete: [0-9a-f-]{36}$/);
});
