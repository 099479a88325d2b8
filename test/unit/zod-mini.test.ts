import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { build } from 'esbuild';
import { describe, expect, it } from 'vitest';
import { LAMBDA_ESBUILD_OPTIONS } from '../../infra/constructs/app-function.ts';
import * as z from '../../shared/domain/zod.ts';

/**
 * Runtime code reaches zod only through shared/domain/zod.ts (zod/mini, English messages): classic zod is
 * ~456 KB minified and not tree-shakable, and every Lambda bundle would carry it to each cold start.
 */
const REPO = join(import.meta.dirname, '..', '..');
const DOOR = 'shared/domain/zod.ts';

function sources(dir: string): string[] {
  return readdirSync(join(REPO, dir), { withFileTypes: true, recursive: true })
    .filter((entry) => entry.isFile() && entry.name.endsWith('.ts'))
    .map((entry) => relative(REPO, join(entry.parentPath, entry.name)));
}
const RUNTIME_SOURCES = ['shared', 'functions', 'infra'].flatMap(sources);

describe('zod in runtime code', () => {
  it('is imported from shared/domain/zod.ts only', () => {
    expect(RUNTIME_SOURCES).toContain(DOOR);
    const offenders = RUNTIME_SOURCES.filter(
      (file) =>
        file !== DOOR && /\bfrom\s+['"]zod(?:\/[^'"]*)?['"]/.test(readFileSync(join(REPO, file), 'utf8')),
    );
    expect(offenders).toEqual([]);
  });

  it('parses with z.parse, whose error keeps the name ZodError (a schema method would throw $ZodError)', () => {
    const offenders = RUNTIME_SOURCES.filter((file) =>
      /\b[A-Z]\w*Schema\.parse\(/.test(readFileSync(join(REPO, file), 'utf8')),
    );
    expect(offenders).toEqual([]);
    let thrown: unknown;
    try {
      z.parse(z.object({ id: z.uuid() }), { id: 'x' });
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(Error);
    expect((thrown as Error).name).toBe('ZodError');
    expect((thrown as z.core.$ZodError).issues).toMatchObject([{ path: ['id'], message: 'Invalid UUID' }]);
  });

  it('speaks English, as classic zod does by default', () => {
    expect(z.safeParse(z.string(), 1).error?.issues[0]?.message).toBe(
      'Invalid input: expected string, received number',
    );
    expect(z.safeParse(z.string().check(z.maxLength(2)), 'abc').error?.issues[0]?.message).toBe(
      'Too big: expected string to have <=2 characters',
    );
    expect(z.safeParse(z.strictObject({}), { a: 1 }).error?.issues[0]?.message).toBe('Unrecognized key: "a"');
  });

  it('keeps a handler bundle to a few dozen KB of zod, one locale and no classic API', async () => {
    // As infra/constructs/app-function.ts bundles a function.
    const result = await build({
      absWorkingDir: REPO,
      entryPoints: ['functions/api/contracts/create.ts'],
      ...LAMBDA_ESBUILD_OPTIONS,
      mainFields: [...LAMBDA_ESBUILD_OPTIONS.mainFields],
      metafile: true,
      write: false,
      outfile: 'bundle.mjs',
      alias: {
        '@electric-sql/pglite': './infra/bundling/local-only-driver.ts',
        pg: './infra/bundling/local-only-driver.ts',
      },
      logLevel: 'silent',
    });
    const inputs = Object.entries(Object.values(result.metafile.outputs)[0]!.inputs).filter(([path]) =>
      path.includes('node_modules/zod/'),
    );
    const bytes = inputs.reduce((sum, [, input]) => sum + input.bytesInOutput, 0);
    expect(bytes).toBeGreaterThan(0);
    expect(bytes).toBeLessThan(80_000);
    const included = inputs.filter(([, input]) => input.bytesInOutput > 0).map(([path]) => path);
    expect(included.filter((path) => path.includes('/locales/'))).toEqual([
      'node_modules/zod/v4/locales/en.js',
    ]);
    expect(included.filter((path) => /\/v4\/classic\/|\/compile\.js$/.test(path))).toEqual([]);
  });
});
