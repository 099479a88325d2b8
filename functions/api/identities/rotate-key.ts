import { defineRoute } from '../../../shared/http/api-handler.ts';
import * as routes from '../../../shared/http/routes.ts';
import { rotateKey } from '../../../shared/identities/identity-service.ts';
import { runtime } from '../../../shared/runtime/runtime.ts';

export const handler = defineRoute(routes.rotateKey, await runtime(), ({ caller, params, body }, deps) =>
  rotateKey(deps, caller, params.id, params.kid, body),
);
