import { defineRoute } from '../../../shared/http/api-handler.ts';
import * as routes from '../../../shared/http/routes.ts';
import { registrationOptions } from '../../../shared/identities/webauthn-service.ts';
import { runtime } from '../../../shared/runtime/runtime.ts';

export const handler = defineRoute(
  routes.webauthnRegistrationOptions,
  await runtime(),
  ({ caller, params }, deps) => registrationOptions(deps, caller, params.id),
);
