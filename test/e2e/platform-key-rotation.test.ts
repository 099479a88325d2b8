import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalStack, startLocalStack } from '../../infra/local/local-stack.ts';
import { createCheckpoint } from '../../shared/audit/audit-checkpoints.ts';
import { type EvidenceBundle, verifyEvidence } from '../../shared/contracts/contract-evidence.ts';
import {
  ALIAS_PROPAGATION_MS,
  PLATFORM_KEYS_ENTITY_ID,
  type PlatformKeyRotation,
  type PublishedPlatformKey,
} from '../../shared/signing/platform-key-registry.ts';
import { ApiClient, PartyKey, seeded } from '../support/api-client.ts';
import { verifyEvidenceOffline } from '../support/verify-evidence-offline.ts';

/**
 * The platform key rotated over HTTP on the local stack (its key ring behind an alias, authorised by the
 * IAM stand-in as the rotation route's role): `POST /platform/keys/rotations` publishes a new key and moves
 * the alias; `GET /platform/keys` keeps the old key with its validity window; a contract countersigned
 * before the rotation and one after each verify, offline with `npm run verify-evidence` and on the server,
 * with the keys pinned from `GET /platform/keys`; a window that does not contain the signature fails it.
 */
const CREATE = JSON.parse(readFileSync(new URL('../fixtures/contract-create.json', import.meta.url), 'utf8'));

let stack: LocalStack;
let provider: ApiClient;
let consumer: ApiClient;
let admin: ApiClient;
let dir: string;
const keys = { provider: new PartyKey('ES256'), consumer: new PartyKey('ES256') };
const kids = {} as Record<'provider' | 'consumer', string>;

type Published = { keys: PublishedPlatformKey[] };
const publishedKeys = async () =>
  (await ApiClient.anonymous(stack).get<Published>('/platform/keys')).body.keys;

/** A contract signed by both parties and activated: the platform countersigns it. */
async function activeContract(): Promise<{ id: string; kid: string; signedAt: string }> {
  const created = await provider.post<{ id: string; signingPayload: string }>('/contracts', CREATE);
  expect(created.status, created.text).toBe(201);
  for (const [party, client] of [
    ['provider', provider],
    ['consumer', consumer],
  ] as const) {
    const signed = await client.post(`/contracts/${created.body.id}/sign`, {
      type: 'digital',
      kid: kids[party],
      signature: keys[party].sign(created.body.signingPayload),
    });
    expect(signed.status, signed.text).toBe(200);
  }
  const activated = await consumer.post<{ signatures: { role: string; kid: string; signedAt: string }[] }>(
    `/contracts/${created.body.id}/activate`,
  );
  expect(activated.status, activated.text).toBe(200);
  const platform = activated.body.signatures.find((s) => s.role === 'platform')!;
  return { id: created.body.id, kid: platform.kid, signedAt: platform.signedAt };
}

const verifyOffline = (evidence: unknown, pinned: readonly unknown[]) =>
  verifyEvidenceOffline(dir, evidence, pinned);

let before: Awaited<ReturnType<typeof activeContract>>;
let after: Awaited<ReturnType<typeof activeContract>>;
let rotation: PlatformKeyRotation;
let rotatedAt: number;

beforeAll(async () => {
  stack = await startLocalStack({ scheduledJobs: false });
  provider = await ApiClient.as(stack, 'provider');
  consumer = await ApiClient.as(stack, 'consumer');
  admin = await ApiClient.as(stack, 'admin');
  kids.provider = await keys.provider.register(provider, seeded.provider);
  kids.consumer = await keys.consumer.register(consumer, seeded.consumer);
  dir = mkdtempSync(join(tmpdir(), 'rotation-'));
  before = await activeContract();
  // A checkpoint by the first key, anchoring the first contract's chain.
  expect(await createCheckpoint(stack.deps)).not.toBeNull();
}, 120_000);
afterAll(async () => {
  rmSync(dir, { recursive: true, force: true });
  await stack?.close();
});

describe('the platform key, rotated over HTTP', () => {
  it('is published from its first countersignature, without an end', async () => {
    expect(await publishedKeys()).toEqual([
      expect.objectContaining({ kid: before.kid, kty: 'EC', crv: 'P-256', alg: 'ES256', use: 'sig' }),
    ]);
    const [key] = await publishedKeys();
    expect(Date.parse(key!.validFrom)).toBeLessThanOrEqual(Date.parse(before.signedAt));
    expect(key).not.toHaveProperty('validUntil');
  });

  it('is rotated by an admin only: anyone else is refused and nothing moves', async () => {
    const published = await publishedKeys();
    for (const who of [provider, consumer, await ApiClient.as(stack, 'auditor')]) {
      const refused = await who.post<{ type: string }>('/platform/keys/rotations');
      expect(refused.status).toBe(403);
      expect(refused.headers.get('content-type')).toBe('application/problem+json');
    }
    expect((await ApiClient.anonymous(stack).post('/platform/keys/rotations')).status).toBe(401);
    expect(await publishedKeys()).toEqual(published);
  });

  it('publishes the new key, moves the alias, and keeps the old key with its window', async () => {
    rotatedAt = Date.now();
    const res = await admin.post<PlatformKeyRotation>('/platform/keys/rotations');
    expect(res.status, res.text).toBe(201);
    rotation = res.body;
    expect(rotation.retired.map((k) => k.kid)).toEqual([before.kid]);
    const retiredUntil = Date.parse(rotation.retired[0]!.validUntil!);
    expect(retiredUntil - Date.parse(rotation.key.validFrom)).toBeGreaterThanOrEqual(ALIAS_PROPAGATION_MS);
    expect(retiredUntil - rotatedAt).toBeLessThanOrEqual(ALIAS_PROPAGATION_MS + 60_000);
    expect(await publishedKeys()).toEqual([rotation.key, rotation.retired[0]]);
    after = await activeContract();
    expect(after.kid).toBe(rotation.key.kid);
    expect(after.kid).not.toBe(before.kid);
  });

  it("is audited on the platform keys' chain, readable by auditors", async () => {
    const auditor = await ApiClient.as(stack, 'auditor');
    const trail = await auditor.get<{
      records: { action: string; actorId: string; data: { kid: string; retired: string[] } }[];
      verification: { valid: boolean };
    }>(`/audit?entityId=${PLATFORM_KEYS_ENTITY_ID}`);
    expect(trail.status, trail.text).toBe(200);
    expect(trail.body.records).toEqual([
      expect.objectContaining({
        action: 'rotate',
        actorId: seeded.admin,
        data: expect.objectContaining({ kid: rotation.key.kid, retired: [before.kid] }),
      }),
    ]);
    expect(trail.body.verification.valid).toBe(true);
  });

  it("leaves every countersignature verifiable: the old key's and the new one's, offline and on the server", async () => {
    expect(await createCheckpoint(stack.deps)).not.toBeNull();
    const pinned = await publishedKeys();
    for (const contract of [before, after]) {
      const evidence = await consumer.get<EvidenceBundle>(`/contracts/${contract.id}/evidence`);
      expect(evidence.status).toBe(200);
      const verdict = verifyEvidence(evidence.body, { pinnedPlatformKeys: pinned });
      expect(verdict.checks.filter((c) => !c.ok)).toEqual([]);
      expect(evidence.body.signatures.find((s) => s.role === 'platform')!.kid).toBe(contract.kid);
      const { status, stdout } = verifyOffline(evidence.body, pinned);
      expect(stdout.trim().split('\n').at(-1)).toBe('evidence: valid');
      expect(status).toBe(0);
      const server = await consumer.get<{ valid: boolean }>(
        `/contracts/${contract.id}/signatures/verification`,
      );
      expect(server.body.valid).toBe(true);
    }
  });

  it("fails a countersignature outside its key's published window, and a key published without one", async () => {
    const pinned = await publishedKeys();
    const evidence = (await consumer.get<EvidenceBundle>(`/contracts/${before.id}/evidence`)).body;
    const platformCheck = `signature:platform:${before.kid}`;
    const failing = (keys: unknown[]) =>
      verifyEvidence(evidence, { pinnedPlatformKeys: keys as Record<string, unknown>[] }).checks.filter(
        (c) => !c.ok,
      );
    const ended = pinned.map((k) =>
      k.kid === before.kid
        ? { ...k, validUntil: new Date(Date.parse(before.signedAt) - 1).toISOString() }
        : k,
    );
    expect(failing(ended).map((c) => c.check)).toContain(platformCheck);
    expect(failing(ended).find((c) => c.check === platformCheck)!.detail).toMatch(
      /after platform key \S+ was retired/,
    );
    const later = pinned.map((k) =>
      k.kid === before.kid ? { ...k, validFrom: new Date(Date.parse(before.signedAt) + 1).toISOString() } : k,
    );
    expect(failing(later).find((c) => c.check === platformCheck)!.detail).toMatch(
      /before platform key \S+ was valid/,
    );
    const bare = pinned.map(({ validFrom: _f, validUntil: _u, ...k }) => k);
    expect(failing(bare).find((c) => c.check === platformCheck)!.detail).toMatch(/has no validity window/);
    // Offline too: the command exits 1 and names the check.
    const { status, stdout } = verifyOffline(evidence, ended);
    expect(status).toBe(1);
    expect(stdout).toMatch(new RegExp(`^FAIL ${platformCheck}: signed at \\S+, after platform key`, 'm'));
  });
});
