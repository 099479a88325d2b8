import { defineRoute } from '../../../shared/http/api-handler.ts';
import { createIdentity } from '../../../shared/identities/identity-service.ts';
import { runtime } from '../../../shared/runtime/runtime.ts';

const deps = await runtime();

export const handler = defineRoute('createIdentity', deps, ({ caller, body, idempotency }) =>
  createIdentity(deps, caller, body, idempotency),
);
