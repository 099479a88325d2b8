import { suspendEnclave } from '../../../shared/enclaves/enclave-service.ts';
import { defineRoute } from '../../../shared/http/api-handler.ts';
import { runtime } from '../../../shared/runtime/runtime.ts';

const deps = await runtime();

export const handler = defineRoute('suspendEnclave', deps, ({ caller, params, body, ifMatch }) =>
  suspendEnclave(deps, caller, params.id, body.reason, ifMatch),
);
