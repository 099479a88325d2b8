import { createPublicKey, verify } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalStack, startLocalStack } from '../../infra/local/local-stack.ts';
import { createCheckpoint } from '../../shared/audit/audit-checkpoints.ts';
import { sql } from '../../shared/database/database.ts';
import { ApiClient, PartyKey, seeded } from '../support/api-client.ts';
import { stackDatabase, stackDatabases } from '../support/databases.ts';

const createBody = JSON.parse(
  readFileSync(new URL('../fixtures/contract-create.json', import.meta.url), 'utf8'),
);

type Contract = {
  id: string;
  status: string;
  version: number;
  contentVersion: number;
  contentDigest: string;
  signingPayload: string;
  signatures: { role: string; kid: string; signature: string; signedPayload?: string }[];
  availableActions: string[];
};

/** The same HTTP walk-through on the embedded database, through the Data API path, and on a real server. */
describe.each(stackDatabases())('on $name', ({ database }) => {
  let stack: LocalStack;
  let drop = async () => {};
  let provider: ApiClient;
  let consumer: ApiClient;
  let auditor: ApiClient;
  let outsider: ApiClient;
  const providerKey = new PartyKey('ES256');
  const consumerKey = new PartyKey('EdDSA');
  let providerKid: string;
  let consumerKid: string;

  beforeAll(async () => {
    const opened = await stackDatabase(database);
    drop = opened.drop;
    stack = await startLocalStack(opened.options);
    const clients = await Promise.all(
      (['provider', 'consumer', 'auditor', 'outsider'] as const).map((n) => ApiClient.as(stack, n)),
    );
    [provider, consumer, auditor, outsider] = clients as [ApiClient, ApiClient, ApiClient, ApiClient];
    providerKid = await providerKey.register(provider, seeded.provider);
    consumerKid = await consumerKey.register(consumer, seeded.consumer);
  });

  afterAll(async () => {
    await stack?.close();
    await drop();
  });

  async function create(): Promise<Contract> {
    const res = await provider.post<Contract>('/contracts', createBody);
    expect(res.status).toBe(201);
    return res.body;
  }

  async function signAs(client: ApiClient, key: PartyKey, kid: string, c: Contract) {
    return client.post<Contract>(`/contracts/${c.id}/sign`, {
      type: 'digital',
      kid,
      signature: key.sign(c.signingPayload),
    });
  }

  describe('the contract lifecycle over HTTP', () => {
    it('takes a contract from Draft to Active with real signatures and back to Terminated', async () => {
      const draft = await create();
      expect(draft).toMatchObject({
        status: 'Draft',
        version: 1,
        providerId: seeded.provider,
        consumerId: seeded.consumer,
      });
      expect(JSON.parse(draft.signingPayload)).toEqual({
        contractId: draft.id,
        contentDigest: draft.contentDigest,
        version: 1,
      });

      const signed1 = await signAs(provider, providerKey, providerKid, draft);
      expect(signed1.status).toBe(200);
      expect(signed1.body.status).toBe('PendingSignature');

      const early = await consumer.post(`/contracts/${draft.id}/activate`);
      expect(early.status).toBe(422);
      expect(early.headers.get('content-type')).toBe('application/problem+json');
      expect(early.body.detail).toContain('missing: consumer');

      const signed2 = await signAs(consumer, consumerKey, consumerKid, signed1.body);
      expect(signed2.status).toBe(200);

      const active = await consumer.post<Contract>(`/contracts/${draft.id}/activate`);
      expect(active.status).toBe(200);
      expect(active.body.status).toBe('Active');
      const platform = active.body.signatures.find((s) => s.role === 'platform')!;
      const keys = await ApiClient.anonymous(stack).get<{ keys: Record<string, unknown>[] }>(
        '/platform/keys',
      );
      const jwk = keys.body.keys.find((k) => k.kid === platform.kid)!;
      const publicKey = createPublicKey({ key: jwk as import('node:crypto').JsonWebKey, format: 'jwk' });
      expect(
        verify(
          'sha256',
          Buffer.from(platform.signedPayload!),
          { key: publicKey, dsaEncoding: 'ieee-p1363' },
          Buffer.from(platform.signature, 'base64url'),
        ),
      ).toBe(true);

      const suspended = await provider.post<Contract>(`/contracts/${draft.id}/suspend`, {
        reason: 'audit finding',
      });
      expect(suspended.body.status).toBe('Suspended');
      const resumeByOther = await consumer.post(`/contracts/${draft.id}/resume`, {});
      expect(resumeByOther.status).toBe(403);
      const resumed = await provider.post<Contract>(`/contracts/${draft.id}/resume`, {});
      expect(resumed.body.status).toBe('Active');
      const terminated = await consumer.post<Contract>(`/contracts/${draft.id}/terminate`, {
        reason: 'project ended',
      });
      expect(terminated.status).toBe(200);
      expect(terminated.body.status).toBe('Terminated');
      const again = await consumer.post(`/contracts/${draft.id}/terminate`, { reason: 'twice' });
      expect(again.status).toBe(409);

      const trail = await auditor.get<{
        records: { action: string }[];
        verification: { valid: boolean; checked: number };
      }>(`/audit?entityId=${draft.id}`);
      expect(trail.status).toBe(200);
      expect(trail.body.records.map((r) => r.action)).toEqual([
        'create',
        'sign',
        'sign',
        'activate',
        'suspend',
        'resume',
        'terminate',
      ]);
      expect(trail.body.verification).toMatchObject({ valid: true, checked: 7 });
      expect((await outsider.get(`/audit?entityId=${draft.id}`)).status).toBe(404);

      // once a signed checkpoint covers the chain, the trail proves its head against it
      await createCheckpoint(stack.deps).catch(() => undefined);
      const anchored = await consumer.get<{
        verification: { anchored: boolean };
        checkpoint: { leaf: { seq: number } };
      }>(`/audit?entityId=${draft.id}`);
      expect(anchored.body.verification.anchored).toBe(true);
      expect(anchored.body.checkpoint.leaf.seq).toBe(7);
    });

    it('rejects signatures over a stale digest, by a key that is not the signer, or forged', async () => {
      const c = await create();
      const edited = await provider.put<Contract>(
        `/contracts/${c.id}`,
        { title: 'Renamed' },
        { 'if-match': '"1"' },
      );
      expect(edited.status).toBe(200);
      const stale = await signAs(provider, providerKey, providerKid, c);
      expect(stale.status).toBe(422);
      expect(stale.body).toMatchObject({ type: expect.stringContaining('invalid-signature') });
      const foreignKey = await signAs(provider, consumerKey, consumerKid, edited.body);
      expect(foreignKey.status).toBe(422);
      expect(foreignKey.body).toMatchObject({ type: expect.stringContaining('unknown-key') });
      const forged = await provider.post(`/contracts/${c.id}/sign`, {
        type: 'digital',
        kid: providerKid,
        signature: 'A'.repeat(86),
      });
      expect(forged.status).toBe(422);
      const after = await provider.get<Contract>(`/contracts/${c.id}`);
      expect(after.body.version).toBe(2);
      expect(after.body.signatures).toEqual([]);
    });

    it('discards signatures on edit and returns the contract to Draft', async () => {
      const c = await create();
      const signed = await signAs(provider, providerKey, providerKid, c);
      const edited = await consumer.put<Contract>(
        `/contracts/${c.id}`,
        { description: 'changed' },
        { 'if-match': `"${signed.body.version}"` },
      );
      expect(edited.status).toBe(200);
      expect(edited.body).toMatchObject({
        status: 'Draft',
        signatures: [],
        contentVersion: signed.body.version + 1,
      });
      expect(edited.body.contentDigest).not.toBe(c.contentDigest);
      // ever signed: it cannot be deleted any more, only terminated
      const del = await provider.delete(`/contracts/${c.id}`, { 'if-match': `"${edited.body.version}"` });
      expect(del.status).toBe(422);
      const term = await provider.post<Contract>(`/contracts/${c.id}/terminate`, { reason: 'renegotiating' });
      expect(term.body.status).toBe('Terminated');
    });

    it('deletes a never-signed draft, requires If-Match and answers 412 on a stale one', async () => {
      const c = await create();
      expect((await provider.delete(`/contracts/${c.id}`)).status).toBe(428);
      expect((await provider.delete(`/contracts/${c.id}`, { 'if-match': '"7"' })).status).toBe(412);
      // An ETag without its quotes is a malformed header, not a stale one: 400, saying ETags are quoted.
      const unquoted = await provider.delete<{ detail: string }>(`/contracts/${c.id}`, { 'if-match': '1' });
      expect(unquoted.status, unquoted.text).toBe(400);
      expect(unquoted.headers.get('content-type')).toBe('application/problem+json');
      expect(unquoted.body.detail).toContain('ETags, which are quoted strings: send "1"');
      expect((await provider.delete(`/contracts/${c.id}`, { 'if-match': '"1"' })).status).toBe(204);
      expect((await provider.get(`/contracts/${c.id}`)).status).toBe(404);
      const trail = await auditor.get<{ records: { action: string }[]; verification: { valid: boolean } }>(
        `/audit?entityId=${c.id}`,
      );
      expect(trail.body.records.map((r) => r.action)).toEqual(['create', 'delete']);
      expect(trail.body.verification.valid).toBe(true);
    });

    it('lists with filters and stable cursor pagination', async () => {
      const ids = new Set<string>();
      for (let i = 0; i < 5; i++) ids.add((await create()).id);
      const seen: string[] = [];
      let cursor: string | null = null;
      do {
        const page: { status: number; body: { items: Contract[]; nextCursor: string | null } } =
          await consumer.get(
            `/contracts?role=consumer&status=Draft&limit=2${cursor ? `&cursor=${cursor}` : ''}`,
          );
        expect(page.status).toBe(200);
        expect(page.body.items.length).toBeLessThanOrEqual(2);
        seen.push(...page.body.items.map((c) => c.id));
        cursor = page.body.nextCursor;
      } while (cursor);
      expect(new Set(seen).size).toBe(seen.length);
      for (const id of ids) expect(seen).toContain(id);
      expect((await consumer.get('/contracts?cursor=bogus')).status).toBe(400);
      expect((await consumer.get('/contracts?limit=1000')).status).toBe(400);
      const none = await outsider.get<{ items: Contract[] }>('/contracts');
      expect(none.body.items).toEqual([]);
      const asProvider = await consumer.get<{ items: Contract[] }>('/contracts?role=provider');
      expect(asProvider.body.items).toEqual([]);
    });

    it('makes exactly one winner among parallel PUTs with the same If-Match', async () => {
      const c = await create();
      const results = await Promise.all(
        Array.from({ length: 8 }, (_, i) =>
          provider.put(`/contracts/${c.id}`, { title: `Title ${i}` }, { 'if-match': '"1"' }),
        ),
      );
      const statuses = results.map((r) => r.status).sort();
      expect(statuses.filter((s) => s === 200)).toHaveLength(1);
      expect(statuses.filter((s) => s === 412)).toHaveLength(7);
      const after = await provider.get<Contract & { title: string }>(`/contracts/${c.id}`);
      expect(after.body.version).toBe(2);
      const trail = await auditor.get<{ records: unknown[]; verification: { valid: boolean } }>(
        `/audit?entityId=${c.id}`,
      );
      expect(trail.body.records).toHaveLength(2);
      expect(trail.body.verification.valid).toBe(true);
    });

    it('creates once for concurrent retries with the same Idempotency-Key and refuses a different body', async () => {
      const key = `idem-${Date.now()}`;
      const results = await Promise.all(
        Array.from({ length: 6 }, () =>
          provider.post<Contract>('/contracts', createBody, { 'idempotency-key': key }),
        ),
      );
      for (const r of results) expect([201, 409]).toContain(r.status);
      const created = results.filter((r) => r.status === 201);
      expect(new Set(created.map((r) => r.body.id)).size).toBe(1);
      const replay = await provider.post<Contract>('/contracts', createBody, { 'idempotency-key': key });
      expect(replay.status).toBe(201);
      expect(replay.headers.get('idempotent-replayed')).toBe('true');
      expect(replay.body.id).toBe(created[0]!.body.id);
      const different = await provider.post(
        '/contracts',
        { ...createBody, title: 'Other' },
        { 'idempotency-key': key },
      );
      expect(different.status).toBe(422);
      const { rows } = await stack.deps.db.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM contracts WHERE title = 'Other'",
      );
      expect(rows[0]!.n).toBe(0);
    });

    it('refuses terms whose validity window has already ended, and stores nothing', async () => {
      const past = {
        ...createBody,
        terms: {
          ...createBody.terms,
          validity: { start: '2020-01-01T00:00:00Z', end: '2021-01-01T00:00:00Z' },
        },
      };
      const res = await provider.post('/contracts', past, { 'idempotency-key': `past-${Date.now()}` });
      expect(res.status).toBe(422);
      expect(res.body).toMatchObject({
        errors: [{ field: 'terms.validity.end', message: 'must be in the future' }],
      });
      const { rows } = await stack.deps.db.query<{ n: number }>(
        'SELECT count(*)::int AS n FROM idempotency_keys WHERE key LIKE :k',
        {
          k: sql.text('past-%'),
        },
      );
      expect(rows[0]!.n).toBe(0);
    });

    it('publishes every change to the outbox in the same statement', async () => {
      const c = await create();
      const { rows } = await stack.deps.db.query<{ event_type: string }>(
        `SELECT event_type FROM outbox WHERE aggregate_id = '${c.id}'`,
      );
      expect(rows.map((r) => r.event_type)).toEqual(['ContractCreated']);
    });
  });
});
