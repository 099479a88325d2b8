import { defineRoute } from '../../../shared/http/api-handler.ts';
import * as routes from '../../../shared/http/routes.ts';
import { getIdentity } from '../../../shared/identities/identity-service.ts';
import { runtime } from '../../../shared/runtime/runtime.ts';

export const handler = defineRoute(routes.getIdentity, await runtime(), ({ caller, params }, deps) =>
  getIdentity(deps, caller, params.id),
);
