/**
 * A local stand-in for the S3 objects the parents read with their role: `GetObject` (and `HeadObject`),
 * path-style (`/<bucket>/<key>`), each request's SigV4 signature verified for `s3` (the path signed as it is,
 * not escaped again) with the local STS stand-in's credentials, then the signer authorised for
 * `s3:GetObject` on `arn:aws:s3:::<bucket>/<key>` by the synthesized stack's policies.
 *
 * What S3 answers, as its documentation and error reference state it:
 * - a request signed with SigV4 must carry `x-amz-content-sha256` (400 `InvalidRequest` without it);
 * - an unknown access key is 403 `InvalidAccessKeyId`, a session token that is not the key's 400
 *   `InvalidToken`, a signature that does not match 403 `SignatureDoesNotMatch`, a request time more than 15
 *   minutes away 403 `RequestTimeTooSkewed`, no signature at all 403 `AccessDenied`;
 * - a denied `s3:GetObject` is 403 `AccessDenied`; a key that does not exist is 404 `NoSuchKey` only for a
 *   caller that may `s3:ListBucket` the bucket, else 403 `AccessDenied` (S3 does not tell a caller who cannot
 *   list the bucket whether a key exists);
 * - errors are XML `<Error><Code>…</Code><Message>…</Message></Error>`.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type SigV4Principal, verifySigV4 } from '../apigateway/sigv4-verifier.ts';

/** Decides an S3 action for a verified caller: undefined when allowed, else why not (for the log). */
export type S3Authorizer = (
  callerArn: string,
  action: string,
  resourceArn: string,
) => Promise<string | undefined>;

export interface S3SimulatorOptions {
  readonly region: string;
  readonly lookup: (accessKeyId: string) => SigV4Principal | undefined;
  /** IAM: whether the caller may do the action. @default every verified caller may */
  readonly authorize?: S3Authorizer;
  readonly now?: () => Date;
}

export interface S3Simulator {
  /** The endpoint to read from, in place of `https://s3.<region>.amazonaws.com`. */
  readonly url: string;
  /** Stores an object. */
  put(bucket: string, key: string, body: Uint8Array): void;
  /** Each request: method, path, status and S3's error code when refused. */
  readonly requests: { method: string; path: string; status: number; code?: string }[];
  close(): Promise<void>;
}

/** S3 refuses a signed request whose time is more than 15 minutes from its own. */
const S3_MAX_SKEW_MS = 15 * 60_000;

export async function startS3Simulator(options: S3SimulatorOptions): Promise<S3Simulator> {
  const objects = new Map<string, Uint8Array>();
  const requests: S3Simulator['requests'] = [];
  const server: Server = createServer((request, response) => {
    serve(request)
      .then(({ status, code, message, body }) => {
        requests.push({
          method: request.method ?? '',
          path: request.url ?? '',
          status,
          ...(code ? { code } : {}),
        });
        if (code) {
          response.writeHead(status, { 'content-type': 'application/xml' });
          response.end(
            request.method === 'HEAD'
              ? undefined
              : `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message></Error>`,
          );
          return;
        }
        response.writeHead(status, {
          'content-type': 'application/octet-stream',
          'content-length': String(body!.length),
        });
        response.end(request.method === 'HEAD' ? undefined : body);
      })
      .catch(() => {
        response.writeHead(500);
        response.end();
      });
  });
  // Idle connections stay open longer than a client keeps them pooled (undici: 4 s). With Node's default of
  // 5 s, a client on a loaded machine could reuse a connection just as the server closed it (ECONNRESET on
  // a GET, seen once in CI); S3 itself keeps idle connections for tens of seconds.
  server.keepAliveTimeout = 65_000;

  async function serve(
    request: IncomingMessage,
  ): Promise<{ status: number; code?: string; message?: string; body?: Uint8Array }> {
    const refuse = (status: number, code: string, message: string) => ({ status, code, message });
    for await (const _ of request) {
      // GetObject takes no body; drain whatever came
    }
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      return refuse(405, 'MethodNotAllowed', 'The specified method is not allowed against this resource.');
    }
    if (request.headers.authorization === undefined) return refuse(403, 'AccessDenied', 'Access Denied');
    if (request.headers['x-amz-content-sha256'] === undefined) {
      return refuse(400, 'InvalidRequest', 'Missing required header for this request: x-amz-content-sha256');
    }
    const verdict = await verifySigV4(
      { method: request.method, url: request.url ?? '/', headers: request.headers, body: '' },
      {
        service: 's3',
        region: options.region,
        lookup: options.lookup,
        uriEscapePath: false,
        maxSkewMs: S3_MAX_SKEW_MS,
        ...(options.now ? { now: options.now } : {}),
      },
    );
    if (!verdict.ok) {
      if (verdict.message.startsWith('Signature expired')) {
        return refuse(
          403,
          'RequestTimeTooSkewed',
          "The difference between the request time and the server's time is too large.",
        );
      }
      if (verdict.message.startsWith('The security token')) {
        const known = options.lookup(accessKeyOf(request.headers.authorization) ?? '') !== undefined;
        return known
          ? refuse(400, 'InvalidToken', 'The provided token is malformed or otherwise invalid.')
          : refuse(
              403,
              'InvalidAccessKeyId',
              'The AWS Access Key Id you provided does not exist in our records.',
            );
      }
      return refuse(
        403,
        'SignatureDoesNotMatch',
        'The request signature we calculated does not match the signature you provided. Check your key and signing method.',
      );
    }
    const path = (request.url ?? '/').split('?')[0]!;
    const slash = path.indexOf('/', 1);
    const bucket = slash > 0 ? path.slice(1, slash) : '';
    const key = slash > 0 ? decodeURIComponent(path.slice(slash + 1)) : '';
    if (!bucket || !key)
      return refuse(400, 'InvalidRequest', 'This stand-in serves objects only: /<bucket>/<key>.');
    const authorize = options.authorize ?? (async () => undefined);
    if ((await authorize(verdict.callerArn, 's3:GetObject', `arn:aws:s3:::${bucket}/${key}`)) !== undefined) {
      return refuse(403, 'AccessDenied', 'Access Denied');
    }
    const body = objects.get(`${bucket}/${key}`);
    if (body === undefined) {
      const mayList =
        (await authorize(verdict.callerArn, 's3:ListBucket', `arn:aws:s3:::${bucket}`)) === undefined;
      return mayList
        ? refuse(404, 'NoSuchKey', 'The specified key does not exist.')
        : refuse(403, 'AccessDenied', 'Access Denied');
    }
    return { status: 200, body };
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    put: (bucket, key, body) => objects.set(`${bucket}/${key}`, body),
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function accessKeyOf(authorization: string | string[] | undefined): string | undefined {
  return /Credential=([^/,\s]+)\//.exec(String(authorization ?? ''))?.[1];
}
