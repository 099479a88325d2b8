import { listMeasurementSets } from '../../../shared/contracts/measurement-service.ts';
import { defineRoute } from '../../../shared/http/api-handler.ts';
import * as routes from '../../../shared/http/routes.ts';
import { runtime } from '../../../shared/runtime/runtime.ts';

export const handler = defineRoute(routes.listMeasurementSets, await runtime(), ({ caller, params }, deps) =>
  listMeasurementSets(deps, caller, params.id),
);
