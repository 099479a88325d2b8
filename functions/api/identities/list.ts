import { defineRoute } from '../../../shared/http/api-handler.ts';
import * as routes from '../../../shared/http/routes.ts';
import { listIdentities } from '../../../shared/identities/identity-service.ts';
import { runtime } from '../../../shared/runtime/runtime.ts';

export const handler = defineRoute(routes.listIdentities, await runtime(), ({ caller, query }, deps) =>
  listIdentities(deps, caller, query),
);
