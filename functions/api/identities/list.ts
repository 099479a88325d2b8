import { defineRoute } from '../../../shared/http/api-handler.ts';
import { listIdentities } from '../../../shared/identities/identity-service.ts';
import { runtime } from '../../../shared/runtime/runtime.ts';

const deps = await runtime();

export const handler = defineRoute('listIdentities', deps, ({ caller, query }) =>
  listIdentities(deps, caller, query),
);
