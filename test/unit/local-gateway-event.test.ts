import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { eventRecord } from '../../infra/local/services/apigateway/dev-server.ts';

/**
 * The local gateway builds the event's headers, query and path maps as API Gateway's JSON event has them:
 * every key an own property, duplicates joined with commas (payload format 2.0).
 */
describe('eventRecord', () => {
  it('keeps prototype names as own keys, as JSON.parse does', () => {
    const record = eventRecord([
      ['__proto__', 'a'],
      ['constructor', 'b'],
      ['toString', 'c'],
      ['hasOwnProperty', 'd'],
    ]);
    expect(Object.keys(record)).toEqual(['__proto__', 'constructor', 'toString', 'hasOwnProperty']);
    expect(Object.getPrototypeOf(record)).toBe(Object.prototype);
    expect(record).toEqual(
      JSON.parse('{"__proto__":"a","constructor":"b","toString":"c","hasOwnProperty":"d"}'),
    );
    expect(JSON.stringify(record)).toBe(
      '{"__proto__":"a","constructor":"b","toString":"c","hasOwnProperty":"d"}',
    );
  });

  it('joins a repeated key with commas, even a prototype name', () => {
    expect(
      eventRecord([
        ['x', '1'],
        ['toString', '1'],
        ['x', '2'],
        ['toString', '2'],
        ['__proto__', '1'],
        ['__proto__', '2'],
      ]),
    ).toEqual(JSON.parse('{"x":"1,2","toString":"1,2","__proto__":"1,2"}'));
  });

  it('for any pairs: the JSON object API Gateway would send', () => {
    const key = fc.oneof(
      fc.constantFrom('__proto__', 'constructor', 'toString', 'valueOf', 'a'),
      fc.string(),
    );
    fc.assert(
      fc.property(fc.array(fc.tuple(key, fc.string())), (pairs) => {
        const joined = new Map<string, string>();
        for (const [k, v] of pairs) joined.set(k, joined.has(k) ? `${joined.get(k)},${v}` : v);
        const json = `{${[...joined].map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)}`).join(',')}}`;
        expect(JSON.stringify(eventRecord(pairs))).toBe(JSON.stringify(JSON.parse(json)));
      }),
      { numRuns: 2000 },
    );
  });
});
