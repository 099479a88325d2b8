import { defineRoute } from '../../../shared/http/api-handler.ts';
import { getIdentity } from '../../../shared/identities/identity-service.ts';
import { runtime } from '../../../shared/runtime/runtime.ts';

const deps = await runtime();

export const handler = defineRoute('getIdentity', deps, ({ caller, params }) =>
  getIdentity(deps, caller, params.id),
);
