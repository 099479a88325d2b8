import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalStack, startLocalStack } from '../../infra/local/local-stack.ts';
import { ApiClient, PartyKey, seeded } from '../support/api-client.ts';
import { CREATE_FIXTURE } from '../support/contracts.ts';

/** Image measurements approved by both parties, over HTTP with real signatures. */
type MSet = {
  id: string;
  status: string;
  signingPayload: string;
  additionalPcrs: Record<string, string>;
  approvals: { role: string }[];
  version: number;
};
type Problem = { type: string; errors: { field: string; message: string }[] };

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

  it('pin additional PCRs: signed, listed, approved, and another set than the same image without them', async () => {
    const id = await contract();
    const image = { pcr0: pcr('d'), pcr1: pcr('e'), pcr2: pcr('f') };
    const plain = await provider.post<MSet>(`/contracts/${id}/measurements`, image);
    expect(plain.status, plain.text).toBe(201);
    expect(plain.body.additionalPcrs).toEqual({});
    // No pins, no key: the payload is the one approvals were signed over before additional PCRs existed.
    expect(plain.body.signingPayload).toBe(
      `{"contractId":"${id}","pcr0":"${pcr('d')}","pcr1":"${pcr('e')}","pcr2":"${pcr('f')}"}`,
    );
    const pinned = await consumer.post<MSet>(`/contracts/${id}/measurements`, {
      ...image,
      additionalPcrs: { 16: pcr('A'), 3: pcr('b') },
    });
    expect(pinned.status, pinned.text).toBe(201);
    expect(pinned.body.additionalPcrs).toEqual({ 3: pcr('b'), 16: pcr('a') });
    expect(pinned.body.signingPayload).toBe(
      `{"additionalPcrs":{"16":"${pcr('a')}","3":"${pcr('b')}"},"contractId":"${id}","pcr0":"${pcr('d')}","pcr1":"${pcr('e')}","pcr2":"${pcr('f')}"}`,
    );
    // The same pins in another order and case are the same set; {} is the set without pins.
    const reordered = { ...image, additionalPcrs: { 3: pcr('B'), 16: pcr('a') } };
    expect((await provider.post(`/contracts/${id}/measurements`, reordered)).status).toBe(409);
    const empty = { ...image, additionalPcrs: {} };
    expect((await provider.post(`/contracts/${id}/measurements`, empty)).status).toBe(409);
    // One more pin is another set.
    const more = { ...image, additionalPcrs: { 3: pcr('b'), 16: pcr('a'), 31: pcr('0') } };
    const another = await provider.post<MSet>(`/contracts/${id}/measurements`, more);
    expect(another.status).toBe(201);

    const path = `/contracts/${id}/measurements/${pinned.body.id}/approve`;
    // A signature over the set without its pins is not an approval of the set with them.
    const unpinned = await provider.post(path, {
      kid: kids.provider,
      signature: providerKey.sign(plain.body.signingPayload),
    });
    expect(unpinned.status).toBe(422);
    for (const [client, key, kid] of [
      [provider, providerKey, kids.provider],
      [consumer, consumerKey, kids.consumer],
    ] as const) {
      const approved = await client.post<MSet>(path, {
        kid,
        signature: key.sign(pinned.body.signingPayload),
      });
      expect(approved.status, approved.text).toBe(200);
    }
    const list = await auditor.get<{ items: MSet[] }>(`/contracts/${id}/measurements`);
    const listed = Object.fromEntries(list.body.items.map((m) => [m.id, [m.status, m.additionalPcrs]]));
    expect(listed).toEqual({
      [plain.body.id]: ['Proposed', {}],
      [pinned.body.id]: ['Approved', { 3: pcr('b'), 16: pcr('a') }],
      [another.body.id]: ['Proposed', { 3: pcr('b'), 16: pcr('a'), 31: pcr('0') }],
    });
  });

  it('refuse all-zero image registers and pins a set may not hold with a 400 naming the field', async () => {
    const id = await contract();
    const image = { pcr0: pcr('1'), pcr1: pcr('2'), pcr2: pcr('3') };
    const refused: [unknown, string][] = [
      [{ ...image, pcr0: pcr('0') }, 'body.pcr0'],
      [{ ...image, pcr1: pcr('0') }, 'body.pcr1'],
      [{ ...image, pcr2: pcr('0') }, 'body.pcr2'],
      [{ ...image, additionalPcrs: { 4: pcr('4') } }, 'body.additionalPcrs.4'],
      [{ ...image, additionalPcrs: { 8: pcr('4') } }, 'body.additionalPcrs.8'],
      [{ ...image, additionalPcrs: { 32: pcr('4') } }, 'body.additionalPcrs.32'],
      [{ ...image, additionalPcrs: { '016': pcr('4') } }, 'body.additionalPcrs.016'],
      [{ ...image, additionalPcrs: { 16: 'ab' } }, 'body.additionalPcrs.16'],
      [{ ...image, additionalPcrs: [pcr('4')] }, 'body.additionalPcrs'],
    ];
    for (const [body, field] of refused) {
      const res = await provider.post<Problem>(`/contracts/${id}/measurements`, body);
      expect(res.status, res.text).toBe(400);
      expect(res.headers.get('content-type')).toBe('application/problem+json');
      expect(res.body.type).toMatch(/\/validation-failed$/);
      expect(res.body.errors.map((e) => e.field)).toEqual([field]);
    }
    const pcr4 = await provider.post<Problem>(`/contracts/${id}/measurements`, refused[3]![0]);
    expect(pcr4.body.errors[0]!.message).toMatch(/^PCR4 measures the parent instance's id/);
    expect((await provider.get<{ items: MSet[] }>(`/contracts/${id}/measurements`)).body.items).toEqual([]);
    // Only partly zero is a real measurement.
    const partly = { ...image, pcr0: `${'0'.repeat(95)}1` };
    expect((await provider.post(`/contracts/${id}/measurements`, partly)).status).toBe(201);
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
