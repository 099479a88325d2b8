import { defineRoute } from '../../../shared/http/api-handler.ts';
import { runtime } from '../../../shared/runtime/runtime.ts';

const deps = await runtime();

export const handler = defineRoute('listPlatformKeys', deps, async () => ({
  status: 200,
  body: { keys: await deps.signer.publicKeys() },
  headers: { 'cache-control': 'public, max-age=300' },
}));
