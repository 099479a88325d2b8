import { canonicalJson } from '../domain/canonical-json.ts';
import { ValidationError } from '../domain/errors.ts';

/**
 * Opaque keyset-pagination cursors: base64url of the canonical JSON of the last item's sort key. A cursor
 * that does not decode to exactly the expected keys is the caller's mistake (400), never a 500.
 */
export function encodeCursor(position: Record<string, string>): string {
  return Buffer.from(canonicalJson(position)).toString('base64url');
}

export function decodeCursor<K extends string>(cursor: string, keys: readonly K[]): Record<K, string> {
  try {
    const value = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as Record<string, unknown>;
    if (value && typeof value === 'object' && keys.every((k) => typeof value[k] === 'string')) {
      if (Object.keys(value).length === keys.length) return value as Record<K, string>;
    }
  } catch {
    // fall through: a cursor that does not decode is the caller's mistake
  }
  throw new ValidationError('The cursor is not one this API issued.', [
    { field: 'cursor', message: 'invalid cursor' },
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
