import {
  CREDENTIAL_KINDS,
  reportCredentialsDueForRotation,
} from '../../shared/identities/credential-rotation.ts';
import { logger } from '../../shared/runtime/logger.ts';
import { emitMetrics } from '../../shared/runtime/metrics.ts';
import { runtime } from '../../shared/runtime/runtime.ts';

const deps = await runtime();

/**
 * Scheduled (daily): counts the credentials due for rotation by age, publishes the counts as the metric
 * `EnclaveContracts/CredentialsDueForRotation` per `Kind` (0 included, so an alarm sees the all-clear), and,
 * when any is due, the `CredentialsDueForRotation` event through the outbox.
 */
export const handler = async (): Promise<{ total: number; published: boolean }> => {
  const { report, published } = await reportCredentialsDueForRotation(deps);
  emitMetrics(
    CREDENTIAL_KINDS.map((kind) => ({
      name: 'CredentialsDueForRotation',
      value: report.counts[kind],
      unit: 'Count',
      dimensions: { Kind: kind },
    })),
    new Date(report.asOf),
  );
  logger.info('credential rotation report', { counts: report.counts, total: report.total, published });
  return { total: report.total, published };
};
