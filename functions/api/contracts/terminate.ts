import { terminateContract } from '../../../shared/contracts/contract-service.ts';
import { defineRoute } from '../../../shared/http/api-handler.ts';
import { runtime } from '../../../shared/runtime/runtime.ts';

const deps = await runtime();

export const handler = defineRoute('terminateContract', deps, ({ caller, params, body, ifMatch }) =>
  terminateContract(deps, caller, params.id, body.reason, ifMatch),
);
