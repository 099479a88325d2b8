import { defineRoute } from '../../../shared/http/api-handler.ts';
import * as routes from '../../../shared/http/routes.ts';
import { authenticationOptions } from '../../../shared/identities/passkey-signature.ts';
import { runtime } from '../../../shared/runtime/runtime.ts';

export const handler = defineRoute(
  routes.webauthnAuthenticationOptions,
  await runtime(),
  ({ caller, params, body }, deps) => authenticationOptions(deps, caller, params.id, body.signingPayload),
);
