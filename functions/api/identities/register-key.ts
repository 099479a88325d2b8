import { defineRoute } from '../../../shared/http/api-handler.ts';
import { registerKey } from '../../../shared/identities/identity-service.ts';
import { runtime } from '../../../shared/runtime/runtime.ts';

export const handler = defineRoute('registerKey', await runtime(), ({ caller, params, body }, deps) =>
  registerKey(deps, caller, params.id, body),
);
