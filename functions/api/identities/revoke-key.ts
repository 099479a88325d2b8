import { defineRoute } from '../../../shared/http/api-handler.ts';
import * as routes from '../../../shared/http/routes.ts';
import { revokeKey } from '../../../shared/identities/identity-service.ts';
import { runtime } from '../../../shared/runtime/runtime.ts';

export const handler = defineRoute(routes.revokeKey, await runtime(), ({ caller, params }, deps) =>
  revokeKey(deps, caller, params.id, params.kid),
);
