import { gunzipSync } from 'node:zlib';
import { defineRoute } from '../../../shared/http/api-handler.ts';
import { openApiDocument } from '../../../shared/http/openapi.ts';
import * as routes from '../../../shared/http/routes.ts';
import { runtime } from '../../../shared/runtime/runtime.ts';

/** In the deployed bundle: the document as gzipped JSON in base64, generated at synth (see `ContractsApi`). */
declare const __OPENAPI_GZIP__: string | undefined;

/**
 * The document, from the route table and the schemas that validate every request. The bundle carries it
 * generated at synth, so no cold start generates it (and the generator is not bundled); unbundled (the
 * local stack, tests) it is generated here, by the same function.
 */
const document: unknown =
  typeof __OPENAPI_GZIP__ === 'string'
    ? JSON.parse(gunzipSync(Buffer.from(__OPENAPI_GZIP__, 'base64')).toString('utf8'))
    : openApiDocument();

export const handler = defineRoute(routes.getOpenApi, await runtime(), async () => ({
  status: 200,
  body: document,
}));
