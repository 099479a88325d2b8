import { OptionalReasonSchema, PasskeyAssertionSchema, ReasonSchema } from '../domain/contract.ts';
import { ContractTermsSchema } from '../domain/contract-terms.ts';
import { EnclaveConfigurationSchema } from '../domain/enclave.ts';
import { IdSchema } from '../domain/identifiers.ts';
import { ApproveMeasurementsSchema, ProposeMeasurementsSchema } from '../domain/measurement-set.ts';
import { AuthenticationResponseSchema } from '../domain/webauthn.ts';
import * as z from '../domain/zod.ts';
import {
  AttestationAcceptedSchema,
  AttestationHeartbeatResponseSchema,
  AuditTrailSchema,
  AuthenticationOptionsSchema,
  ContractKeySchema,
  ContractPageSchema,
  ContractResponseSchema,
  EnclaveAttestationResponseSchema,
  EnclaveMetricsPageSchema,
  EnclavePageSchema,
  EnclaveResponseSchema,
  EvidenceBundleSchema,
  GatewayMessageSchema,
  HealthSchema,
  IdentityPageSchema,
  IdentityResponseSchema,
  KeyListSchema,
  KeyResponseSchema,
  KeyRotationSchema,
  MeasurementSetListSchema,
  MeasurementSetResponseSchema,
  PasskeyListSchema,
  PasskeySchema,
  PlatformKeyRotationSchema,
  PlatformKeySchema,
  PlatformKeysSchema,
  ProblemSchema,
  RegistrationOptionsSchema,
  SignatureVerificationSchema,
  TotpCredentialListSchema,
  TotpCredentialSchema,
  TotpEnrolmentSchema,
  WrappedDataKeySchema,
} from './api-schemas.ts';
import { errorStatusesOf, ifMatchRequired, ROUTE_TAGS, ROUTES, type RouteDefinition } from './routes.ts';

type JsonSchema = Record<string, unknown>;

/**
 * The schemas the document names (`#/components/schemas/<name>`), responses and requests apart: zod
 * renders a schema's output (what the server sends) and input (what it accepts) differently.
 */
const RESPONSE_SCHEMAS: Record<string, z.ZodMiniType> = {
  Problem: ProblemSchema,
  GatewayMessage: GatewayMessageSchema,
  Health: HealthSchema,
  PlatformKey: PlatformKeySchema,
  PlatformKeys: PlatformKeysSchema,
  PlatformKeyRotation: PlatformKeyRotationSchema,
  ContractKey: ContractKeySchema,
  WrappedDataKey: WrappedDataKeySchema,
  Identity: IdentityResponseSchema,
  IdentityPage: IdentityPageSchema,
  Key: KeyResponseSchema,
  KeyList: KeyListSchema,
  Contract: ContractResponseSchema,
  ContractPage: ContractPageSchema,
  MeasurementSet: MeasurementSetResponseSchema,
  MeasurementSetList: MeasurementSetListSchema,
  Enclave: EnclaveResponseSchema,
  EnclavePage: EnclavePageSchema,
  EnclaveAttestation: EnclaveAttestationResponseSchema,
  EnclaveMetricsPage: EnclaveMetricsPageSchema,
  AttestationAccepted: AttestationAcceptedSchema,
  AttestationHeartbeatAccepted: AttestationHeartbeatResponseSchema,
  AuditTrail: AuditTrailSchema,
  EvidenceBundle: EvidenceBundleSchema,
  KeyRotation: KeyRotationSchema,
  TotpCredential: TotpCredentialSchema,
  TotpCredentialList: TotpCredentialListSchema,
  TotpEnrolment: TotpEnrolmentSchema,
  Passkey: PasskeySchema,
  PasskeyList: PasskeyListSchema,
  PasskeyRegistrationOptions: RegistrationOptionsSchema,
  PasskeyAuthenticationOptions: AuthenticationOptionsSchema,
  SignatureVerification: SignatureVerificationSchema,
  PasskeyAssertion: PasskeyAssertionSchema,
  ContractTerms: ContractTermsSchema,
  EnclaveConfiguration: EnclaveConfigurationSchema,
};

/** Request bodies are named after what they do; one used by several routes is named once. */
const REQUEST_NAMES = new Map<z.ZodMiniType, string>([
  [ProposeMeasurementsSchema, 'ProposeMeasurementSet'],
  [ApproveMeasurementsSchema, 'ApproveMeasurementSet'],
  [ReasonSchema, 'Reason'],
  [OptionalReasonSchema, 'OptionalReason'],
]);

/** Parts several request bodies share, named once (inputs: what the server accepts). */
const REQUEST_PARTS: Record<string, z.ZodMiniType> = {
  ContractTermsInput: ContractTermsSchema,
  WebAuthnAssertion: AuthenticationResponseSchema,
  EnclaveConfigurationInput: EnclaveConfigurationSchema,
};

function requestName(route: RouteDefinition, body: z.ZodMiniType): string {
  return `${REQUEST_NAMES.get(body) ?? `${route.id[0]!.toUpperCase()}${route.id.slice(1)}`}Request`;
}

function componentSchemas(
  named: ReadonlyMap<string, z.ZodMiniType>,
  io: 'input' | 'output',
): Record<string, JsonSchema> {
  const registry = z.registry<{ id: string }>();
  for (const [id, schema] of named) registry.add(schema, { id });
  const { schemas } = z.toJSONSchema(registry, {
    target: 'draft-2020-12',
    io,
    unrepresentable: 'any',
    uri: (id) => `#/components/schemas/${id}`,
    // What the server sends is described by its format: a uuid's 180-character pattern (the ids it
    // accepts, see IdSchema) says nothing more about an id it made, and was repeated in every reply.
    ...(io === 'output'
      ? {
          override: (ctx: { jsonSchema: JsonSchema }) => {
            if (ctx.jsonSchema.format === 'uuid') delete ctx.jsonSchema.pattern;
          },
        }
      : {}),
  });
  return Object.fromEntries(
    Object.entries(schemas).map(([id, schema]) => {
      const { $schema: _s, $id: _i, ...rest } = schema as JsonSchema;
      return [id, rest];
    }),
  );
}

function inlineSchemaOf(schema: z.ZodMiniType): JsonSchema {
  const { $schema: _ignored, ...rest } = z.toJSONSchema(schema, {
    target: 'draft-2020-12',
    io: 'input',
    unrepresentable: 'any',
  }) as JsonSchema;
  return rest;
}

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });

/**
 * Parameter schemas that many routes share, named once (`#/components/schemas/<name>`): an id path
 * parameter's pattern alone is 250 characters, repeated on every route that names an entity.
 */
const PARAMETER_SCHEMAS = { Id: IdSchema } as const;

function parametersOf(route: RouteDefinition): JsonSchema[] {
  const parameters: JsonSchema[] = [];
  const named = new Map(
    Object.entries(PARAMETER_SCHEMAS).map(([name, schema]) => [JSON.stringify(inlineSchemaOf(schema)), name]),
  );
  for (const [where, schema] of [
    ['path', route.request?.params],
    ['query', route.request?.query],
  ] as const) {
    if (!schema) continue;
    const json = inlineSchemaOf(schema) as { properties?: Record<string, JsonSchema>; required?: string[] };
    for (const [name, property] of Object.entries(json.properties ?? {})) {
      const { description, ...propertySchema } = property;
      parameters.push({
        name,
        in: where,
        required: where === 'path' || (json.required ?? []).includes(name),
        ...(typeof description === 'string' ? { description } : {}),
        schema: named.has(JSON.stringify(propertySchema))
          ? ref(named.get(JSON.stringify(propertySchema))!)
          : propertySchema,
      });
    }
  }
  for (const name of route.request?.headers ?? []) {
    parameters.push({
      $ref: `#/components/parameters/${name === 'If-Match' ? (ifMatchRequired(route) ? 'IfMatchRequired' : 'IfMatch') : 'IdempotencyKey'}`,
    });
  }
  return parameters;
}

/** The response an error status gets: its problem, with the headers it carries. */
const ERROR_RESPONSES: Record<number, { name: string; description: string }> = {
  400: { name: 'BadRequest', description: 'The request is malformed: `errors` names each offending field.' },
  401: { name: 'Unauthorized', description: 'No valid credentials.' },
  403: { name: 'Forbidden', description: 'The caller may not do this.' },
  404: { name: 'NotFound', description: 'No such resource, or one the caller may not see.' },
  409: {
    name: 'Conflict',
    description: 'The resource is not in a state that allows this, or it exists already.',
  },
  410: { name: 'Gone', description: 'Too late: what this request answered has ended.' },
  412: {
    name: 'PreconditionFailed',
    description: 'If-Match does not name the current version: read it again.',
  },
  413: {
    name: 'PayloadTooLarge',
    description: 'The request body exceeds 256 KiB (a route that takes no body refuses any body with a 400).',
  },
  415: { name: 'UnsupportedMediaType', description: 'The body is not UTF-8 `application/json`.' },
  422: { name: 'Unprocessable', description: 'Well-formed, but it breaks a rule: `type` names which.' },
  428: { name: 'PreconditionRequired', description: 'If-Match is required here.' },
  500: {
    name: 'InternalError',
    description: 'An unexpected failure; `instance` names the request for support.',
  },
  503: {
    name: 'ServiceUnavailable',
    description: 'A dependency is briefly unavailable: retry after `Retry-After` seconds.',
  },
};

const problemContent = { 'application/problem+json': { schema: ref('Problem') } };

function errorResponses(): Record<string, JsonSchema> {
  return Object.fromEntries(
    Object.entries(ERROR_RESPONSES).map(([status, { name, description }]) => {
      const headers =
        status === '401'
          ? { 'WWW-Authenticate': { $ref: '#/components/headers/WWW-Authenticate' } }
          : status === '503'
            ? { 'Retry-After': { $ref: '#/components/headers/Retry-After' } }
            : undefined;
      // API Gateway's authorizers answer 401 and 403 themselves, with `{"message": …}`, before any function.
      const content =
        status === '401' || status === '403'
          ? { ...problemContent, 'application/json': { schema: ref('GatewayMessage') } }
          : problemContent;
      return [name, { description, ...(headers ? { headers } : {}), content }];
    }),
  );
}

const HEADERS = {
  ETag: {
    description: 'The version of the resource, quoted (`"3"`): send it back in If-Match to change it.',
    required: true,
    schema: { type: 'string', pattern: '^"[1-9][0-9]*"$' },
  },
  Location: {
    description: 'Where the created resource is read.',
    required: true,
    schema: { type: 'string', format: 'uri-reference' },
  },
  'Idempotent-Replayed': {
    description: 'Present when this response replays the first response to the same Idempotency-Key.',
    required: false,
    schema: { type: 'string', const: 'true' },
  },
  'Retry-After': {
    description: 'Seconds to wait before retrying.',
    required: true,
    schema: { type: 'string', pattern: '^[0-9]+$' },
  },
  'WWW-Authenticate': {
    description: 'The authentication scheme the route expects (RFC 9110 §11.6.1).',
    required: true,
    schema: { type: 'string', minLength: 1 },
  },
};

const PARAMETERS = {
  IfMatch: {
    name: 'If-Match',
    in: 'header',
    required: false,
    description:
      'The ETag (quoted, `"3"`) of the version this action applies to; 412 when it is no longer current.',
    schema: { type: 'string', minLength: 1, maxLength: 200 },
  },
  IfMatchRequired: {
    name: 'If-Match',
    in: 'header',
    required: true,
    description:
      'The ETag (quoted, `"3"`) of the version this change applies to; 412 when stale, 428 when missing.',
    schema: { type: 'string', minLength: 1, maxLength: 200 },
  },
  IdempotencyKey: {
    name: 'Idempotency-Key',
    in: 'header',
    required: false,
    description:
      'A unique key per logical request (1 to 255 visible ASCII characters): a retry with the same key and body replays the first response; the same key with another body is a 422.',
    schema: { type: 'string', pattern: '^[\\x21-\\x7e]{1,255}$' },
  },
};

/** Whether a response schema is a versioned resource (it carries `version`, and its ETag). */
function isVersioned(schema: z.ZodMiniType): boolean {
  const shape = (z.built(schema) as { shape?: Record<string, unknown> }).shape;
  return shape !== undefined && 'version' in shape;
}

function successResponses(route: RouteDefinition): Record<string, JsonSchema> {
  const responses: Record<string, JsonSchema> = {};
  const names = new Map([...Object.entries(RESPONSE_SCHEMAS)].map(([name, schema]) => [schema, name]));
  for (const [status, response] of Object.entries(route.responses)) {
    const headers: Record<string, JsonSchema> = {};
    if (response.schema && isVersioned(response.schema)) headers.ETag = { $ref: '#/components/headers/ETag' };
    if (status === '201') headers.Location = { $ref: '#/components/headers/Location' };
    if (route.request?.headers?.includes('Idempotency-Key'))
      headers['Idempotent-Replayed'] = { $ref: '#/components/headers/Idempotent-Replayed' };
    const schema = response.schema ? names.get(response.schema) : undefined;
    if (response.schema && !schema) throw new Error(`${route.id}: its response schema has no component name`);
    responses[status] = {
      description: response.description,
      ...(Object.keys(headers).length ? { headers } : {}),
      ...(schema
        ? { content: { 'application/json': { schema: ref(schema) } } }
        : route.id === 'getOpenApi'
          ? { content: { 'application/json': { schema: OPENAPI_DOCUMENT_SCHEMA } } }
          : {}),
    };
  }
  return responses;
}

/** The shape of this document, as `GET /openapi.json` serves it. */
const OPENAPI_DOCUMENT_SCHEMA = {
  type: 'object',
  required: ['openapi', 'info', 'paths', 'components'],
  properties: {
    openapi: { type: 'string', pattern: '^3\\.1\\.\\d+$' },
    info: {
      type: 'object',
      required: ['title', 'version'],
      properties: { title: { type: 'string' }, version: { type: 'string' } },
    },
    paths: { type: 'object' },
    components: { type: 'object' },
  },
};

const SECURITY = {
  jwt: [{ bearer: [] }],
  iam: [{ parentInstance: [] }],
  none: [],
} as const;

/** OpenAPI 3.1, generated from the route table and the same zod schemas that validate requests. */
export function openApiDocument(): JsonSchema {
  const requestSchemas = new Map<string, z.ZodMiniType>(Object.entries(REQUEST_PARTS));
  for (const route of ROUTES as readonly RouteDefinition[]) {
    const body = route.request?.body;
    if (body) requestSchemas.set(requestName(route, body), body);
  }
  const paths: Record<string, Record<string, JsonSchema>> = {};
  for (const route of ROUTES as readonly RouteDefinition[]) {
    const responses = successResponses(route);
    for (const status of errorStatusesOf(route)) {
      responses[status] = { $ref: `#/components/responses/${ERROR_RESPONSES[status]!.name}` };
    }
    const body = route.request?.body;
    paths[route.path] ??= {};
    paths[route.path]![route.method.toLowerCase()] = {
      operationId: route.id,
      summary: route.summary,
      description: route.description,
      tags: [route.tag],
      security: SECURITY[route.auth],
      parameters: parametersOf(route),
      ...(body
        ? {
            requestBody: {
              required: true,
              content: { 'application/json': { schema: ref(requestName(route, body)) } },
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
      summary:
        'Digital contracts between training data providers and consumers, enforced by attested Nitro Enclaves.',
      description:
        'Providers and consumers agree on terms, sign them with their registered keys, and the platform countersigns. Training runs only in AWS Nitro Enclaves whose attestation matches measurements both parties approved. Errors are RFC 9457 problem+json; versioned resources carry an ETag that PUT and DELETE require in If-Match; creates take an Idempotency-Key.',
      license: { name: 'Apache-2.0', identifier: 'Apache-2.0' },
      contact: { name: 'Enclave contracts maintainers' },
    },
    servers: [
      { url: '/', description: 'The API Gateway stage (or `npm start`) that served this document' },
      { url: 'http://127.0.0.1:3000', description: 'The local stack (`npm start`)' },
    ],
    jsonSchemaDialect: 'https://json-schema.org/draft/2020-12/schema',
    tags: Object.entries(ROUTE_TAGS).map(([name, description]) => ({ name, description })),
    paths,
    components: {
      securitySchemes: {
        bearer: {
          type: 'http',
          scheme: 'bearer',
          bearerFormat: 'JWT',
          description:
            "A Cognito access token (API Gateway's JWT authorizer); locally, `npm run token -- <name>`.",
        },
        parentInstance: {
          type: 'apiKey',
          name: 'Authorization',
          in: 'header',
          description:
            "AWS Signature Version 4 with the credentials of the enclave parent instance's role (API Gateway's IAM authorizer). The caller is the instance named by the role session.",
          'x-amazon-apigateway-authtype': 'awsSigv4',
        },
      },
      parameters: PARAMETERS,
      headers: HEADERS,
      responses: errorResponses(),
      schemas: {
        ...componentSchemas(new Map(Object.entries(RESPONSE_SCHEMAS)), 'output'),
        ...componentSchemas(new Map([...requestSchemas, ...Object.entries(PARAMETER_SCHEMAS)]), 'input'),
      },
    },
  };
}
