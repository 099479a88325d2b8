import { defineRoute } from '../../../shared/http/api-handler.ts';
import * as routes from '../../../shared/http/routes.ts';
import { runtime } from '../../../shared/runtime/runtime.ts';

export const handler = defineRoute(routes.listPlatformKeys, await runtime(), async (_request, deps) => ({
  status: 200,
  body: { keys: await deps.signer.publicKeys() },
  headers: { 'cache-control': 'public, max-age=300' },
}));
