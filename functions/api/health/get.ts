import { defineRoute } from '../../../shared/http/api-handler.ts';
import * as routes from '../../../shared/http/routes.ts';
import { runtime } from '../../../shared/runtime/runtime.ts';

export const handler = defineRoute(routes.getHealth, await runtime(), async () => ({
  status: 200,
  body: { status: 'ok' },
}));
