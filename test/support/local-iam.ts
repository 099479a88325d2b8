import type { LocalResourceNames } from '../../infra/local/services/iam/stack-policies.ts';

/** What the IAM suites call the stack's resources (the local stack's own names are in local-enclaves.ts). */
export const TEST_RESOURCE_NAMES = {
  launchTemplate: { id: 'lt-0test0parents00000', version: '1' },
  parentSubnetIds: ['subnet-0testa', 'subnet-0testb'],
  parentSecurityGroupId: 'sg-0test',
  workflowTableName: 'workflow',
  doorbellTableName: 'doorbell',
  stateMachineArn: 'arn:aws:states:eu-central-1:000000000000:stateMachine:Provisioning',
  enclaveArtifacts: { imageUrl: 's3://test-artifacts/images/default.eif', imageSha256: 'a'.repeat(64) },
} as const satisfies LocalResourceNames;
