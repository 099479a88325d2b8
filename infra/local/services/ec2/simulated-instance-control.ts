import { TaggedInstanceControl } from '../../../../shared/workflow/tagged-instance-control.ts';
import type { Ec2Operation, Ec2Simulator } from './ec2-simulator.ts';

/**
 * {@link InstanceControl} over the local EC2 simulator, with exactly the AWS adapter's semantics (both are
 * {@link TaggedInstanceControl}); the simulator answers and fails as EC2 does (`Ec2Error`), including
 * `IncorrectInstanceState` for a pending instance and `InvalidInstanceID.NotFound` for an unknown one.
 * @example
 * const ec2 = new Ec2Simulator();
 * const instances = new SimulatedInstanceControl(ec2);
 */
export class SimulatedInstanceControl extends TaggedInstanceControl {
  /**
   * @param authorize the local IAM stand-in, for the calling function's role: throws the call's error when
   *   denied (default: every call is allowed).
   */
  constructor(ec2: Ec2Simulator, authorize?: (operation: Ec2Operation, input: unknown) => Promise<void>) {
    const as = async (operation: Ec2Operation, input: unknown) => authorize?.(operation, input);
    super({
      describeInstances: async (input) => {
        await as('DescribeInstances', input);
        return ec2.describeInstances(input);
      },
      stopInstances: async (input) => {
        await as('StopInstances', input);
        return ec2.stopInstances(input);
      },
      terminateInstances: async (input) => {
        await as('TerminateInstances', input);
        return ec2.terminateInstances(input);
      },
    });
  }
}
