import { createServer, request as httpRequest, type Server } from 'node:http';
import { type AddressInfo, isIPv4, isIPv6 } from 'node:net';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { openApiDocument } from '../../shared/http/openapi.ts';

type Json = Record<string, unknown>;

/** One response as the client saw it. */
export interface Exchange {
  readonly method: string;
  /** The request path, with the query if any (`/api/v1/contracts?limit=5`). */
  readonly path: string;
  readonly status: number;
  readonly headers: Headers | Record<string, string | string[] | undefined>;
  readonly body: string;
}

/** What the check concluded: the operation the exchange hit (if any) and every way it departs from it. */
export interface Verdict {
  readonly operationId: string | undefined;
  readonly mismatches: readonly string[];
}

interface Operation {
  readonly operationId: string;
  readonly method: string;
  readonly pattern: RegExp;
  readonly responses: Record<string, unknown>;
}

/**
 * Holds every response to the OpenAPI document: the status is declared for the operation, each required
 * header is present and each declared header matches its schema, the media type is declared and the body
 * validates against its schema (JSON Schema 2020-12, ajv, formats checked). An exchange on a path and
 * method the document does not list is no operation (the gateway answered it) and is not checked.
 */
export class OpenApiConformance {
  private readonly ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: true });
  private readonly operations: Operation[] = [];
  private readonly validators = new Map<string, ValidateFunction>();

  constructor(readonly document: Json = openApiDocument()) {
    addFormats.default(this.ajv);
    // zod names CIDR blocks with formats of its own; hold them to what they say.
    const cidr = (isIp: (a: string) => boolean, bits: number) => (value: string) => {
      const [address = '', prefix, ...rest] = value.split('/');
      return rest.length === 0 && isIp(address) && /^\d{1,3}$/.test(prefix ?? '') && Number(prefix) <= bits;
    };
    this.ajv.addFormat('cidrv4', cidr(isIPv4, 32));
    this.ajv.addFormat('cidrv6', cidr(isIPv6, 128));
    this.ajv.addFormat('base64', /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/);
    this.ajv.addSchema({ ...document, $id: 'openapi.json' }, undefined, undefined, false);
    for (const [path, operations] of Object.entries(document.paths as Record<string, Record<string, Json>>)) {
      const pattern = new RegExp(`^${path.replace(/\{\w+\}/g, '[^/]+')}$`);
      for (const [method, operation] of Object.entries(operations)) {
        this.operations.push({
          operationId: operation.operationId as string,
          method: method.toUpperCase(),
          pattern,
          responses: operation.responses as Record<string, unknown>,
        });
      }
    }
  }

  operationOf(method: string, path: string): Operation | undefined {
    // As the client sent it: dot segments resolved (`/enclaves/./x` is `/enclaves/x` on the wire).
    const pathname = new URL(path, 'http://localhost').pathname;
    return this.operations.find((o) => o.method === method.toUpperCase() && o.pattern.test(pathname));
  }

  check(exchange: Exchange): Verdict {
    const operation = this.operationOf(exchange.method, exchange.path);
    if (!operation) return { operationId: undefined, mismatches: [] };
    const where = `${exchange.method} ${exchange.path} → ${exchange.status}`;
    const declared = operation.responses[String(exchange.status)];
    if (declared === undefined) {
      return {
        operationId: operation.operationId,
        mismatches: [
          `${where}: ${operation.operationId} does not declare ${exchange.status} (${exchange.body.slice(0, 300)})`,
        ],
      };
    }
    const response = this.deref(declared) as {
      headers?: Record<string, unknown>;
      content?: Record<string, Json>;
    };
    const mismatches: string[] = [];
    const header = (name: string) => headerOf(exchange.headers, name);
    for (const [name, spec] of Object.entries(response.headers ?? {})) {
      const { required, schema } = this.deref(spec) as { required?: boolean; schema: Json };
      const value = header(name);
      if (value === undefined) {
        if (required) mismatches.push(`${where}: header ${name} is required and missing`);
        continue;
      }
      const validate = this.validatorFor(`header:${JSON.stringify(schema)}`, schema);
      if (!validate(value))
        mismatches.push(`${where}: header ${name}: ${value} ${this.ajv.errorsText(validate.errors)}`);
    }
    const mediaType = header('content-type')?.split(';')[0]?.trim().toLowerCase();
    if (!response.content) {
      if (exchange.body.length > 0)
        mismatches.push(`${where}: declares no body, got ${exchange.body.slice(0, 200)}`);
      return { operationId: operation.operationId, mismatches };
    }
    const media = mediaType === undefined ? undefined : response.content[mediaType];
    if (!media) {
      mismatches.push(
        `${where}: content-type ${mediaType} is not one of ${Object.keys(response.content).join(', ')}`,
      );
      return { operationId: operation.operationId, mismatches };
    }
    let body: unknown;
    try {
      body = JSON.parse(exchange.body);
    } catch {
      mismatches.push(`${where}: the body is not JSON: ${exchange.body.slice(0, 200)}`);
      return { operationId: operation.operationId, mismatches };
    }
    const schema = media.schema as Json;
    const validate = this.validatorFor(JSON.stringify(schema), schema);
    if (!validate(body)) {
      mismatches.push(
        `${where}: the body does not match its schema: ${this.ajv.errorsText(validate.errors?.slice(0, 5))}`,
      );
    }
    return { operationId: operation.operationId, mismatches };
  }

  /** A validator for a schema of the document, its `$ref`s resolved against the document. */
  private validatorFor(key: string, schema: Json): ValidateFunction {
    let validate = this.validators.get(key);
    if (!validate) {
      validate = this.ajv.compile({ $id: `check-${this.validators.size}`, ...rebase(schema) });
      this.validators.set(key, validate);
    }
    return validate;
  }

  private deref(value: unknown): unknown {
    let node = value as Json;
    while (typeof node?.$ref === 'string') {
      node = (node.$ref as string)
        .slice(2)
        .split('/')
        .reduce<Json>(
          (at, key) => at[key.replaceAll('~1', '/').replaceAll('~0', '~')] as Json,
          this.document,
        );
    }
    return node;
  }
}

/** Points the document's local `$ref`s (`#/components/...`) at the document, for a schema compiled alone. */
function rebase(schema: Json): Json {
  return JSON.parse(JSON.stringify(schema).replaceAll('"$ref":"#/', '"$ref":"openapi.json#/')) as Json;
}

function headerOf(headers: Exchange['headers'], name: string): string | undefined {
  if (headers instanceof Headers) return headers.get(name) ?? undefined;
  const value = headers[name.toLowerCase()];
  return Array.isArray(value) ? value.join(', ') : value;
}

/**
 * A recording proxy in front of the API: each exchange is checked as it passes (for clients such as curl
 * in the README walk-through). Its `url` replaces the API's origin.
 */
export async function conformanceProxy(
  target: string,
  conformance = new OpenApiConformance(),
): Promise<{ url: string; verdicts: (Verdict & { exchange: string })[]; close: () => Promise<void> }> {
  const verdicts: (Verdict & { exchange: string })[] = [];
  const origin = new URL(target);
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const upstream = httpRequest(
        { host: origin.hostname, port: origin.port, method: req.method, path: req.url, headers: req.headers },
        (answer) => {
          const parts: Buffer[] = [];
          answer.on('data', (c: Buffer) => parts.push(c));
          answer.on('end', () => {
            const body = Buffer.concat(parts);
            const verdict = conformance.check({
              method: req.method ?? 'GET',
              path: req.url ?? '/',
              status: answer.statusCode ?? 0,
              headers: answer.headers,
              body: body.toString('utf8'),
            });
            verdicts.push({ ...verdict, exchange: `${req.method} ${req.url} → ${answer.statusCode}` });
            res.writeHead(answer.statusCode ?? 502, answer.headers);
            res.end(body);
          });
        },
      );
      upstream.on('error', (error) => {
        res.writeHead(502);
        res.end(String(error));
      });
      upstream.end(Buffer.concat(chunks));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    verdicts,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
