import { defineRoute } from '../../../shared/http/api-handler.ts';
import * as routes from '../../../shared/http/routes.ts';
import { registerPasskey } from '../../../shared/identities/webauthn-service.ts';
import { runtime } from '../../../shared/runtime/runtime.ts';

export const handler = defineRoute(
  routes.registerPasskey,
  await runtime(),
  ({ caller, params, body }, deps) => registerPasskey(deps, caller, params.id, body),
);
