import { defineRoute } from '../../../shared/http/api-handler.ts';
import { listIdentities } from '../../../shared/identities/identity-service.ts';
import { runtime } from '../../../shared/runtime/runtime.ts';

export const handler = defineRoute('listIdentities', await runtime(), ({ caller, query }, deps) =>
  listIdentities(deps, caller, query),
);
