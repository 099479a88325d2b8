import { defineRoute } from '../../../shared/http/api-handler.ts';
import { etagOf } from '../../../shared/http/preconditions.ts';
import * as routes from '../../../shared/http/routes.ts';
import { runtime } from '../../../shared/runtime/runtime.ts';

export const handler = defineRoute(routes.getMyIdentity, await runtime(), async ({ caller }) => ({
  status: 200,
  body: caller,
  etag: etagOf(caller.version),
}));
