import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { seededSubject } from '../../infra/local/seed.ts';
import { LocalIssuer } from '../../infra/local/services/cognito/local-auth.ts';

/**
 * `npm run token` signs with the issuer key `npm start` keeps in LOCAL_DATA_DIR and never makes one up:
 * a token from a key of its own would only be refused by the running server, with nothing to say why.
 */
const REPO = join(import.meta.dirname, '..', '..');
const scratch = mkdtempSync(join(tmpdir(), 'local-token-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

function token(env: Record<string, string>, ...args: string[]) {
  return spawnSync('npm', ['run', '--silent', 'token', '--', ...args], {
    cwd: REPO,
    env: { ...process.env, ...env },
    encoding: 'utf8',
    timeout: 60_000,
  });
}

it('refuses to run on a folder without an issuer key, naming the folder and `npm start`', () => {
  const dataDir = join(scratch, 'never-started');
  const run = token({ LOCAL_DATA_DIR: dataDir }, 'provider');
  expect(run.status).toBe(1);
  expect(run.stdout).toBe('');
  expect(run.stderr).toContain(`no local issuer key in ${dataDir}`);
  expect(run.stderr).toContain('`npm start`');
  expect(run.stderr).toContain('same LOCAL_DATA_DIR');
  expect(existsSync(dataDir), 'no key (nor folder) is created').toBe(false);
});

it('mints with the key `npm start` keeps there', async () => {
  const dataDir = join(scratch, 'started');
  const issuer = LocalIssuer.open(dataDir); // what `npm start` does with the folder
  const run = token({ LOCAL_DATA_DIR: dataDir }, 'provider');
  expect(run.status, run.stderr).toBe(0);
  const payload = await issuer.verify(run.stdout.trim());
  expect(payload.sub).toBe(seededSubject('provider'));
});

it('still answers an unknown name with its usage (exit 2)', () => {
  const run = token({ LOCAL_DATA_DIR: join(scratch, 'started') }, 'nobody');
  expect(run.status).toBe(2);
  expect(run.stderr).toContain('usage:');
});
