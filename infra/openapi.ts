/**
 * `npm run openapi`: prints the OpenAPI 3.1 document the API serves (for client generators and reviews).
 * `npm run lint:openapi`: lints it with Redocly's `recommended` ruleset, offline; exits non-zero on any error.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openApiDocument } from '../shared/http/openapi.ts';

const document = `${JSON.stringify(openApiDocument(), null, 2)}\n`;

if (!process.argv.includes('--lint')) {
  process.stdout.write(document);
} else {
  const dir = mkdtempSync(join(tmpdir(), 'openapi-'));
  try {
    const file = join(dir, 'openapi.json');
    writeFileSync(file, document);
    const cli = join(import.meta.dirname, '..', 'node_modules', '@redocly', 'cli', 'bin', 'cli.js');
    const lint = spawnSync(
      process.execPath,
      [cli, 'lint', '--extends', 'recommended', '--max-problems', '200', '--format', 'stylish', file],
      {
        stdio: 'inherit',
        // No telemetry and no update check: CI reaches no network but the package registries.
        env: { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true' },
      },
    );
    process.exitCode = lint.status ?? 1;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
