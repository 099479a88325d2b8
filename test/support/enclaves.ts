import { randomBytes } from 'node:crypto';
import { sql } from '../../shared/database/database.ts';
import type { EnclaveData } from '../../shared/domain/enclave.ts';
import { activateEnclave, claimProvisioning } from '../../shared/enclaves/enclave-steps.ts';
import type { Dependencies } from '../../shared/runtime/dependencies.ts';

/** A parent instance id as EC2 issues them (17 hex digits). */
export const newInstanceId = (): string => `i-${randomBytes(9).toString('hex').slice(0, 17)}`;

/**
 * What the provisioning workflow does once an attestation verified, without the workflow: Validate's claim
 * for an execution, then Activate with the claims of a document reporting the enclave's image. For suites
 * that need a Running enclave but test something else (the API, authorization); the workflow itself is
 * tested end to end in enclave-provisioning.test.ts.
 */
export async function activateAsWorkflow(
  deps: Dependencies,
  enclave: Pick<EnclaveData, 'id' | 'contractId' | 'configuration'>,
  instanceId: string = newInstanceId(),
): Promise<EnclaveData> {
  const { rows } = await deps.db.query<{ id: string }>(
    "SELECT id FROM measurement_sets WHERE contract_id = :c AND status = 'Approved'",
    { c: sql.uuid(enclave.contractId) },
  );
  const executionArn = `arn:aws:states:eu-central-1:000000000000:execution:EnclaveProvisioning:${enclave.id}`;
  await claimProvisioning(deps, enclave.id, executionArn);
  const { pcr0, pcr1, pcr2 } = enclave.configuration.image;
  return activateEnclave(deps, {
    enclaveId: enclave.id,
    executionArn,
    instanceId,
    attestation: {
      claims: {
        moduleId: `${instanceId}-enc0123456789abcdef`,
        digest: 'SHA384',
        timestamp: new Date().toISOString(),
        pcrs: { '0': pcr0, '1': pcr1, '2': pcr2 },
        leafValidFrom: new Date().toISOString(),
        leafValidTo: new Date(Date.now() + 3_600_000).toISOString(),
        nonce: null,
        publicKey: null,
        userData: null,
      },
      matchedMeasurementSet: { id: rows[0]!.id },
    },
  });
}
