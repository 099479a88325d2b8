import { getContractEvidence } from '../../../shared/contracts/evidence-service.ts';
import { defineRoute } from '../../../shared/http/api-handler.ts';
import * as routes from '../../../shared/http/routes.ts';
import { runtime } from '../../../shared/runtime/runtime.ts';

export const handler = defineRoute(routes.getContractEvidence, await runtime(), ({ caller, params }, deps) =>
  getContractEvidence(deps, caller, params.id),
);
