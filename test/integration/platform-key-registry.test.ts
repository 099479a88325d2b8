/**
 * The registry of the platform's countersigning keys (shared/signing/platform-key-registry.ts, migration
 * 0018) on every database adapter, with the local key ring (real P-256 keys behind an alias): the first
 * signature registers its key, a rotation publishes the new key before the alias moves and retires the old
 * one after the alias's propagation window, audited on the platform keys' chain, and a signature outside its
 * key's window is refused rather than stored. The registry's trigger keeps a retirement final.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { seedIdentities } from '../../infra/local/seed.ts';
import { verifyChain } from '../../shared/audit/audit-chain.ts';
import { listAuditRecords } from '../../shared/audit/audit-store.ts';
import { loadMigrations, migrate } from '../../shared/database/migrate.ts';
import type { Identity } from '../../shared/domain/identity.ts';
import { findIdentityBySubject } from '../../shared/identities/identity-store.ts';
import type { Dependencies } from '../../shared/runtime/dependencies.ts';
import { LocalSigner } from '../../shared/signing/local-signer.ts';
import { verifyPartySignature } from '../../shared/signing/party-signatures.ts';
import {
  ALIAS_PROPAGATION_MS,
  countersign,
  listPlatformKeys,
  PLATFORM_KEYS_ENTITY_ID,
  rotatePlatformKey,
} from '../../shared/signing/platform-key-registry.ts';
import { platformKeyAt } from '../../shared/signing/signer.ts';
import { ADAPTERS, type OpenedDatabase } from '../support/databases.ts';

const T0 = Date.parse('2027-03-01T09:00:00.000Z');
const iso = (ms: number) => new Date(ms).toISOString();

for (const adapter of ADAPTERS) {
  describe.runIf(adapter.available)(`platform key registry on ${adapter.name}`, () => {
    let opened: OpenedDatabase;
    let deps: Dependencies;
    let keys: LocalSigner;
    let clock: number;
    let admin: Identity;
    let provider: Identity;

    beforeAll(async () => {
      opened = await adapter.open();
      await migrate(opened.db, await loadMigrations());
      keys = await LocalSigner.create();
      deps = {
        db: opened.db,
        signer: keys,
        platformKeys: keys,
        now: () => new Date(clock),
        newId: randomUUID,
      };
      clock = T0;
      await seedIdentities(deps);
      admin = (await findIdentityBySubject(opened.db, 'local|admin'))!;
      provider = (await findIdentityBySubject(opened.db, 'local|provider'))!;
    });
    afterAll(async () => opened?.close());
    beforeEach(() => {
      clock += 60_000;
    });

    it('publishes nothing before the first signature, then the key that made it, valid from then', async () => {
      expect(await listPlatformKeys(opened.db)).toEqual([]);
      const at = iso(clock);
      const signed = await countersign(deps, 'first', at);
      const published = await listPlatformKeys(opened.db);
      expect(published).toEqual([{ ...(await keys.sign(new Uint8Array())).key.jwk, validFrom: at }]);
      expect(verifyPartySignature('ES256', published[0]!, Buffer.from('first'), signed.signature)).toBe(true);
      // Signing again registers nothing more.
      await countersign(deps, 'second', iso(clock + 1));
      expect(await listPlatformKeys(opened.db)).toHaveLength(1);
    });

    it('refuses a signature dated before its key was valid, as transient (the caller retries), storing nothing', async () => {
      const [current] = await listPlatformKeys(opened.db);
      await expect(countersign(deps, 'early', iso(Date.parse(current!.validFrom) - 1))).rejects.toMatchObject(
        {
          name: 'SignerError',
          transient: true,
          message: expect.stringContaining('the signing alias is moving'),
        },
      );
      expect(await listPlatformKeys(opened.db)).toHaveLength(1);
    });

    it('a non-admin may not rotate: nothing is created, moved or published', async () => {
      const before = await listPlatformKeys(opened.db);
      const alias = keys.currentKeyId;
      await expect(rotatePlatformKey(deps, provider)).rejects.toMatchObject({ name: 'ForbiddenError' });
      expect(keys.currentKeyId).toBe(alias);
      expect(await listPlatformKeys(opened.db)).toEqual(before);
    });

    it('a rotation publishes the new key, moves the alias, retires the old key after the propagation window, audited', async () => {
      const [old] = await listPlatformKeys(opened.db);
      const at = clock;
      const rotated = await rotatePlatformKey(deps, admin);
      expect(rotated.status).toBe(201);
      const retiredAt = iso(at + ALIAS_PROPAGATION_MS);
      expect(rotated.body.retired).toEqual([{ ...old, validUntil: retiredAt }]);
      expect(rotated.body.key).toMatchObject({ kty: 'EC', crv: 'P-256', alg: 'ES256', validFrom: iso(at) });
      expect(rotated.body.key).not.toHaveProperty('validUntil');
      expect(await listPlatformKeys(opened.db)).toEqual([
        rotated.body.key,
        { ...old, validUntil: retiredAt },
      ]);
      // The alias names the new key: the next signature is its, within its window.
      clock += 1000;
      const next = await countersign(deps, 'after', iso(clock));
      expect(next.kid).toBe(rotated.body.key.kid);
      // The old key's signatures stay verifiable by the published window; a new one by it is refused.
      const published = await listPlatformKeys(opened.db);
      expect('jwk' in platformKeyAt(published, old!.kid, iso(at - 1))).toBe(true);
      expect(platformKeyAt(published, old!.kid, iso(at + ALIAS_PROPAGATION_MS + 1))).toEqual({
        issue: `signed at ${iso(at + ALIAS_PROPAGATION_MS + 1)}, after platform key ${old!.kid} was retired (${retiredAt})`,
      });
      // Audited on the platform keys' own chain, by the admin, with the event for EventBridge.
      const records = await listAuditRecords(opened.db, PLATFORM_KEYS_ENTITY_ID, 0, 10);
      expect(records).toHaveLength(1);
      expect(records[0]).toMatchObject({
        entityType: 'platform-keys',
        seq: 1,
        action: 'rotate',
        actorId: admin.id,
        data: { kid: rotated.body.key.kid, retired: [old!.kid], retiredAt },
      });
      expect(verifyChain(records).valid).toBe(true);
      const { rows: events } = await opened.db.query<{ event_type: string }>(
        "SELECT event_type FROM outbox WHERE aggregate_type = 'platform-keys'",
      );
      expect(events).toEqual([{ event_type: 'PlatformKeyRotated' }]);
    });

    it('refuses a signature by a retired key past its window (an alias moved back by hand)', async () => {
      const published = await listPlatformKeys(opened.db);
      const retired = published.find((k) => k.validUntil !== undefined)!;
      const keyId = (
        await opened.db.query<{ key_id: string }>('SELECT key_id FROM platform_keys WHERE kid = :kid', {
          kid: { type: 'text', value: retired.kid },
        })
      ).rows[0]!.key_id;
      const current = keys.currentKeyId;
      await keys.moveAlias(keyId);
      try {
        await expect(
          countersign(deps, 'late', iso(Date.parse(retired.validUntil!) + 1)),
        ).rejects.toMatchObject({ name: 'SignerError', transient: true });
        // Within its window (the alias still propagating) it signs.
        await expect(countersign(deps, 'in time', retired.validUntil!)).resolves.toMatchObject({
          kid: retired.kid,
        });
      } finally {
        await keys.moveAlias(current);
      }
    });

    it("a second rotation retires the first one's key and chains its audit record", async () => {
      const [current] = await listPlatformKeys(opened.db);
      const rotated = await rotatePlatformKey(deps, admin);
      expect(rotated.body.retired.map((k) => k.kid)).toEqual([current!.kid]);
      const published = await listPlatformKeys(opened.db);
      expect(published.map((k) => k.kid)).toEqual([rotated.body.key.kid, current!.kid, published[2]!.kid]);
      expect(published.filter((k) => k.validUntil === undefined)).toHaveLength(1);
      const records = await listAuditRecords(opened.db, PLATFORM_KEYS_ENTITY_ID, 0, 10);
      expect(records.map((r) => r.seq)).toEqual([1, 2]);
      expect(verifyChain(records).valid).toBe(true);
    });

    it('keeps a retirement final and a key immutable (the trigger and the grants)', async () => {
      const retired = (await listPlatformKeys(opened.db)).find((k) => k.validUntil !== undefined)!;
      await expect(
        opened.db.query('UPDATE platform_keys SET valid_until = NULL WHERE kid = :kid', {
          kid: { type: 'text', value: retired.kid },
        }),
      ).rejects.toThrow(/a retirement is final/);
      await expect(
        opened.db.query(
          "INSERT INTO platform_keys (kid, key_id, jwk, valid_from) VALUES ('a', 'b', '{\"kid\":\"c\"}', now())",
        ),
      ).rejects.toThrow(/platform_keys_kid/);
    });
  });
}

describe.runIf(ADAPTERS.find((a) => a.name === 'postgres')!.available)(
  'rotations at once (PostgreSQL server)',
  () => {
    it('one rotation at a time: the other is a 409 and changes nothing', async () => {
      const opened = await ADAPTERS.find((a) => a.name === 'postgres')!.open();
      try {
        await migrate(opened.db, await loadMigrations());
        const keys = await LocalSigner.create();
        let release: () => void = () => undefined;
        const held = new Promise<void>((resolve) => {
          release = resolve;
        });
        let created = 0;
        // The first rotation holds its lock while KMS creates its key; the second arrives meanwhile.
        const slow = {
          createSigningKey: async () => {
            created++;
            await held;
            return keys.createSigningKey();
          },
          moveAlias: (keyId: string) => keys.moveAlias(keyId),
        };
        const deps: Dependencies = {
          db: opened.db,
          signer: keys,
          platformKeys: slow,
          now: () => new Date(),
          newId: randomUUID,
        };
        await seedIdentities(deps);
        const admin = (await findIdentityBySubject(opened.db, 'local|admin'))!;
        const first = rotatePlatformKey(deps, admin);
        while (created === 0) await new Promise((r) => setTimeout(r, 5));
        await expect(rotatePlatformKey(deps, admin)).rejects.toMatchObject({
          type: 'rotation-in-progress',
          status: 409,
        });
        expect(created).toBe(1);
        release();
        expect((await first).status).toBe(201);
        expect(await listPlatformKeys(opened.db)).toHaveLength(1);
      } finally {
        await opened.close();
      }
    });
  },
);
