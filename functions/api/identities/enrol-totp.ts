import { defineRoute } from '../../../shared/http/api-handler.ts';
import * as routes from '../../../shared/http/routes.ts';
import { enrolTotp } from '../../../shared/identities/totp-enrolment.ts';
import { runtime } from '../../../shared/runtime/runtime.ts';

export const handler = defineRoute(routes.enrolTotp, await runtime(), ({ caller, params }, deps) =>
  enrolTotp(deps, caller, params.id),
);
