import { z } from 'zod';
import { ProblemSchema } from './api-schemas.ts';
import { ROUTES, type RouteDefinition } from './routes.ts';

type JsonSchema = Record<string, unknown>;

function schemaOf(schema: z.ZodType, io: 'input' | 'output'): JsonSchema {
  const { $schema: _ignored, ...rest } = z.toJSONSchema(schema, {
    target: 'draft-2020-12',
    io,
    unrepresentable: 'any',
  }) as JsonSchema;
  return rest;
}

function parametersOf(route: RouteDefinition): JsonSchema[] {
  const parameters: JsonSchema[] = [];
  for (const [where, schema] of [
    ['path', route.request?.params],
    ['query', route.request?.query],
  ] as const) {
    if (!schema) continue;
    const json = schemaOf(schema, 'input') as {
      properties?: Record<string, JsonSchema>;
      required?: string[];
    };
    for (const [name, property] of Object.entries(json.properties ?? {})) {
      parameters.push({
        name,
        in: where,
        required: where === 'path' || (json.required ?? []).includes(name),
        schema: property,
      });
    }
  }
  for (const name of route.request?.headers ?? []) {
    parameters.push({
      name,
      in: 'header',
      required: false,
      schema: { type: 'string' },
      description:
        name === 'If-Match'
          ? 'The ETag of the version this write applies to; 412 when stale (required on PUT and DELETE).'
          : 'A unique key per logical request; a retry with the same key and body replays the first response.',
    });
  }
  return parameters;
}

const problem = {
  description: 'RFC 9457 problem details',
  content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } },
};

/** OpenAPI 3.1, generated from the route table and the same zod schemas that validate requests. */
export function openApiDocument(): JsonSchema {
  const paths: Record<string, Record<string, JsonSchema>> = {};
  for (const route of ROUTES as readonly RouteDefinition[]) {
    const responses: Record<string, JsonSchema> = {};
    for (const [status, response] of Object.entries(route.responses)) {
      responses[status] = response.schema
        ? {
            description: response.description,
            content: { 'application/json': { schema: schemaOf(response.schema, 'output') } },
          }
        : { description: response.description };
    }
    for (const status of route.auth === 'jwt'
      ? ['400', '401', '403', '404', '409', '412', '422', '500']
      : ['400', '500']) {
      responses[status] ??= problem;
    }
    paths[route.path] ??= {};
    paths[route.path]![route.method.toLowerCase()] = {
      operationId: route.id,
      summary: route.summary,
      tags: [route.tag],
      ...(route.auth === 'jwt' ? { security: [{ bearer: [] }] } : { security: [] }),
      parameters: parametersOf(route),
      ...(route.request?.body
        ? {
            requestBody: {
              required: true,
              content: { 'application/json': { schema: schemaOf(route.request.body, 'input') } },
            },
          }
        : {}),
      responses,
    };
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'Enclave contracts API',
      version: '1.0.0',
      description:
        'Digital contracts between training data providers and consumers, enforced by attested confidential computing.',
    },
    jsonSchemaDialect: 'https://json-schema.org/draft/2020-12/schema',
    paths,
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } },
      schemas: { Problem: schemaOf(ProblemSchema, 'output') },
    },
  };
}
