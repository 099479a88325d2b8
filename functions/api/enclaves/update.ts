import { updateEnclave } from '../../../shared/enclaves/enclave-service.ts';
import { defineRoute } from '../../../shared/http/api-handler.ts';
import { runtime } from '../../../shared/runtime/runtime.ts';

const deps = await runtime();

export const handler = defineRoute('updateEnclave', deps, ({ caller, params, body, ifMatch }) =>
  updateEnclave(deps, caller, params.id, body, ifMatch),
);
