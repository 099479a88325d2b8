import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { build } from 'esbuild';
import { describe, expect, it } from 'vitest';
import { LAMBDA_ESBUILD_OPTIONS } from '../../infra/constructs/app-function.ts';
import * as routes from '../../shared/http/routes.ts';
import { API_PREFIX, ROUTES, type RouteDefinition } from '../../shared/http/routes.ts';
import { bundleDefines } from '../../shared/runtime/adapters.ts';

const REPO = join(import.meta.dirname, '..', '..');
const table = ROUTES as readonly RouteDefinition[];

describe('the route table', () => {
  it('holds each route once, also exported under its id', () => {
    expect(new Set(table.map((r) => r.id)).size).toBe(table.length);
    for (const route of table) expect((routes as Record<string, unknown>)[route.id], route.id).toBe(route);
  });

  it('puts every path and location under the API prefix', () => {
    for (const route of table) {
      expect(route.path.startsWith(`${API_PREFIX}/`), route.id).toBe(true);
      if (route.location) expect(route.location.startsWith(`${API_PREFIX}/`), route.id).toBe(true);
    }
  });

  it("has each route's handler define that route", () => {
    for (const route of table) {
      const source = readFileSync(join(REPO, route.handler), 'utf8');
      expect(source, route.handler).toMatch(new RegExp(`defineRoute\\(\\s*routes\\.${route.id}\\b`));
    }
  });

  it("bundles into a function its own route's definition and no other's", async () => {
    const result = await build({
      absWorkingDir: REPO,
      entryPoints: [routes.getAuditTrail.handler],
      ...LAMBDA_ESBUILD_OPTIONS,
      mainFields: [...LAMBDA_ESBUILD_OPTIONS.mainFields],
      write: false,
      outfile: 'bundle.mjs',
      alias: {
        '@electric-sql/pglite': './infra/bundling/local-only-driver.ts',
        pg: './infra/bundling/local-only-driver.ts',
      },
      define: bundleDefines(['database', 'signer']),
      logLevel: 'silent',
    });
    const bundle = result.outputFiles[0]!.text;
    expect(bundle).toContain(JSON.stringify(routes.getAuditTrail.description));
    const others = table.filter(
      (r) => r.id !== 'getAuditTrail' && !bundle.includes(JSON.stringify(r.summary)),
    );
    expect(others.map((r) => r.id)).toEqual(table.filter((r) => r.id !== 'getAuditTrail').map((r) => r.id));
  });
});
