import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';
import { PROBLEM_TYPE_BASE } from '../../shared/http/api-handler.ts';
import { problemResponse } from '../../shared/http/problem.ts';
import { ROUTES, type RouteDefinition } from '../../shared/http/routes.ts';
import type { LocalIssuer } from './local-auth.ts';

/**
 * The local stand-in for API Gateway (HTTP API, payload format 2.0): matches the route table, checks the
 * bearer token as the JWT authorizer does, builds the same event Lambda would receive, runs the route's
 * own handler module in-process and writes back its structured result.
 */
const REPO_ROOT = join(import.meta.dirname, '..', '..');
/** API Gateway HTTP APIs refuse payloads over 10 MB before any function runs. */
const GATEWAY_MAX_BODY = 10 * 1024 * 1024;

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
}): Promise<DevServer> {
  const routes = (ROUTES as readonly RouteDefinition[]).map(compile);
  const handlers = new Map<string, Promise<Handler>>();
  // Each server gets its own instances of the handler modules (as each Lambda container would), so a
  // second local stack in the same process composes its handlers with its own dependencies.
  const instance = ++serverCount;
  const load = (route: RouteDefinition) => {
    let h = handlers.get(route.id);
    if (!h) {
      const url = `${pathToFileURL(join(REPO_ROOT, route.handler)).href}${instance > 1 ? `?instance=${instance}` : ''}`;
      h = import(url).then((m: { handler: Handler }) => m.handler);
      handlers.set(route.id, h);
    }
    return h;
  };

  const server = createServer((req, res) => {
    serve(req, res).catch((error: unknown) => {
      if (!res.headersSent) {
        send(
          res,
          problemResponse({
            type: `${PROBLEM_TYPE_BASE}internal-error`,
            title: 'Internal error',
            status: 500,
            detail: 'The local gateway failed.',
          }),
        );
      } else res.destroy(error as Error);
    });
  });

  async function serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const method = (req.method ?? 'GET').toUpperCase();
    if (url.pathname === '/.well-known/jwks.json' && method === 'GET') {
      return send(res, {
        statusCode: 200,
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(await options.issuer.jwks()),
      });
    }
    const candidates = routes.filter((r) => r.pattern.test(url.pathname));
    const match = candidates.find((r) => r.route.method === method);
    if (!match) {
      const status = candidates.length ? 405 : 404;
      return send(
        res,
        problemResponse(
          {
            type: `${PROBLEM_TYPE_BASE}${status === 404 ? 'not-found' : 'method-not-allowed'}`,
            title: status === 404 ? 'Not found' : 'Method not allowed',
            status,
            detail:
              status === 404
                ? `No route for ${url.pathname}.`
                : `${method} is not allowed here; use ${candidates.map((c) => c.route.method).join(', ')}.`,
          },
          status === 405 ? { allow: candidates.map((c) => c.route.method).join(', ') } : {},
        ),
      );
    }
    const body = await readBody(req);
    if (body === null) {
      return send(
        res,
        problemResponse({
          type: `${PROBLEM_TYPE_BASE}payload-too-large`,
          title: 'Payload too large',
          status: 413,
          detail: 'The request body exceeds the gateway limit.',
        }),
      );
    }
    let claims: Record<string, unknown> | undefined;
    let instanceArn: string | undefined;
    if (match.route.auth !== 'none') {
      const token = /^Bearer ([A-Za-z0-9._~+/-]+=*)$/.exec(req.headers.authorization ?? '')?.[1];
      try {
        if (!token) throw new Error('missing');
        const verified = await options.issuer.verify(token);
        // The stand-in for SigV4 with instance-profile credentials: a local token for an instance session
        // (`npm run token` never mints one) is accepted on `iam` routes only, a user's token on `jwt` only.
        const tokenUse = match.route.auth === 'iam' ? 'instance' : 'access';
        if (verified.token_use !== tokenUse) throw new Error('wrong token use');
        if (match.route.auth === 'iam') instanceArn = verified.sub;
        else claims = verified;
      } catch {
        return send(
          res,
          problemResponse(
            {
              type: `${PROBLEM_TYPE_BASE}unauthorized`,
              title: 'Unauthorized',
              status: 401,
              detail: 'A valid bearer token is required.',
            },
            { 'www-authenticate': 'Bearer' },
          ),
        );
      }
    }
    const values = match.pattern.exec(url.pathname)!.slice(1);
    const event = toEvent(req, url, match, values, body, claims, instanceArn);
    const handler = await load(match.route);
    const result = await handler(event, lambdaContext(match.route, event.requestContext.requestId));
    send(res, result);
  }

  await new Promise<void>((resolve) =>
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', resolve),
  );
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
    req.on('error', reject);
  });
}

const TEXT_TYPES = /^(text\/|application\/([a-z0-9.+-]*\+)?(json|xml|x-www-form-urlencoded|javascript))/i;

function toEvent(
  req: IncomingMessage,
  url: URL,
  match: CompiledRoute,
  values: string[],
  body: Buffer,
  claims: Record<string, unknown> | undefined,
  instanceArn: string | undefined,
): APIGatewayProxyEventV2 {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (value !== undefined) headers[name.toLowerCase()] = Array.isArray(value) ? value.join(',') : value;
  }
  const query: Record<string, string> = {};
  for (const [k, v] of url.searchParams) query[k] = k in query ? `${query[k]},${v}` : v;
  const pathParameters: Record<string, string> = {};
  match.names.forEach((n, i) => {
    pathParameters[n] = decodeURIComponent(values[i]!);
  });
  const isText = body.length === 0 || TEXT_TYPES.test(headers['content-type'] ?? '');
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
      requestId: randomUUID(),
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
