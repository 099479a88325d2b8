import { verifyContractSignatures } from '../../../shared/contracts/evidence-service.ts';
import { defineRoute } from '../../../shared/http/api-handler.ts';
import * as routes from '../../../shared/http/routes.ts';
import { runtime } from '../../../shared/runtime/runtime.ts';

export const handler = defineRoute(
  routes.verifyContractSignatures,
  await runtime(),
  ({ caller, params }, deps) => verifyContractSignatures(deps, caller, params.id),
);
