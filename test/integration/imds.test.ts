/**
 * The agent's IMDSv2 client against the IMDS stand-in, and the stand-in's own rules (what EC2 documents for
 * IMDSv2): a token for every read, its TTL bounded, renewed before it expires and after a 401, tags read
 * live, the role's credentials cached until five minutes before they expire.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { type ImdsSimulator, startImdsSimulator } from '../../infra/local/services/ec2/imds-simulator.ts';
import { Imds, ImdsError } from '../../infra/parent-agent/imds.ts';

let imds: ImdsSimulator;
let clock = Date.parse('2026-12-04T12:00:00Z');
const tags: Record<string, string> = { 'enclave-contracts:enclave-id': 'e-1', empty: '' };
let issued = 0;

async function start() {
  imds = await startImdsSimulator(
    {
      instanceId: 'i-0123456789abcdef0',
      region: 'eu-central-1',
      tags: () => tags,
      role: {
        name: 'EnclaveParentRole',
        credentials: () => ({
          accessKeyId: `ASIA${++issued}`,
          secretAccessKey: 'secret',
          sessionToken: 'token',
          expiration: new Date(clock + 60 * 60_000),
        }),
      },
    },
    { now: () => clock },
  );
  return new Imds({ endpoint: imds.url, tokenTtlSeconds: 60, now: () => clock });
}
afterEach(() => imds?.close());

describe('the IMDSv2 client', () => {
  it('reads the identity and tags with one token, absent tags as undefined, empty ones as empty', async () => {
    const client = await start();
    expect(await client.instanceId()).toBe('i-0123456789abcdef0');
    expect(await client.region()).toBe('eu-central-1');
    expect(await client.tag('enclave-contracts:enclave-id')).toBe('e-1');
    expect(await client.tag('empty')).toBe('');
    expect(await client.tag('absent')).toBeUndefined();
    expect(imds.requests.filter((r) => r.method === 'PUT')).toHaveLength(1);
  });

  it('renews its token before it expires', async () => {
    const client = await start();
    await client.instanceId();
    clock += 47_000; // under 80 % of 60 s
    await client.instanceId();
    clock += 2_000; // past 80 %
    await client.instanceId();
    expect(imds.requests.filter((r) => r.method === 'PUT')).toHaveLength(2);
  });

  it('renews the token once after a 401 (IMDS restarted), and says so when that fails too', async () => {
    const client = await start();
    await client.instanceId();
    imds.fail(401, 1);
    expect(await client.instanceId()).toBe('i-0123456789abcdef0');
    imds.fail(401, 3);
    await expect(client.instanceId()).rejects.toMatchObject({ name: 'ImdsError', transient: false });
  });

  it('marks an outage and throttling transient, and never hangs on a dead endpoint', async () => {
    const client = await start();
    imds.fail(503, 1);
    await expect(client.instanceId()).rejects.toMatchObject({
      transient: true,
      message: expect.stringContaining('503'),
    });
    imds.fail(429, 1);
    await expect(client.instanceId()).rejects.toMatchObject({ transient: true });
    const dead = new Imds({ endpoint: 'http://127.0.0.1:1', timeoutMs: 200 });
    await expect(dead.instanceId()).rejects.toBeInstanceOf(ImdsError);
  });

  it("caches the role's credentials until five minutes before they expire", async () => {
    const client = await start();
    const first = await client.credentials();
    expect(first).toMatchObject({ secretAccessKey: 'secret', sessionToken: 'token' });
    clock += 50 * 60_000;
    expect((await client.credentials()).accessKeyId).toBe(first.accessKeyId);
    clock += 6 * 60_000; // 4 minutes left
    expect((await client.credentials()).accessKeyId).not.toBe(first.accessKeyId);
  });

  it('refuses a token lifetime IMDS would refuse', () => {
    expect(() => new Imds({ tokenTtlSeconds: 0 })).toThrow(RangeError);
    expect(() => new Imds({ tokenTtlSeconds: 21_601 })).toThrow(RangeError);
  });
});

describe('the IMDS stand-in', () => {
  it('refuses reads without a current token, a TTL out of range, and a forwarded token request', async () => {
    await start();
    expect((await fetch(`${imds.url}/latest/meta-data/instance-id`)).status).toBe(401);
    const put = (headers: Record<string, string>) =>
      fetch(`${imds.url}/latest/api/token`, { method: 'PUT', headers });
    expect((await put({})).status).toBe(400);
    expect((await put({ 'x-aws-ec2-metadata-token-ttl-seconds': '21601' })).status).toBe(400);
    expect(
      (await put({ 'x-aws-ec2-metadata-token-ttl-seconds': '60', 'x-forwarded-for': '10.0.0.1' })).status,
    ).toBe(403);
    const token = await (await put({ 'x-aws-ec2-metadata-token-ttl-seconds': '1' })).text();
    const read = () =>
      fetch(`${imds.url}/latest/meta-data/instance-id`, { headers: { 'x-aws-ec2-metadata-token': token } });
    expect((await read()).status).toBe(200);
    clock += 1000;
    expect((await read()).status).toBe(401);
  });
});
