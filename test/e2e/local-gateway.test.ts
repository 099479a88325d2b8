import { connect, type Socket } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { type LocalStack, startLocalStack } from '../../infra/local/local-stack.ts';
import { seededSubject } from '../../infra/local/seed.ts';
import { LOCAL_AUDIENCE, LOCAL_ISSUER } from '../../infra/local/services/cognito/local-auth.ts';
import { ApiClient, type ApiResponse } from '../support/api-client.ts';
import { CREATE_FIXTURE } from '../support/contracts.ts';

/**
 * The local API Gateway and JWT authorizer stand-ins refuse what AWS refuses, each refusal as RFC 9457
 * problem+json (issue 8, section 6): malformed percent-encoding, the HTTP API quota on the request line and
 * header values, the HTTP parser's own refusals, prototype keys in the query, and tokens the JWT authorizer
 * would refuse (no exp, iat or nbf in the future, expired while cached).
 */
let stack: LocalStack;
let provider: ApiClient;
let anonymous: ApiClient;
let token: string;

beforeAll(async () => {
  stack = await startLocalStack({ scheduledJobs: false });
  token = await stack.issuer.mint(seededSubject('provider'));
  provider = new ApiClient(stack.url, token);
  anonymous = ApiClient.anonymous(stack);
});
afterAll(async () => stack?.close());
afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
});

const PROBLEM = 'https://problems.enclave-contracts.dev/';
/** API Gateway HTTP API quota: total combined size of request line and header values. */
const QUOTA = 10_240;

function expectProblem(res: ApiResponse<unknown> | RawResponse, status: number, type?: string): void {
  const contentType =
    res.headers instanceof Headers ? res.headers.get('content-type') : res.headers['content-type'];
  expect(res.status, res.text).toBe(status);
  expect(contentType).toBe('application/problem+json');
  const body = (res.body ?? {}) as Record<string, unknown>;
  expect(body).toMatchObject({ status, title: expect.any(String), detail: expect.any(String) });
  expect(body.type).toMatch(new RegExp(`^${PROBLEM}`));
  if (type) expect(body.type).toBe(`${PROBLEM}${type}`);
}

/**
 * API Gateway's JWT authorizer refusing: its own 401 body, and a challenge that names `invalid_token` (with
 * a description) when a token was sent but not accepted, or the bare scheme when none was sent.
 */
function expectAuthorizerRefusal(res: ApiResponse<unknown> | RawResponse, sent: 'token' | 'nothing'): void {
  const header = (name: string) =>
    res.headers instanceof Headers ? res.headers.get(name) : (res.headers[name] as string | undefined);
  expect(res.status, res.text).toBe(401);
  expect(header('content-type')).toBe('application/json');
  expect(res.body).toEqual({ message: 'Unauthorized' });
  if (sent === 'nothing') expect(header('www-authenticate')).toBe('Bearer');
  else
    expect(header('www-authenticate')).toMatch(
      /^Bearer scope="" error="invalid_token" error_description="[^"]+"$/,
    );
}

interface RawResponse {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly text: string;
  readonly body: unknown;
  /** Every byte the server sent before it closed the connection. */
  readonly raw: string;
}

function port(): number {
  return Number(new URL(stack.url).port);
}

/** Reads everything the server sends on `socket` until it closes the connection. */
function readUntilClosed(socket: Socket): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`the server did not close the connection; got ${Buffer.concat(chunks).toString()}`));
    }, 10_000);
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    // A reset after the response is still a closed connection: the bytes read so far are the answer.
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      const raw = Buffer.concat(chunks).toString('utf8');
      const [head = '', ...rest] = raw.split('\r\n\r\n');
      const [statusLine = '', ...lines] = head.split('\r\n');
      const headers: Record<string, string> = {};
      for (const line of lines) {
        const colon = line.indexOf(':');
        if (colon > 0) headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
      }
      const payload = rest.join('\r\n\r\n');
      const text = headers['transfer-encoding'] === 'chunked' ? dechunk(payload) : payload;
      let body: unknown = text;
      try {
        body = JSON.parse(text);
      } catch {
        // not JSON: keep the text
      }
      resolve({ status: Number(statusLine.split(' ')[1] ?? 0), headers, text, body, raw });
    });
  });
}

/** The body of a chunked response (RFC 9112 §7.1), without extensions or trailers. */
function dechunk(payload: string): string {
  let body = '';
  let rest = payload;
  for (;;) {
    const eol = rest.indexOf('\r\n');
    const size = Number.parseInt(rest.slice(0, eol), 16);
    if (!(size > 0)) return body;
    body += rest.slice(eol + 2, eol + 2 + size);
    rest = rest.slice(eol + 2 + size + 2);
  }
}

/** Sends `bytes` as they are on a new connection and reads the answer until the server closes it. */
function rawRequest(bytes: string | Buffer): Promise<RawResponse> {
  const socket = connect(port(), '127.0.0.1');
  const answer = readUntilClosed(socket);
  socket.on('connect', () => socket.write(bytes));
  return answer;
}

/** A connection from the client's side and the server's side of it (to drive what the parser would do). */
async function connectionPair(): Promise<{ client: Socket; server: Socket }> {
  const accepted = new Promise<Socket>((resolve) => stack.server.server.once('connection', resolve));
  const client = connect(port(), '127.0.0.1');
  await new Promise<void>((resolve) => client.once('connect', () => resolve()));
  return { client, server: await accepted };
}

/**
 * A GET whose request line and header values (host, connection, x-pad) add up to exactly `size` bytes, as
 * API Gateway counts them; `Connection: close` makes the server end the connection after its answer.
 */
function requestOfSize(target: string, size: number): string {
  const requestLine = `GET ${target} HTTP/1.1`;
  const host = `127.0.0.1:${port()}`;
  const pad = size - requestLine.length - host.length - 'close'.length;
  expect(pad).toBeGreaterThanOrEqual(0);
  return `${requestLine}\r\nHost: ${host}\r\nConnection: close\r\nX-Pad: ${'a'.repeat(pad)}\r\n\r\n`;
}

describe('percent-encoding in the path', () => {
  it.each(['/contracts/%E0%A4%A', '/contracts/%', '/contracts/%ZZ', '/contracts/%C3'])(
    '%s is a 400 naming the encoding, not a 500',
    async (path) => {
      const res = await provider.get(path);
      expectProblem(res, 400, 'malformed-path');
      expect((res.body as { detail: string }).detail).toMatch(/percent-encoding/);
    },
  );

  it('a malformed path is refused before the route is looked up or the caller checked', async () => {
    expectProblem(await anonymous.get('/no-such-route/%E0%A4%A'), 400, 'malformed-path');
    expectProblem(await anonymous.get('/contracts/%'), 400, 'malformed-path');
  });

  it('a well-formed percent-encoded id is decoded for the handler', async () => {
    const created = await provider.post<{ id: string }>('/contracts', CREATE_FIXTURE);
    expect(created.status, created.text).toBe(201);
    const id = created.body.id;
    const encoded = `%${id.charCodeAt(0).toString(16)}${id.slice(1)}`;
    const read = await provider.get<{ id: string }>(`/contracts/${encoded}`);
    expect(read.status, read.text).toBe(200);
    expect(read.body.id).toBe(id);
  });

  it('a request target that is no URL is a 400, and `//` paths are routed as paths', async () => {
    expectProblem(await rawRequest('GET http://[ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'), 400);
    expectProblem(await rawRequest('GET //[ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'), 404);
    const res = await rawRequest('GET //api/v1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    expectProblem(res, 404);
    expect((res.body as { detail: string }).detail).toContain('//api/v1/health');
  });
});

describe('an unexpected gateway failure', () => {
  it('is logged without the caller’s secrets and answered with a generic 500', async () => {
    // The gateway logs as the functions do, through the Powertools logger, which writes to stderr itself.
    const written = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    vi.spyOn(stack.issuer, 'jwks').mockRejectedValueOnce(new Error('key store exploded at /secret/path'));
    const res = await fetch(`${stack.url}/.well-known/jwks.json?cursor=q-secret`, {
      headers: { authorization: `Bearer ${token}`, cookie: 'session=c-secret' },
    });
    const body = (await res.json()) as Record<string, unknown>;
    expect(res.status).toBe(500);
    expect(res.headers.get('content-type')).toBe('application/problem+json');
    expect(body).toMatchObject({ type: `${PROBLEM}internal-error`, status: 500 });
    expect(JSON.stringify(body)).not.toContain('exploded');
    const lines = written.mock.calls.map(([chunk]) => String(chunk)).filter((l) => l.includes('gateway'));
    expect(lines).toHaveLength(1);
    const line = lines[0]!;
    expect(JSON.parse(line)).toMatchObject({
      level: 'ERROR',
      message: 'The local gateway failed',
      service: 'enclave-contracts',
      component: 'local-gateway',
    });
    expect(line).toContain('key store exploded');
    expect(line).toContain('/.well-known/jwks.json');
    expect(body.instance).toMatch(/^urn:request:/);
    expect(line).toContain(String(body.instance).slice('urn:request:'.length));
    for (const secret of [token, 'q-secret', 'c-secret']) expect(line).not.toContain(secret);
  });
});

describe('the Authorization header', () => {
  it.each([
    ['Bearer', (t: string) => `Bearer ${t}`],
    ['lower-case scheme', (t: string) => `bearer ${t}`],
    ['upper-case scheme', (t: string) => `BEARER ${t}`],
    ['several spaces', (t: string) => `Bearer   ${t}`],
    ['the token alone (API Gateway takes it)', (t: string) => t],
  ])('%s: accepted', async (_name, header) => {
    const res = await anonymous.get('/identities/me', { authorization: header(token) });
    expect(res.status, res.text).toBe(200);
  });

  it.each([
    ['another scheme', (t: string) => `Basic ${t}`],
    ['a tab after the scheme', (t: string) => `Bearer\t${t}`],
    ['the scheme alone', () => 'Bearer'],
    ['text after the token', (t: string) => `Bearer ${t} extra`],
    ['no space after the scheme', (t: string) => `Bearer${t}`],
  ])('%s: 401', async (_name, header) => {
    const res = await anonymous.get('/identities/me', { authorization: header(token) });
    expectAuthorizerRefusal(res, 'token');
  });

  it('two Authorization headers are joined as API Gateway joins them, and refused', async () => {
    const res = await rawRequest(
      `GET /api/v1/identities/me HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\n` +
        `Authorization: Bearer ${token}\r\nConnection: close\r\n\r\n`,
    );
    expectAuthorizerRefusal(res, 'token');
  });
});

describe('the JWT authorizer', () => {
  const now = () => Math.floor(Date.now() / 1000);
  const claims = (extra: Record<string, unknown>) => ({
    token_use: 'access',
    scope: 'api',
    iss: LOCAL_ISSUER,
    aud: LOCAL_AUDIENCE,
    sub: seededSubject('provider'),
    iat: now(),
    exp: now() + 600,
    ...extra,
  });
  const call = async (jwt: string) => anonymous.get('/identities/me', { authorization: `Bearer ${jwt}` });
  const expectRefused = (res: ApiResponse) => expectAuthorizerRefusal(res, 'token');

  it('accepts a well-formed token signed with exactly these claims', async () => {
    expect((await call(await stack.issuer.signClaims(claims({})))).status).toBe(200);
  });

  it('refuses a token without exp', async () => {
    expectRefused(await call(await stack.issuer.signClaims(claims({ exp: undefined }))));
  });

  it('refuses an expired token, even one second past exp', async () => {
    expectRefused(await call(await stack.issuer.signClaims(claims({ exp: now() - 1 }))));
    expectRefused(await call(await stack.issuer.signClaims(claims({ exp: now() }))));
  });

  it('refuses iat in the future beyond the clock skew, accepts it within', async () => {
    expectRefused(await call(await stack.issuer.signClaims(claims({ iat: now() + 35 }))));
    expectRefused(await call(await stack.issuer.signClaims(claims({ iat: now() + 3600 }))));
    expect((await call(await stack.issuer.signClaims(claims({ iat: now() + 25 })))).status).toBe(200);
  });

  it('refuses nbf in the future beyond the clock skew, accepts it within', async () => {
    expectRefused(await call(await stack.issuer.signClaims(claims({ nbf: now() + 35 }))));
    expect((await call(await stack.issuer.signClaims(claims({ nbf: now() + 25 })))).status).toBe(200);
  });

  it('refuses exp, iat or nbf that are not numbers', async () => {
    for (const extra of [{ exp: 'tomorrow' }, { iat: '0' }, { nbf: null }]) {
      expectRefused(await call(await stack.issuer.signClaims(claims(extra))));
    }
  });

  it('refuses a cached token once it has expired', async () => {
    const jwt = await stack.issuer.mint(seededSubject('provider'), { ttlSeconds: 60 });
    expect((await call(jwt)).status).toBe(200);
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(Date.now() + 58_000);
    expect((await call(jwt)).status).toBe(200);
    vi.setSystemTime(Date.now() + 3_000);
    expectRefused(await call(jwt));
  });
});

describe('the request line and header values quota (10240 bytes)', () => {
  it('exactly 10240 bytes is served', async () => {
    const res = await rawRequest(requestOfSize('/api/v1/health', QUOTA));
    expect(res.status, res.raw.slice(0, 300)).toBe(200);
  });

  it('one byte over is a 431 problem+json, before routing or authorization', async () => {
    expectProblem(
      await rawRequest(requestOfSize('/api/v1/health', QUOTA + 1)),
      431,
      'request-header-fields-too-large',
    );
    expectProblem(await rawRequest(requestOfSize('/api/v1/contracts', QUOTA + 1)), 431);
    expectProblem(await rawRequest(requestOfSize('/api/v1/nothing-here', QUOTA + 1)), 431);
  });

  it('the request line counts: a long query string takes the request over', async () => {
    const at = requestOfSize(`/api/v1/contracts?x=${'q'.repeat(QUOTA - 200)}`, QUOTA);
    // Anonymous at the limit: the authorizer answers; one byte more: the gateway does.
    expectAuthorizerRefusal(await rawRequest(at), 'nothing');
    const over = requestOfSize(`/api/v1/contracts?x=${'q'.repeat(QUOTA - 199)}`, QUOTA + 1);
    expectProblem(await rawRequest(over), 431);
  });

  it('values of many headers add up', async () => {
    const headers = Array.from({ length: 11 }, (_, i) => `X-H${i}: ${'v'.repeat(1000)}\r\n`).join('');
    const res = await rawRequest(
      `GET /api/v1/health HTTP/1.1\r\nHost: x\r\n${headers}Connection: close\r\n\r\n`,
    );
    expectProblem(res, 431);
  });
});

describe('refusals of the HTTP parser are problem+json too', () => {
  it('headers beyond the server’s parser limit: 431 and the connection is closed', async () => {
    const res = await rawRequest(
      `GET /api/v1/health HTTP/1.1\r\nHost: x\r\nX-Big: ${'b'.repeat(20_000)}\r\n\r\n`,
    );
    expectProblem(res, 431, 'request-header-fields-too-large');
    expect(res.headers.connection).toBe('close');
    expect(Number(res.headers['content-length'])).toBe(Buffer.byteLength(res.text));
  });

  it.each([
    ['a header line without a colon', 'GET /api/v1/health HTTP/1.1\r\nHost: x\r\nNo colon here\r\n\r\n'],
    ['a method that is no token', 'G(T /api/v1/health HTTP/1.1\r\nHost: x\r\n\r\n'],
    ['binary garbage', '\u0000\u0001\u0002 nonsense\r\n\r\n'],
    ['an HTTP version that does not exist', 'GET /api/v1/health HTTP/7.3\r\nHost: x\r\n\r\n'],
    ['a space before the colon', 'GET /api/v1/health HTTP/1.1\r\nHost : x\r\n\r\n'],
  ])('%s: 400', async (_name, bytes) => {
    const res = await rawRequest(bytes);
    expectProblem(res, 400, 'bad-request');
    expect(res.headers.connection).toBe('close');
  });

  it('a request that times out: 408', async () => {
    const { client, server } = await connectionPair();
    const answer = readUntilClosed(client);
    const timeout = Object.assign(new Error('Request timeout'), { code: 'ERR_HTTP_REQUEST_TIMEOUT' });
    stack.server.server.emit('clientError', timeout, server);
    expectProblem(await answer, 408, 'request-timeout');
  });

  it('a reset connection or one that can no longer be written to gets nothing written', async () => {
    const reset = await connectionPair();
    const resetAnswer = readUntilClosed(reset.client);
    const econnreset = Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' });
    stack.server.server.emit('clientError', econnreset, reset.server);
    expect((await resetAnswer).raw).toBe('');

    const ended = await connectionPair();
    const endedAnswer = readUntilClosed(ended.client);
    ended.server.end();
    const writeErrors: Error[] = [];
    ended.server.on('error', (e) => writeErrors.push(e));
    const parseError = Object.assign(new Error('Parse Error'), { code: 'HPE_INVALID_METHOD' });
    stack.server.server.emit('clientError', parseError, ended.server);
    ended.client.end();
    expect((await endedAnswer).raw).toBe('');
    expect(writeErrors).toEqual([]);
  });

  it('chunk extensions beyond the parser limit: 413, and the aborted body is no gateway failure', async () => {
    const logged = vi.spyOn(console, 'error');
    const { client, server } = await connectionPair();
    const serverClosed = new Promise((resolve) => server.once('close', resolve));
    const answer = readUntilClosed(client);
    client.write(
      'POST /api/v1/contracts HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n' +
        `Transfer-Encoding: chunked\r\n\r\n1;ext=${'e'.repeat(20_000)}\r\n{\r\n0\r\n\r\n`,
    );
    expectProblem(await answer, 413, 'payload-too-large');
    await serverClosed;
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(logged).not.toHaveBeenCalled();
  });

  it('a parse error while a response is under way writes nothing into it', async () => {
    const { client, server } = await connectionPair();
    const answer = readUntilClosed(client);
    Object.assign(server, { _httpMessage: { headersSent: true } });
    const parseError = Object.assign(new Error('Parse Error'), { code: 'HPE_INVALID_METHOD' });
    stack.server.server.emit('clientError', parseError, server);
    expect((await answer).raw).toBe('');
  });

  it('after answering, the rest of a refused request is read and ignored until the client closes', async () => {
    // Closing while the client still sends would reset the connection, and a reset can discard the answer
    // before the client reads it.
    const accepted = new Promise<Socket>((resolve) => stack.server.server.once('connection', resolve));
    const client = connect({ port: port(), host: '127.0.0.1', allowHalfOpen: true });
    const errors: Error[] = [];
    client.on('error', (e) => errors.push(e));
    const received: Buffer[] = [];
    client.on('data', (chunk: Buffer) => received.push(chunk));
    const ended = new Promise<void>((resolve) => client.once('end', () => resolve()));
    await new Promise<void>((resolve) => client.once('connect', () => resolve()));
    const server = await accepted;
    client.write(`GET /api/v1/health HTTP/1.1\r\nHost: x\r\nX-Big: ${'b'.repeat(20_000)}`);
    await ended;
    expect(Buffer.concat(received).toString()).toMatch(/^HTTP\/1\.1 431 /);
    for (let i = 0; i < 3; i++) {
      client.write('b'.repeat(1000));
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(server.destroyed).toBe(false);
    expect(errors).toEqual([]);
    const closed = new Promise((resolve) => server.once('close', resolve));
    client.end();
    await closed;
  });

  it('the server keeps serving after refusing', async () => {
    await rawRequest('\u0000garbage\r\n\r\n');
    expect((await anonymous.get('/health')).status).toBe(200);
  });
});

describe('the gateway’s own refusals stay problem+json', () => {
  it('a body over 10 MB: 413, before the caller is checked', async () => {
    const res = await anonymous.request('POST', '/contracts', {
      rawBody: Buffer.alloc(10 * 1024 * 1024 + 1, 0x20),
      headers: { 'content-type': 'application/json' },
    });
    expectProblem(res, 413, 'payload-too-large');
    expect((res.body as { detail: string }).detail).toMatch(/gateway/);
  });

  it('no route: 404', async () => {
    expectProblem(await anonymous.get('/no-such-route'), 404, 'not-found');
  });

  it('a method the path does not take: 405 with Allow', async () => {
    const res = await provider.request('PATCH', '/contracts');
    expectProblem(res, 405, 'method-not-allowed');
    expect(res.headers.get('allow')).toBe('POST, GET');
  });
});

describe('query strings reach the handler as API Gateway delivers them (own keys)', () => {
  it.each(['__proto__', 'constructor', 'toString', 'hasOwnProperty'])(
    '?%s=1 is an unknown key of a strict query schema: 400',
    async (key) => {
      const res = await provider.get(`/contracts?${key}=1`);
      expectProblem(res, 400, 'validation-failed');
      expect(JSON.stringify((res.body as { errors: unknown }).errors)).toContain(key);
    },
  );

  it.each(['__proto__', 'constructor', 'toString'])(
    '?%s=1 on a route that takes no query: 400',
    async (key) => {
      expectProblem(await anonymous.get(`/health?${key}=1`), 400, 'validation-failed');
    },
  );

  it('a repeated key is joined with commas, as payload format 2.0 does', async () => {
    expect((await provider.get('/contracts?limit=5')).status).toBe(200);
    const res = await provider.get('/contracts?limit=5&limit=5');
    expectProblem(res, 400, 'validation-failed');
    expect(JSON.stringify((res.body as { errors: unknown }).errors)).toContain('query.limit');
  });
});
