import { listContracts } from '../../../shared/contracts/contract-service.ts';
import { defineRoute } from '../../../shared/http/api-handler.ts';
import * as routes from '../../../shared/http/routes.ts';
import { runtime } from '../../../shared/runtime/runtime.ts';

export const handler = defineRoute(routes.listContracts, await runtime(), ({ caller, query }, deps) =>
  listContracts(deps, caller, query),
);
