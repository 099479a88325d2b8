import type { APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { DomainError } from '../domain/errors.ts';

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

export interface Problem {
  readonly type: string;
  readonly title: string;
  readonly status: number;
  readonly detail: string;
  readonly instance?: string;
  readonly errors?: readonly { field: string; message: string; requirement?: string }[];
}

/**
 * RFC 9457 problem details for any error. Domain errors below 500 show their message; anything else
 * becomes a generic 500 that reveals nothing about the internals (the request id lets operators find it).
 */
export function problemOf(error: unknown, typeBase: string, requestId?: string): Problem {
  if (error instanceof DomainError && error.expose) {
    return {
      type: new URL(error.type, typeBase).href,
      title: error.title,
      status: error.status,
      detail: error.message,
      ...(requestId ? { instance: `urn:request:${requestId}` } : {}),
      ...(error.errors?.length ? { errors: error.errors } : {}),
    };
  }
  const status = error instanceof DomainError ? error.status : isTransient(error) ? 503 : 500;
  return {
    type: new URL(status === 503 ? 'service-unavailable' : 'internal-error', typeBase).href,
    title: status === 503 ? 'Service unavailable' : 'Internal error',
    status,
    detail:
      'The request could not be completed. It has been logged; retry later or quote the instance to support.',
    ...(requestId ? { instance: `urn:request:${requestId}` } : {}),
  };
}

/** Extra headers a problem carries: when to retry a 503. */
export function problemHeaders(problem: Problem): Record<string, string> {
  return problem.status === 503 ? { 'retry-after': '5' } : {};
}

export function problemResponse(
  problem: Problem,
  headers: Readonly<Record<string, string>> = {},
): APIGatewayProxyStructuredResultV2 {
  return {
    statusCode: problem.status,
    headers: {
      'content-type': PROBLEM_CONTENT_TYPE,
      'cache-control': 'no-store',
      ...problemHeaders(problem),
      ...headers,
    },
    body: JSON.stringify(problem),
  };
}

/**
 * A dependency said the failure may pass (the database resuming, DynamoDB, Step Functions or EC2
 * throttling or unavailable): every port's error carries `transient` (DatabaseError, NonceStoreError,
 * TaskTokenStoreError, TaskCallbackError, InstanceControlError).
 */
function isTransient(error: unknown): boolean {
  return error instanceof Error && (error as { transient?: unknown }).transient === true;
}
