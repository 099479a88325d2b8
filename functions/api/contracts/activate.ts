import { activateContract } from '../../../shared/contracts/contract-service.ts';
import { defineRoute } from '../../../shared/http/api-handler.ts';
import * as routes from '../../../shared/http/routes.ts';
import { runtime } from '../../../shared/runtime/runtime.ts';

export const handler = defineRoute(
  routes.activateContract,
  await runtime(),
  ({ caller, params, ifMatch }, deps) => activateContract(deps, caller, params.id, ifMatch),
);
