import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seedIdentities } from '../../infra/local/seed.ts';
import { createContract, listContracts, suspendContract } from '../../shared/contracts/contract-service.ts';
import { sql } from '../../shared/database/database.ts';
import { loadMigrations, migrate } from '../../shared/database/migrate.ts';
import type { ContractStatus } from '../../shared/domain/contract.ts';
import type { Identity } from '../../shared/domain/identity.ts';
import { ListContractsQuerySchema } from '../../shared/http/api-schemas.ts';
import { insertIdentity, newIdentity } from '../../shared/identities/identity-service.ts';
import { findIdentity, findIdentityBySubject } from '../../shared/identities/identity-store.ts';
import type { Dependencies } from '../../shared/runtime/dependencies.ts';
import { LocalSigner } from '../../shared/signing/local-signer.ts';
import { CREATE_FIXTURE } from '../support/contracts.ts';
import { ADAPTERS, type OpenedDatabase } from '../support/databases.ts';

/**
 * `GET /contracts` of a party in both roles, on every adapter: the newest of each role are merged into one
 * page in (created_at DESC, id DESC) order, and the cursor walks every contract once, whatever the filters
 * (the list reads each role's index range instead of an `OR` over the party's contracts, see
 * contract-store.ts and migration 0012).
 */
for (const adapter of ADAPTERS) {
  describe.runIf(adapter.available)(`contract lists on ${adapter.name}`, () => {
    let opened: OpenedDatabase;
    let deps: Dependencies;
    let clock = new Date('2027-01-01T00:00:00.000Z');
    let both: Identity;
    let provider: Identity;
    let consumer: Identity;
    /** Every contract `both` is party to: id, creation instant, status. */
    const mine: { id: string; createdAt: string; status: ContractStatus; role: 'provider' | 'consumer' }[] =
      [];

    beforeAll(async () => {
      opened = await adapter.open();
      await migrate(opened.db, await loadMigrations());
      deps = { db: opened.db, signer: await LocalSigner.create(), now: () => clock, newId: randomUUID };
      await seedIdentities(deps);
      provider = (await findIdentityBySubject(opened.db, 'local|provider'))!;
      consumer = (await findIdentityBySubject(opened.db, 'local|consumer'))!;
      const id = randomUUID();
      await insertIdentity(
        deps,
        null,
        newIdentity(deps, {
          id,
          subject: id,
          name: 'both-roles',
          displayName: 'Provider and consumer',
          email: null,
          roles: ['provider', 'consumer'],
        }),
      );
      both = (await findIdentity(opened.db, id))!;
      // 24 contracts in both roles, interleaved in time, two of them at every instant (so ids break ties),
      // every third one suspended; and contracts of others that must never show.
      for (let i = 0; i < 24; i++) {
        clock = new Date(Date.parse('2027-01-01T00:00:00.000Z') + Math.floor(i / 2) * 60_000);
        const asProvider = i % 3 !== 1;
        const creator = asProvider ? both : provider;
        const body = { ...CREATE_FIXTURE, consumerId: asProvider ? consumer.id : both.id };
        const created = (await createContract(deps, creator, body)).body;
        let status: ContractStatus = 'Draft';
        if (i % 3 === 0) {
          await opened.db.query("UPDATE contracts SET status = 'Active' WHERE id = :id", {
            id: sql.uuid(created.id),
          });
          await suspendContract(deps, creator, created.id, 'review', undefined);
          status = 'Suspended';
        }
        mine.push({
          id: created.id,
          createdAt: created.createdAt,
          status,
          role: asProvider ? 'provider' : 'consumer',
        });
        await createContract(deps, provider, { ...CREATE_FIXTURE, consumerId: consumer.id });
      }
    });
    afterAll(async () => opened?.close());

    const newestFirst = (a: (typeof mine)[number], b: (typeof mine)[number]) =>
      a.createdAt === b.createdAt ? (a.id < b.id ? 1 : -1) : a.createdAt < b.createdAt ? 1 : -1;

    /** Every id the caller's pages hold, walking the cursor with pages of `limit`. */
    async function walk(query: Record<string, string>, limit: number): Promise<string[]> {
      const ids: string[] = [];
      let cursor: string | null = null;
      do {
        const parsed = ListContractsQuerySchema.parse({
          ...query,
          limit: String(limit),
          ...(cursor ? { cursor } : {}),
        });
        const { body } = await listContracts(deps, both, parsed);
        expect(body.items.length).toBeLessThanOrEqual(limit);
        ids.push(...body.items.map((c) => c.id));
        cursor = body.nextCursor;
      } while (cursor);
      return ids;
    }

    it('a party sees its contracts of both roles in one order, each once, page after page', async () => {
      const expected = [...mine].sort(newestFirst).map((c) => c.id);
      expect(await walk({}, 5)).toEqual(expected);
      expect(await walk({}, 100)).toEqual(expected);
      expect(await walk({}, 1)).toEqual(expected);
    });

    it('the role, status and counterparty filters select within that order', async () => {
      const expected = (keep: (c: (typeof mine)[number]) => boolean) =>
        [...mine]
          .filter(keep)
          .sort(newestFirst)
          .map((c) => c.id);
      expect(await walk({ role: 'provider' }, 4)).toEqual(expected((c) => c.role === 'provider'));
      expect(await walk({ role: 'consumer' }, 4)).toEqual(expected((c) => c.role === 'consumer'));
      expect(await walk({ status: 'Suspended' }, 3)).toEqual(expected((c) => c.status === 'Suspended'));
      expect(await walk({ role: 'provider', status: 'Draft' }, 3)).toEqual(
        expected((c) => c.role === 'provider' && c.status === 'Draft'),
      );
      expect(await walk({ counterpartyId: provider.id }, 3)).toEqual(expected((c) => c.role === 'consumer'));
      expect(await walk({ counterpartyId: consumer.id, status: 'Draft' }, 3)).toEqual(
        expected((c) => c.role === 'provider' && c.status === 'Draft'),
      );
    });
  });
}
