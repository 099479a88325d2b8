import middy from '@middy/core';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';
import type { Identity } from '../domain/identity.ts';
import * as z from '../domain/zod.ts';
import { findReplay, type IdempotentRequest } from '../idempotency/idempotency-store.ts';
import { resolveCaller } from '../identities/identity-service.ts';
import { adaptersOf, restrictTo } from '../runtime/adapters.ts';
import type { Dependencies } from '../runtime/dependencies.ts';
import { type InstanceCaller, instanceCaller } from './instance-caller.ts';
import { problemDetails } from './middleware/problem-details.ts';
import { parseRequest } from './parse-request.ts';
import { etagOf } from './preconditions.ts';
import type { RouteDefinition } from './routes.ts';

type Part<R, K extends string> = R extends { request: infer Q }
  ? Q extends { [P in K]: infer S extends z.ZodMiniType }
    ? z.output<S>
    : undefined
  : undefined;

/** What a route's implementation receives: validated input and the resolved caller. */
export interface ApiRequest<R extends RouteDefinition> {
  readonly params: Part<R, 'params'>;
  readonly query: Part<R, 'query'>;
  readonly body: Part<R, 'body'>;
  readonly ifMatch: string | undefined;
  /**
   * The Idempotency-Key and the request's fingerprint, on routes that take the header. A key used before
   * never reaches the implementation: its stored response is replayed first (see `defineRoute`).
   */
  readonly idempotency: IdempotentRequest | undefined;
  readonly caller: R['auth'] extends 'jwt' ? Identity : R['auth'] extends 'iam' ? InstanceCaller : undefined;
}

export interface ApiReply {
  readonly status: number;
  readonly body: unknown;
  readonly etag?: string | undefined;
  readonly replayed?: boolean | undefined;
  readonly headers?: Record<string, string>;
}

export const PROBLEM_TYPE_BASE = 'https://problems.enclave-contracts.dev/';

export type ApiHandler = (
  event: APIGatewayProxyEventV2,
  context: Context,
) => Promise<APIGatewayProxyStructuredResultV2>;

/**
 * Builds a route's Lambda handler: the middy chain parses and validates the request, resolves the caller,
 * runs `impl`, and renders errors as problem+json. Handlers stay one line of wiring. The route sees only
 * the adapters its grants allow (`restrictTo`): in AWS the others are not in its bundle, and the local
 * stack, which installs every adapter, refuses them the same way.
 */
export function defineRoute<R extends RouteDefinition>(
  route: R,
  allDeps: Dependencies,
  impl: (request: ApiRequest<R>, deps: Dependencies) => Promise<ApiReply>,
): ApiHandler {
  const adapters = adaptersOf(route.grants);
  // This route's schemas now, at init; the other routes' are never built here (see shared/domain/zod.ts).
  for (const schema of [route.request?.params, route.request?.query, route.request?.body]) {
    if (schema) z.buildNow(schema);
  }
  const base = async (event: APIGatewayProxyEventV2): Promise<APIGatewayProxyStructuredResultV2> => {
    // Per request: the view reads the dependencies as they are now (the local stack and tests change them).
    // Locally, the stand-ins serve this route's AWS calls as its function's role (never set in AWS).
    const deps = restrictTo(allDeps.local?.asFunction?.({ route: route.id }, allDeps) ?? allDeps, adapters);
    // The caller first: an unauthenticated request learns nothing about its input's validity.
    const instance = route.auth === 'iam' ? instanceCaller(event, deps.workflow?.parentRoleName) : undefined;
    const parsed = parseRequest(route, event);
    const caller = route.auth === 'jwt' ? await resolveCaller(deps, parsed.subject!) : instance;
    // A retry of a request that succeeded replays it before any business rule runs: whatever changed
    // since (a suspended contract, an ended validity window), the client learns what its request did.
    if (parsed.idempotency !== undefined && caller !== undefined && 'id' in caller) {
      const replay = await findReplay<unknown>(deps.db, caller.id, route.id, parsed.idempotency);
      if (replay) return toResponse(route, replay);
    }
    const reply = await impl({ ...parsed, caller } as unknown as ApiRequest<R>, deps);
    return toResponse(route, reply);
  };
  return middy<APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Error, Context>(base).use(
    problemDetails({ typeBase: PROBLEM_TYPE_BASE }),
  ) as unknown as ApiHandler;
}

/** The ETag of a versioned resource: every body that carries its `version` (replays included). */
function etagOfBody(body: unknown): string | undefined {
  const version = (body as { version?: unknown } | null)?.version;
  return typeof version === 'number' ? etagOf(version) : undefined;
}

/** The route's `location` with each `{name}` read from the created resource. */
function locationOf(template: string, body: unknown): string {
  return template.replace(/\{(\w+)\}/g, (_, name: string) =>
    encodeURIComponent(String((body as Record<string, unknown>)[name])),
  );
}

function toResponse(route: RouteDefinition, reply: ApiReply): APIGatewayProxyStructuredResultV2 {
  const headers: Record<string, string> = { 'cache-control': 'no-store', ...reply.headers };
  const etag = reply.etag ?? etagOfBody(reply.body);
  if (etag) headers.etag = etag;
  if (reply.status === 201 && route.location) headers.location = locationOf(route.location, reply.body);
  if (reply.replayed) headers['idempotent-replayed'] = 'true';
  if (reply.status === 204 || reply.body === null) return { statusCode: reply.status, headers };
  headers['content-type'] ??= 'application/json';
  return { statusCode: reply.status, headers, body: JSON.stringify(reply.body) };
}
