/** What a use case answers: the status and body of the HTTP reply, and its ETag when it has one. */
export interface Reply<T> {
  readonly status: number;
  readonly body: T;
  readonly etag?: string;
  readonly replayed?: boolean;
}
