import { terminateContract } from '../../../shared/contracts/contract-service.ts';
import { defineRoute } from '../../../shared/http/api-handler.ts';
import * as routes from '../../../shared/http/routes.ts';
import { runtime } from '../../../shared/runtime/runtime.ts';

export const handler = defineRoute(
  routes.terminateContract,
  await runtime(),
  ({ caller, params, body, ifMatch }, deps) =>
    terminateContract(deps, caller, params.id, body.reason, ifMatch),
);
