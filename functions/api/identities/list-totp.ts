import { defineRoute } from '../../../shared/http/api-handler.ts';
import * as routes from '../../../shared/http/routes.ts';
import { listTotpCredentials } from '../../../shared/identities/totp-service.ts';
import { runtime } from '../../../shared/runtime/runtime.ts';

export const handler = defineRoute(routes.listTotpCredentials, await runtime(), ({ caller, params }, deps) =>
  listTotpCredentials(deps, caller, params.id),
);
