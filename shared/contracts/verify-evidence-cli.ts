/**
 * `npm run verify-evidence -- <bundle.json> [--platform-keys <jwks.json>]`: checks a contract's evidence
 * bundle (`GET /contracts/{id}/evidence`) offline, with no server and no database: prints each check and
 * exits 0 when every one holds, 1 when any fails, 2 on a usage error. `--platform-keys` pins the platform's
 * keys (the JWK set `GET /platform/keys` serves, fetched apart from the bundle); without it the bundle's own
 * keys are used, and the output says so.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { type EvidenceBundle, verifyEvidence } from './contract-evidence.ts';

function usage(message: string): never {
  process.stderr.write(
    `${message}\nusage: npm run verify-evidence -- <bundle.json> [--platform-keys <jwks.json>]\n`,
  );
  process.exit(2);
}

function readJson(path: string, what: string): unknown {
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    return usage(`cannot read the ${what} ${path}: ${(error as Error).message}`);
  }
}

let parsed: ReturnType<
  typeof parseArgs<{ options: { 'platform-keys': { type: 'string' } }; allowPositionals: true }>
>;
try {
  parsed = parseArgs({ options: { 'platform-keys': { type: 'string' } }, allowPositionals: true });
} catch (error) {
  usage((error as Error).message);
}
const [bundlePath, ...rest] = parsed.positionals;
if (!bundlePath || rest.length > 0) usage('give one bundle file');
const bundle = readJson(bundlePath, 'bundle') as EvidenceBundle;
const keysPath = parsed.values['platform-keys'];
let pinned: Record<string, unknown>[] | undefined;
if (keysPath !== undefined) {
  const keys = readJson(keysPath, 'platform keys') as { keys?: unknown } | unknown[];
  const list = Array.isArray(keys) ? keys : keys?.keys;
  if (!Array.isArray(list)) usage(`${keysPath} is neither a JWK set ({"keys": [...]}) nor an array of JWKs`);
  pinned = list as Record<string, unknown>[];
}

const verdict = verifyEvidence(bundle, pinned ? { pinnedPlatformKeys: pinned } : {});
for (const check of verdict.checks) {
  process.stdout.write(`${check.ok ? 'ok  ' : 'FAIL'} ${check.check}: ${check.detail}\n`);
}
const failed = verdict.checks.filter((c) => !c.ok).length;
process.stdout.write(failed === 0 ? 'evidence: valid\n' : `evidence: INVALID (${failed} check(s) failed)\n`);
process.exit(failed === 0 ? 0 : 1);
