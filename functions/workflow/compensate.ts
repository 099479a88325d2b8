import { compensateStep } from '../../shared/enclaves/provisioning-steps.ts';
import { runtime } from '../../shared/runtime/runtime.ts';

const deps = await runtime();

/** The provisioning state machine's `Compensate` step (see shared/enclaves/provisioning-workflow.ts). */
export const handler = (input: unknown) => compensateStep(deps, input);
