/** The benchmarks' summary statistics over samples (milliseconds, usually). */

/** The nearest-rank percentile: the smallest sample with at least `p` % of the samples at or below it. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) throw new Error('no samples');
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

/** The median, the mean of the two middle samples when their count is even. */
export function median(values: readonly number[]): number {
  if (values.length === 0) throw new Error('no samples');
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/** Milliseconds as the summaries print them: whole numbers. */
export function fmt(ms: number): string {
  return ms.toFixed(0);
}
