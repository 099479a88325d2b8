import { randomUUID } from 'node:crypto';
import type * as iam from 'aws-cdk-lib/aws-iam';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ContractsStack } from '../../infra/contracts-stack.ts';
import type { LocalStack } from '../../infra/local/local-stack.ts';
import { STATES } from '../../shared/enclaves/provisioning-workflow.ts';
import { INSTANCE_TAGS, type LocalFunctionName } from '../../shared/workflow/workflow-ports.ts';
import type { ApiClient } from '../support/api-client.ts';
import { provisioningHarness, startProvisioningStack } from '../support/provisioning.ts';

/**
 * The local stack enforces the synthesized IAM policies: with one grant removed from the provisioning state
 * machine's role (`iam:PassRole` of the parents' role, which RunInstances needs to give the parent its
 * instance profile), the launch is refused as EC2 refuses it, and the enclave fails naming the denial. The
 * same flow with the stack's own policies reaches Running (test/e2e/enclave-provisioning.test.ts, where
 * enforcement is on too).
 */

/** Removes from the state machine role's policy every statement that grants `action`. */
function withoutGrant(action: string) {
  return (stack: ContractsStack) => {
    const role = stack.enclaveWorkflow.stateMachine.role;
    const policy = role.node.findChild('DefaultPolicy') as iam.Policy;
    const cfn = policy.node.defaultChild as iam.CfnPolicy;
    const document = stack.resolve(cfn.policyDocument) as { Statement: { Action: string | string[] }[] };
    const kept = document.Statement.filter((s) => ![s.Action].flat().includes(action));
    if (kept.length === document.Statement.length) throw new Error(`the role holds no ${action} to remove`);
    cfn.addPropertyOverride('PolicyDocument.Statement', kept);
  };
}

let stack: LocalStack;
let provider: ApiClient;
let contractId: string;

beforeAll(async () => {
  ({ stack, provider, contractId } = await startProvisioningStack({
    enclaves: { bootDelayMs: 20, iam: { edit: withoutGrant('iam:PassRole') } },
  }));
}, 120_000);
afterAll(async () => stack?.close());

const { create, settle, executionOf, instancesOf } = provisioningHarness(() => ({
  stack,
  provider,
  contractId,
}));

describe('IAM enforced locally', () => {
  it('refuses the launch when the state machine may not pass the parents role, and the enclave fails naming it', async () => {
    const id = await create();
    const enclave = await settle(id, ['Running', 'Failed']);
    expect(enclave.status).toBe('Failed');
    expect(enclave.statusReason).toMatch(
      /^UnauthorizedOperation: You are not authorized to perform this operation\. User: arn:aws:sts::000000000000:assumed-role\/\S+\/local is not authorized to perform: iam:PassRole on resource: arn:aws:iam::000000000000:role\/\S+ because no identity-based policy allows the iam:PassRole action \(Service: Ec2, Status Code: 403, Request ID: [0-9a-f-]+\)$/,
    );
    const path = executionOf(id).path;
    expect(path.filter((s) => s === STATES.runInstances)).toHaveLength(1);
    expect(path).toContain(STATES.compensate);
    expect(instancesOf(id)).toEqual([]);
  });

  it("serves each function's DynamoDB, Step Functions and EC2 calls as its own role, as least privilege allows", async () => {
    const { deps } = stack;
    const as = (fn: LocalFunctionName) => deps.local!.asFunction!(fn, deps).workflow!;
    // Challenge issues nonces; the heartbeat route may only read task-token items; the submission route
    // may only update them (dynamodb:LeadingKeys task#*), never a nonce.
    const { nonce } = await as({ step: STATES.challenge }).nonces.issue({ enclaveId: randomUUID() }, 60);
    expect(nonce).toHaveLength(32);
    await expect(
      as({ route: 'sendAttestationHeartbeat' }).nonces.issue({ enclaveId: randomUUID() }, 60),
    ).rejects.toThrow(/AccessDeniedException/);
    await expect(
      as({ route: 'submitAttestation' }).nonces.issue({ enclaveId: randomUUID() }, 60),
    ).rejects.toThrow(/AccessDeniedException/);
    // Only the enforcement stops parents; Compensate terminates them; a route does neither.
    const { Instances } = await stack.enclaves.ec2.runInstances({
      ImageId: 'ami-0test',
      InstanceType: 'm5.xlarge',
      MinCount: 1,
      MaxCount: 1,
      EnclaveOptions: { Enabled: true },
      TagSpecifications: [
        { ResourceType: 'instance', Tags: [{ Key: INSTANCE_TAGS.enclaveId, Value: randomUUID() }] },
      ],
    });
    const parent = Instances[0]!.InstanceId;
    while (stack.enclaves.ec2.inventory().find((i) => i.instanceId === parent)?.state !== 'running') {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    await expect(as({ step: STATES.compensate }).instances.stop([parent])).rejects.toThrow(
      /StopInstances.*UnauthorizedOperation/s,
    );
    await as({ enforcement: true }).instances.stop([parent]);
    await as({ step: STATES.compensate }).instances.terminate([parent]);
    // The heartbeat route may not complete the wait, only keep it alive.
    await expect(
      as({ route: 'sendAttestationHeartbeat' }).callbacks.succeed('token', {}),
    ).rejects.toMatchObject({
      name: 'AccessDeniedException',
      message: expect.stringContaining('states:SendTaskSuccess'),
    });
  });
});
