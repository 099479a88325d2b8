/**
 * The score `npm run test:mutation` prints (test/mutation/mutation-score.mjs): detected over detected and
 * undetected, among the mutants that compile and run, leaving out the mutants that only change what a
 * message says: a string of prose that is no SQL. A code ('malformed'), an identifier, a hash name or a SQL
 * statement is behaviour, and its mutants count.
 */
import { describe, expect, it } from 'vitest';
import { isMessageText, score, textAt } from '../mutation/mutation-score.mjs';

const SOURCE = [
  "const a = failure('malformed', 'The document is not base64.');",
  "const b = createHash('sha256');",
  "const c = sql('SELECT id FROM contracts WHERE id = :id');",
  // biome-ignore lint/suspicious/noTemplateCurlyInString: the source text of a template literal
  'const d = refuse(`at ${when} the window closed`);',
  'if (index < 0) throw new RangeError("leaf index out of range");',
  "const e = (c) => (c.signed ? 'a signed contract is terminated, not deleted' : null);",
  "const f = { reason: 'the window has ended', message: 'the window has ended!' };",
  "fail(ok ? 'it went well' : 'it went wrong');",
  "throw 'plain text thrown';",
  // biome-ignore lint/suspicious/noTemplateCurlyInString: the source text of a template literal
  'refuse(`link ${describe(i - 1)} is not signed`);',
  // biome-ignore lint/suspicious/noTemplateCurlyInString: the source text of a template literal
  'const g = () => `only ${n + 1} fit`;',
].join('\n');

/** A mutant of `text` (its first occurrence in SOURCE), as Stryker's JSON report locates it (1-based). */
function mutant(text: string, status: string, mutatorName = 'StringLiteral') {
  const offset = SOURCE.indexOf(text);
  const before = SOURCE.slice(0, offset).split('\n');
  const line = before.length;
  const column = before.at(-1)!.length + 1;
  return {
    mutatorName,
    status,
    location: { start: { line, column }, end: { line, column: column + text.length } },
  };
}

describe('mutation score', () => {
  it('locates a mutant by its 1-based line and column', () => {
    expect(textAt(SOURCE, mutant("'sha256'", 'Killed').location)).toBe("'sha256'");
    expect(textAt(SOURCE, mutant('"leaf index out of range"', 'Killed').location)).toBe(
      '"leaf index out of range"',
    );
  });

  it('leaves out prose only: not codes, hash names, SQL or other mutators', () => {
    expect(isMessageText(mutant("'The document is not base64.'", 'Survived'), SOURCE)).toBe(true);
    // biome-ignore lint/suspicious/noTemplateCurlyInString: the source text of a template literal
    expect(isMessageText(mutant('`at ${when} the window closed`', 'Survived'), SOURCE)).toBe(true);
    expect(isMessageText(mutant('"leaf index out of range"', 'Survived'), SOURCE)).toBe(true);
    expect(isMessageText(mutant("'malformed'", 'Survived'), SOURCE)).toBe(false);
    expect(isMessageText(mutant("'sha256'", 'Survived'), SOURCE)).toBe(false);
    expect(isMessageText(mutant("'SELECT id FROM contracts WHERE id = :id'", 'Survived'), SOURCE)).toBe(
      false,
    );
    expect(isMessageText(mutant('index < 0', 'Survived', 'EqualityOperator'), SOURCE)).toBe(false);
    // Through the branches of a conditional argument, a message member, a throw.
    expect(isMessageText(mutant("'it went well'", 'Survived'), SOURCE)).toBe(true);
    expect(isMessageText(mutant("'it went wrong'", 'Survived'), SOURCE)).toBe(true);
    expect(isMessageText(mutant("'the window has ended!'", 'Survived'), SOURCE)).toBe(true);
    expect(isMessageText(mutant("'plain text thrown'", 'Survived'), SOURCE)).toBe(true);
  });

  it('leaves out a mutant inside the substitutions of a message template, not of a returned one', () => {
    expect(isMessageText(mutant('i - 1', 'Survived', 'ArithmeticOperator'), SOURCE)).toBe(true);
    expect(isMessageText(mutant('n + 1', 'Survived', 'ArithmeticOperator'), SOURCE)).toBe(false);
    expect(isMessageText(mutant('index < 0', 'Survived', 'EqualityOperator'), SOURCE)).toBe(false);
  });

  it('counts the prose a guard returns or a reason member holds: its mutant to "" turns a refusal into a pass', () => {
    expect(isMessageText(mutant("'a signed contract is terminated, not deleted'", 'Survived'), SOURCE)).toBe(
      false,
    );
    expect(isMessageText(mutant("'the window has ended'", 'Survived'), SOURCE)).toBe(false);
  });

  it('scores detected over detected and undetected, without invalid or message-text mutants', () => {
    const report = {
      files: {
        'm.ts': {
          source: SOURCE,
          mutants: [
            mutant("'malformed'", 'Killed'),
            mutant("'sha256'", 'Timeout'),
            mutant('index < 0', 'Survived', 'EqualityOperator'),
            mutant("'SELECT id FROM contracts WHERE id = :id'", 'NoCoverage'),
            mutant("'The document is not base64.'", 'Survived'),
            mutant('index < 0', 'CompileError', 'ConditionalExpression'),
            mutant('index < 0', 'RuntimeError', 'ConditionalExpression'),
            mutant('index < 0', 'Ignored', 'ConditionalExpression'),
          ],
        },
      },
    };
    const result = score(report, 'm.ts');
    expect(result).toMatchObject({
      killed: 1,
      timeout: 1,
      survived: 1,
      noCoverage: 1,
      invalid: 3,
      messageText: 1,
      score: 50,
    });
    expect(result.survivors.map((m: { status: string }) => m.status)).toEqual(['Survived', 'NoCoverage']);
    expect(score({ files: { 'm.ts': { source: SOURCE, mutants: [] } } }, 'm.ts').score).toBe(100);
  });
});
