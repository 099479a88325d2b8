import { describe, expect, it } from 'vitest';
import { openApiDocument } from '../../shared/http/openapi.ts';
import { ROUTES } from '../../shared/http/routes.ts';

type Operation = {
  operationId: string;
  security: unknown[];
  parameters: { name: string; in: string; required: boolean }[];
  requestBody?: {
    content: { 'application/json': { schema: { type?: string; additionalProperties?: unknown } } };
  };
  responses: Record<string, unknown>;
};

describe('the OpenAPI 3.1 document', () => {
  const doc = openApiDocument() as { openapi: string; paths: Record<string, Record<string, Operation>> };

  it('is OpenAPI 3.1 and lists exactly the route table', () => {
    expect(doc.openapi).toBe('3.1.0');
    const operations = Object.entries(doc.paths).flatMap(([path, ops]) =>
      Object.entries(ops).map(([method, op]) => `${method.toUpperCase()} ${path} ${op.operationId}`),
    );
    expect(operations.sort()).toEqual(ROUTES.map((r) => `${r.method} ${r.path} ${r.id}`).sort());
  });

  it.each(ROUTES.map((r) => [r.id, r] as const))(
    '%s: security, parameters and bodies come from the route',
    (_id, route) => {
      const op = doc.paths[route.path]![route.method.toLowerCase()]!;
      expect(op.security).toEqual(route.auth === 'jwt' ? [{ bearer: [] }] : []);
      for (const name of route.path.match(/\{(\w+)\}/g)?.map((p) => p.slice(1, -1)) ?? []) {
        expect(op.parameters).toContainEqual(expect.objectContaining({ name, in: 'path', required: true }));
      }
      const request = 'request' in route ? route.request : undefined;
      if (request && 'body' in request) {
        const schema = op.requestBody!.content['application/json'].schema;
        expect(schema.type).toBe('object');
        // strict schemas: unknown keys are refused, and the document says so
        expect(schema.additionalProperties).toBe(false);
      } else {
        expect(op.requestBody).toBeUndefined();
      }
      for (const status of Object.keys(route.responses)) expect(op.responses).toHaveProperty(status);
      expect(op.responses).toHaveProperty('500');
    },
  );

  type BodySchema = { properties: Record<string, { description?: string; maxLength?: number }> };
  const bodyOf = (path: string, method: string) =>
    (doc.paths[path]![method]!.requestBody!.content['application/json'].schema as unknown as BodySchema)
      .properties;

  it('documents the create body with `simulation`, saying it is local-stack only', () => {
    const body = bodyOf('/api/v1/enclaves', 'post');
    expect(Object.keys(body).sort()).toEqual(['configuration', 'contractId', 'name', 'region', 'simulation']);
    expect(body.simulation!.description).toMatch(/^Local stack only/);
  });

  it('bounds an attestation submission to 64 KiB of document (base64)', () => {
    expect(bodyOf('/api/v1/enclaves/{id}/attestation', 'post').document!.maxLength).toBe(87_384);
  });

  it('lists every enclave route under the enclaves tag, the instance-only ones without bearer auth', () => {
    const enclaveRoutes = ROUTES.filter((r) => r.path.startsWith('/api/v1/enclaves'));
    expect(enclaveRoutes.map((r) => r.id).sort()).toEqual(
      [
        'createEnclave',
        'deleteEnclave',
        'getEnclave',
        'getEnclaveAttestation',
        'listEnclaveMetrics',
        'listEnclaves',
        'reportEnclaveMetrics',
        'resumeEnclave',
        'sendAttestationHeartbeat',
        'submitAttestation',
        'suspendEnclave',
        'terminateEnclave',
        'updateEnclave',
      ].sort(),
    );
    expect(
      enclaveRoutes
        .filter((r) => r.auth === 'iam')
        .map((r) => r.id)
        .sort(),
    ).toEqual(['reportEnclaveMetrics', 'sendAttestationHeartbeat', 'submitAttestation']);
  });
});
