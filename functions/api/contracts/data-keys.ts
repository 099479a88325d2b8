import { defineRoute } from '../../../shared/http/api-handler.ts';
import * as routes from '../../../shared/http/routes.ts';
import { createDataKey } from '../../../shared/keys/contract-keys.ts';
import { runtime } from '../../../shared/runtime/runtime.ts';

export const handler = defineRoute(routes.createDataKey, await runtime(), ({ caller, params }, deps) =>
  createDataKey(deps, caller, params.id),
);
