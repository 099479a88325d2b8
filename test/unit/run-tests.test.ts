/**
 * `npm test`'s closing line tells the truth: test/run-tests.mjs runs against a throwaway vitest project in a
 * temporary directory (outside this repository's test include) holding a passing test, a failing test, a file
 * that throws at load, a file whose import is missing and a beforeAll that times out. Every one of those
 * failures is counted, the tests behind the hook are "not run" rather than "skipped", and the exit code is
 * non-zero; extra arguments still reach vitest.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const REPO = join(import.meta.dirname, '..', '..');
const RUNNER = join(REPO, 'test', 'run-tests.mjs');

const CASES: Record<string, string> = {
  'pass.test.mjs': `import { expect, it } from 'vitest';
it('passes', () => expect(1 + 1).toBe(2));
it.skip('is skipped on purpose', () => {});
`,
  'fail.test.mjs': `import { expect, it } from 'vitest';
it('fails', () => expect(1 + 1).toBe(3));
`,
  'throws-at-load.test.mjs': `import { it } from 'vitest';
throw new Error('thrown at the top level');
it('never collected', () => {});
`,
  'missing-import.test.mjs': `import { it } from 'vitest';
import { nothing } from './no-such-module.mjs';
it('never collected', () => nothing());
`,
  'hook-timeout.test.mjs': `import { beforeAll, describe, it } from 'vitest';
describe('behind a slow beforeAll', () => {
  beforeAll(() => new Promise(() => {}));
  it('first', () => {});
  it('second', () => {});
});
`,
};

interface Run {
  readonly code: number;
  readonly lastLine: string;
  readonly output: string;
}

let project: string;

/** Runs the runner in the throwaway project, as `npm test -- ...args` would there. */
function runRunner(...args: string[]): Promise<Run> {
  // A clean environment for the inner vitest (not a worker of this one); a database URL so that the runner
  // starts no PostgreSQL server (the throwaway tests use none).
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([key]) => !key.startsWith('VITEST') && key !== 'TEST'),
  );
  env.TEST_DATABASE_URL = 'postgres://unused@127.0.0.1:1/unused';
  env.NO_COLOR = '1';
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [RUNNER, ...args],
      { cwd: project, env, maxBuffer: 16 * 1024 * 1024 },
      (error, stdout, stderr) => {
        const output = `${stdout}${stderr}`;
        const lastLine = stdout.trimEnd().split('\n').at(-1) ?? '';
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : -1;
        resolve({ code, lastLine, output });
      },
    );
  });
}

beforeAll(() => {
  project = mkdtempSync(join(tmpdir(), 'run-tests-project-'));
  // The inner vitest resolves `vitest` (and its config's imports) from the project: lend it ours.
  symlinkSync(join(REPO, 'node_modules'), join(project, 'node_modules'), 'dir');
  writeFileSync(
    join(project, 'vitest.config.mjs'),
    `export default {
  cacheDir: ${JSON.stringify(join(project, '.vite'))},
  test: { include: ['cases/*.test.mjs'], hookTimeout: 300, maxWorkers: 2 },
};
`,
  );
  mkdirSync(join(project, 'cases'));
  for (const [name, source] of Object.entries(CASES)) writeFileSync(join(project, 'cases', name), source);
});

afterAll(() => {
  if (project) rmSync(project, { recursive: true, force: true });
});

describe('test/run-tests.mjs', () => {
  it('counts files that failed to load and hooks that failed, and exits non-zero', async () => {
    const run = await runRunner();
    expect(run.lastLine, run.output).toBe(
      '1 passed, 4 failed (1 test, 2 files failed to load, 1 hook failed), 1 skipped, 2 not run (a hook before them failed)',
    );
    expect(run.code, run.output).toBe(1);
    expect(run.output).toContain(
      'file failed to load: cases/throws-at-load.test.mjs: thrown at the top level',
    );
    expect(run.output).toMatch(
      /file failed to load: cases\/missing-import\.test\.mjs: .*no-such-module\.mjs/,
    );
    expect(run.output).toContain(
      'hook failed: cases/hook-timeout.test.mjs > behind a slow beforeAll: Hook timed out in 300ms.',
    );
  });

  it('passes its arguments to vitest and exits 0 when nothing failed', async () => {
    const run = await runRunner('cases/pass.test.mjs');
    expect(run.lastLine, run.output).toBe('1 passed, 0 failed, 1 skipped');
    expect(run.code, run.output).toBe(0);
  });
});
