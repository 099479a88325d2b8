import { TaggedInstanceControl } from '../../shared/workflow/tagged-instance-control.ts';
import type { Ec2Simulator } from './ec2-simulator.ts';

/**
 * {@link InstanceControl} over the local EC2 simulator, with exactly the AWS adapter's semantics (both are
 * {@link TaggedInstanceControl}); the simulator answers and fails as EC2 does (`Ec2Error`), including
 * `IncorrectInstanceState` for a pending instance and `InvalidInstanceID.NotFound` for an unknown one.
 * @example
 * const ec2 = new Ec2Simulator();
 * const instances = new SimulatedInstanceControl(ec2);
 */
export class SimulatedInstanceControl extends TaggedInstanceControl {
  constructor(ec2: Ec2Simulator) {
    super({
      describeInstances: (input) => ec2.describeInstances(input),
      stopInstances: (input) => ec2.stopInstances(input),
      terminateInstances: (input) => ec2.terminateInstances(input),
    });
  }
}
