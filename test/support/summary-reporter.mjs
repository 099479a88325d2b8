// The counts behind `npm test`'s closing line, from vitest's reporter API (test/run-tests.mjs passes this file
// as a reporter and reads the summary it writes to $RUN_TESTS_SUMMARY). Vitest's JSON report cannot give them:
// a file that failed to load has no test in it, so it counted as nothing, and the tests behind a beforeAll
// that threw or timed out counted as "skipped" while the hook's error appeared nowhere. Here every failure
// counts: failed tests, files that failed to load (syntax error, missing import, throw at top level), hooks
// that failed (beforeAll/afterAll, top level or in a describe), suites with no test, and unhandled errors.
import { writeFileSync } from 'node:fs';

/** Vitest's own errors for a file or a describe that holds no test (it fails the run on them). */
const NO_TESTS = /^No test (suite )?found in /;

const firstLine = (message) => String(message ?? '').split('\n')[0];

/** A skipped test that never started, in a file or describe whose hook failed, did not run because of it. */
function behindFailedHook(test) {
  for (let parent = test.parent; parent; parent = parent.type === 'module' ? undefined : parent.parent) {
    if (parent.errors().some((error) => !NO_TESTS.test(error.message))) return true;
  }
  return false;
}

/**
 * The summary of a finished run: counts, plus one line per failure that is not a failed test.
 * @param {ReadonlyArray<import('vitest/node').TestModule>} testModules
 * @param {ReadonlyArray<{ message?: string }>} unhandledErrors
 * @param {string} [reason] vitest's TestRunEndReason: 'passed', 'failed' or 'interrupted'
 * @param {ReadonlySet<string>} [started] the ids of the tests that started (a test skipped with `ctx.skip()`
 *   in a describe whose afterAll then failed did run); without it, every skipped test behind a failed hook
 *   counts as not run
 */
export function summarize(testModules, unhandledErrors = [], reason = undefined, started = undefined) {
  const summary = {
    passed: 0,
    failedTests: 0,
    skipped: 0,
    notRunHook: 0,
    notRunPending: 0,
    loadFailures: [],
    hookFailures: [],
    emptySuites: [],
    unhandledErrors: unhandledErrors.map((error) => firstLine(error.message)),
    interrupted: reason === 'interrupted',
  };
  for (const module of testModules) {
    for (const entity of [module, ...module.children.allSuites()]) {
      const where =
        entity.type === 'module'
          ? module.relativeModuleId
          : `${module.relativeModuleId} > ${entity.fullName}`;
      for (const error of entity.errors()) {
        const line = `${where}: ${firstLine(error.message)}`;
        if (NO_TESTS.test(error.message)) summary.emptySuites.push(line);
        // Collection stops at the first error and keeps no test of the file.
        else if (entity.type === 'module' && entity.children.size === 0) summary.loadFailures.push(line);
        else summary.hookFailures.push(line);
      }
    }
    for (const test of module.children.allTests()) {
      const { state } = test.result();
      if (state === 'passed') summary.passed++;
      else if (state === 'failed') summary.failedTests++;
      else if (state === 'pending') summary.notRunPending++;
      else if (
        test.options.mode !== 'skip' &&
        test.options.mode !== 'todo' &&
        !started?.has(test.id) &&
        behindFailedHook(test)
      )
        summary.notRunHook++;
      else summary.skipped++;
    }
  }
  return summary;
}

const count = (n, one, many) => `${n} ${n === 1 ? one : many}`;

/** Everything that failed, tests included. */
export function failures(summary) {
  return (
    summary.failedTests +
    summary.loadFailures.length +
    summary.hookFailures.length +
    summary.emptySuites.length +
    summary.unhandledErrors.length
  );
}

/**
 * The closing line, e.g. `1270 passed, 3 failed (1 test, 1 file failed to load, 1 hook failed), 5 skipped`,
 * with `, N not run (…)` when tests did not run because a hook failed or the run was interrupted.
 */
export function closingLine(summary) {
  const parts = [
    summary.loadFailures.length &&
      count(summary.loadFailures.length, 'file failed to load', 'files failed to load'),
    summary.hookFailures.length && count(summary.hookFailures.length, 'hook failed', 'hooks failed'),
    summary.emptySuites.length &&
      count(summary.emptySuites.length, 'suite without tests', 'suites without tests'),
    summary.unhandledErrors.length &&
      count(summary.unhandledErrors.length, 'unhandled error', 'unhandled errors'),
  ].filter(Boolean);
  const failedDetail = parts.length
    ? ` (${[count(summary.failedTests, 'test', 'tests'), ...parts].join(', ')})`
    : '';
  let line = `${summary.passed} passed, ${failures(summary)} failed${failedDetail}, ${summary.skipped} skipped`;
  if (summary.notRunHook) line += `, ${summary.notRunHook} not run (a hook before them failed)`;
  if (summary.notRunPending) line += `, ${summary.notRunPending} not run (the run was interrupted)`;
  return line;
}

/** One line per failure that is not a failed test (vitest prints the details above). */
export function failureLines(summary) {
  return [
    ...summary.loadFailures.map((line) => `file failed to load: ${line}`),
    ...summary.hookFailures.map((line) => `hook failed: ${line}`),
    ...summary.emptySuites.map((line) => `no tests: ${line}`),
    ...summary.unhandledErrors.map((line) => `unhandled error: ${line}`),
    ...(summary.interrupted ? ['the run was interrupted'] : []),
  ];
}

/** The reporter: writes the summary as JSON to $RUN_TESTS_SUMMARY when the run ends. */
export default class SummaryReporter {
  #started = new Set();

  onTestRunStart() {
    this.#started.clear();
  }

  onTestCaseReady(test) {
    this.#started.add(test.id);
  }

  onTestRunEnd(testModules, unhandledErrors, reason) {
    const file = process.env.RUN_TESTS_SUMMARY;
    if (file)
      writeFileSync(file, JSON.stringify(summarize(testModules, unhandledErrors, reason, this.#started)));
  }
}
