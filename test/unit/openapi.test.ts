import { describe, expect, it } from 'vitest';
import { openApiDocument } from '../../shared/http/openapi.ts';
import { errorStatusesOf, ROUTE_TAGS, ROUTES, type RouteDefinition } from '../../shared/http/routes.ts';

type Json = Record<string, unknown>;
type Operation = {
  operationId: string;
  summary: string;
  description: string;
  tags: string[];
  security: unknown[];
  parameters: Json[];
  requestBody?: { required: boolean; content: Record<string, { schema: Json }> };
  responses: Record<string, Json>;
};

const doc = openApiDocument() as {
  openapi: string;
  info: Json;
  servers: unknown[];
  tags: { name: string }[];
  paths: Record<string, Record<string, Operation>>;
  components: Json;
};

/** Follows a local `$ref` (`#/components/...`) to what it names. */
function deref<T = Json>(value: unknown): T {
  let node = value as Json;
  while (typeof node?.$ref === 'string') {
    node = (node.$ref as string)
      .slice(2)
      .split('/')
      .map((p) => p.replaceAll('~1', '/').replaceAll('~0', '~'))
      .reduce<Json>((at, key) => at[key] as Json, doc as unknown as Json);
    expect(node, String(value)).toBeDefined();
  }
  return node as T;
}

const operationOf = (route: RouteDefinition) => doc.paths[route.path]![route.method.toLowerCase()]!;
const routes = ROUTES as readonly RouteDefinition[];

describe('the OpenAPI 3.1 document', () => {
  it('is OpenAPI 3.1 and lists exactly the route table', () => {
    expect(doc.openapi).toBe('3.1.0');
    const operations = Object.entries(doc.paths).flatMap(([path, ops]) =>
      Object.entries(ops).map(([method, op]) => `${method.toUpperCase()} ${path} ${op.operationId}`),
    );
    expect(operations.sort()).toEqual(routes.map((r) => `${r.method} ${r.path} ${r.id}`).sort());
  });

  it('names its license, contact, servers and every tag it uses', () => {
    expect(doc.info.license).toEqual({ name: 'Apache-2.0', identifier: 'Apache-2.0' });
    expect(doc.info.contact).toHaveProperty('name');
    expect(doc.servers.length).toBeGreaterThan(0);
    expect(doc.tags.map((t) => t.name)).toEqual(Object.keys(ROUTE_TAGS));
    expect(new Set(routes.map((r) => r.tag))).toEqual(new Set(Object.keys(ROUTE_TAGS)));
  });

  it.each(routes.map((r) => [r.id, r] as const))(
    '%s: summary, description, tag, security, parameters, body and statuses come from the route',
    (_id, route) => {
      const op = operationOf(route);
      expect(op.summary).toBe(route.summary);
      expect(op.description.length).toBeGreaterThan(route.summary.length);
      expect(op.tags).toEqual([route.tag]);
      expect(op.security).toEqual(
        { jwt: [{ bearer: [] }], iam: [{ parentInstance: [] }], none: [] }[route.auth],
      );
      const parameters = op.parameters.map((p) => deref(p));
      for (const name of route.path.match(/\{(\w+)\}/g)?.map((p) => p.slice(1, -1)) ?? []) {
        expect(parameters).toContainEqual(expect.objectContaining({ name, in: 'path', required: true }));
      }
      const ifMatch = parameters.find((p) => p.name === 'If-Match');
      if (route.request?.headers?.includes('If-Match')) {
        // PUT and DELETE answer 428 without it, so the document says it is required there.
        expect(ifMatch?.required).toBe(route.method === 'PUT' || route.method === 'DELETE');
      } else {
        expect(ifMatch).toBeUndefined();
      }
      if (route.request?.body) {
        const schema = deref(op.requestBody!.content['application/json']!.schema);
        expect(op.requestBody!.required).toBe(true);
        // One object, or one of several (the types of a signature or an approval): each strict, so unknown
        // keys are refused, and the document says so.
        const variants = ((schema.oneOf ?? schema.anyOf) as Json[] | undefined)?.map((v) => deref(v)) ?? [
          schema,
        ];
        for (const variant of variants) {
          expect(variant.type).toBe('object');
          expect(variant.additionalProperties).toBe(false);
        }
      } else {
        expect(op.requestBody).toBeUndefined();
      }
      const statuses = Object.keys(op.responses).map(Number);
      expect(statuses.filter((s) => s >= 400)).toEqual(errorStatusesOf(route));
      expect(statuses.filter((s) => s < 400)).toEqual(Object.keys(route.responses).map(Number));
      for (const status of statuses) {
        const response = deref<{ headers?: Json; content?: Json }>(op.responses[status]);
        const headers = Object.keys(response.headers ?? {});
        if (status === 201) expect(headers).toContain('Location');
        if (status === 401) expect(headers).toContain('WWW-Authenticate');
        if (status === 503) expect(headers).toContain('Retry-After');
        if (status >= 400) expect(response.content).toHaveProperty(['application/problem+json']);
        else if (route.id !== 'getOpenApi' && status !== 202 && status !== 204)
          expect(response.content).toHaveProperty(['application/json']);
      }
    },
  );

  it('declares what only shape implies, and each route its business-rule statuses', () => {
    const status = (id: string) => errorStatusesOf(routes.find((r) => r.id === id)!);
    // Public, no input: a malformed request (a query it does not take) or an oversized body, and failures.
    expect(status('getHealth')).toEqual([400, 413, 500]);
    // No 409 or 412 on a read with no precondition.
    expect(status('getMyIdentity')).toEqual([400, 401, 403, 413, 500, 503]);
    expect(status('updateContract')).toEqual([400, 401, 403, 404, 409, 412, 413, 415, 422, 428, 500, 503]);
    // Actions take If-Match optionally: 412 when stale, never 428.
    expect(status('suspendEnclave')).toEqual([400, 401, 403, 404, 409, 412, 413, 415, 500, 503]);
    // Behind the IAM authorizer: a missing or bad signature is its 403, never a 401.
    expect(status('submitAttestation')).toEqual([400, 403, 404, 409, 410, 413, 415, 500, 503]);
  });

  it('names reusable schemas once instead of inlining copies', () => {
    const schemas = (doc.components as { schemas: Json }).schemas;
    expect(Object.keys(schemas)).toEqual(
      expect.arrayContaining(['Problem', 'Contract', 'ContractTerms', 'Enclave', 'EnclaveConfiguration']),
    );
    const text = JSON.stringify(doc);
    expect(text.match(/"#\/components\/schemas\/EnclaveConfiguration"/g)?.length).toBeGreaterThan(0);
    // Inlined copies show as bytes per operation (2.5 KB each with the components named once; an inlined
    // EnclaveConfiguration alone would add 4.5 KB to each route that takes or answers one).
    const operations = Object.values(doc.paths as Record<string, Json>).reduce(
      (n, item) => n + Object.keys(item).length,
      0,
    );
    expect(text.length / operations).toBeLessThan(2_800);
  });

  it("admits the 422 enclave-incompatible problem's `requirement`", () => {
    const problem = deref<{ properties: { errors: { items: Json } } }>({
      $ref: '#/components/schemas/Problem',
    });
    expect(problem.properties.errors.items.properties).toHaveProperty('requirement');
  });

  type BodySchema = { properties: Record<string, { description?: string; maxLength?: number }> };
  const bodyOf = (path: string, method: string) =>
    deref<BodySchema>(doc.paths[path]![method]!.requestBody!.content['application/json']!.schema).properties;

  it('documents the create body with `simulation`, saying it is local-stack only', () => {
    const body = bodyOf('/api/v1/enclaves', 'post');
    expect(Object.keys(body).sort()).toEqual(['configuration', 'contractId', 'name', 'region', 'simulation']);
    expect(body.simulation!.description).toMatch(/^Local stack only/);
  });

  it('bounds an attestation submission to 64 KiB of document (base64)', () => {
    expect(bodyOf('/api/v1/enclaves/{id}/attestation', 'post').document!.maxLength).toBe(87_384);
  });

  it('lists the routes enclave parents call under their own tag, signed with SigV4', () => {
    expect(
      routes
        .filter((r) => r.auth === 'iam')
        .map((r) => `${r.id} ${r.tag}`)
        .sort(),
    ).toEqual([
      'reportEnclaveMetrics parent instance',
      'sendAttestationHeartbeat parent instance',
      'submitAttestation parent instance',
    ]);
    const schemes = (doc.components as { securitySchemes: Record<string, Json> }).securitySchemes;
    expect(schemes.parentInstance).toMatchObject({ 'x-amazon-apigateway-authtype': 'awsSigv4' });
  });
});
