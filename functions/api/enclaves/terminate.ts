import { terminateEnclave } from '../../../shared/enclaves/enclave-service.ts';
import { defineRoute } from '../../../shared/http/api-handler.ts';
import { runtime } from '../../../shared/runtime/runtime.ts';

export const handler = defineRoute(
  'terminateEnclave',
  await runtime(),
  ({ caller, params, body, ifMatch }, deps) =>
    terminateEnclave(deps, caller, params.id, body.reason, ifMatch),
);
