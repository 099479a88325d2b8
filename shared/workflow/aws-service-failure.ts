/**
 * Which failed AWS SDK calls are worth retrying, for the workflow adapters over EC2 and Step Functions
 * (the DynamoDB stores have their own list in `dynamodb-errors.ts`).
 */

/** What the adapters need to know about a failed call. */
export interface ServiceFailure {
  /** The service's error code (the SDK's `name`), or `Error` when there is none. */
  readonly code: string;
  /**
   * A server fault, throttling, or no answer at all (timeout, connection reset, DNS): the call may succeed
   * later. A client fault (4xx other than throttling) never is.
   */
  readonly transient: boolean;
}

/**
 * Describes `error` as thrown by an SDK v3 client (`name`, `$fault`, `$metadata.httpStatusCode`). An error
 * without an HTTP status never reached the service's answer, so it counts as transient.
 * @param throttlingCodes the service's throttling codes, which it raises as client faults (4xx).
 */
export function describeServiceFailure(error: unknown, throttlingCodes: ReadonlySet<string>): ServiceFailure {
  const e = error as { name?: unknown; $fault?: unknown; $metadata?: { httpStatusCode?: unknown } } | null;
  const code = typeof e?.name === 'string' ? e.name : 'Error';
  const status = e?.$metadata?.httpStatusCode;
  const transient =
    e?.$fault === 'server' ||
    throttlingCodes.has(code) ||
    status === undefined ||
    (typeof status === 'number' && (status === 429 || status >= 500));
  return { code, transient };
}
