import { createHash } from 'node:crypto';
import canonicalize from 'canonicalize';

/** RFC 8785 (JCS) canonical JSON text of a JSON value. */
export function canonicalJson(value: unknown): string {
  const text = canonicalize(value);
  if (text === undefined) throw new TypeError('value has no JSON representation');
  return text;
}

/** Lower-case hex SHA-256 of the UTF-8 bytes of `text`. */
export function sha256Hex(text: string | Uint8Array): string {
  return createHash('sha256').update(text).digest('hex');
}

/**
 * Bytes `value` takes as a JSON column of a row the RDS Data API returns: its JSON text carried inside a
 * JSON string (`{"stringValue":"{\"a\":…}"}`), so every quote and backslash counts twice. The Data API
 * refuses a row over 64 KB and a response over 1 MiB, so what one row may hold is bounded with this.
 */
export function storedJsonBytes(value: unknown): number {
  // JSON.stringify, not canonicalJson: the same length for any value canonicalJson accepts, and it never
  // throws, so a schema refinement may measure input whose other fields failed validation.
  return Buffer.byteLength(JSON.stringify(JSON.stringify(value) ?? 'null'), 'utf8');
}
