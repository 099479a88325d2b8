import { activateStep } from '../../shared/enclaves/provisioning-steps.ts';
import { runtime } from '../../shared/runtime/runtime.ts';

const deps = await runtime();

/** The provisioning state machine's `Activate` step (see shared/enclaves/provisioning-workflow.ts). */
export const handler = (input: unknown) => activateStep(deps, input);
