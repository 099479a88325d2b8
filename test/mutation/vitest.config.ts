import { defineConfig } from 'vitest/config';

/**
 * The vitest configuration of a mutation run (test/mutation/run.mjs): only the test files that exercise the
 * mutated module, named in MUTATION_TESTS (comma-separated), so that each mutant costs seconds, not the
 * whole suite.
 */
const files = (process.env.MUTATION_TESTS ?? '').split(',').filter(Boolean);
if (files.length === 0) throw new Error('MUTATION_TESTS names no test files');

export default defineConfig({
  test: {
    include: files,
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 120_000,
  },
});
