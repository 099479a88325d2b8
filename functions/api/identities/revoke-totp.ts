import { defineRoute } from '../../../shared/http/api-handler.ts';
import * as routes from '../../../shared/http/routes.ts';
import { revokeTotp } from '../../../shared/identities/totp-service.ts';
import { runtime } from '../../../shared/runtime/runtime.ts';

export const handler = defineRoute(routes.revokeTotp, await runtime(), ({ caller, params }, deps) =>
  revokeTotp(deps, caller, params.id, params.credentialId),
);
