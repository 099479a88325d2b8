import { defineRoute } from '../../../shared/http/api-handler.ts';
import * as routes from '../../../shared/http/routes.ts';
import { setIdentityStatus } from '../../../shared/identities/identity-service.ts';
import { runtime } from '../../../shared/runtime/runtime.ts';

export const handler = defineRoute(
  routes.setIdentityStatus,
  await runtime(),
  ({ caller, params, body }, deps) => setIdentityStatus(deps, caller, params.id, body),
);
