import { createContract } from '../../../shared/contracts/contract-service.ts';
import { defineRoute } from '../../../shared/http/api-handler.ts';
import { fingerprintOf } from '../../../shared/idempotency/idempotency-store.ts';
import { runtime } from '../../../shared/runtime/runtime.ts';

const deps = await runtime();

export const handler = defineRoute('createContract', deps, ({ caller, body, idempotencyKey }) =>
  createContract(
    deps,
    caller,
    body,
    idempotencyKey === undefined
      ? undefined
      : { key: idempotencyKey, fingerprint: fingerprintOf('createContract', body) },
  ),
);
