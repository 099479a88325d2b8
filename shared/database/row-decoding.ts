/**
 * Decoders shared by the adapters so that every adapter returns the same JavaScript values for the same
 * PostgreSQL column types (see `database.ts`).
 */

/**
 * PostgreSQL's text form of a `timestamptz` in a UTC session (`2026-11-25 10:00:00.123+00`) or the Data
 * API's form (`2026-11-25 10:00:00.123`, UTC without zone) → `2026-11-25T10:00:00.123Z`.
 */
export function decodeTimestamp(text: string): string {
  const m = /^(\d{4,}-\d{2}-\d{2})[ T](\d{2}:\d{2}:\d{2})(?:\.(\d+))?(Z|[+-]\d{2}(?::?\d{2})?)?$/.exec(text);
  if (!m) throw new TypeError(`unrecognised timestamp: ${text}`);
  const [, date, time, fraction = '', zone] = m;
  const millis = `${fraction}000`.slice(0, 3);
  const iso = `${date}T${time}.${millis}${zone === undefined || zone === 'Z' ? 'Z' : normaliseZone(zone)}`;
  if (zone === undefined || zone === 'Z' || /^[+-]00(:?00)?$/.test(zone)) return `${date}T${time}.${millis}Z`;
  return new Date(iso).toISOString();
}

function normaliseZone(zone: string): string {
  if (/^[+-]\d{2}$/.test(zone)) return `${zone}:00`;
  if (/^[+-]\d{4}$/.test(zone)) return `${zone.slice(0, 3)}:${zone.slice(3)}`;
  return zone;
}

/** `int8` → number, refusing values JavaScript cannot represent exactly. */
export function decodeBigint(text: string | number | bigint): number {
  const value = typeof text === 'number' ? text : Number(text);
  if (!Number.isSafeInteger(value)) throw new RangeError(`int8 value out of the safe integer range: ${text}`);
  return value;
}
