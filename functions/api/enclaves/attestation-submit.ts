import { submitAttestation } from '../../../shared/enclaves/attestation-submission.ts';
import { defineRoute } from '../../../shared/http/api-handler.ts';
import { runtime } from '../../../shared/runtime/runtime.ts';

export const handler = defineRoute(
  'submitAttestation',
  await runtime(),
  async ({ caller, params, body }, deps) => ({
    status: 202,
    body: await submitAttestation(deps, caller, { enclaveId: params.id, document: body.document }),
  }),
);
