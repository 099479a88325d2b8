/**
 * A small SQL lexer for the two things this project does to SQL text: rewriting `:name` parameters to
 * positional `$n` references, and splitting migration scripts into statements. Both must leave string
 * literals, quoted identifiers, dollar-quoted bodies and comments untouched, so both walk the same segments.
 */
export interface PositionalStatement {
  readonly text: string;
  /** Parameter names in position order: `names[0]` is `$1`. */
  readonly names: readonly string[];
}

interface Segment {
  /** `code` is plain SQL; everything else is passed through verbatim. */
  readonly kind: 'code' | 'verbatim';
  readonly text: string;
}

const DOLLAR_TAG = /^\$([A-Za-z_][A-Za-z0-9_]*)?\$/;

/** Splits SQL into plain code and verbatim runs (quotes, identifiers, comments, dollar-quoted bodies). */
function* segments(sql: string): Generator<Segment> {
  let code = '';
  let i = 0;
  const n = sql.length;
  while (i < n) {
    const ch = sql[i]!;
    const next = sql[i + 1];
    let end = -1;
    if (ch === "'" || ch === '"') end = skipQuoted(sql, i, ch);
    else if (ch === '-' && next === '-') {
      const eol = sql.indexOf('\n', i);
      end = eol === -1 ? n : eol;
    } else if (ch === '/' && next === '*') {
      const close = sql.indexOf('*/', i + 2);
      end = close === -1 ? n : close + 2;
    } else if (ch === '$') {
      const tag = DOLLAR_TAG.exec(sql.slice(i, i + 64));
      if (tag) {
        const close = sql.indexOf(tag[0], i + tag[0].length);
        end = close === -1 ? n : close + tag[0].length;
      }
    }
    if (end === -1) {
      code += ch;
      i++;
      continue;
    }
    if (code) yield { kind: 'code', text: code };
    code = '';
    yield { kind: 'verbatim', text: sql.slice(i, end) };
    i = end;
  }
  if (code) yield { kind: 'code', text: code };
}

function skipQuoted(s: string, start: number, quote: string): number {
  let i = start + 1;
  while (i < s.length) {
    if (s[i] === quote) {
      if (s[i + 1] === quote) {
        i += 2;
        continue;
      }
      return i + 1;
    }
    i++;
  }
  return s.length;
}

/** `:name` not preceded by another `:` (so `::casts` stay). */
const PARAMETER = /(?<!:):([A-Za-z_][A-Za-z0-9_]*)/g;

/**
 * Rewrites the `:name` parameters of one statement to positional references (by default `$n`); the same
 * name used twice maps to the same position.
 */
export function toPositional(
  statement: string,
  placeholder: (name: string, position: number) => string = (_n, p) => `$${p}`,
): PositionalStatement {
  const names: string[] = [];
  let text = '';
  for (const segment of segments(statement)) {
    if (segment.kind === 'verbatim') {
      text += segment.text;
      continue;
    }
    text += segment.text.replace(PARAMETER, (_match, name: string) => {
      let position = names.indexOf(name) + 1;
      if (position === 0) {
        names.push(name);
        position = names.length;
      }
      return placeholder(name, position);
    });
  }
  return { text, names };
}

/**
 * Splits a migration script into single statements (the Data API runs one statement per call), honouring
 * quotes, comments and dollar-quoted bodies. Statements with nothing but comments are dropped.
 */
export function splitStatements(script: string): string[] {
  const statements: string[] = [];
  let current = '';
  let hasCode = false;
  const flush = () => {
    if (hasCode) statements.push(current.trim());
    current = '';
    hasCode = false;
  };
  for (const segment of segments(script)) {
    if (segment.kind === 'verbatim') {
      current += segment.text;
      // quoted text and dollar bodies are code; comments alone do not make a statement
      if (!segment.text.startsWith('--') && !segment.text.startsWith('/*')) hasCode = true;
      continue;
    }
    const parts = segment.text.split(';');
    parts.forEach((part, index) => {
      if (index > 0) flush();
      current += part;
      if (part.trim()) hasCode = true;
    });
  }
  flush();
  return statements;
}
