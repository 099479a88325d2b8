import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seedIdentities } from '../../infra/local/seed.ts';
import { DatabaseError, sql, UNIQUE_VIOLATION } from '../../shared/database/database.ts';
import { loadMigrations, migrate } from '../../shared/database/migrate.ts';
import { splitStatements } from '../../shared/database/named-parameters.ts';
import { keyThumbprint } from '../../shared/domain/key-registration.ts';
import { LocalSigner } from '../../shared/signing/local-signer.ts';
import { PartyKey, seeded } from '../support/api-client.ts';
import { ADAPTERS, type OpenedDatabase } from '../support/databases.ts';

/**
 * Migration 0008 over keys registered before it, on every database adapter: thumbprints computed in SQL
 * match RFC 7638 (known answers and jose), material shared by two identities is revoked everywhere, and the
 * new keys (kid per identity, one identity per material) hold.
 */
const MIGRATION = '0008-identity-keys.sql';
const RFC_7638_KEY = {
  kty: 'RSA',
  n: '0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw',
  e: 'AQAB',
};
const RFC_8037_KEY = { kty: 'OKP', crv: 'Ed25519', x: '11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo' };

type KeyRow = {
  identity_id: string;
  kid: string;
  thumbprint: string;
  binds_material: boolean;
  revoked: boolean;
};

for (const adapter of ADAPTERS) {
  describe.runIf(adapter.available)(`migration ${MIGRATION} on ${adapter.name}`, () => {
    let opened: OpenedDatabase;
    const ecKey = new PartyKey('ES256').publicJwk;
    let rows: Map<string, KeyRow>;

    /** A key row as the code before 0008 wrote it (kid globally unique, no thumbprint). */
    async function legacyKey(identityId: string, kid: string, jwk: object, createdAt: string, alg = 'EdDSA') {
      await opened.db.query(
        `INSERT INTO identity_keys (kid, identity_id, alg, jwk, created_at)
         VALUES (:kid, :identity_id, :alg, :jwk, :created_at)`,
        {
          kid: sql.text(kid),
          identity_id: sql.uuid(identityId),
          alg: sql.text(alg),
          jwk: sql.json(jwk),
          created_at: sql.timestamp(createdAt),
        },
      );
    }

    async function keyRows(): Promise<Map<string, KeyRow>> {
      const { rows } = await opened.db.query<KeyRow>(
        `SELECT identity_id, kid, thumbprint, binds_material, revoked_at IS NOT NULL AS revoked
         FROM identity_keys`,
      );
      return new Map(rows.map((r) => [`${r.identity_id}/${r.kid}`, r]));
    }

    beforeAll(async () => {
      opened = await adapter.open();
      const all = (await loadMigrations()).filter((m) => m.name <= MIGRATION);
      await migrate(
        opened.db,
        all.filter((m) => m.name < MIGRATION),
      );
      const deps = {
        db: opened.db,
        signer: await LocalSigner.create(),
        now: () => new Date(),
        newId: randomUUID,
      };
      await seedIdentities(deps);
      await legacyKey(seeded.provider, '2011-04-29', RFC_7638_KEY, '2026-01-01 00:00:00', 'PS256');
      // The reported attack: the consumer registered the provider's published key after the provider.
      await legacyKey(seeded.provider, 'provider-ed', RFC_8037_KEY, '2026-01-02 00:00:00');
      await legacyKey(seeded.consumer, 'copied', RFC_8037_KEY, '2026-01-03 00:00:00');
      // One identity with the same material under two kids.
      await legacyKey(seeded.consumer, 'ec-1', ecKey, '2026-01-04 00:00:00', 'ES256');
      await legacyKey(seeded.consumer, 'ec-2', ecKey, '2026-01-05 00:00:00', 'ES256');
      expect(await migrate(opened.db, all)).toEqual([MIGRATION]);
      rows = await keyRows();
    });
    afterAll(async () => opened?.close());

    const row = (identityId: string, kid: string) => rows.get(`${identityId}/${kid}`)!;

    it('computes RFC 7638 thumbprints in SQL: the RFC 7638 §3.1 and RFC 8037 A.3 known answers, and jose for EC', async () => {
      expect(row(seeded.provider, '2011-04-29').thumbprint).toBe(
        'NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs',
      );
      expect(row(seeded.provider, 'provider-ed').thumbprint).toBe(
        'kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k',
      );
      expect(row(seeded.consumer, 'ec-1').thumbprint).toBe(await keyThumbprint(ecKey));
    });

    it('revokes every row of material two identities registered, the earliest too, and unbinds them', () => {
      for (const [id, kid] of [
        [seeded.provider, 'provider-ed'],
        [seeded.consumer, 'copied'],
      ] as const)
        expect(row(id, kid)).toMatchObject({ revoked: true, binds_material: false });
      expect(row(seeded.provider, '2011-04-29')).toMatchObject({ revoked: false, binds_material: true });
    });

    it("keeps one identity's duplicate kids usable, the earliest holding the binding", () => {
      expect(row(seeded.consumer, 'ec-1')).toMatchObject({ revoked: false, binds_material: true });
      expect(row(seeded.consumer, 'ec-2')).toMatchObject({ revoked: false, binds_material: false });
    });

    it('then binds material to one identity, names kids per identity, and a second run changes nothing', async () => {
      const insert = (identityId: string, kid: string, thumbprint: string) =>
        opened.db.query(
          `INSERT INTO identity_keys (identity_id, kid, alg, jwk, thumbprint, created_at)
           VALUES (:identity_id, :kid, 'EdDSA', '{}'::jsonb, :thumbprint, now())`,
          { identity_id: sql.uuid(identityId), kid: sql.text(kid), thumbprint: sql.text(thumbprint) },
        );
      const uniqueViolation = (e: unknown) => e instanceof DatabaseError && e.code === UNIQUE_VIOLATION;
      // the same kid in another identity is fine; the same material, under any kid, is not
      await insert(seeded.outsider, '2011-04-29', 'another-thumbprint');
      await expect(
        insert(seeded.outsider, 'mine', 'NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs'),
      ).rejects.toSatisfy(uniqueViolation);
      await expect(insert(seeded.provider, '2011-04-29', 'third-thumbprint')).rejects.toSatisfy(
        uniqueViolation,
      );
      // the holder of the revoked shared material registers it again
      await insert(seeded.provider, 're-registered', 'kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k');
      const before = await keyRows();
      const script = (await loadMigrations()).find((m) => m.name === MIGRATION)!.script;
      for (const statement of splitStatements(script)) await opened.db.query(statement);
      expect(await keyRows()).toEqual(before);
      expect(before.get(`${seeded.provider}/re-registered`)).toMatchObject({
        revoked: false,
        binds_material: true,
      });
    });
  });
}
