/**
 * Domain errors carry what the HTTP layer needs (status, a stable problem `type` slug, whether the message
 * may be shown), so one middleware renders every failure as RFC 9457 problem+json without inspecting names.
 */
export interface FieldIssue {
  /** JSON pointer-ish path of the offending field, e.g. `terms.validity.end`. */
  readonly field: string;
  readonly message: string;
}

export class DomainError extends Error {
  readonly status: number;
  /** Stable slug appended to the problem type base URI, e.g. `validation-failed`. */
  readonly type: string;
  readonly title: string;
  readonly errors: readonly FieldIssue[] | undefined;
  /** Response headers the refusal carries (the challenge of a 401). */
  readonly headers: Readonly<Record<string, string>> | undefined;
  /** Messages of errors below 500 describe the caller's mistake and may be shown; others never are. */
  get expose(): boolean {
    return this.status < 500;
  }

  constructor(
    status: number,
    type: string,
    title: string,
    detail: string,
    options: { errors?: readonly FieldIssue[]; cause?: unknown; headers?: Record<string, string> } = {},
  ) {
    super(detail, { cause: options.cause });
    this.status = status;
    this.type = type;
    this.title = title;
    this.errors = options.errors;
    this.headers = options.headers;
  }
}

export class ValidationError extends DomainError {
  override readonly name = 'ValidationError';
  constructor(detail: string, errors: readonly FieldIssue[] = []) {
    super(400, 'validation-failed', 'Request validation failed', detail, { errors });
  }
}

/**
 * 401, with the challenge RFC 9110 §15.5.2 requires: the scheme the route authenticates with (`Bearer`, or
 * `AWS4-HMAC-SHA256` on the routes enclave parents sign).
 */
export class UnauthorizedError extends DomainError {
  override readonly name = 'UnauthorizedError';
  constructor(detail = 'A valid bearer token is required.', challenge = 'Bearer') {
    super(401, 'unauthorized', 'Unauthorized', detail, { headers: { 'www-authenticate': challenge } });
  }
}

export class ForbiddenError extends DomainError {
  override readonly name = 'ForbiddenError';
  constructor(detail: string) {
    super(403, 'forbidden', 'Forbidden', detail);
  }
}

export class NotFoundError extends DomainError {
  override readonly name = 'NotFoundError';
  constructor(what: string) {
    super(404, 'not-found', 'Not found', `${what} was not found.`);
  }
}

export class ConflictError extends DomainError {
  override readonly name = 'ConflictError';
  constructor(type: string, title: string, detail: string) {
    super(409, type, title, detail);
  }
}

export class IllegalTransitionError extends DomainError {
  override readonly name = 'IllegalTransitionError';
  constructor(detail: string) {
    super(409, 'illegal-transition', 'Transition not allowed', detail);
  }
}

export class PreconditionFailedError extends DomainError {
  override readonly name = 'PreconditionFailedError';
  constructor(detail: string) {
    super(412, 'precondition-failed', 'Precondition failed', detail);
  }
}

export class UnprocessableError extends DomainError {
  override readonly name = 'UnprocessableError';
  constructor(type: string, title: string, detail: string, errors?: readonly FieldIssue[]) {
    super(422, type, title, detail, errors ? { errors } : {});
  }
}

export class PreconditionRequiredError extends DomainError {
  override readonly name = 'PreconditionRequiredError';
  constructor(detail: string) {
    super(428, 'precondition-required', 'Precondition required', detail);
  }
}
