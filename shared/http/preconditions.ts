import { PreconditionFailedError } from '../domain/errors.ts';

/** The strong ETag of a versioned resource. */
export function etagOf(version: number): string {
  return `"${version}"`;
}

/**
 * RFC 9110 §13.1.1 If-Match: passes when the header is absent (the caller chose no precondition) or lists
 * the current ETag (or `*`); otherwise 412. Weak tags never match (If-Match uses strong comparison).
 */
export function checkIfMatch(ifMatch: string | undefined, version: number): void {
  if (ifMatch === undefined) return;
  const current = etagOf(version);
  const tags = ifMatch.split(',').map((t) => t.trim());
  if (tags.includes('*') || tags.includes(current)) return;
  throw new PreconditionFailedError(
    `If-Match ${ifMatch.slice(0, 100)} does not match the current version ${current}; fetch the resource again.`,
  );
}
