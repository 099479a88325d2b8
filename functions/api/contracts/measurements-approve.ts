import { approveMeasurementSet } from '../../../shared/contracts/measurement-service.ts';
import { defineRoute } from '../../../shared/http/api-handler.ts';
import { runtime } from '../../../shared/runtime/runtime.ts';

const deps = await runtime();

export const handler = defineRoute('approveMeasurementSet', deps, ({ caller, params, body }) =>
  approveMeasurementSet(deps, caller, params.id, params.mid, body),
);
