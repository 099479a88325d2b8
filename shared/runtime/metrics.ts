/**
 * CloudWatch metrics as the Lambda runtime publishes them without an API call: a log line in the Embedded
 * Metric Format (a JSON object with an `_aws` member naming the namespace, dimensions and metrics, the
 * values beside it), which CloudWatch Logs turns into metric data. No `cloudwatch:PutMetricData` permission,
 * no client, nothing to flush.
 */

/** The namespace of the platform's own metrics. */
export const METRICS_NAMESPACE = 'EnclaveContracts';

export interface MetricDatum {
  readonly name: string;
  readonly value: number;
  readonly unit: 'Count' | 'Seconds' | 'Milliseconds' | 'None';
  /** Dimension names and values (at most 30; CloudWatch keeps each combination as its own metric). */
  readonly dimensions?: Readonly<Record<string, string>>;
}

/** The EMF document of one datum at `timestamp` (exported for its test). */
export function embeddedMetric(datum: MetricDatum, timestamp: Date): Record<string, unknown> {
  const dimensions = datum.dimensions ?? {};
  return {
    _aws: {
      Timestamp: timestamp.getTime(),
      CloudWatchMetrics: [
        {
          Namespace: METRICS_NAMESPACE,
          Dimensions: [Object.keys(dimensions)],
          Metrics: [{ Name: datum.name, Unit: datum.unit }],
        },
      ],
    },
    ...dimensions,
    [datum.name]: datum.value,
  };
}

/** Writes each datum as one EMF line on stdout (the function's log stream). */
export function emitMetrics(
  data: readonly MetricDatum[],
  timestamp: Date,
  write = (line: string) => process.stdout.write(line),
): void {
  for (const datum of data) write(`${JSON.stringify(embeddedMetric(datum, timestamp))}\n`);
}
