import { updateContract } from '../../../shared/contracts/contract-service.ts';
import { defineRoute } from '../../../shared/http/api-handler.ts';
import { runtime } from '../../../shared/runtime/runtime.ts';

const deps = await runtime();

export const handler = defineRoute('updateContract', deps, ({ caller, params, body, ifMatch }) =>
  updateContract(deps, caller, params.id, body, ifMatch),
);
