import { defineRoute } from '../../../shared/http/api-handler.ts';
import * as routes from '../../../shared/http/routes.ts';
import { revokePasskey } from '../../../shared/identities/webauthn-service.ts';
import { runtime } from '../../../shared/runtime/runtime.ts';

export const handler = defineRoute(routes.revokePasskey, await runtime(), ({ caller, params }, deps) =>
  revokePasskey(deps, caller, params.id, params.credentialId),
);
