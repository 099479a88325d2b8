import * as z from './zod.ts';

/** The first and the first-after-last instants PostgreSQL's timestamps and a 4-digit ISO year both hold. */
const EARLIEST = Date.parse('0001-01-01T00:00:00Z');
const AFTER_LATEST = Date.parse('+010000-01-01T00:00:00Z');

/**
 * The one schema of an instant a client sends: ISO 8601 with a UTC offset, whose UTC form lies in the years
 * 0001 to 9999. Without the range, `9999-12-31T23:59:59-23:59` (year 10000 in UTC) or `0000-01-01T00:00:00Z`
 * pass the format and are refused only by the database, as a 500. Kept as sent (the signed terms carry the
 * client's own spelling).
 */
export const InstantSchema = z.iso.datetime({ offset: true }).check(
  z.refine(
    (value) => {
      const t = Date.parse(value);
      return t >= EARLIEST && t < AFTER_LATEST;
    },
    { message: 'an instant from year 0001 to 9999 (in UTC)' },
  ),
);
