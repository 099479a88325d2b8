import { terminateEnclave } from '../../../shared/enclaves/enclave-service.ts';
import { defineRoute } from '../../../shared/http/api-handler.ts';
import { runtime } from '../../../shared/runtime/runtime.ts';

const deps = await runtime();

export const handler = defineRoute('terminateEnclave', deps, ({ caller, params, body, ifMatch }) =>
  terminateEnclave(deps, caller, params.id, body.reason, ifMatch),
);
