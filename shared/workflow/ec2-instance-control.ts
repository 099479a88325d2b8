import {
  DescribeInstancesCommand,
  EC2Client,
  StopInstancesCommand,
  TerminateInstancesCommand,
} from '@aws-sdk/client-ec2';
import { TaggedInstanceControl } from './tagged-instance-control.ts';

export { InstanceControlError, MAX_INSTANCE_IDS_PER_CALL } from './tagged-instance-control.ts';

/** Options of {@link Ec2InstanceControl}. */
export interface Ec2InstanceControlOptions {
  /** A client built once per cold start; a default client (the function's region) is created otherwise. */
  readonly client?: EC2Client;
}

/**
 * {@link InstanceControl} on EC2: instances found by the enclave tag (DescribeInstances), stopped and
 * terminated in batches of at most 1000. The semantics (no-ops, batching, which failures are transient)
 * are {@link TaggedInstanceControl}'s, shared with the local stack's simulated EC2.
 *
 * IAM: `ec2:DescribeInstances` (not resource-scoped by EC2), and `ec2:StopInstances` /
 * `ec2:TerminateInstances` conditioned on `aws:ResourceTag/enclave-contracts:enclave-id` existing.
 * @example
 * const instances = new Ec2InstanceControl({ client: new EC2Client({}) }); // module scope
 * const live = await instances.listForEnclave(enclaveId);
 * await instances.terminate(live.map((i) => i.instanceId));
 */
export class Ec2InstanceControl extends TaggedInstanceControl {
  constructor(options: Ec2InstanceControlOptions = {}) {
    const client = options.client ?? new EC2Client({});
    super({
      describeInstances: (input) => client.send(new DescribeInstancesCommand(input)),
      stopInstances: (input) => client.send(new StopInstancesCommand(input)),
      terminateInstances: (input) => client.send(new TerminateInstancesCommand(input)),
    });
  }
}
