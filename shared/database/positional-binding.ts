import { POSTGRES_CAST, type SqlParams } from './database.ts';
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
  // Statements repeat with the same parameter types: rewrite each (statement, types) once per process.
  const key = `${statement}\u0000${Object.entries(params)
    .map(([k, p]) => `${k}:${p.type}`)
    .join(',')}`;
  let compiled = compiledStatements.get(key);
  if (!compiled) {
    compiled = toPositional(statement, (name, position) => {
      const param = params[name];
      if (!param) throw new TypeError(`missing SQL parameter :${name}`);
      return `$${position}::${POSTGRES_CAST[param.type]}`;
    });
    if (compiledStatements.size < 5000) compiledStatements.set(key, compiled);
  }
  return { text: compiled.text, values: compiled.names.map((name) => params[name]!.value) };
}

const compiledStatements = new Map<string, PositionalStatement>();

/** Text parsers that make node-postgres and PGlite decode like the Data API adapter. */
export const textParsers: Record<number, (value: string) => unknown> = {
  [OID.int8]: decodeBigint,
  [OID.timestamptz]: decodeTimestamp,
  [OID.timestamp]: decodeTimestamp,
  [OID.numeric]: (v: string) => v,
};
