import { defineRoute } from '../../../shared/http/api-handler.ts';
import { listKeys } from '../../../shared/identities/identity-service.ts';
import { runtime } from '../../../shared/runtime/runtime.ts';

const deps = await runtime();

export const handler = defineRoute('listKeys', deps, ({ caller, params }) =>
  listKeys(deps, caller, params.id),
);
