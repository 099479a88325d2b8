/**
 * Rewrites the `:name` parameters of one SQL statement to positional `$n` references, leaving string
 * literals, quoted identifiers, dollar-quoted bodies, comments and `::casts` untouched. The same name used
 * twice maps to the same position.
 */
export interface PositionalStatement {
  readonly text: string;
  /** Parameter names in position order: `names[0]` is `$1`. */
  readonly names: readonly string[];
}

const NAME_START = /[A-Za-z_]/;
const NAME_PART = /[A-Za-z0-9_]/;

export function toPositional(
  statement: string,
  placeholder: (name: string, position: number) => string = (_n, p) => `$${p}`,
): PositionalStatement {
  const names: string[] = [];
  let out = '';
  let i = 0;
  const n = statement.length;
  while (i < n) {
    const ch = statement[i]!;
    const next = statement[i + 1];
    if (ch === "'" || ch === '"') {
      const end = skipQuoted(statement, i, ch);
      out += statement.slice(i, end);
      i = end;
    } else if (ch === '-' && next === '-') {
      const end = statement.indexOf('\n', i);
      const stop = end === -1 ? n : end;
      out += statement.slice(i, stop);
      i = stop;
    } else if (ch === '/' && next === '*') {
      const end = statement.indexOf('*/', i + 2);
      const stop = end === -1 ? n : end + 2;
      out += statement.slice(i, stop);
      i = stop;
    } else if (ch === '$') {
      const tag = /^\$([A-Za-z_][A-Za-z0-9_]*)?\$/.exec(statement.slice(i));
      if (tag) {
        const close = statement.indexOf(tag[0], i + tag[0].length);
        const stop = close === -1 ? n : close + tag[0].length;
        out += statement.slice(i, stop);
        i = stop;
      } else {
        out += ch;
        i++;
      }
    } else if (ch === ':' && next === ':') {
      out += '::';
      i += 2;
    } else if (ch === ':' && next !== undefined && NAME_START.test(next)) {
      let j = i + 1;
      while (j < n && NAME_PART.test(statement[j]!)) j++;
      const name = statement.slice(i + 1, j);
      let position = names.indexOf(name) + 1;
      if (position === 0) {
        names.push(name);
        position = names.length;
      }
      out += placeholder(name, position);
      i = j;
    } else {
      out += ch;
      i++;
    }
  }
  return { text: out, names };
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

/**
 * Splits a migration script into single statements (the Data API runs one statement per call), honouring
 * quotes, comments and dollar-quoted bodies. Empty statements are dropped.
 */
export function splitStatements(script: string): string[] {
  const statements: string[] = [];
  let current = '';
  let i = 0;
  const n = script.length;
  while (i < n) {
    const ch = script[i]!;
    const next = script[i + 1];
    let stop = i + 1;
    if (ch === "'" || ch === '"') stop = skipQuoted(script, i, ch);
    else if (ch === '-' && next === '-') {
      const end = script.indexOf('\n', i);
      stop = end === -1 ? n : end;
    } else if (ch === '/' && next === '*') {
      const end = script.indexOf('*/', i + 2);
      stop = end === -1 ? n : end + 2;
    } else if (ch === '$') {
      const tag = /^\$([A-Za-z_][A-Za-z0-9_]*)?\$/.exec(script.slice(i));
      if (tag) {
        const close = script.indexOf(tag[0], i + tag[0].length);
        stop = close === -1 ? n : close + tag[0].length;
      }
    } else if (ch === ';') {
      if (stripComments(current).trim()) statements.push(current.trim());
      current = '';
      i++;
      continue;
    }
    current += script.slice(i, stop);
    i = stop;
  }
  if (stripComments(current).trim()) statements.push(current.trim());
  return statements;
}

function stripComments(s: string): string {
  return s.replace(/--[^\n]*/g, '').replace(/\/\*[\s\S]*?\*\//g, '');
}
