import { defineRoute } from '../../../shared/http/api-handler.ts';
import * as routes from '../../../shared/http/routes.ts';
import { getContractKey } from '../../../shared/keys/contract-keys.ts';
import { runtime } from '../../../shared/runtime/runtime.ts';

export const handler = defineRoute(routes.getContractKey, await runtime(), ({ caller, params }, deps) =>
  getContractKey(deps, caller, params.id),
);
