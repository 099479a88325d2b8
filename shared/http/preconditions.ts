import { PreconditionFailedError, ValidationError } from '../domain/errors.ts';

/** The strong ETag of a versioned resource. */
export function etagOf(version: number): string {
  return `"${version}"`;
}

/**
 * One element of an If-Match list and what follows it (RFC 9110 §8.8.3, §5.6.1): optional whitespace, an
 * entity-tag (`W/` for a weak one, then DQUOTE *etagc DQUOTE, etagc = %x21 / %x23-7E / obs-text) or
 * nothing (empty elements are allowed and ignored), optional whitespace, then a comma or the end.
 */
const LIST_ELEMENT = /[ \t]*((?:W\/)?"[\x21\x23-\x7e\x80-\xff]*")?[ \t]*(,|$)/y;

/**
 * Reads an If-Match value (RFC 9110 §13.1.1: `"*"` or a comma-separated list of entity-tags): `'*'` or the
 * entity-tags as sent, quotes included.
 *
 * @throws ValidationError (400) when the value is neither: most often an ETag sent without its quotes
 *   (`If-Match: 1` instead of `If-Match: "1"`), which would otherwise never match and read as a stale 412.
 */
export function parseIfMatch(ifMatch: string): '*' | string[] {
  if (ifMatch.trim() === '*') return '*';
  const tags: string[] = [];
  LIST_ELEMENT.lastIndex = 0;
  for (;;) {
    // Each match ends at a comma (and goes on) or at the end: the loop always advances or stops.
    const element = LIST_ELEMENT.exec(ifMatch);
    if (element === null) break;
    if (element[1] !== undefined) tags.push(element[1]);
    if (element[2] === '') {
      if (tags.length > 0) return tags;
      break;
    }
  }
  // An ETag without its quotes gets the value to send back; anything else the general rule.
  const unquoted = /^[ \t]*(?!W\/)([\x21\x23-\x2b\x2d-\x7e]{1,40})[ \t]*$/.exec(ifMatch)?.[1];
  throw new ValidationError(
    unquoted
      ? `If-Match must be * or ETags, which are quoted strings: send "${unquoted}" ` +
          `(with the quotes, as the ETag header gives it), not ${unquoted}.`
      : 'If-Match must be * or a comma-separated list of ETags, which are quoted strings such as "1" ' +
          '(as the ETag header gives them).',
    [{ field: 'header.If-Match', message: 'not * or a list of quoted ETags' }],
  );
}

/**
 * RFC 9110 §13.1.1 If-Match: passes when the header is absent (the caller chose no precondition) or lists
 * the current ETag (or `*`); otherwise 412. Weak tags never match (If-Match uses strong comparison). A value
 * that is not `*` or a list of entity-tags is a 400 (see {@link parseIfMatch}).
 */
export function checkIfMatch(ifMatch: string | undefined, version: number): void {
  if (ifMatch === undefined) return;
  const current = etagOf(version);
  const tags = parseIfMatch(ifMatch);
  if (tags === '*' || tags.includes(current)) return;
  throw new PreconditionFailedError(
    `If-Match ${ifMatch.slice(0, 100)} does not match the current version ${current}; fetch the resource again.`,
  );
}
