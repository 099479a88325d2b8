import { randomBytes } from 'node:crypto';
import type { Ec2Simulator } from '../../infra/local/services/ec2/ec2-simulator.ts';
import { sql } from '../../shared/database/database.ts';
import { EnclaveConfigurationSchema, type EnclaveData } from '../../shared/domain/enclave.ts';
import { activateEnclave, claimProvisioning } from '../../shared/enclaves/enclave-steps.ts';
import type { Dependencies } from '../../shared/runtime/dependencies.ts';
import { INSTANCE_TAGS } from '../../shared/workflow/workflow-ports.ts';

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

/** A PCR value of one repeated hex digit (96 of them), for suites that need distinct, readable values. */
export const pcr = (digit: string): string => digit.repeat(96);

/** A signed test image (PCR8 pinned) and a configuration that runs it under the contract fixture's terms. */
export const SIGNED_IMAGE = { pcr0: pcr('a'), pcr1: pcr('b'), pcr2: pcr('c'), pcr8: pcr('8') };
export const SIGNED_IMAGE_CONFIGURATION = EnclaveConfigurationSchema.parse({
  resources: { cpuCount: 2, memoryMiB: 4096, storageGiB: 50 },
  networkPolicies: {
    ingress: [{ protocol: 'tcp', port: 8443, cidr: '10.0.0.0/16' }],
    egress: [{ protocol: 'tcp', port: 443, host: 'kms.eu-central-1.amazonaws.com' }],
    encryptionRequired: true,
    minTlsVersion: '1.3',
  },
  securityPolicies: {
    secureBoot: true,
    measuredBoot: true,
    allowedSigners: [SIGNED_IMAGE.pcr8],
    debugMode: false,
  },
  observability: { metricsEnabled: true, logForwarding: true },
  image: { ...SIGNED_IMAGE, name: 'trainer', version: '1.4.2' },
});

/** Launches an instance on the EC2 simulator with these instance tags (none: anybody's instance); its id. */
export async function launchInstance(
  ec2: Ec2Simulator,
  tags: readonly { Key: string; Value: string }[] = [],
): Promise<string> {
  const { Instances } = await ec2.runInstances({
    ImageId: 'ami-0123456789abcdef0',
    InstanceType: 'c6i.xlarge',
    MinCount: 1,
    MaxCount: 1,
    EnclaveOptions: { Enabled: true },
    ...(tags.length > 0 ? { TagSpecifications: [{ ResourceType: 'instance', Tags: [...tags] }] } : {}),
  });
  return Instances[0]!.InstanceId;
}

/** Launches an enclave parent on the EC2 simulator as the workflow would tag it; its instance id. */
export function launchTaggedParent(
  ec2: Ec2Simulator,
  enclaveId: string,
  contractId: string,
): Promise<string> {
  return launchInstance(ec2, [
    { Key: INSTANCE_TAGS.enclaveId, Value: enclaveId },
    { Key: INSTANCE_TAGS.contractId, Value: contractId },
  ]);
}
