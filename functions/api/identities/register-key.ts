import { defineRoute } from '../../../shared/http/api-handler.ts';
import * as routes from '../../../shared/http/routes.ts';
import { registerKey } from '../../../shared/identities/identity-service.ts';
import { runtime } from '../../../shared/runtime/runtime.ts';

export const handler = defineRoute(routes.registerKey, await runtime(), ({ caller, params, body }, deps) =>
  registerKey(deps, caller, params.id, body),
);
