import type { MiddlewareObj } from '@middy/core';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';
import { DomainError } from '../../domain/errors.ts';
import { logger } from '../../runtime/logger.ts';
import { problemOf, problemResponse } from '../problem.ts';

export interface ProblemDetailsOptions {
  /** Base URI of problem types. */
  readonly typeBase: string;
}

/**
 * Turns any error into RFC 9457 problem+json. Client errors carry their message; server errors are logged
 * with the request id (message, name and stack only: no request body, no personal data) and answered generically.
 */
export function problemDetails(
  options: ProblemDetailsOptions,
): MiddlewareObj<APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Error, Context> {
  return {
    onError: async (request) => {
      const requestId = request.context?.awsRequestId ?? request.event?.requestContext?.requestId;
      const error = request.error;
      if (!(error instanceof DomainError) || !error.expose) {
        logger.error('request failed', {
          requestId,
          route: request.event?.routeKey,
          errorName: error?.name,
          errorMessage: error?.message,
          cause: (error?.cause as Error | undefined)?.name,
          // Where it failed, in the TypeScript sources (see shared/runtime/source-mapped-stacks.ts).
          stack: error?.stack,
        });
      }
      const problem = problemOf(error, options.typeBase, requestId);
      request.response = problemResponse(
        problem,
        error instanceof DomainError && error.expose ? error.headers : {},
      );
    },
  };
}
