import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { DomainError, type FieldIssue, UnauthorizedError, ValidationError } from '../domain/errors.ts';
import type * as z from '../domain/zod.ts';
import {
  fingerprintOf,
  IDEMPOTENCY_KEY_PATTERN,
  type IdempotentRequest,
} from '../idempotency/idempotency-store.ts';
import type { RouteDefinition } from './routes.ts';

/** Request bodies above this are refused with 413 before they are parsed. */
export const MAX_BODY_BYTES = 256 * 1024;

export interface ParsedRequest {
  readonly params: unknown;
  readonly query: unknown;
  readonly body: unknown;
  readonly ifMatch: string | undefined;
  /** The Idempotency-Key with the fingerprint of the validated request, on routes that take one. */
  readonly idempotency: IdempotentRequest | undefined;
  /** The verified token's subject (API Gateway's JWT authorizer put it there). */
  readonly subject: string | undefined;
}

export class PayloadTooLargeError extends DomainError {
  override readonly name = 'PayloadTooLargeError';
  constructor() {
    super(413, 'payload-too-large', 'Payload too large', `The request body exceeds ${MAX_BODY_BYTES} bytes.`);
  }
}

export class UnsupportedMediaTypeError extends DomainError {
  override readonly name = 'UnsupportedMediaTypeError';
  constructor(detail = 'Send the request body as application/json.') {
    super(415, 'unsupported-media-type', 'Unsupported media type', detail);
  }
}

/**
 * Checks the Content-Type of a body: `application/json` or a `+json` type (RFC 6839), with no charset
 * other than UTF-8 (RFC 8259 §8.1: JSON exchanged between systems is UTF-8; a body declared as another
 * charset would be read as something other than what the client meant).
 */
function checkContentType(value: string | undefined): void {
  const [type = '', ...parameters] = (value ?? '').split(';');
  const mediaType = type.trim().toLowerCase();
  if (mediaType !== 'application/json' && !/^application\/[a-z0-9.+-]+\+json$/.test(mediaType)) {
    throw new UnsupportedMediaTypeError();
  }
  for (const parameter of parameters) {
    const [name = '', ...rest] = parameter.split('=');
    if (name.trim().toLowerCase() !== 'charset') continue;
    const charset = rest
      .join('=')
      .trim()
      .replace(/^"(.*)"$/, '$1')
      .toLowerCase();
    if (charset !== 'utf-8' && charset !== 'utf8') {
      throw new UnsupportedMediaTypeError(
        `The request body must be UTF-8 JSON; charset=${charset.slice(0, 40)} is not accepted.`,
      );
    }
  }
}

function issuesOf(error: z.core.$ZodError, prefix: string): FieldIssue[] {
  return error.issues.slice(0, 50).map((i) => {
    const path = i.path.map(String).join('.');
    const keys = i.code === 'unrecognized_keys' ? ` (${i.keys.slice(0, 10).join(', ')})` : '';
    return { field: path ? `${prefix}.${path}` : prefix, message: `${i.message}${keys}` };
  });
}

function validate(schema: z.ZodMiniType | undefined, value: unknown, part: string): unknown {
  if (!schema) {
    const empty =
      value === undefined || (typeof value === 'object' && value !== null && Object.keys(value).length === 0);
    if (!empty)
      throw new ValidationError(`This endpoint takes no ${part}.`, [{ field: part, message: 'not allowed' }]);
    return undefined;
  }
  const result = schema.safeParse(value);
  if (!result.success) {
    const issues = issuesOf(result.error, part);
    throw new ValidationError(
      `The ${part} is invalid: ${issues
        .map((i) => `${i.field}: ${i.message}`)
        .slice(0, 3)
        .join('; ')}.`,
      issues,
    );
  }
  return result.data;
}

function header(event: APIGatewayProxyEventV2, name: string): string | undefined {
  const value = event.headers?.[name] ?? event.headers?.[name.toLowerCase()];
  return value === undefined ? undefined : value;
}

/**
 * The body's bytes as UTF-8 text, refused (400) when they are not UTF-8: a lenient decoder would replace
 * the bad bytes with U+FFFD, and text would be stored and signed other than as it was sent.
 */
function utf8(bytes: Buffer): string {
  try {
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    throw new ValidationError('The request body is not valid UTF-8.', [
      { field: 'body', message: 'not valid UTF-8' },
    ]);
  }
}

function parseBody(event: APIGatewayProxyEventV2, expectsBody: boolean): unknown {
  const raw = event.body;
  if (raw === undefined || raw === null || raw === '') return expectsBody ? {} : undefined;
  const bytes = event.isBase64Encoded ? Buffer.from(raw, 'base64') : undefined;
  if ((bytes?.length ?? Buffer.byteLength(raw, 'utf8')) > MAX_BODY_BYTES) throw new PayloadTooLargeError();
  // A route that takes no body tolerates an empty JSON object and refuses anything else as such (400),
  // whatever its media type: 415 is for routes that read a body.
  if (!expectsBody) {
    if (/^\s*\{\s*\}\s*$/.test(bytes === undefined ? raw : bytes.toString('latin1'))) return undefined;
    throw new ValidationError('This endpoint takes no body.', [{ field: 'body', message: 'not allowed' }]);
  }
  checkContentType(header(event, 'content-type'));
  const text = bytes === undefined ? raw : utf8(bytes);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new ValidationError('The request body is not valid JSON.', [
      { field: 'body', message: 'malformed JSON' },
    ]);
  }
  // JSON.parse keeps `"__proto__"` (however escaped) as an own key, but a schema may not: zod's records drop
  // it silently. No field of this API has that name, so it is refused wherever it is, as an unknown query
  // key is.
  const prototypeKey = pathOfPrototypeKey(value);
  if (prototypeKey !== undefined) {
    throw new ValidationError(`The body holds the key __proto__ (at ${prototypeKey}), which no field has.`, [
      { field: prototypeKey, message: 'unrecognized key: __proto__' },
    ]);
  }
  return value;
}

/**
 * Where the parsed body holds an own `__proto__` key, as a field path (`body.a.b`); undefined when nowhere.
 * Walked with an explicit stack: a body nested thousands of levels deep must not exhaust the call stack.
 */
function pathOfPrototypeKey(body: unknown): string | undefined {
  // Each node keeps its parent and key; the path is spelt out only for the key found, so a deep body costs
  // linear time and memory.
  const nodes: { value: unknown; parent: number; key: string }[] = [{ value: body, parent: -1, key: 'body' }];
  const stack = [0];
  for (let i = stack.pop(); i !== undefined; i = stack.pop()) {
    const { value } = nodes[i]!;
    if (value === null || typeof value !== 'object') continue;
    if (!Array.isArray(value) && Object.hasOwn(value, '__proto__')) {
      const keys: string[] = [];
      for (let at = i; at >= 0; at = nodes[at]!.parent) keys.unshift(nodes[at]!.key);
      return keys.join('.');
    }
    for (const [key, child] of Object.entries(value)) {
      if (child !== null && typeof child === 'object')
        stack.push(nodes.push({ value: child, parent: i, key }) - 1);
    }
  }
  return undefined;
}

/**
 * Validates everything the route accepts (path, query, body, headers, caller) before any use case runs:
 * a request that fails here has changed nothing.
 */
export function parseRequest(route: RouteDefinition, event: APIGatewayProxyEventV2): ParsedRequest {
  const request = route.request;
  const subject = (event.requestContext as { authorizer?: { jwt?: { claims?: Record<string, unknown> } } })
    .authorizer?.jwt?.claims?.sub;
  if (route.auth === 'jwt' && (typeof subject !== 'string' || subject.length === 0))
    throw new UnauthorizedError();

  const body = validate(request?.body, parseBody(event, request?.body !== undefined), 'body');
  const params = validate(
    request?.params,
    event.pathParameters ?? (request?.params ? {} : undefined),
    'path',
  );
  const query = validate(
    request?.query,
    event.queryStringParameters ?? (request?.query ? {} : undefined),
    'query',
  );

  const headers = request?.headers ?? [];
  const ifMatch = headers.includes('If-Match') ? header(event, 'if-match') : undefined;
  if (ifMatch !== undefined && (ifMatch.length === 0 || ifMatch.length > 200)) {
    throw new ValidationError('If-Match must be an entity tag such as "3".', [
      { field: 'header.If-Match', message: 'malformed' },
    ]);
  }
  const idempotencyKey = headers.includes('Idempotency-Key') ? header(event, 'idempotency-key') : undefined;
  if (idempotencyKey !== undefined && !IDEMPOTENCY_KEY_PATTERN.test(idempotencyKey)) {
    throw new ValidationError('Idempotency-Key must be 1 to 255 visible ASCII characters.', [
      { field: 'header.Idempotency-Key', message: 'malformed' },
    ]);
  }
  return {
    params,
    query,
    body,
    ifMatch,
    idempotency:
      idempotencyKey === undefined
        ? undefined
        : { key: idempotencyKey, fingerprint: fingerprintOf(route.id, body) },
    subject: typeof subject === 'string' ? subject : undefined,
  };
}
