import * as z from './zod.ts';

/**
 * The one schema of an entity id (contracts, identities, enclaves, measurement sets): a UUID in its
 * canonical form, lower case (RFC 9562 §4: UUIDs are written in lower case and compared case-insensitively).
 * Any case is accepted and lower-cased here, at the edge, so no use case, digest, audit record, cursor or
 * comparison ever sees another spelling of the same id. Every request schema that carries an id (path,
 * query, body, cursor) uses this schema and never `z.uuid()` itself (a test walks the route table for it).
 * `z.toLowerCase()` is an in-place overwrite, not a transform, so the schema stays representable in OpenAPI.
 * @example
 * z.parse(IdSchema, '3F2504E0-4F89-41D3-9A0C-0305E82C3301'); // '3f2504e0-4f89-41d3-9a0c-0305e82c3301'
 */
export const IdSchema = z.uuid().check(z.toLowerCase());

/** True when `value` is an id in canonical form (what {@link IdSchema} outputs). */
export function isCanonicalId(value: unknown): value is string {
  return typeof value === 'string' && IdSchema.safeParse(value).data === value;
}
