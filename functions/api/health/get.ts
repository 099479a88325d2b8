import { defineRoute } from '../../../shared/http/api-handler.ts';
import { runtime } from '../../../shared/runtime/runtime.ts';

export const handler = defineRoute('getHealth', await runtime(), async () => ({
  status: 200,
  body: { status: 'ok' },
}));
