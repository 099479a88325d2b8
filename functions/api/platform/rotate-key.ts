import { defineRoute } from '../../../shared/http/api-handler.ts';
import * as routes from '../../../shared/http/routes.ts';
import { runtime } from '../../../shared/runtime/runtime.ts';
import { rotatePlatformKey } from '../../../shared/signing/platform-key-registry.ts';

export const handler = defineRoute(routes.rotatePlatformKey, await runtime(), (request, deps) =>
  rotatePlatformKey(deps, request.caller),
);
