import { deleteContract } from '../../../shared/contracts/contract-service.ts';
import { defineRoute } from '../../../shared/http/api-handler.ts';
import { runtime } from '../../../shared/runtime/runtime.ts';

export const handler = defineRoute('deleteContract', await runtime(), ({ caller, params, ifMatch }, deps) =>
  deleteContract(deps, caller, params.id, ifMatch),
);
