/**
 * A local stand-in for one instance's metadata service, IMDSv2 as the parents' launch template configures it
 * (`HttpTokens: required`, instance tags readable). What it enforces, as EC2's documentation states it
 * (Instance metadata service version 2; "Work with instance tags in instance metadata"):
 * - `PUT /latest/api/token` with `X-aws-ec2-metadata-token-ttl-seconds` of 1..21600 answers a session token;
 *   without it, or out of range, 400; a request carrying `X-Forwarded-For` is refused (403), so a proxy cannot
 *   fetch a token on someone's behalf;
 * - every `GET` must carry a token that is current (`X-aws-ec2-metadata-token`), else 401;
 * - `meta-data/tags/instance/<key>` answers a tag's value (404 for a tag the instance lacks), and
 *   `meta-data/tags/instance` the keys, one per line;
 * - `meta-data/iam/security-credentials/` names the instance profile's role and `.../<role>` answers its
 *   credentials as JSON (`Code`, `AccessKeyId`, `SecretAccessKey`, `Token`, `Expiration`).
 * Tags are read at each request, so a tag the workflow changes (a new nonce) is seen at once.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface SimulatedInstanceMetadata {
  readonly instanceId: string;
  readonly region: string;
  readonly tags: () => Readonly<Record<string, string>>;
  readonly role?: {
    readonly name: string;
    readonly credentials: () => {
      accessKeyId: string;
      secretAccessKey: string;
      sessionToken: string;
      expiration: Date;
    };
  };
}

export interface ImdsSimulator {
  /** The base URL to use in place of http://169.254.169.254. */
  readonly url: string;
  /** Every request as it arrived (method, path, status), for tests. */
  readonly requests: { method: string; path: string; status: number }[];
  /** Makes the next `count` requests fail with `status` (an IMDS outage or throttling). */
  fail(status: number, count: number): void;
  close(): Promise<void>;
}

export async function startImdsSimulator(
  instance: SimulatedInstanceMetadata,
  options: { now?: () => number } = {},
): Promise<ImdsSimulator> {
  const now = options.now ?? Date.now;
  const tokens = new Map<string, number>();
  const requests: ImdsSimulator['requests'] = [];
  let failures: { status: number; count: number } = { status: 0, count: 0 };

  const server: Server = createServer((request, response) => {
    const path = (request.url ?? '').split('?')[0] ?? '';
    const answer = (status: number, body = '', type = 'text/plain') => {
      requests.push({ method: request.method ?? '', path, status });
      response.writeHead(status, { 'content-type': type });
      response.end(body);
    };
    if (failures.count > 0) {
      failures.count--;
      return answer(failures.status);
    }
    if (request.method === 'PUT' && path === '/latest/api/token') {
      if (request.headers['x-forwarded-for'] !== undefined) return answer(403);
      const ttl = Number(request.headers['x-aws-ec2-metadata-token-ttl-seconds']);
      if (!Number.isInteger(ttl) || ttl < 1 || ttl > 21_600) return answer(400);
      const token = randomBytes(32).toString('base64url');
      tokens.set(token, now() + ttl * 1000);
      return answer(200, token);
    }
    if (request.method !== 'GET') return answer(405);
    const token = request.headers['x-aws-ec2-metadata-token'];
    const expires = typeof token === 'string' ? tokens.get(token) : undefined;
    if (expires === undefined || now() >= expires) return answer(401);
    const value = metadata(instance, path.replace(/^\/latest\//, ''));
    if (value === undefined) return answer(404);
    return answer(200, value.body, value.type);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    fail: (status, count) => {
      failures = { status, count };
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function metadata(
  instance: SimulatedInstanceMetadata,
  path: string,
): { body: string; type: string } | undefined {
  const text = (body: string) => ({ body, type: 'text/plain' });
  if (path === 'meta-data/instance-id') return text(instance.instanceId);
  if (path === 'meta-data/placement/region') return text(instance.region);
  if (path === 'meta-data/tags/instance' || path === 'meta-data/tags/instance/') {
    return text(Object.keys(instance.tags()).join('\n'));
  }
  if (path.startsWith('meta-data/tags/instance/')) {
    const key = decodeURIComponent(path.slice('meta-data/tags/instance/'.length));
    const value = instance.tags()[key];
    return value === undefined ? undefined : text(value);
  }
  if (path === 'meta-data/iam/security-credentials/' && instance.role) return text(instance.role.name);
  if (instance.role && path === `meta-data/iam/security-credentials/${instance.role.name}`) {
    const credentials = instance.role.credentials();
    return {
      type: 'text/plain',
      body: JSON.stringify({
        Code: 'Success',
        LastUpdated: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
        Type: 'AWS-HMAC',
        AccessKeyId: credentials.accessKeyId,
        SecretAccessKey: credentials.secretAccessKey,
        Token: credentials.sessionToken,
        Expiration: credentials.expiration.toISOString().replace(/\.\d+Z$/, 'Z'),
      }),
    };
  }
  return undefined;
}
