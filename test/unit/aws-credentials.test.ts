import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { defaultProvider, REFRESH_BEFORE_EXPIRY_MS } from '../../infra/bundling/aws-credentials.ts';

/**
 * The credential chain of the Lambda bundles (infra/bundling/aws-credentials.ts), against a real container
 * credentials endpoint on loopback. The bundled function signing with it is in test/infra (the migration
 * function against the Data API emulator).
 */
const VARIABLES = [
  'AWS_ACCESS_KEY_ID',
  'AWS_SECRET_ACCESS_KEY',
  'AWS_SESSION_TOKEN',
  'AWS_CREDENTIAL_EXPIRATION',
  'AWS_CONTAINER_CREDENTIALS_FULL_URI',
  'AWS_CONTAINER_CREDENTIALS_RELATIVE_URI',
  'AWS_CONTAINER_AUTHORIZATION_TOKEN',
  'AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE',
  'AWS_PROFILE',
];

let server: Server | undefined;
let served = 0;
let expiresInMs = 3_600_000;

async function containerEndpoint(): Promise<string> {
  server = createServer((_req, res) => {
    served++;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(
      JSON.stringify({
        AccessKeyId: `ASIACONTAINER${served}`,
        SecretAccessKey: 'secret',
        Token: 'container-session',
        Expiration: new Date(Date.now() + expiresInMs).toISOString(),
      }),
    );
  });
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/credentials`;
}

beforeEach(() => {
  for (const name of VARIABLES) vi.stubEnv(name, undefined);
  served = 0;
  expiresInMs = 3_600_000;
});

afterEach(async () => {
  vi.unstubAllEnvs();
  await new Promise((resolve) => (server ? server.close(resolve) : resolve(undefined)));
  server = undefined;
});

describe('the credential chain of the Lambda bundles', () => {
  it("reads the execution role's credentials from the environment, as Lambda sets them", async () => {
    vi.stubEnv('AWS_ACCESS_KEY_ID', 'ASIAENVIRONMENT');
    vi.stubEnv('AWS_SECRET_ACCESS_KEY', 'secret');
    vi.stubEnv('AWS_SESSION_TOKEN', 'session');
    expect(await defaultProvider()()).toMatchObject({
      accessKeyId: 'ASIAENVIRONMENT',
      secretAccessKey: 'secret',
      sessionToken: 'session',
    });
  });

  it('prefers the environment to the container endpoint, which it then never asks', async () => {
    vi.stubEnv('AWS_CONTAINER_CREDENTIALS_FULL_URI', await containerEndpoint());
    vi.stubEnv('AWS_ACCESS_KEY_ID', 'ASIAENVIRONMENT');
    vi.stubEnv('AWS_SECRET_ACCESS_KEY', 'secret');
    expect((await defaultProvider()()).accessKeyId).toBe('ASIAENVIRONMENT');
    expect(served).toBe(0);
  });

  it('reads the container endpoint when the environment has no keys, and keeps the answer until close to its expiry', async () => {
    vi.stubEnv('AWS_CONTAINER_CREDENTIALS_FULL_URI', await containerEndpoint());
    const provider = defaultProvider();
    expect(await provider()).toMatchObject({
      accessKeyId: 'ASIACONTAINER1',
      sessionToken: 'container-session',
    });
    expect((await provider()).accessKeyId).toBe('ASIACONTAINER1');
    expect(served).toBe(1);
  });

  it('asks again when what it holds expires within five minutes', async () => {
    expiresInMs = REFRESH_BEFORE_EXPIRY_MS - 60_000;
    vi.stubEnv('AWS_CONTAINER_CREDENTIALS_FULL_URI', await containerEndpoint());
    const provider = defaultProvider();
    expect((await provider()).accessKeyId).toBe('ASIACONTAINER1');
    expect((await provider()).accessKeyId).toBe('ASIACONTAINER2');
    expect(served).toBe(2);
  });

  it('shares one read between concurrent requests, and reads again when the SDK forces a refresh', async () => {
    vi.stubEnv('AWS_CONTAINER_CREDENTIALS_FULL_URI', await containerEndpoint());
    const provider = defaultProvider();
    const first = await Promise.all([provider(), provider(), provider()]);
    expect(first.map((c) => c.accessKeyId)).toEqual(['ASIACONTAINER1', 'ASIACONTAINER1', 'ASIACONTAINER1']);
    expect((await provider({ forceRefresh: true })).accessKeyId).toBe('ASIACONTAINER2');
    expect(served).toBe(2);
  });

  it('does not keep a failed read: the next request reads again', async () => {
    vi.stubEnv('AWS_CONTAINER_CREDENTIALS_FULL_URI', 'http://127.0.0.1:9/credentials'); // nothing listens
    const provider = defaultProvider({ maxRetries: 0 }); // the SDK's own retries, a second each, are not ours to test
    await expect(provider()).rejects.toThrow(/ECONNREFUSED/);
    vi.stubEnv('AWS_CONTAINER_CREDENTIALS_FULL_URI', await containerEndpoint());
    expect((await provider()).accessKeyId).toBe('ASIACONTAINER1');
  });

  it('reads no profile: AWS_PROFILE means nothing in Lambda, and the environment still wins', async () => {
    vi.stubEnv('AWS_PROFILE', 'developer');
    vi.stubEnv('AWS_ACCESS_KEY_ID', 'ASIAENVIRONMENT');
    vi.stubEnv('AWS_SECRET_ACCESS_KEY', 'secret');
    expect((await defaultProvider()()).accessKeyId).toBe('ASIAENVIRONMENT');
  });

  it('fails naming the variables Lambda sets when there are no credentials anywhere', async () => {
    await expect(defaultProvider()()).rejects.toThrow(
      'No AWS credentials: neither AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY nor AWS_CONTAINER_CREDENTIALS_FULL_URI/AWS_CONTAINER_CREDENTIALS_RELATIVE_URI is set',
    );
  });

  it('passes on a refusal of the container endpoint rather than hiding it', async () => {
    server = createServer((_req, res) => {
      res.writeHead(403, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ Code: 'AccessDenied', Message: 'wrong token' }));
    });
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
    vi.stubEnv(
      'AWS_CONTAINER_CREDENTIALS_FULL_URI',
      `http://127.0.0.1:${(server.address() as AddressInfo).port}/credentials`,
    );
    await expect(defaultProvider({ maxRetries: 0 })()).rejects.toThrow(/Server responded with status: 403/);
  });
});
