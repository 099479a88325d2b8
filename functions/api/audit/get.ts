import { getAuditTrail } from '../../../shared/audit/audit-service.ts';
import { defineRoute } from '../../../shared/http/api-handler.ts';
import { runtime } from '../../../shared/runtime/runtime.ts';

const deps = await runtime();

export const handler = defineRoute('getAuditTrail', deps, ({ caller, query }) =>
  getAuditTrail(deps, caller, query),
);
