import { sendAttestationHeartbeat } from '../../../shared/enclaves/attestation-submission.ts';
import { defineRoute } from '../../../shared/http/api-handler.ts';
import { runtime } from '../../../shared/runtime/runtime.ts';

const deps = await runtime();

export const handler = defineRoute('sendAttestationHeartbeat', deps, async ({ caller, params, body }) => ({
  status: 202,
  body: await sendAttestationHeartbeat(deps, caller, { enclaveId: params.id, phase: body.phase }),
}));
