import { describe, expect, it } from 'vitest';
import { median, percentile } from '../bench/statistics.ts';

describe('the benchmarks’ statistics', () => {
  it('takes the nearest-rank percentile, whatever the order of the samples', () => {
    const samples = [5, 1, 4, 2, 3, 10, 9, 8, 7, 6];
    expect(percentile(samples, 50)).toBe(5);
    expect(percentile(samples, 99)).toBe(10);
    expect(percentile(samples, 95)).toBe(10);
    expect(percentile(samples, 90)).toBe(9);
    expect(percentile(samples, 0)).toBe(1);
    expect(percentile([42], 99)).toBe(42);
  });

  it('takes the median, the mean of the middle two of an even count', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
  });

  it('refuses to summarise no samples', () => {
    expect(() => percentile([], 50)).toThrow('no samples');
    expect(() => median([])).toThrow('no samples');
  });
});
