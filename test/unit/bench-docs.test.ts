import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';

/** Every environment variable the benchmarks read is in the README. */
const REPO = join(import.meta.dirname, '..', '..');
const readme = readFileSync(join(REPO, 'README.md'), 'utf8');
const benchmark = /\n## Benchmark\n([\s\S]*?)(?=\n## |$)/.exec(readme)?.[1] ?? '';

// The benchmarks and what they run of their own (bench:api starts PostgreSQL through the test helper).
const SOURCES = [
  'test/bench/api-bench.ts',
  'test/bench/provisioning-bench.ts',
  'test/bench/cold-start-bench.ts',
  'test/bench/enforcement-bench.ts',
  'test/bench/scale-bench.ts',
  'test/bench/scale-data.ts',
  'test/bench/bench-output.ts',
  'test/support/postgres-server.mjs',
];

it.each(SOURCES)('%s: the variables it reads are documented under "Benchmark"', (source) => {
  expect(benchmark).not.toBe('');
  const text = readFileSync(join(REPO, source), 'utf8');
  const names = new Set([...text.matchAll(/process\.env\.([A-Z][A-Z0-9_]*)/g)].map((m) => m[1]!));
  for (const name of names) expect(benchmark, `${name} (read by ${source})`).toContain(`\`${name}\``);
});
