import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { seedIdentities } from '../../infra/local/seed.ts';
import type { Database } from '../../shared/database/database.ts';
import { loadMigrations, migrate } from '../../shared/database/migrate.ts';
import type { Identity } from '../../shared/domain/identity.ts';
import { registerKey } from '../../shared/identities/identity-service.ts';
import { findIdentityBySubject, listKeys } from '../../shared/identities/identity-store.ts';
import type { Dependencies } from '../../shared/runtime/dependencies.ts';
import { LocalSigner } from '../../shared/signing/local-signer.ts';
import { PartyKey } from '../support/api-client.ts';
import { ADAPTERS, type OpenedDatabase } from '../support/databases.ts';

/**
 * Two registrations of one key material racing: the service's look-up finds nothing for either, and the
 * unique index on the thumbprint decides. The race is made deterministic by letting the other registration
 * run, for real, right after the first one's look-up.
 */
let opened: OpenedDatabase;
let deps: Dependencies;
let provider: Identity;
let consumer: Identity;

beforeAll(async () => {
  opened = await ADAPTERS.find((a) => a.name === 'pglite')!.open();
  await migrate(opened.db, await loadMigrations());
  deps = { db: opened.db, signer: await LocalSigner.create(), now: () => new Date(), newId: randomUUID };
  await seedIdentities(deps);
  provider = (await findIdentityBySubject(opened.db, 'local|provider'))!;
  consumer = (await findIdentityBySubject(opened.db, 'local|consumer'))!;
});
afterAll(async () => opened?.close());

/** `db`, except that `between` runs once, after the first key-conflict look-up has answered. */
function withRaceAfterLookup(db: Database, between: () => Promise<unknown>): Database {
  let raced = false;
  return {
    ...db,
    transaction: db.transaction.bind(db),
    close: db.close.bind(db),
    async query(text, params) {
      const result = await db.query(text, params);
      if (!raced && text.includes('AS same_material')) {
        raced = true;
        await between();
      }
      return result as never;
    },
  } as Database;
}

it('a registration that loses the race for the same material answers 409 key-exists and stores nothing', async () => {
  const key = new PartyKey('EdDSA');
  const consumerBody = await key.registration(consumer.id);
  const providerBody = await key.registration(provider.id);
  const racing: Dependencies = {
    ...deps,
    db: withRaceAfterLookup(opened.db, () => registerKey(deps, provider, provider.id, providerBody)),
  };
  await expect(registerKey(racing, consumer, consumer.id, consumerBody)).rejects.toMatchObject({
    status: 409,
    type: 'key-exists',
  });
  expect((await listKeys(opened.db, provider.id)).map((k) => k.jwk.x)).toEqual([key.publicJwk.x]);
  expect(await listKeys(opened.db, consumer.id)).toEqual([]);
});
