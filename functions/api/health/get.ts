import { defineRoute } from '../../../shared/http/api-handler.ts';
import { runtime } from '../../../shared/runtime/runtime.ts';

const deps = await runtime();

export const handler = defineRoute('getHealth', deps, async () => ({ status: 200, body: { status: 'ok' } }));
