import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * A bundled function's stacks name the TypeScript sources although it runs without --enable-source-maps:
 * a module bundled as AppFunction bundles (ESM, minified, external source map, `__BUNDLED__` defined)
 * throws, and its stack is read, in a Node process of its own as in Lambda (vitest would transform the
 * bundle it imports).
 */
const MODULE = new URL('../../shared/runtime/source-mapped-stacks.ts', import.meta.url).pathname;
const FIXTURE = `import { mapStacksWhenBundled } from ${JSON.stringify(MODULE)};

mapStacksWhenBundled(import.meta.url);

export function failHere(): Error {
  return new Error('refused on line 6');
}

export function callback(fn: () => Error): Error {
  return fn();
}
`;

let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'stacks-'));
  mkdirSync(join(dir, 'src'));
  writeFileSync(join(dir, 'src', 'failing-step.ts'), FIXTURE);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function bundle(name: string, define: Record<string, string>): Promise<string> {
  const outfile = join(dir, name, 'index.mjs');
  await build({
    entryPoints: [join(dir, 'src', 'failing-step.ts')],
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node24',
    minify: true,
    sourcemap: true,
    sourcesContent: false,
    outfile,
    define,
    logLevel: 'error',
  });
  return outfile;
}

/** Runs `script` (an ES module body) with the bundle imported as `fixture`; what it prints. */
function run(file: string, script: string): string {
  const code = `const fixture = await import(${JSON.stringify(pathToFileURL(file).href)});\n${script}`;
  return execFileSync(process.execPath, ['--input-type=module', '-e', code], { encoding: 'utf8' });
}

describe('source-mapped stacks', () => {
  it('rewrites the bundle frames to the source file, line and column', async () => {
    const file = await bundle('mapped', { __BUNDLED__: 'true' });
    const stack = run(file, 'console.log(fixture.failHere().stack);').trim().split('\n');
    expect(stack[0]).toBe('Error: refused on line 6');
    expect(stack[1]).toMatch(/^ {4}at .*src\/failing-step\.ts:6:10\)?$/);
    expect(stack.join('\n')).not.toContain('index.mjs');
  });

  it('leaves frames outside the bundle as V8 writes them', async () => {
    const file = await bundle('outside', { __BUNDLED__: 'true' });
    const stack = run(file, "console.log(fixture.callback(() => new Error('outside')).stack);").split('\n');
    expect(stack[1]).toMatch(/^ {4}at .*\[eval1\]:2:\d+\)?$/);
    expect(stack[2]).toMatch(/src\/failing-step\.ts:10:10\)?$/);
  });

  it('keeps the bundle positions when the map cannot be read: a stack is never lost', async () => {
    const file = await bundle('unmapped', { __BUNDLED__: 'true' });
    rmSync(`${file}.map`);
    const stack = run(file, 'console.log(fixture.failHere().stack);').split('\n');
    expect(stack[0]).toBe('Error: refused on line 6');
    expect(stack[1]).toMatch(/unmapped\/index\.mjs:\d+:\d+\)?$/);
  });

  it('reads the map only when a stack is rendered, not when the bundle loads', async () => {
    const file = await bundle('lazy', { __BUNDLED__: 'true' });
    // Loaded, then the map removed: a map read at load would still map this stack.
    const stack = run(
      file,
      `(await import('node:fs')).rmSync(${JSON.stringify(`${file}.map`)});\nconsole.log(fixture.failHere().stack);`,
    );
    expect(stack).toMatch(/lazy\/index\.mjs:\d+:\d+\)?\n/);
  });

  it('installs nothing outside a bundle (no __BUNDLED__), where Node keeps its own stacks', async () => {
    const file = await bundle('unbundled', {});
    const stack = run(file, 'console.log(fixture.failHere().stack);').split('\n');
    expect(stack[1]).toMatch(/unbundled\/index\.mjs:\d+:\d+\)?$/);
  });
});
