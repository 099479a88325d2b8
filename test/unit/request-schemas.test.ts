import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { IdSchema } from '../../shared/domain/identifiers.ts';
import { built } from '../../shared/domain/zod.ts';
import { CreatedAtCursorSchema } from '../../shared/http/cursor.ts';
import { ROUTES, type RouteDefinition } from '../../shared/http/routes.ts';

/**
 * Every id a request carries (path, query, body; cursors are decoded by the query schemas) is read with the
 * one id schema, which lower-cases it: a route whose schema took `z.uuid()` itself would let another
 * spelling of an id reach a use case, a digest or an audit record (issue 8, section 1). This walks every
 * route's request schemas and finds every UUID-format string in them; the cursors' positions, decoded inside
 * a transform the walk cannot enter, are checked on their own.
 */
const UPPER = '3F2504E0-4F89-41D3-9A0C-0305E82C3301';

type Def = Record<string, unknown> & { type?: string; format?: string };
const isSchema = (v: unknown): v is z.core.$ZodType =>
  typeof v === 'object' && v !== null && '_zod' in v && typeof (v as { _zod: unknown })._zod === 'object';

/** Every UUID-format string schema reachable from `root`, with where it sits. */
function uuidSchemas(root: z.core.$ZodType, at: string): { at: string; schema: z.core.$ZodType }[] {
  const found: { at: string; schema: z.core.$ZodType }[] = [];
  // Ancestors only: one schema (the id schema) appears at many places, but a recursive one must end.
  const ancestors = new Set<unknown>();
  const walk = (schema: z.core.$ZodType, path: string) => {
    if (ancestors.has(schema)) return;
    ancestors.add(schema);
    const def = (schema as unknown as { _zod: { def: Def } })._zod.def;
    if (def.type === 'string' && def.format === 'uuid') found.push({ at: path, schema });
    // A schema built on first use (z.lazy): walk what it builds.
    if (def.type === 'lazy') walk(built(schema), path);
    for (const [key, value] of Object.entries(def)) {
      if (key === 'checks') continue;
      if (isSchema(value)) {
        walk(value, path);
      } else if (Array.isArray(value)) {
        for (const v of value) if (isSchema(v)) walk(v, path);
      } else if (key === 'shape' && value && typeof value === 'object') {
        for (const [name, child] of Object.entries(value))
          if (isSchema(child)) walk(child, `${path}.${name}`);
      }
    }
    ancestors.delete(schema);
  };
  walk(root, at);
  return found;
}

const REQUEST_SCHEMAS = (ROUTES as readonly RouteDefinition[]).flatMap((route) =>
  (['params', 'query', 'body'] as const)
    .filter((part) => route.request?.[part] !== undefined)
    .map((part) => [`${route.id} ${part}`, route.request![part]!] as const),
);

describe('ids in requests', () => {
  it('the walk finds the ids it must (path, query, body, cursor)', () => {
    const where = REQUEST_SCHEMAS.flatMap(([name, schema]) => uuidSchemas(schema, name).map((u) => u.at));
    expect(where).toEqual(
      expect.arrayContaining([
        'getContract params.id',
        'approveMeasurementSet params.mid',
        'listContracts query.counterpartyId',
        'getAuditTrail query.entityId',
        'createContract body.consumerId',
        'createContract body.providerId',
        'createEnclave body.contractId',
      ]),
    );
  });

  it.each(REQUEST_SCHEMAS)('%s: every id is read in its canonical lower-case form', (name, schema) => {
    for (const { at, schema: id } of uuidSchemas(schema, name)) {
      expect(z.safeParse(id, UPPER).data, at).toBe(UPPER.toLowerCase());
    }
  });

  it('the ids cursors carry are read canonically too (the walk cannot see inside their decoding)', () => {
    expect(CreatedAtCursorSchema.parse({ createdAt: '2026-01-01T00:00:00.000Z', id: UPPER }).id).toBe(
      UPPER.toLowerCase(),
    );
  });

  it('a raw z.uuid() in a request schema would be found and fail the rule', () => {
    const careless = z.strictObject({ nested: z.array(z.strictObject({ id: z.uuid().optional() })) });
    const [found] = uuidSchemas(careless, 'careless');
    expect(found?.at).toBe('careless.nested.id');
    expect(z.safeParse(found!.schema, UPPER).data).toBe(UPPER);
    expect(z.parse(uuidSchemas(z.strictObject({ id: IdSchema }), 'x')[0]!.schema, UPPER)).toBe(
      UPPER.toLowerCase(),
    );
  });
});
