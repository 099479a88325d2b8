import { challengeStep } from '../../shared/enclaves/provisioning-steps.ts';
import { runtime } from '../../shared/runtime/runtime.ts';

const deps = await runtime();

/** The provisioning state machine's `Challenge` step (see shared/enclaves/provisioning-workflow.ts). */
export const handler = (input: unknown) => challengeStep(deps, input);
