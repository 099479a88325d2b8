import { listMeasurementSets } from '../../../shared/contracts/measurement-service.ts';
import { defineRoute } from '../../../shared/http/api-handler.ts';
import { runtime } from '../../../shared/runtime/runtime.ts';

const deps = await runtime();

export const handler = defineRoute('listMeasurementSets', deps, ({ caller, params }) =>
  listMeasurementSets(deps, caller, params.id),
);
