/**
 * The one way runtime code reaches zod: `zod/mini`, the functional API of zod 4, with English messages.
 *
 * Why mini: every Lambda bundle carries what it imports. zod's classic API (`import { z } from 'zod'`) is
 * about 456 KB minified and cannot be tree-shaken (its schema classes carry every method), which every
 * cold start pays to load and parse; mini's free functions (`z.optional(s)`, `s.check(z.maxLength(n))`)
 * let the bundler keep only what is used. Schemas, checks and issues are zod's core either way, so what
 * is accepted, what is refused, the messages and the JSON Schema are the same as classic's.
 *
 * What this module adds to `zod/mini`:
 * - English messages. Mini configures no locale (its issues would all read "Invalid input"); English, the
 *   classic default and what clients read in `errors[].message`, is set here once, from its own module so
 *   that a bundle carries one locale, not all of them. Every schema module imports zod from this file.
 * - {@link buildNow}. The API schemas that only some routes use are `z.lazy`: built on first use, so that a
 *   function's cold start builds its own route's schemas and not every route's (zod builds a schema in
 *   about a microsecond per node, and the route table reaches thousands of them). `defineRoute` builds its
 *   route's request schemas at init with `buildNow`, so the first request pays nothing more.
 * - {@link parse}, which throws an error named `ZodError` as classic's `.parse()` did (mini's is named
 *   `$ZodError`): a Lambda error's type is its name, and the provisioning workflow records it as the
 *   failure code. Runtime code parses with `z.parse(Schema, value)`, not `Schema.parse(value)`.
 * @example
 * import * as z from './zod.ts';
 * const Name = z.string().check(z.minLength(1), z.maxLength(64));
 * const name = z.parse(z.optional(Name), input);
 */
import { config } from 'zod/mini';
// Named imports, never a namespace: `core.x` would make the bundle carry the whole of zod's core.
import { _parse, $constructor, type $Parse, $ZodError, type $ZodType } from 'zod/v4/core';
import en from 'zod/v4/locales/en.js';

config(en());

export * from 'zod/mini';

/** An Error whose issues are zod's, named `ZodError` (what classic zod throws). */
const ZodParseError = $constructor<$ZodError>(
  'ZodError',
  (inst, issues) => {
    $ZodError.init(inst, issues);
    inst.name = 'ZodError';
  },
  undefined,
  { Parent: Error },
);

/**
 * The value `schema` makes of `value`.
 * @throws ZodError (an Error named so, with `issues`) when `schema` refuses `value`
 */
export const parse: $Parse = _parse(ZodParseError);

/** What a schema is: the one a `z.lazy` builds (building it now), else the schema itself. */
export function built(schema: $ZodType): $ZodType {
  return schema._zod.def.type === 'lazy'
    ? (schema._zod as unknown as { innerType: $ZodType }).innerType
    : schema;
}

/**
 * Builds every schema `schema` reaches that a `z.lazy` would otherwise build when a value first reaches it
 * (see the module comment). Idempotent and cheap once built.
 */
export function buildNow(schema: $ZodType): void {
  const seen = new Set<$ZodType>();
  const visit = (node: $ZodType): void => {
    if (seen.has(node)) return;
    seen.add(node);
    if (node._zod.def.type === 'lazy') visit(built(node));
    for (const [key, value] of Object.entries(node._zod.def)) {
      if (key !== 'checks') childSchemas(value).forEach(visit);
    }
  };
  visit(schema);
}

/** The schemas a definition field holds: itself, an array of them (options, items) or a shape. */
function childSchemas(value: unknown): $ZodType[] {
  const isSchema = (v: unknown): v is $ZodType => typeof v === 'object' && v !== null && '_zod' in v;
  if (isSchema(value)) return [value];
  if (Array.isArray(value)) return value.filter(isSchema);
  if (typeof value === 'object' && value !== null) return Object.values(value).filter(isSchema);
  return [];
}
