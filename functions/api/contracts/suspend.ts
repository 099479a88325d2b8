import { suspendContract } from '../../../shared/contracts/contract-service.ts';
import { defineRoute } from '../../../shared/http/api-handler.ts';
import * as routes from '../../../shared/http/routes.ts';
import { runtime } from '../../../shared/runtime/runtime.ts';

export const handler = defineRoute(
  routes.suspendContract,
  await runtime(),
  ({ caller, params, body, ifMatch }, deps) => suspendContract(deps, caller, params.id, body.reason, ifMatch),
);
