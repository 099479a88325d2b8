import { deleteEnclave } from '../../../shared/enclaves/enclave-service.ts';
import { defineRoute } from '../../../shared/http/api-handler.ts';
import * as routes from '../../../shared/http/routes.ts';
import { runtime } from '../../../shared/runtime/runtime.ts';

export const handler = defineRoute(
  routes.deleteEnclave,
  await runtime(),
  ({ caller, params, ifMatch }, deps) => deleteEnclave(deps, caller, params.id, ifMatch),
);
