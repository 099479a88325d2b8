import { describe, expect, it } from 'vitest';
import { sql } from '../../shared/database/database.ts';
import { splitStatements, toPositional } from '../../shared/database/named-parameters.ts';
import { bindPositional } from '../../shared/database/positional-binding.ts';
import { decodeTimestamp } from '../../shared/database/row-decoding.ts';

describe('named parameters', () => {
  it('rewrites :names and reuses positions, leaving casts, literals, identifiers and comments alone', () => {
    const { text, names } = toPositional(
      `SELECT ':not', "a:b", x::text, $q$:no$q$ -- :comment
       FROM t WHERE a = :a AND b = :b /* :c */ OR a = :a`,
    );
    expect(names).toEqual(['a', 'b']);
    expect(text).toContain("':not'");
    expect(text).toContain('"a:b"');
    expect(text).toContain('x::text');
    expect(text).toContain('$q$:no$q$');
    expect(text).toContain('-- :comment');
    expect(text).toContain('/* :c */');
    expect(text).toContain('a = $1 AND b = $2');
    expect(text).toContain('OR a = $1');
  });

  it('binds each declared type with its cast', () => {
    const bound = bindPositional('INSERT INTO t VALUES (:id, :doc, :at, :n, :ok)', {
      id: sql.uuid('11111111-1111-4111-8111-111111111111'),
      doc: sql.json({ a: 1 }),
      at: sql.timestamp(new Date('2026-01-01T00:00:00Z')),
      n: sql.int(3),
      ok: sql.bool(true),
    });
    expect(bound.text).toBe(
      'INSERT INTO t VALUES ($1::uuid, $2::jsonb, $3::timestamptz, $4::int8, $5::boolean)',
    );
    expect(bound.values).toEqual([
      '11111111-1111-4111-8111-111111111111',
      '{"a":1}',
      '2026-01-01T00:00:00.000Z',
      3,
      true,
    ]);
  });

  it('refuses a statement that names a parameter it was not given', () => {
    expect(() => bindPositional('SELECT :missing')).toThrow(/missing SQL parameter :missing/);
  });

  it('refuses integers JavaScript cannot represent', () => {
    expect(() => sql.int(2 ** 53)).toThrow(TypeError);
  });
});

describe('migration splitting', () => {
  it('splits on top-level semicolons only', () => {
    const parts = splitStatements(`CREATE TABLE a (x text DEFAULT ';');
      -- a comment; with a semicolon
      CREATE FUNCTION f() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'x;y'; END; $$;
      ;`);
    expect(parts).toHaveLength(2);
    expect(parts[1]).toContain("RAISE EXCEPTION 'x;y'; END; $$");
  });
});

describe('timestamp decoding', () => {
  it.each([
    ['2026-11-25 10:00:00+00', '2026-11-25T10:00:00.000Z'],
    ['2026-11-25 10:00:00.123456+00', '2026-11-25T10:00:00.123Z'],
    ['2026-11-25 10:00:00.5', '2026-11-25T10:00:00.500Z'],
    ['2026-11-25 12:00:00+02', '2026-11-25T10:00:00.000Z'],
  ])('%s → %s', (input, expected) => {
    expect(decodeTimestamp(input)).toBe(expected);
  });
});

describe('statement reuse', () => {
  it('recompiles a statement bound with other parameter types instead of reusing the old casts', () => {
    const statement = 'SELECT :value AS v';
    expect(bindPositional(statement, { value: sql.uuid(null) }).text).toBe('SELECT $1::uuid AS v');
    expect(bindPositional(statement, { value: sql.uuid(null) }).text).toBe('SELECT $1::uuid AS v');
    expect(bindPositional(statement, { value: sql.int(1) }).text).toBe('SELECT $1::int8 AS v');
    expect(() => bindPositional(statement, {})).toThrow(/missing SQL parameter :value/);
  });
});
