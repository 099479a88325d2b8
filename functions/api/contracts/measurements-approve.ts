import { approveMeasurementSet } from '../../../shared/contracts/measurement-service.ts';
import { defineRoute } from '../../../shared/http/api-handler.ts';
import { runtime } from '../../../shared/runtime/runtime.ts';

export const handler = defineRoute(
  'approveMeasurementSet',
  await runtime(),
  ({ caller, params, body }, deps) => approveMeasurementSet(deps, caller, params.id, params.mid, body),
);
