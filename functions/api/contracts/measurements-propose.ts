import { proposeMeasurementSet } from '../../../shared/contracts/measurement-service.ts';
import { defineRoute } from '../../../shared/http/api-handler.ts';
import { runtime } from '../../../shared/runtime/runtime.ts';

const deps = await runtime();

export const handler = defineRoute('proposeMeasurementSet', deps, ({ caller, params, body }) =>
  proposeMeasurementSet(deps, caller, params.id, body),
);
