import { getAuditTrail } from '../../../shared/audit/audit-service.ts';
import { defineRoute } from '../../../shared/http/api-handler.ts';
import * as routes from '../../../shared/http/routes.ts';
import { runtime } from '../../../shared/runtime/runtime.ts';

export const handler = defineRoute(routes.getAuditTrail, await runtime(), ({ caller, query }, deps) =>
  getAuditTrail(deps, caller, query),
);
