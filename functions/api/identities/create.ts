import { defineRoute } from '../../../shared/http/api-handler.ts';
import * as routes from '../../../shared/http/routes.ts';
import { createIdentity } from '../../../shared/identities/identity-service.ts';
import { runtime } from '../../../shared/runtime/runtime.ts';

export const handler = defineRoute(
  routes.createIdentity,
  await runtime(),
  ({ caller, body, idempotency }, deps) => createIdentity(deps, caller, body, idempotency),
);
