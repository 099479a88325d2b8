import { defineRoute } from '../../../shared/http/api-handler.ts';
import * as routes from '../../../shared/http/routes.ts';
import { confirmTotp } from '../../../shared/identities/totp-service.ts';
import { runtime } from '../../../shared/runtime/runtime.ts';

export const handler = defineRoute(routes.confirmTotp, await runtime(), ({ caller, params, body }, deps) =>
  confirmTotp(deps, caller, params.id, params.credentialId, body.code),
);
