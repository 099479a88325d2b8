import { defineRoute } from '../../../shared/http/api-handler.ts';
import { openApiDocument } from '../../../shared/http/openapi.ts';
import { runtime } from '../../../shared/runtime/runtime.ts';

const document = openApiDocument();

export const handler = defineRoute('getOpenApi', await runtime(), async () => ({
  status: 200,
  body: document,
}));
