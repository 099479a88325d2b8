import { POSTGRES_CAST, type SqlParams, type SqlType } from './database.ts';
import { type PositionalStatement, toPositional } from './named-parameters.ts';
import { decodeBigint, decodeTimestamp } from './row-decoding.ts';

/** PostgreSQL type OIDs whose text form the positional adapters decode themselves. */
export const OID = { int8: 20, timestamptz: 1184, timestamp: 1114, numeric: 1700 } as const;

/**
 * Binds named parameters positionally with an explicit cast per declared type, the way the Data API
 * applies a `typeHint`, so a statement behaves the same on every adapter.
 */
export function bindPositional(
  statement: string,
  params: SqlParams = {},
): { text: string; values: unknown[] } {
  // Statements repeat with the same parameter types: rewrite each statement once per process, and reuse
  // the rewrite only while every parameter still has the type it was compiled with.
  const cached = compiledStatements.get(statement);
  if (cached) {
    const values: unknown[] = [];
    let consistent = true;
    for (let i = 0; i < cached.names.length; i++) {
      const param = params[cached.names[i]!];
      if (!param || param.type !== cached.types[i]) {
        consistent = false;
        break;
      }
      values.push(param.value);
    }
    if (consistent) return { text: cached.text, values };
  }
  const compiled = toPositional(statement, (name, position) => {
    const param = params[name];
    if (!param) throw new TypeError(`missing SQL parameter :${name}`);
    return `$${position}::${POSTGRES_CAST[param.type]}`;
  });
  const types = compiled.names.map((name) => params[name]!.type);
  if (!cached && compiledStatements.size < 5000) compiledStatements.set(statement, { ...compiled, types });
  return { text: compiled.text, values: compiled.names.map((name) => params[name]!.value) };
}

const compiledStatements = new Map<string, PositionalStatement & { types: SqlType[] }>();

/** Text parsers that make node-postgres and PGlite decode like the Data API adapter. */
export const textParsers: Record<number, (value: string) => unknown> = {
  [OID.int8]: decodeBigint,
  [OID.timestamptz]: decodeTimestamp,
  [OID.timestamp]: decodeTimestamp,
  [OID.numeric]: (v: string) => v,
};
