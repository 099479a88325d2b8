import { submitAttestation } from '../../../shared/enclaves/attestation-submission.ts';
import { defineRoute } from '../../../shared/http/api-handler.ts';
import * as routes from '../../../shared/http/routes.ts';
import { runtime } from '../../../shared/runtime/runtime.ts';

export const handler = defineRoute(
  routes.submitAttestation,
  await runtime(),
  async ({ caller, params, body }, deps) => ({
    status: 202,
    body: await submitAttestation(deps, caller, { enclaveId: params.id, document: body.document }),
  }),
);
