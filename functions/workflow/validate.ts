import { validateStep } from '../../shared/enclaves/provisioning-steps.ts';
import { runtime } from '../../shared/runtime/runtime.ts';

const deps = await runtime();

/** The provisioning state machine's `Validate` step (see shared/enclaves/provisioning-workflow.ts). */
export const handler = (input: unknown) => validateStep(deps, input);
