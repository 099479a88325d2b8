/**
 * Bundles the parent agent into one ES module for the Node.js that Amazon Linux 2023 packages (`nodejs22`,
 * run as `/usr/bin/node-22`, the namespaced executable that does not move when another version is
 * installed): everything it imports inlined, cbor-x's optional native accelerator left out (its JavaScript
 * path is the same format), minified with no source map (the log lines say where, not the stack).
 * The CDK deploys the output as an S3 asset and pins its SHA-256 in the parents' user data.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildSync } from 'esbuild';
import { PROJECT_ROOT } from '../project-paths.ts';

/** The Node.js major the parents run (AL2023's `nodejs22` package). */
export const PARENT_NODE_MAJOR = 22;
export const AGENT_FILE = 'parent-agent.mjs';

/** Writes `<outdir>/parent-agent.mjs`; answers its path and SHA-256. */
export function bundleParentAgent(outdir: string): { file: string; sha256: string } {
  mkdirSync(outdir, { recursive: true });
  const file = join(outdir, AGENT_FILE);
  const source = readFileSync(join(PROJECT_ROOT, 'package.json'), 'utf8');
  const version = (JSON.parse(source) as { version?: string }).version ?? '0.0.0';
  buildSync({
    absWorkingDir: PROJECT_ROOT,
    entryPoints: ['infra/parent-agent/main.ts'],
    outfile: file,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: `node${PARENT_NODE_MAJOR}`,
    minify: true,
    legalComments: 'none',
    external: ['cbor-extract'],
    banner: { js: "import { createRequire } from 'module'; const require = createRequire(import.meta.url);" },
    define: { __AGENT_VERSION__: JSON.stringify(version) },
    logLevel: 'error',
  });
  return { file, sha256: createHash('sha256').update(readFileSync(file)).digest('hex') };
}
