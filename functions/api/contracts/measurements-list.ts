import { listMeasurementSets } from '../../../shared/contracts/measurement-service.ts';
import { defineRoute } from '../../../shared/http/api-handler.ts';
import { runtime } from '../../../shared/runtime/runtime.ts';

export const handler = defineRoute('listMeasurementSets', await runtime(), ({ caller, params }, deps) =>
  listMeasurementSets(deps, caller, params.id),
);
