import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { projectPath } from '../../infra/project-paths.ts';

/**
 * `npm run verify-evidence` on a bundle, as a user runs it (a process of its own, no server): the bundle
 * and, when given, the platform keys to pin (`--platform-keys`, the key set `GET /platform/keys` serves)
 * are written to files in `dir` first.
 */
export function verifyEvidenceOffline(
  dir: string,
  evidence: unknown,
  platformKeys?: readonly unknown[],
): { status: number | null; stdout: string } {
  const bundlePath = join(dir, `bundle-${randomUUID()}.json`);
  writeFileSync(bundlePath, JSON.stringify(evidence));
  const pin: string[] = [];
  if (platformKeys) {
    const keysPath = join(dir, `platform-keys-${randomUUID()}.json`);
    writeFileSync(keysPath, JSON.stringify({ keys: platformKeys }));
    pin.push('--platform-keys', keysPath);
  }
  const run = spawnSync(
    process.execPath,
    ['--import', 'tsx', projectPath('shared/contracts/verify-evidence-cli.ts'), bundlePath, ...pin],
    { cwd: projectPath('.'), encoding: 'utf8', timeout: 60_000 },
  );
  return { status: run.status, stdout: run.stdout };
}
