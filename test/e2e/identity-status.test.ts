import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalStack, startLocalStack } from '../../infra/local/local-stack.ts';
import { seededSubject } from '../../infra/local/seed.ts';
import { signContract } from '../../shared/contracts/contract-service.ts';
import { sql } from '../../shared/database/database.ts';
import { resolveCaller } from '../../shared/identities/identity-service.ts';
import { ApiClient, PartyKey, seeded } from '../support/api-client.ts';

/**
 * An identity's status over HTTP: admins suspend, reactivate and revoke (final), audited with the reason;
 * a suspended or revoked identity acts on nothing, and a signature checks the status in the database, not
 * in a container's caller cache.
 */
const CREATE = JSON.parse(readFileSync(new URL('../fixtures/contract-create.json', import.meta.url), 'utf8'));
type Identity = { id: string; status: string; statusReason: string | null; version: number };
type Contract = { id: string; signingPayload: string };

let stack: LocalStack;
let provider: ApiClient;
let consumer: ApiClient;
let admin: ApiClient;
const key = new PartyKey('ES256');
let kid: string;

beforeAll(async () => {
  stack = await startLocalStack({ scheduledJobs: false });
  [provider, consumer, admin] = (await Promise.all(
    (['provider', 'consumer', 'admin'] as const).map((n) => ApiClient.as(stack, n)),
  )) as [ApiClient, ApiClient, ApiClient];
  kid = await key.register(provider, seeded.provider);
}, 60_000);
afterAll(async () => stack?.close());

const status = (id: string) => `/identities/${id}/status`;
const lastAudit = async (id: string) =>
  (
    await stack.deps.db.query<{ action: string; actor_id: string; data: Record<string, unknown> }>(
      'SELECT action, actor_id, data FROM audit_log WHERE entity_id = :id ORDER BY seq DESC LIMIT 1',
      { id: sql.uuid(id) },
    )
  ).rows[0];

describe('identity status', () => {
  it('an admin suspends an identity: audited with the reason, and it acts on nothing until reactivated', async () => {
    const contract = (await provider.post<Contract>('/contracts', CREATE)).body;
    const suspended = await admin.put<Identity>(status(seeded.consumer), {
      status: 'suspended',
      reason: 'KYC review',
    });
    expect(suspended.status, suspended.text).toBe(200);
    expect(suspended.body).toMatchObject({ status: 'suspended', statusReason: 'KYC review' });
    expect(await lastAudit(seeded.consumer)).toEqual({
      action: 'set-status',
      actor_id: seeded.admin,
      data: { from: 'active', to: 'suspended', reason: 'KYC review' },
    });
    const me = await consumer.get<{ type: string; detail: string }>('/identities/me');
    expect(me.status).toBe(403);
    expect(me.body.type).toMatch(/\/identity-suspended$/);
    expect(me.body.detail).toContain('KYC review');
    const read = await consumer.get(`/contracts/${contract.id}`);
    expect(read.status).toBe(403);
    // Others see it suspended.
    expect((await admin.get<Identity>(`/identities/${seeded.consumer}`)).body.status).toBe('suspended');

    const active = await admin.put<Identity>(status(seeded.consumer), {
      status: 'active',
      reason: 'cleared',
    });
    expect(active.body.status).toBe('active');
    expect((await consumer.get('/identities/me')).status).toBe(200);
  });

  it('a signature checks the status in the database, whatever a container cached', async () => {
    const contract = (await provider.post<Contract>('/contracts', CREATE)).body;
    // The caller as a container cached it, active, while the database has it suspended (as another
    // container's write would leave it).
    const cached = await resolveCaller(stack.deps, seededSubject('provider'));
    expect(cached.status).toBe('active');
    await stack.deps.db.query(
      "UPDATE identities SET status = 'suspended', status_reason = 'elsewhere' WHERE id = :id",
      {
        id: sql.uuid(seeded.provider),
      },
    );
    try {
      const body = { type: 'digital' as const, kid, signature: key.sign(contract.signingPayload) };
      await expect(signContract(stack.deps, cached, contract.id, body, undefined)).rejects.toMatchObject({
        status: 403,
        type: 'identity-suspended',
      });
      const stored = await stack.deps.db.query<{ n: number }>(
        'SELECT jsonb_array_length(signatures)::int AS n FROM contracts WHERE id = :id',
        { id: sql.uuid(contract.id) },
      );
      expect(stored.rows[0]!.n).toBe(0);
    } finally {
      await stack.deps.db.query(
        "UPDATE identities SET status = 'active', status_reason = NULL WHERE id = :id",
        {
          id: sql.uuid(seeded.provider),
        },
      );
    }
  });

  it('only admins change a status, never their own; the status it has is a 409; revoked is final', async () => {
    const created = await admin.post<Identity>('/identities', {
      name: `leaver-${Date.now()}`,
      displayName: 'Leaver',
      roles: ['consumer'],
    });
    const id = created.body.id;
    const denied = await provider.put<{ type: string }>(status(id), { status: 'suspended', reason: 'x' });
    expect(denied.status).toBe(403);
    const own = await admin.put<{ type: string }>(status(seeded.admin), { status: 'suspended', reason: 'x' });
    expect(own.status).toBe(409);
    expect(own.body.type).toMatch(/\/own-status$/);
    const same = await admin.put<{ type: string }>(status(id), { status: 'active', reason: 'x' });
    expect(same.body.type).toMatch(/\/status-unchanged$/);
    expect((await admin.put(status(id), { status: 'revoked', reason: 'left the organisation' })).status).toBe(
      200,
    );
    const back = await admin.put<{ type: string }>(status(id), { status: 'active', reason: 'mistake' });
    expect(back.status).toBe(409);
    expect(back.body.type).toMatch(/\/identity-revoked$/);
    await expect(
      stack.deps.db.query("UPDATE identities SET status = 'active' WHERE id = :id", { id: sql.uuid(id) }),
    ).rejects.toThrow(/revocation is final/);
    const invalid = await admin.put<{ type: string }>(status(id), { status: 'deleted', reason: 'x' });
    expect(invalid.status).toBe(400);
  });
});
