import { createContract } from '../../../shared/contracts/contract-service.ts';
import { defineRoute } from '../../../shared/http/api-handler.ts';
import { runtime } from '../../../shared/runtime/runtime.ts';

export const handler = defineRoute('createContract', await runtime(), ({ caller, body, idempotency }, deps) =>
  createContract(deps, caller, body, idempotency),
);
