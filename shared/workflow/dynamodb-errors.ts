/**
 * What the DynamoDB-backed workflow stores share: time as the TTL attribute wants it, and which failed
 * calls are worth retrying.
 */

/** Whole epoch seconds, rounded down: the unit of DynamoDB's TTL attribute. */
export function epochSeconds(date: Date): number {
  return Math.floor(date.getTime() / 1000);
}

/** Names of DynamoDB errors that mean "try again later" although the service answered. */
const THROTTLING = new Set([
  'ProvisionedThroughputExceededException',
  'RequestLimitExceeded',
  'ThrottlingException',
  'LimitExceededException',
]);

/**
 * Describes a failed DynamoDB call: its error name, and whether it is transient (a server fault,
 * throttling, or no answer at all: timeout, connection reset, DNS) rather than the caller's mistake.
 */
export function describeDynamoDbFailure(error: unknown): { name: string; transient: boolean } {
  const e = error as { name?: unknown; $fault?: unknown; $metadata?: { httpStatusCode?: unknown } } | null;
  const transient =
    e?.$fault === 'server' ||
    (typeof e?.name === 'string' && THROTTLING.has(e.name)) ||
    e?.$metadata?.httpStatusCode === undefined;
  return { name: typeof e?.name === 'string' ? e.name : 'Error', transient };
}
