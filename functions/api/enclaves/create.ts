import { createEnclave } from '../../../shared/enclaves/enclave-service.ts';
import { defineRoute } from '../../../shared/http/api-handler.ts';
import { runtime } from '../../../shared/runtime/runtime.ts';

const deps = await runtime();

export const handler = defineRoute('createEnclave', deps, ({ caller, body, idempotency }) =>
  createEnclave(deps, caller, body, idempotency),
);
