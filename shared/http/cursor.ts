import { z } from 'zod';
import { canonicalJson } from '../domain/canonical-json.ts';
import { ValidationError } from '../domain/errors.ts';
import { IdSchema } from '../domain/identifiers.ts';
import { IdentityNameSchema } from '../domain/identity.ts';

/**
 * The one cursor codec of every list: opaque keyset-pagination cursors, base64url of the canonical JSON of
 * the last item's sort key. A cursor is decoded with the schema of its list's sort key, so whatever a
 * client crafts (another shape, a year PostgreSQL cannot hold, an id in another case, NUL in a name)
 * answers 400 `validation-failed` on the `cursor` field and never reaches a query.
 */

/** The `cursor` query parameter as every list accepts it (base64url, bounded). */
export const CursorParamSchema = z
  .string()
  .min(1)
  .max(400)
  .regex(/^[A-Za-z0-9_-]+$/, 'an opaque cursor from a previous page (nextCursor)');

/**
 * An instant as the API writes it (`Date.prototype.toISOString`: `YYYY-MM-DDTHH:MM:SS.sssZ`), a real
 * calendar date from year 0001 to 9999: what a timestamp column gives back, and what it accepts.
 */
export const CursorInstantSchema = z
  .string()
  .regex(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/)
  .refine((value) => {
    const t = Date.parse(value);
    return !Number.isNaN(t) && new Date(t).toISOString() === value && !value.startsWith('0000');
  });

/** Sort keys of the lists: newest first by (createdAt, id); identities by name; samples by reportedAt. */
export const CreatedAtCursorSchema = z.strictObject({ createdAt: CursorInstantSchema, id: IdSchema });
export const NameCursorSchema = z.strictObject({ name: IdentityNameSchema });
export const ReportedAtCursorSchema = z.strictObject({ reportedAt: CursorInstantSchema });

export function encodeCursor(position: Record<string, string>): string {
  return Buffer.from(canonicalJson(position)).toString('base64url');
}

/**
 * The sort key a cursor holds, validated by `schema`.
 * @throws ValidationError (400, field `cursor`) for anything this API did not issue.
 */
export function decodeCursor<S extends z.ZodType>(cursor: string, schema: S): z.output<S> {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    value = undefined;
  }
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  throw new ValidationError('The cursor is not one this API issued.', [
    { field: 'query.cursor', message: 'invalid cursor' },
  ]);
}

/**
 * One page of a keyset listing fetched with `limit + 1` rows: the first `limit` rows, and a cursor at the
 * last of them when the extra row shows that more follow.
 * @example
 * const rows = await listRows(db, { limit: query.limit + 1, after });
 * const { items, nextCursor } = pageOf(rows, query.limit, (c) => ({ createdAt: c.createdAt, id: c.id }));
 */
export function pageOf<T>(
  rows: readonly T[],
  limit: number,
  positionOf: (item: T) => Record<string, string>,
): { items: T[]; nextCursor: string | null } {
  const items = rows.slice(0, limit);
  const last = items.at(-1);
  return {
    items,
    nextCursor: rows.length > limit && last !== undefined ? encodeCursor(positionOf(last)) : null,
  };
}
