import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalStack, startLocalStack } from '../../infra/local/local-stack.ts';
import { sql } from '../../shared/database/database.ts';
import { ApiClient, PartyKey, seeded } from '../support/api-client.ts';
import { refusalChecker } from '../support/refusals.ts';

/**
 * A signing key's lifecycle over HTTP: rotation registers the successor (with its proof of possession) and
 * retires the old key after a grace period; revocation ends a key at once; either is audited with its
 * event. A key is used only inside its window: a retired or revoked key signs nothing new, while what it
 * signed before stays verifiable. Revocation is final, in the database itself. Refusals change nothing.
 */
const CREATE = JSON.parse(readFileSync(new URL('../fixtures/contract-create.json', import.meta.url), 'utf8'));
type Key = { kid: string; notAfter: string | null; revokedAt: string | null; createdAt: string };
type Contract = { id: string; signingPayload: string; status: string };

let stack: LocalStack;
let provider: ApiClient;
let consumer: ApiClient;
let admin: ApiClient;
let consumerKey: PartyKey;
let consumerKid: string;

beforeAll(async () => {
  stack = await startLocalStack({ scheduledJobs: false });
  [provider, consumer, admin] = (await Promise.all(
    (['provider', 'consumer', 'admin'] as const).map((n) => ApiClient.as(stack, n)),
  )) as [ApiClient, ApiClient, ApiClient];
  consumerKey = new PartyKey('ES256');
  consumerKid = await consumerKey.register(consumer, seeded.consumer);
});
afterAll(async () => stack?.close());

const keys = (id: string) => `/identities/${id}/keys`;

async function snapshot(): Promise<string> {
  const { rows } = await stack.deps.db.query(`SELECT
    (SELECT json_agg(json_build_object('kid', kid, 'notAfter', not_after, 'revokedAt', revoked_at) ORDER BY identity_id, kid) FROM identity_keys) AS keys,
    (SELECT coalesce(sum(version), 0) FROM identities)::int AS versions,
    (SELECT count(*) FROM audit_log WHERE entity_type <> 'security-refusal')::int AS audit,
    (SELECT count(*) FROM outbox)::int AS outbox`);
  return JSON.stringify(rows[0]);
}

const refused = refusalChecker(snapshot);

/** A new contract signed by the provider with (kid, key): the answer to the sign request. */
async function signNew(key: PartyKey, kid: string) {
  const contract = (await provider.post<Contract>('/contracts', CREATE)).body;
  const res = await provider.post<Contract>(`/contracts/${contract.id}/sign`, {
    type: 'digital',
    kid,
    signature: key.sign(contract.signingPayload),
  });
  return { contract, res };
}

async function rotate(kid: string, successor: PartyKey, extra: Record<string, unknown> = {}) {
  return provider.post<{ successor: Key; retiring: Key }>(`${keys(seeded.provider)}/${kid}/rotate`, {
    ...(await successor.registration(seeded.provider)),
    ...extra,
  });
}

describe('rotation', () => {
  it('registers the successor and retires the old key after the grace period, audited', async () => {
    const old = new PartyKey('ES256');
    const oldKid = await old.register(provider, seeded.provider);
    const successor = new PartyKey('EdDSA');
    const res = await rotate(oldKid, successor);
    expect(res.status, res.text).toBe(201);
    expect(res.body.retiring.kid).toBe(oldKid);
    expect(Date.parse(res.body.retiring.notAfter!) - Date.parse(res.body.successor.createdAt)).toBe(
      86_400_000,
    );
    expect(res.body.successor.notAfter).toBeNull();
    const listed = (await consumer.get<{ keys: Key[] }>(keys(seeded.provider))).body.keys;
    expect(listed.find((k) => k.kid === oldKid)!.notAfter).toBe(res.body.retiring.notAfter);
    // Within the grace period the old key still signs; the successor signs too.
    expect((await signNew(old, oldKid)).res.status).toBe(200);
    expect((await signNew(successor, res.body.successor.kid)).res.status).toBe(200);
    // A key rotated once is not rotated again.
    await refused(() => rotate(oldKid, new PartyKey('ES256')), 409, 'key-not-active');
    const trail = await admin.get<{ records: { action: string; data: Record<string, unknown> }[] }>(
      `/audit?entityId=${seeded.provider}`,
    );
    expect(trail.body.records.at(-1)).toMatchObject({
      action: 'rotate-key',
      data: { kid: oldKid, successor: res.body.successor.kid, notAfter: res.body.retiring.notAfter },
    });
  });

  it('retires the old key at once with graceSeconds 0: it signs nothing more', async () => {
    const old = new PartyKey('ES384');
    const oldKid = await old.register(provider, seeded.provider);
    expect((await rotate(oldKid, new PartyKey('ES256'), { graceSeconds: 0 })).status).toBe(201);
    const { res } = await signNew(old, oldKid);
    expect(res.status).toBe(422);
    expect((res.body as unknown as { type: string; detail: string }).detail).toMatch(/retired at/);
  });

  it('refuses a successor without its proof, a grace over 30 days, an unknown key, and another identity', async () => {
    const oldKid = await new PartyKey('ES256').register(provider, seeded.provider);
    const successor = new PartyKey('ES256');
    const registration = await successor.registration(seeded.provider);
    await refused(
      async () =>
        provider.post(`${keys(seeded.provider)}/${oldKid}/rotate`, {
          ...registration,
          proof: (await new PartyKey('ES256').registration(seeded.provider)).proof,
        }),
      422,
      'invalid-proof',
    );
    await refused(
      () => rotate(oldKid, successor, { graceSeconds: 30 * 86_400 + 1 }),
      400,
      'validation-failed',
    );
    await refused(() => rotate('no-such-key', successor), 404, 'not-found');
    await refused(
      async () =>
        consumer.post(
          `${keys(seeded.provider)}/${oldKid}/rotate`,
          await successor.registration(seeded.provider),
        ),
      403,
      'forbidden',
    );
  });
});

describe('revocation', () => {
  it('ends a key at once: it signs nothing more, is revoked once, and only by its identity or an admin', async () => {
    const key = new PartyKey('ES256');
    const kid = await key.register(provider, seeded.provider);
    await refused(() => consumer.delete(`${keys(seeded.provider)}/${kid}`), 403, 'forbidden');
    const res = await provider.delete<Key>(`${keys(seeded.provider)}/${kid}`);
    expect(res.status, res.text).toBe(200);
    expect(res.body.revokedAt).not.toBeNull();
    const { res: signed } = await signNew(key, kid);
    expect(signed.status).toBe(422);
    expect((signed.body as unknown as { detail: string }).detail).toMatch(/revoked at/);
    await refused(() => provider.delete(`${keys(seeded.provider)}/${kid}`), 409, 'key-not-active');
    await refused(() => provider.delete(`${keys(seeded.provider)}/unknown-kid`), 404, 'not-found');
    // An admin may revoke any identity's key.
    const other = await new PartyKey('ES256').register(provider, seeded.provider);
    expect((await admin.delete(`${keys(seeded.provider)}/${other}`)).status).toBe(200);
  });

  it("keeps what a key signed before its revocation verifiable, and the contract's evidence valid", async () => {
    const key = new PartyKey('ES256');
    const kid = await key.register(provider, seeded.provider);
    const { contract, res } = await signNew(key, kid);
    expect(res.status).toBe(200);
    const countersigned = await consumer.post(`/contracts/${contract.id}/sign`, {
      type: 'digital',
      kid: consumerKid,
      signature: consumerKey.sign(contract.signingPayload),
    });
    expect(countersigned.status).toBe(200);
    expect((await consumer.post<Contract>(`/contracts/${contract.id}/activate`)).body.status).toBe('Active');
    expect((await provider.delete(`${keys(seeded.provider)}/${kid}`)).status).toBe(200);
    const verification = await consumer.get<{
      valid: boolean;
      signatures: { role: string; valid: boolean; reason: string | null }[];
    }>(`/contracts/${contract.id}/signatures/verification`);
    expect(verification.body.valid).toBe(true);
    expect(verification.body.signatures.every((s) => s.valid)).toBe(true);
    // The evidence shows the key's revocation, after the signature.
    const evidence = await consumer.get<{
      signatures: { role: string; signedAt: string; key: Key | null }[];
    }>(`/contracts/${contract.id}/evidence`);
    const signature = evidence.body.signatures.find((s) => s.role === 'provider')!;
    expect(Date.parse(signature.key!.revokedAt!)).toBeGreaterThan(Date.parse(signature.signedAt));
  });

  it('is final in the database: no write clears a revocation or postpones a retirement', async () => {
    const kid = await new PartyKey('ES256').register(provider, seeded.provider);
    expect((await provider.delete(`${keys(seeded.provider)}/${kid}`)).status).toBe(200);
    const where = { id: sql.uuid(seeded.provider), kid: sql.text(kid) };
    await expect(
      stack.deps.db.query(
        'UPDATE identity_keys SET revoked_at = NULL WHERE identity_id = :id AND kid = :kid',
        where,
      ),
    ).rejects.toThrow(/a revocation is final/);
    const rotated = await new PartyKey('ES256').register(provider, seeded.provider);
    expect((await rotate(rotated, new PartyKey('ES256'))).status).toBe(201);
    await expect(
      stack.deps.db.query(
        "UPDATE identity_keys SET not_after = not_after + interval '1 day' WHERE identity_id = :id AND kid = :kid",
        { id: sql.uuid(seeded.provider), kid: sql.text(rotated) },
      ),
    ).rejects.toThrow(/may only be brought forward/);
  });
});
