import { createContract } from '../../../shared/contracts/contract-service.ts';
import { defineRoute } from '../../../shared/http/api-handler.ts';
import { runtime } from '../../../shared/runtime/runtime.ts';

const deps = await runtime();

export const handler = defineRoute('createContract', deps, ({ caller, body, idempotency }) =>
  createContract(deps, caller, body, idempotency),
);
