import { describe, expect, it } from 'vitest';
import { DomainError } from '../../shared/domain/errors.ts';
import { checkIfMatch, parseIfMatch } from '../../shared/http/preconditions.ts';

/** If-Match (RFC 9110 §13.1.1): `*` or a list of quoted entity-tags; anything else is a 400, not a 412. */
function refusal(ifMatch: string, version = 1): DomainError {
  try {
    checkIfMatch(ifMatch, version);
  } catch (error) {
    if (error instanceof DomainError) return error;
    throw error;
  }
  throw new Error(`If-Match ${ifMatch} passed`);
}

describe('If-Match', () => {
  it.each([
    ['"1"', ['"1"']],
    [' "1" ', ['"1"']],
    ['*', '*'],
    ['W/"1"', ['W/"1"']],
    ['"1", "2"', ['"1"', '"2"']],
    ['"1",,"2"', ['"1"', '"2"']],
    ['"a,b"', ['"a,b"']],
  ])('%s is read as %j', (value, tags) => {
    expect(parseIfMatch(value)).toEqual(tags);
  });

  it('passes the current ETag, * and a list holding it', () => {
    for (const value of ['"3"', '*', '"2", "3"']) expect(() => checkIfMatch(value, 3)).not.toThrow();
  });

  it('a stale or weak ETag is a 412', () => {
    expect(refusal('"7"').status).toBe(412);
    expect(refusal('W/"1"').status).toBe(412);
  });

  it('an ETag without its quotes is a 400 saying ETags are quoted, with the value to send', () => {
    const error = refusal('1');
    expect(error.status).toBe(400);
    expect(error.type).toBe('validation-failed');
    expect(error.message).toContain('ETags, which are quoted strings');
    expect(error.message).toContain('send "1"');
    expect(error.errors).toEqual([{ field: 'header.If-Match', message: expect.any(String) }]);
  });

  it.each(['', ',', '"1" x', '"1', '1, 2', '"1"x', 'W/1', 'abc def'])(
    'the malformed value %j is a 400 showing a quoted ETag',
    (value) => {
      const error = refusal(value);
      expect(error.status).toBe(400);
      expect(error.message).toContain('quoted strings');
      expect(error.message).toContain('"1"');
    },
  );
});
