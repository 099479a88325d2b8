import { createEnclave } from '../../../shared/enclaves/enclave-service.ts';
import { defineRoute } from '../../../shared/http/api-handler.ts';
import { fingerprintOf } from '../../../shared/idempotency/idempotency-store.ts';
import { runtime } from '../../../shared/runtime/runtime.ts';

const deps = await runtime();

export const handler = defineRoute('createEnclave', deps, ({ caller, body, idempotencyKey }) =>
  createEnclave(
    deps,
    caller,
    body,
    idempotencyKey === undefined
      ? undefined
      : { key: idempotencyKey, fingerprint: fingerprintOf('createEnclave', body) },
  ),
);
