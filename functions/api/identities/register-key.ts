import { defineRoute } from '../../../shared/http/api-handler.ts';
import { registerKey } from '../../../shared/identities/identity-service.ts';
import { runtime } from '../../../shared/runtime/runtime.ts';

const deps = await runtime();

export const handler = defineRoute('registerKey', deps, ({ caller, params, body }) =>
  registerKey(deps, caller, params.id, body),
);
