import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalStack, startLocalStack } from '../../infra/local/local-stack.ts';
import { ApiClient, PartyKey, seeded } from '../support/api-client.ts';
import { CREATE_FIXTURE } from '../support/contracts.ts';

/** Image measurements approved by both parties, over HTTP with real signatures. */
type MSet = {
  id: string;
  status: string;
  signingPayload: string;
  approvals: { role: string }[];
  version: number;
};

let stack: LocalStack;
let provider: ApiClient;
let consumer: ApiClient;
let admin: ApiClient;
let auditor: ApiClient;
let outsider: ApiClient;
const providerKey = new PartyKey('ES384');
const consumerKey = new PartyKey('ES256');
let kids: { provider: string; consumer: string };
const pcr = (c: string) => c.repeat(96);

beforeAll(async () => {
  stack = await startLocalStack();
  const clients = await Promise.all(
    (['provider', 'consumer', 'admin', 'auditor', 'outsider'] as const).map((n) => ApiClient.as(stack, n)),
  );
  [provider, consumer, admin, auditor, outsider] = clients as [
    ApiClient,
    ApiClient,
    ApiClient,
    ApiClient,
    ApiClient,
  ];
  kids = {
    provider: await providerKey.register(provider, seeded.provider),
    consumer: await consumerKey.register(consumer, seeded.consumer),
  };
});
afterAll(async () => stack?.close());

async function contract(): Promise<string> {
  return (await provider.post<{ id: string }>('/contracts', CREATE_FIXTURE)).body.id;
}

describe('measurement sets', () => {
  it('become Approved only when both parties signed the canonical set', async () => {
    const id = await contract();
    const proposed = await consumer.post<MSet>(`/contracts/${id}/measurements`, {
      pcr0: pcr('A'),
      pcr1: pcr('b'),
      pcr2: pcr('c'),
    });
    expect(proposed.status).toBe(201);
    expect(proposed.body).toMatchObject({ status: 'Proposed', approvals: [] });
    expect(proposed.body.signingPayload).toBe(
      `{"contractId":"${id}","pcr0":"${pcr('a')}","pcr1":"${pcr('b')}","pcr2":"${pcr('c')}"}`,
    );
    const path = `/contracts/${id}/measurements/${proposed.body.id}/approve`;
    const byProvider = await provider.post<MSet>(path, {
      kid: kids.provider,
      signature: providerKey.sign(proposed.body.signingPayload),
    });
    expect(byProvider.body).toMatchObject({ status: 'Proposed', approvals: [{ role: 'provider' }] });
    const twice = await provider.post(path, {
      kid: kids.provider,
      signature: providerKey.sign(proposed.body.signingPayload),
    });
    expect(twice.status).toBe(409);
    const forged = await consumer.post(path, {
      kid: kids.consumer,
      signature: consumerKey.sign(`${proposed.body.signingPayload} `),
    });
    expect(forged.status).toBe(422);
    const foreignKey = await consumer.post(path, {
      kid: kids.provider,
      signature: providerKey.sign(proposed.body.signingPayload),
    });
    expect(foreignKey.status).toBe(422);
    const byConsumer = await consumer.post<MSet>(path, {
      kid: kids.consumer,
      signature: consumerKey.sign(proposed.body.signingPayload),
    });
    expect(byConsumer.body).toMatchObject({ status: 'Approved', version: 3 });
    const list = await auditor.get<{ items: MSet[] }>(`/contracts/${id}/measurements`);
    expect(list.body.items.map((m) => m.status)).toEqual(['Approved']);
    const trail = await consumer.get<{ records: { action: string }[]; verification: { valid: boolean } }>(
      `/audit?entityId=${proposed.body.id}`,
    );
    expect(trail.body.records.map((r) => r.action)).toEqual(['propose', 'approve', 'approve']);
    expect(trail.body.verification.valid).toBe(true);
  });

  it('refuses duplicates, strangers, non-parties and closed contracts, and changes nothing', async () => {
    const id = await contract();
    const body = { pcr0: pcr('1'), pcr1: pcr('2'), pcr2: pcr('3'), pcr8: pcr('4') };
    expect((await provider.post(`/contracts/${id}/measurements`, body)).status).toBe(201);
    expect((await consumer.post(`/contracts/${id}/measurements`, body)).status).toBe(409);
    expect((await outsider.post(`/contracts/${id}/measurements`, { ...body, pcr8: pcr('5') })).status).toBe(
      404,
    );
    expect((await admin.post(`/contracts/${id}/measurements`, { ...body, pcr8: pcr('5') })).status).toBe(403);
    expect((await outsider.get(`/contracts/${id}/measurements`)).status).toBe(404);
    expect((await provider.post(`/contracts/${id}/measurements`, { ...body, pcr0: 'ab' })).status).toBe(400);
    expect((await provider.post(`/contracts/${id}/measurements`, { ...body, extra: 1 })).status).toBe(400);
    const missing = await provider.post(`/contracts/${id}/measurements/${crypto.randomUUID()}/approve`, {
      kid: kids.provider,
      signature: 'A'.repeat(86),
    });
    expect(missing.status).toBe(404);
    const current = (await provider.get<{ signingPayload: string }>(`/contracts/${id}`)).body;
    await provider.post(`/contracts/${id}/sign`, {
      type: 'digital',
      kid: kids.provider,
      signature: providerKey.sign(current.signingPayload),
    });
    expect((await provider.post(`/contracts/${id}/terminate`, { reason: 'closing' })).status).toBe(200);
    expect((await provider.post(`/contracts/${id}/measurements`, { ...body, pcr8: pcr('6') })).status).toBe(
      409,
    );
    const list = await provider.get<{ items: MSet[] }>(`/contracts/${id}/measurements`);
    expect(list.body.items).toHaveLength(1);
  });

  it('go with a never-signed draft when it is deleted', async () => {
    const id = await contract();
    expect(
      (
        await provider.post(`/contracts/${id}/measurements`, {
          pcr0: pcr('7'),
          pcr1: pcr('8'),
          pcr2: pcr('9'),
        })
      ).status,
    ).toBe(201);
    expect((await provider.delete(`/contracts/${id}`, { 'if-match': '"1"' })).status).toBe(204);
  });
});
