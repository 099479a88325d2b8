import { defineRoute } from '../../../shared/http/api-handler.ts';
import { runtime } from '../../../shared/runtime/runtime.ts';

export const handler = defineRoute('listPlatformKeys', await runtime(), async (_request, deps) => ({
  status: 200,
  body: { keys: await deps.signer.publicKeys() },
  headers: { 'cache-control': 'public, max-age=300' },
}));
