/**
 * The Data API adapter's retry policy. Aurora Serverless v2 answers `DatabaseResumingException` for up to
 * ~15 s while it wakes from auto-pause, and the SDK treats it as a client fault it never retries; the
 * service's transient 5xx errors and throttling are retried too. Nothing else is: above all not
 * `StatementTimeoutException`, after which a write may or may not have been applied.
 */

/** How hard to retry; the defaults cover a ~20 s resume. */
export interface DataApiRetryOptions {
  /** Calls in all, the first included. */
  readonly maxAttempts: number;
  /** Cap of the first back-off; doubled per attempt. */
  readonly baseDelayMs: number;
  /** Cap of any one back-off. */
  readonly maxDelayMs: number;
  /** No retry is started once this much time has passed since the first call. */
  readonly maxElapsedMs: number;
}

export const DEFAULT_DATA_API_RETRY: DataApiRetryOptions = {
  maxAttempts: 12,
  baseDelayMs: 250,
  maxDelayMs: 4_000,
  maxElapsedMs: 20_000,
};

/** Errors that mean "the call did not reach the database yet, or the service hiccupped: try again". */
const TRANSIENT_ERRORS = new Set([
  'DatabaseResumingException',
  'DatabaseUnavailableException',
  'ServiceUnavailableError',
  'InternalServerErrorException',
  'ThrottlingException',
  'ThrottledException',
  'TooManyRequestsException',
  'RequestLimitExceeded',
]);

/** The only error worth retrying inside a transaction once it has begun (the statement never ran). */
export const DATABASE_RESUMING = 'DatabaseResumingException';

const NEVER_RETRIED = new Set(['StatementTimeoutException']);

/** Whether the policy retries `error` (an SDK exception: judged by its name and HTTP status, not its text). */
export function isTransientDataApiError(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  const { name, $metadata } = error as { name?: unknown; $metadata?: { httpStatusCode?: unknown } };
  if (typeof name === 'string' && NEVER_RETRIED.has(name)) return false;
  if (typeof name === 'string' && TRANSIENT_ERRORS.has(name)) return true;
  const status = $metadata?.httpStatusCode;
  return typeof status === 'number' && status >= 500;
}

/** Full-jitter exponential back-off: uniform in [0, min(maxDelay, base · 2^retry)). `retry` counts from 0. */
export function backoffDelayMs(
  retry: number,
  options: DataApiRetryOptions,
  random: () => number = Math.random,
): number {
  const cap = Math.min(options.maxDelayMs, options.baseDelayMs * 2 ** retry);
  return Math.floor(random() * cap);
}

/** Hooks to make the policy deterministic in tests. */
export interface RetryClock {
  readonly now: () => number;
  readonly sleep: (ms: number) => Promise<void>;
  readonly random: () => number;
}

const realClock: RetryClock = {
  now: () => Date.now(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
  random: Math.random,
};

/**
 * Calls `operation` until it succeeds, fails with an error `shouldRetry` refuses, or the attempts or the
 * time budget run out; then the last error is thrown as is.
 */
export async function withDataApiRetry<T>(
  operation: () => Promise<T>,
  options: DataApiRetryOptions = DEFAULT_DATA_API_RETRY,
  shouldRetry: (error: unknown) => boolean = isTransientDataApiError,
  clock: RetryClock = realClock,
): Promise<T> {
  const started = clock.now();
  for (let attempt = 1; ; attempt++) {
    try {
      return await operation();
    } catch (error) {
      if (attempt >= options.maxAttempts || !shouldRetry(error)) throw error;
      const delay = backoffDelayMs(attempt - 1, options, clock.random);
      if (clock.now() - started + delay > options.maxElapsedMs) throw error;
      await clock.sleep(delay);
    }
  }
}
