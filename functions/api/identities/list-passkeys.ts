import { defineRoute } from '../../../shared/http/api-handler.ts';
import * as routes from '../../../shared/http/routes.ts';
import { listPasskeys } from '../../../shared/identities/webauthn-service.ts';
import { runtime } from '../../../shared/runtime/runtime.ts';

export const handler = defineRoute(routes.listPasskeys, await runtime(), ({ caller, params }, deps) =>
  listPasskeys(deps, caller, params.id),
);
