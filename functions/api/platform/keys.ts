import { defineRoute } from '../../../shared/http/api-handler.ts';
import * as routes from '../../../shared/http/routes.ts';
import { runtime } from '../../../shared/runtime/runtime.ts';
import { listPlatformKeys } from '../../../shared/signing/platform-key-registry.ts';

export const handler = defineRoute(routes.listPlatformKeys, await runtime(), async (_request, deps) => ({
  status: 200,
  body: { keys: await listPlatformKeys(deps.db) },
  // Short: a rotation publishes the new key before the alias names it, but a client that cached the list
  // may meet a countersignature by a key it has not seen; it fetches again then.
  headers: { 'cache-control': 'public, max-age=60' },
}));
