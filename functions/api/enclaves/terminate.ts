import { terminateEnclave } from '../../../shared/enclaves/enclave-service.ts';
import { defineRoute } from '../../../shared/http/api-handler.ts';
import * as routes from '../../../shared/http/routes.ts';
import { runtime } from '../../../shared/runtime/runtime.ts';

export const handler = defineRoute(
  routes.terminateEnclave,
  await runtime(),
  ({ caller, params, body, ifMatch }, deps) =>
    terminateEnclave(deps, caller, params.id, body.reason, ifMatch),
);
