import { isUtf8 } from 'node:buffer';
import { randomUUID } from 'node:crypto';
import {
  createServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
  STATUS_CODES,
} from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { pathToFileURL } from 'node:url';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';
import { PROBLEM_TYPE_BASE } from '../../../../shared/http/api-handler.ts';
import { problemResponse } from '../../../../shared/http/problem.ts';
import { ROUTES, type RouteDefinition } from '../../../../shared/http/routes.ts';
import { logger } from '../../../../shared/runtime/logger.ts';
import { projectPath } from '../../../project-paths.ts';
import { type LocalIssuer, refusalReason, TokenRejectedError } from '../cognito/local-auth.ts';
import { LOCAL_REGION } from '../local-account.ts';
import { type SigV4Principal, verifySigV4 } from './sigv4-verifier.ts';

/**
 * The local stand-in for API Gateway (HTTP API, payload format 2.0): matches the route table, checks the
 * bearer token as the JWT authorizer does (or, on the parents' `iam` routes, the SigV4 signature and the
 * signer's `execute-api:Invoke` permission as the IAM authorizer does), builds the same event Lambda would receive, runs the route's
 * own handler module in-process and writes back its structured result. What API Gateway refuses before any
 * function runs, it refuses too, each refusal as RFC 9457 problem+json.
 *
 * Facts and sources:
 * - HTTP API quotas, neither adjustable (https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-quotas.html):
 *   "Total combined size of request line and header values: 10240 bytes", "Payload size: 10 MB".
 * - JWT authorizer workflow (https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-jwt-authorizer.html):
 *   "The identitySource can include only the token, or the token prefixed with Bearer"; the claims rules
 *   are in `local-auth.ts`.
 * - Payload format 2.0 (https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-develop-integrations-lambda.html):
 *   header names in lower case, duplicate headers and query parameters combined with commas; the event is
 *   JSON, so every header, query or path key is an own property of its object.
 *
 * With `requestLog`, every request is logged once, when its response is done, as one JSON line from the
 * Powertools logger the functions use: method, route template, status, duration, request id and the
 * caller's token subject (or role session), and for a 401 or an authorizer's 403 why it was refused. Never a token, a header value, a query
 * or a body.
 */
/** API Gateway HTTP APIs refuse payloads over 10 MB before any function runs. */
const GATEWAY_MAX_BODY = 10 * 1024 * 1024;
/** The HTTP API quota on the request line and header values together (bytes; not adjustable). */
export const GATEWAY_MAX_REQUEST_LINE_AND_HEADER_VALUES = 10_240;
/** How long a connection refused by the HTTP parser may stay open for the client to read the answer. */
const CLIENT_ERROR_LINGER_MS = 5_000;
/** The gateway's own log lines, in the functions' format (Powertools), marked as the local gateway's. */
const gatewayLog = logger.createChild({ persistentKeys: { component: 'local-gateway' } });

/** What the request log says about one request, filled in as the gateway handles it. */
interface Exchange {
  /** API Gateway's request id, also the function's `awsRequestId`. */
  readonly requestId: string;
  readonly started: number;
  /** The route template the path matched (`/api/v1/contracts/{id}`). */
  route?: string;
  /** The verified caller: the token's subject, or the instance session for `iam` routes. */
  callerId?: string;
  /** Why the authorizer refused the request (401), never the token itself. */
  refusal?: string;
}

type Handler = (
  event: APIGatewayProxyEventV2,
  context: Context,
) => Promise<APIGatewayProxyStructuredResultV2>;

interface CompiledRoute {
  readonly route: RouteDefinition;
  readonly pattern: RegExp;
  readonly names: string[];
}

function compile(route: RouteDefinition): CompiledRoute {
  const names: string[] = [];
  const source = route.path
    .replace(/[.*+?^$()|[\]\\]/g, '\\$&')
    .replace(/\\?\{(\w+)\\?\}|\{(\w+)\}/g, (_m, a, b) => {
      names.push(a ?? b);
      return '([^/]+)';
    });
  return { route, pattern: new RegExp(`^${source}$`), names };
}

let serverCount = 0;

export interface DevServer {
  readonly url: string;
  readonly server: Server;
  close(): Promise<void>;
}

export async function startDevServer(options: {
  issuer: LocalIssuer;
  port?: number;
  host?: string;
  /** Log one line per request (what `npm start` does; tests and benchmarks leave it off). */
  requestLog?: boolean;
  /**
   * Static pages served beside the API (the signing page at `/signing/`), as a static host would serve
   * them in AWS: a GET whose path this answers is not an API request.
   */
  staticFiles?: (
    pathname: string,
  ) => Promise<{ contentType: string; body: Buffer; headers?: Record<string, string> } | undefined>;
  /**
   * The IAM authorizer of the `iam` routes: whose access keys sign (the local STS stand-in's), and whether
   * the signer may `execute-api:Invoke` the method and path (a denial message, as AWS words it). Without
   * it, no signature verifies and every `iam` route is refused.
   */
  iam?: {
    readonly lookup: (accessKeyId: string) => SigV4Principal | undefined;
    readonly authorizeInvoke?: (
      callerArn: string,
      method: string,
      path: string,
    ) => Promise<string | undefined>;
  };
}): Promise<DevServer> {
  const routes = (ROUTES as readonly RouteDefinition[]).map(compile);
  const handlers = new Map<string, Promise<Handler>>();
  // Each server gets its own instances of the handler modules (as each Lambda container would), so a
  // second local stack in the same process composes its handlers with its own dependencies.
  const instance = ++serverCount;
  const load = (route: RouteDefinition) => {
    let h = handlers.get(route.id);
    if (!h) {
      const url = `${pathToFileURL(projectPath(route.handler)).href}${instance > 1 ? `?instance=${instance}` : ''}`;
      h = import(url).then((m: { handler: Handler }) => m.handler);
      handlers.set(route.id, h);
    }
    return h;
  };

  const server = createServer((req, res) => {
    const exchange: Exchange = { requestId: randomUUID(), started: performance.now() };
    if (options.requestLog) res.once('close', () => logRequest(req, res, exchange));
    serve(req, res, exchange).catch((error: unknown) => {
      // The connection is gone, or the parser already answered on it ('clientError'): nobody to answer.
      if (error instanceof ClientAbortedError) return;
      const { requestId } = exchange;
      logGatewayFailure(req, requestId, error);
      if (!res.headersSent) {
        send(
          res,
          problemResponse({
            type: `${PROBLEM_TYPE_BASE}internal-error`,
            title: 'Internal error',
            status: 500,
            detail: 'The local gateway failed. It has been logged; quote the instance to find it.',
            instance: `urn:request:${requestId}`,
          }),
        );
      } else res.destroy(error as Error);
    });
  });
  server.on('clientError', (error: Error & { code?: string }, socket: Duplex) => {
    const status = answerClientError(error, socket);
    if (options.requestLog && status !== undefined) {
      gatewayLog.info('request', {
        requestId: randomUUID(),
        route: null,
        status,
        durationMs: 0,
        reason: `refused by the HTTP parser (${error.code ?? 'unknown'})`,
      });
    }
  });

  async function serve(req: IncomingMessage, res: ServerResponse, exchange: Exchange): Promise<void> {
    // API Gateway's own limits and parsing come first: no route, authorizer or function sees such a request.
    if (requestLineAndHeaderValuesBytes(req) > GATEWAY_MAX_REQUEST_LINE_AND_HEADER_VALUES) {
      return send(
        res,
        refusal(
          431,
          'request-header-fields-too-large',
          'Request header fields too large',
          `The request line and header values exceed ${GATEWAY_MAX_REQUEST_LINE_AND_HEADER_VALUES} bytes.`,
        ),
      );
    }
    const url = requestUrl(req.url ?? '/');
    if (!url) {
      return send(res, refusal(400, 'bad-request', 'Bad request', 'The request target is not a valid URL.'));
    }
    if (!isPercentEncodedUtf8(url.pathname)) {
      return send(
        res,
        refusal(
          400,
          'malformed-path',
          'Malformed path',
          'The request path is not valid percent-encoding of UTF-8 (RFC 3986 §2.1).',
        ),
      );
    }
    const method = (req.method ?? 'GET').toUpperCase();
    if (url.pathname === '/.well-known/jwks.json' && method === 'GET') {
      return send(res, {
        statusCode: 200,
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(await options.issuer.jwks()),
      });
    }
    const page = method === 'GET' ? await options.staticFiles?.(url.pathname) : undefined;
    if (page) {
      res.writeHead(200, {
        'content-type': page.contentType,
        'content-length': page.body.length,
        ...page.headers,
      });
      res.end(page.body);
      return;
    }
    const candidates = routes.filter((r) => r.pattern.test(url.pathname));
    const match = candidates.find((r) => r.route.method === method);
    exchange.route = (match ?? candidates[0])?.route.path;
    if (!match) {
      if (!candidates.length)
        return send(res, refusal(404, 'not-found', 'Not found', `No route for ${url.pathname}.`));
      const allow = candidates.map((c) => c.route.method).join(', ');
      const detail = `${method} is not allowed here; use ${allow}.`;
      return send(res, refusal(405, 'method-not-allowed', 'Method not allowed', detail, { allow }));
    }
    const body = await readBody(req);
    if (body === null) {
      return send(
        res,
        refusal(413, 'payload-too-large', 'Payload too large', 'The request body exceeds the gateway limit.'),
      );
    }
    const headers = eventRecord(headerPairs(req.rawHeaders));
    let claims: Record<string, unknown> | undefined;
    let instanceArn: string | undefined;
    if (match.route.auth === 'iam') {
      // API Gateway's IAM authorizer: the SigV4 signature recomputed with the signer's secret, then the
      // signer's identity policies asked for execute-api:Invoke on this method and path.
      const verdict = await verifySigV4(
        { method, url: req.url ?? '/', headers: req.headers, body },
        { service: 'execute-api', region: LOCAL_REGION, lookup: options.iam?.lookup ?? (() => undefined) },
      );
      const denial = verdict.ok
        ? await options.iam?.authorizeInvoke?.(verdict.callerArn, method, url.pathname)
        : undefined;
      if (!verdict.ok || denial !== undefined) {
        const message = verdict.ok ? denial! : verdict.message;
        exchange.refusal = message;
        return send(res, iamAuthorizerRefusal(message));
      }
      instanceArn = verdict.callerArn;
      exchange.callerId = verdict.callerArn;
    } else if (match.route.auth === 'jwt') {
      const token = bearerToken(headers.authorization);
      try {
        if (headers.authorization === undefined) throw new TokenRejectedError('no Authorization header');
        if (!token) throw new TokenRejectedError('the Authorization header holds no bearer token');
        const verified = await options.issuer.verify(token);
        if (verified.token_use !== 'access') {
          throw new TokenRejectedError('not a user access token ("token_use")');
        }
        claims = verified;
        exchange.callerId = verified.sub;
      } catch (error) {
        exchange.refusal = refusalReason(error);
        return send(
          res,
          authorizerRefusal(headers.authorization === undefined ? undefined : exchange.refusal),
        );
      }
    }
    const values = match.pattern.exec(url.pathname)!.slice(1);
    const event = toEvent(req, url, headers, match, values, body, claims, instanceArn, exchange.requestId);
    const handler = await load(match.route);
    const result = await handler(event, lambdaContext(match.route, event.requestContext.requestId));
    send(res, result);
  }

  // A port already taken (or not ours to take) is the caller's to report: the promise rejects with the
  // listen error (its `code`, e.g. EADDRINUSE) instead of an unhandled 'error' event ending the process.
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    server,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((e) => (e ? reject(e) : resolve()));
      }),
  };
}

/**
 * What API Gateway's JWT authorizer answers when it refuses a request, before any function runs: its own
 * `401 {"message":"Unauthorized"}` (not problem+json), with a `www-authenticate` challenge that names the
 * error for a token it could not accept (RFC 6750 §3; AWS's "Troubleshooting issues with HTTP API JWT
 * authorizers" shows `Bearer scope="" error="invalid_token" error_description="…"`). Clients meet this shape
 * in AWS, so they meet it locally too; the OpenAPI document declares both 401 bodies.
 */
export function authorizerRefusal(reason: string | undefined): APIGatewayProxyStructuredResultV2 {
  const challenge =
    reason === undefined
      ? 'Bearer'
      : `Bearer scope="" error="invalid_token" error_description="${reason.replaceAll('"', "'")}"`;
  return {
    statusCode: 401,
    headers: { 'content-type': 'application/json', 'www-authenticate': challenge },
    body: JSON.stringify({ message: 'Unauthorized' }),
  };
}

/**
 * What API Gateway's IAM authorizer answers when it refuses a request, before any function runs: 403 with
 * its `{"message": …}` and the error type in `x-amzn-errortype` ("How do I troubleshoot HTTP 403 errors from
 * API Gateway?": `Missing Authentication Token`, `The security token included in the request is invalid.`,
 * the signature mismatch, `User: <arn> is not authorized to perform: execute-api:Invoke on resource: <arn>`).
 */
export function iamAuthorizerRefusal(message: string): APIGatewayProxyStructuredResultV2 {
  const errorType =
    message === 'Missing Authentication Token'
      ? 'MissingAuthenticationTokenException'
      : message.startsWith('The request signature') || message.startsWith('Signature expired')
        ? 'InvalidSignatureException'
        : message.startsWith('Authorization header requires')
          ? 'IncompleteSignatureException'
          : 'AccessDeniedException';
  return {
    statusCode: 403,
    headers: { 'content-type': 'application/json', 'x-amzn-errortype': errorType },
    body: JSON.stringify({ message }),
  };
}

function refusal(
  status: number,
  slug: string,
  title: string,
  detail: string,
  headers: Record<string, string> = {},
): APIGatewayProxyStructuredResultV2 {
  return problemResponse({ type: `${PROBLEM_TYPE_BASE}${slug}`, title, status, detail }, headers);
}

/**
 * The request line (`method SP request-target SP HTTP-version`, RFC 9112 §3) and every header value, in
 * bytes, as the HTTP API quota counts them; Node decodes both as latin1, one character per byte.
 */
function requestLineAndHeaderValuesBytes(req: IncomingMessage): number {
  let size = Buffer.byteLength(`${req.method} ${req.url} HTTP/${req.httpVersion}`, 'latin1');
  for (let i = 1; i < req.rawHeaders.length; i += 2) size += Buffer.byteLength(req.rawHeaders[i]!, 'latin1');
  return size;
}

/**
 * The request target as a URL. An origin-form target is read as a path even when it starts with `//`
 * (against a base, `//host/x` would name another host), so a target such as `//[` cannot throw.
 */
function requestUrl(target: string): URL | undefined {
  try {
    return new URL(target.startsWith('/') ? `http://localhost${target}` : target);
  } catch {
    return undefined;
  }
}

function isPercentEncodedUtf8(path: string): boolean {
  try {
    decodeURIComponent(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * The token in an Authorization header, read as API Gateway's JWT authorizer reads its identity source:
 * the token alone or prefixed with the Bearer scheme, whose name is case-insensitive and followed by one or
 * more spaces (RFC 9110 §11.1 and §11.4: `credentials = auth-scheme [ 1*SP ( token68 / … ) ]`).
 */
export function bearerToken(authorization: string | undefined): string | undefined {
  return /^(?:bearer +)?([A-Za-z0-9._~+/-]+=*)$/i.exec(authorization ?? '')?.[1];
}

/** Header name/value pairs from Node's raw list, names in lower case as payload format 2.0 has them. */
function headerPairs(raw: readonly string[]): [string, string][] {
  const pairs: [string, string][] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) pairs.push([raw[i]!.toLowerCase(), raw[i + 1]!]);
  return pairs;
}

/**
 * A string map as the JSON event delivers it: every key an own property (`__proto__`, `constructor` and
 * `toString` included, so a strict schema sees them and refuses them as unknown keys), a repeated key's
 * values joined with commas as payload format 2.0 joins duplicate headers and query parameters. Plain
 * assignment would not do: `record.__proto__ = v` sets the prototype (or does nothing), and `k in record`
 * finds what Object.prototype has.
 */
export function eventRecord(pairs: Iterable<readonly [string, string]>): Record<string, string> {
  const record: Record<string, string> = {};
  for (const [key, value] of pairs) {
    const previous = Object.hasOwn(record, key) ? record[key] : undefined;
    Object.defineProperty(record, key, {
      value: previous === undefined ? value : `${previous},${value}`,
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return record;
}

/**
 * Logs an unexpected failure of the gateway itself for the operator: the method, the path without its query
 * and the error; never the headers (Authorization, cookies), the query or the body.
 */
function logGatewayFailure(req: IncomingMessage, requestId: string, error: unknown): void {
  gatewayLog.error('The local gateway failed', {
    requestId,
    method: req.method,
    path: (req.url ?? '').split('?')[0]!.slice(0, 512),
    error: error instanceof Error ? error : { message: String(error) },
  });
}

/**
 * The request's line in the log, once its response is done (or the connection closed under it): what a
 * person needs to follow the traffic and to see why a call was refused, and nothing a caller sent that
 * could be a secret (no token, header value, query or body; the route is the template, not the path).
 */
function logRequest(req: IncomingMessage, res: ServerResponse, exchange: Exchange): void {
  gatewayLog.info('request', {
    requestId: exchange.requestId,
    method: req.method,
    route: exchange.route ?? null,
    status: res.statusCode,
    durationMs: Math.round((performance.now() - exchange.started) * 10) / 10,
    ...(exchange.callerId !== undefined ? { callerId: exchange.callerId } : {}),
    ...(exchange.refusal !== undefined ? { reason: exchange.refusal } : {}),
    ...(res.writableFinished ? {} : { aborted: true }),
  });
}

/** Connections already answered after a parse error: the parser's later errors on them are ignored. */
const answered = new WeakSet<Duplex>();

/** What Node's HTTP parser refused, as the status its default handler would answer with. */
function clientErrorRefusal(code: string | undefined): APIGatewayProxyStructuredResultV2 {
  switch (code) {
    case 'HPE_HEADER_OVERFLOW':
      return refusal(
        431,
        'request-header-fields-too-large',
        'Request header fields too large',
        'The request headers exceed the size the server parses.',
      );
    case 'HPE_CHUNK_EXTENSIONS_OVERFLOW':
      return refusal(413, 'payload-too-large', 'Payload too large', 'The chunk extensions are too large.');
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return refusal(408, 'request-timeout', 'Request timeout', 'The request was not received in time.');
    default:
      return refusal(400, 'bad-request', 'Bad request', 'The request is not valid HTTP/1.1.');
  }
}

/**
 * Replaces Node's default 'clientError' handling (a bare status line) with a problem+json answer, then
 * closes the connection. As Node's default does, it writes nothing when the peer reset the connection, when
 * the socket can no longer be written to, or when a response on it has already begun (a pipelined request
 * failed to parse): any bytes would corrupt what the client reads. The socket stays open for the client to
 * read the answer (the parser may report the rest of the request as more errors, which are then ignored),
 * and is destroyed once it has closed its side or after a short linger. Returns the status it answered with,
 * or undefined when it wrote nothing.
 */
function answerClientError(error: Error & { code?: string }, socket: Duplex): number | undefined {
  if (answered.has(socket)) return undefined;
  const inFlight = (socket as Duplex & { _httpMessage?: ServerResponse | null })._httpMessage;
  if (error.code === 'ECONNRESET' || !socket.writable || inFlight?.headersSent) {
    socket.destroy();
    return undefined;
  }
  answered.add(socket);
  const result = clientErrorRefusal(error.code);
  const status = result.statusCode ?? 400;
  const body = result.body ?? '';
  const headers = {
    ...result.headers,
    'content-length': String(Buffer.byteLength(body)),
    connection: 'close',
  };
  const head = Object.entries(headers)
    .map(([name, value]) => `${name}: ${value}\r\n`)
    .join('');
  socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\n${head}\r\n${body}`);
  setTimeout(() => socket.destroy(), CLIENT_ERROR_LINGER_MS).unref();
  return status;
}

/** The client went away (or its body failed to parse) before the request was read: nothing failed here. */
class ClientAbortedError extends Error {
  override readonly name = 'ClientAbortedError';
}

function readBody(req: IncomingMessage): Promise<Buffer | null> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > GATEWAY_MAX_BODY) tooLarge = true;
      else chunks.push(chunk);
    });
    req.on('end', () => resolve(tooLarge ? null : chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)));
    req.on('error', (error) => reject(new ClientAbortedError('The request was aborted.', { cause: error })));
  });
}

const TEXT_TYPES = /^(text\/|application\/([a-z0-9.+-]*\+)?(json|xml|x-www-form-urlencoded|javascript))/i;

function toEvent(
  req: IncomingMessage,
  url: URL,
  headers: Record<string, string>,
  match: CompiledRoute,
  values: string[],
  body: Buffer,
  claims: Record<string, unknown> | undefined,
  instanceArn: string | undefined,
  requestId: string,
): APIGatewayProxyEventV2 {
  const query = eventRecord(url.searchParams);
  const pathParameters = eventRecord(match.names.map((n, i) => [n, decodeURIComponent(values[i]!)] as const));
  // Bytes that are not UTF-8 travel base64-encoded (as binary does), so the function sees them as sent
  // rather than with U+FFFD in place of what could not be decoded.
  const isText = body.length === 0 || (TEXT_TYPES.test(headers['content-type'] ?? '') && isUtf8(body));
  const now = new Date();
  const routeKey = `${match.route.method} ${match.route.path}`;
  return {
    version: '2.0',
    routeKey,
    rawPath: url.pathname,
    rawQueryString: url.search.slice(1),
    headers,
    ...(Object.keys(query).length ? { queryStringParameters: query } : {}),
    ...(match.names.length ? { pathParameters } : {}),
    ...(body.length ? { body: isText ? body.toString('utf8') : body.toString('base64') } : {}),
    isBase64Encoded: !isText,
    requestContext: {
      accountId: '000000000000',
      apiId: 'local',
      domainName: headers.host ?? '127.0.0.1',
      domainPrefix: 'local',
      http: {
        method: match.route.method,
        path: url.pathname,
        protocol: `HTTP/${req.httpVersion}`,
        sourceIp: req.socket.remoteAddress ?? '127.0.0.1',
        userAgent: headers['user-agent'] ?? '',
      },
      requestId,
      routeKey,
      stage: '$default',
      time: now.toUTCString(),
      timeEpoch: now.getTime(),
      // Where API Gateway's JWT authorizer puts the verified claims (values flattened to strings).
      ...(claims
        ? {
            authorizer: {
              jwt: {
                claims: Object.fromEntries(
                  Object.entries(claims).map(([k, v]) => [k, typeof v === 'string' ? v : JSON.stringify(v)]),
                ),
                scopes: [],
              },
            },
          }
        : {}),
      // Where API Gateway's IAM authorizer puts the verified SigV4 caller.
      ...(instanceArn
        ? {
            authorizer: {
              iam: {
                accessKey: 'ASIALOCAL',
                accountId: '000000000000',
                callerId: `AROALOCAL:${instanceArn.split('/').pop()}`,
                cognitoIdentity: null,
                principalOrgId: null,
                userArn: instanceArn,
                userId: `AROALOCAL:${instanceArn.split('/').pop()}`,
              },
            },
          }
        : {}),
    },
  } as APIGatewayProxyEventV2;
}

function lambdaContext(route: RouteDefinition, requestId: string): Context {
  return {
    awsRequestId: requestId,
    functionName: `local-${route.id}`,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:local:000000000000:function:${route.id}`,
    memoryLimitInMB: '512',
    logGroupName: `/aws/lambda/${route.id}`,
    logStreamName: 'local',
    callbackWaitsForEmptyEventLoop: false,
    getRemainingTimeInMillis: () => 29_000,
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
}

function send(res: ServerResponse, result: APIGatewayProxyStructuredResultV2): void {
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(result.headers ?? {})) headers[k] = String(v);
  res.writeHead(result.statusCode ?? 200, headers);
  res.end(
    result.body === undefined
      ? undefined
      : result.isBase64Encoded
        ? Buffer.from(result.body, 'base64')
        : result.body,
  );
}
