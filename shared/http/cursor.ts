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
