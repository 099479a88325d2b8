import { getContract } from '../../../shared/contracts/contract-service.ts';
import { defineRoute } from '../../../shared/http/api-handler.ts';
import { runtime } from '../../../shared/runtime/runtime.ts';

export const handler = defineRoute('getContract', await runtime(), ({ caller, params }, deps) =>
  getContract(deps, caller, params.id),
);
