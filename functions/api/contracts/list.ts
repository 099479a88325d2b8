import { listContracts } from '../../../shared/contracts/contract-service.ts';
import { defineRoute } from '../../../shared/http/api-handler.ts';
import { runtime } from '../../../shared/runtime/runtime.ts';

export const handler = defineRoute('listContracts', await runtime(), ({ caller, query }, deps) =>
  listContracts(deps, caller, query),
);
