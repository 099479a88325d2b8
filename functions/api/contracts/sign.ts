import { signContract } from '../../../shared/contracts/contract-service.ts';
import { defineRoute } from '../../../shared/http/api-handler.ts';
import * as routes from '../../../shared/http/routes.ts';
import { runtime } from '../../../shared/runtime/runtime.ts';

export const handler = defineRoute(
  routes.signContract,
  await runtime(),
  ({ caller, params, body, ifMatch }, deps) => signContract(deps, caller, params.id, body, ifMatch),
);
