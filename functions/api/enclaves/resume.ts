import { resumeEnclave } from '../../../shared/enclaves/enclave-service.ts';
import { defineRoute } from '../../../shared/http/api-handler.ts';
import * as routes from '../../../shared/http/routes.ts';
import { runtime } from '../../../shared/runtime/runtime.ts';

export const handler = defineRoute(
  routes.resumeEnclave,
  await runtime(),
  ({ caller, params, body, ifMatch }, deps) => resumeEnclave(deps, caller, params.id, body.reason, ifMatch),
);
