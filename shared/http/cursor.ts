import { canonicalJson } from '../domain/canonical-json.ts';
import { IdSchema } from '../domain/identifiers.ts';
import { IdentityNameSchema } from '../domain/identity.ts';
import * as z from '../domain/zod.ts';

/**
 * The one cursor codec of every list: opaque keyset-pagination cursors, base64url of the canonical JSON of
 * the last item's sort key. A cursor is decoded with the schema of its list's sort key, so whatever a
 * client crafts (another shape, a year PostgreSQL cannot hold, a malformed id, NUL in a name) answers
 * 400 `validation-failed` on `query.cursor` and never reaches a query.
 */

/** The `cursor` query parameter as every list accepts it (base64url, bounded). */
export const CursorParamSchema = z
  .string()
  .check(
    z.minLength(1),
    z.maxLength(400),
    z.regex(/^[A-Za-z0-9_-]+$/, 'an opaque cursor from a previous page (nextCursor)'),
  );

/**
 * An instant as the API writes it (`Date.prototype.toISOString`: `YYYY-MM-DDTHH:MM:SS.sssZ`), a real
 * calendar date from year 0001 to 9999: what a timestamp column gives back, and what it accepts.
 */
export const CursorInstantSchema = z.lazy(() =>
  z.string().check(
    z.regex(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/),
    z.refine((value) => {
      const t = Date.parse(value);
      return !Number.isNaN(t) && new Date(t).toISOString() === value && !value.startsWith('0000');
    }),
  ),
);

/**
 * Sort keys of the lists: newest first by (createdAt, id); identities by name; samples by reportedAt. Built
 * on first use, as the list routes' query schemas are (every function bundles them; only the lists use them).
 */
export const CreatedAtCursorSchema = z.lazy(() =>
  z.strictObject({ createdAt: CursorInstantSchema, id: IdSchema }),
);
export const NameCursorSchema = z.lazy(() => z.strictObject({ name: IdentityNameSchema }));
export const ReportedAtCursorSchema = z.lazy(() => z.strictObject({ reportedAt: CursorInstantSchema }));

export function encodeCursor(position: Record<string, string>): string {
  return Buffer.from(canonicalJson(position)).toString('base64url');
}

/** The sort key `cursor` holds when `position` accepts it, else undefined. */
function decodePosition<S extends z.ZodMiniType>(cursor: string, position: S): z.output<S> | undefined {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    return undefined;
  }
  const parsed = position.safeParse(value);
  return parsed.success ? parsed.data : undefined;
}

/**
 * A list's `cursor` query parameter, decoded at the edge into the sort key `position` describes: the use
 * case receives a validated position, and anything this API did not issue is a 400 on `query.cursor`
 * before a use case runs (a list under an unknown parent still says the cursor was wrong, not 404).
 * @example
 * const ListQuerySchema = z.strictObject({ cursor: z.optional(cursorParam(CreatedAtCursorSchema)) });
 */
export function cursorParam<S extends z.ZodMiniType>(position: S) {
  return z.pipe(
    CursorParamSchema,
    z.transform((cursor: string, ctx): z.output<S> => {
      const decoded = decodePosition(cursor, position);
      if (decoded === undefined) {
        ctx.issues.push({
          code: 'custom',
          message: 'not a cursor this API issued: pass nextCursor from the previous page',
          input: cursor,
        });
        return z.NEVER;
      }
      return decoded;
    }),
  );
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
