import { seedIdentities } from '../../infra/local/seed.ts';
import { activateContract, createContract, signContract } from '../../shared/contracts/contract-service.ts';
import { approveMeasurementSet, proposeMeasurementSet } from '../../shared/contracts/measurement-service.ts';
import type { CreateContract } from '../../shared/domain/contract.ts';
import type { Identity } from '../../shared/domain/identity.ts';
import type { ProposeMeasurements } from '../../shared/domain/measurement-set.ts';
import { registerKey } from '../../shared/identities/identity-service.ts';
import { findIdentityBySubject } from '../../shared/identities/identity-store.ts';
import type { Dependencies } from '../../shared/runtime/dependencies.ts';
import { PartyKey } from './api-client.ts';
import { CREATE_FIXTURE } from './contracts.ts';

export type Party = 'provider' | 'consumer';

/**
 * The seeded parties of a migrated database, each with a registered signing key, and the real use cases
 * that make an Active contract and a both-party-approved measurement set, so "Active" and "Approved" in
 * a test mean what they mean in production.
 */
export interface ContractParties {
  readonly provider: Identity;
  readonly consumer: Identity;
  readonly outsider: Identity;
  /** A contract (the fixture's, or `body`) signed by both parties and countersigned by the platform. */
  activeContract(body?: CreateContract): Promise<string>;
  /** Proposes `m` and has it approved by `approvedBy`, with their real signatures; returns the set id. */
  measurementSet(contractId: string, m: ProposeMeasurements, approvedBy?: readonly Party[]): Promise<string>;
}

export async function contractParties(deps: Dependencies): Promise<ContractParties> {
  await seedIdentities(deps);
  const identity = async (name: string) => (await findIdentityBySubject(deps.db, `local|${name}`))!;
  const who = { provider: await identity('provider'), consumer: await identity('consumer') };
  const keys = { provider: new PartyKey('ES384'), consumer: new PartyKey('ES256') };
  const kids = { provider: '', consumer: '' };
  for (const party of ['provider', 'consumer'] as const) {
    const { body } = await registerKey(
      deps,
      who[party],
      who[party].id,
      await keys[party].registration(who[party].id),
    );
    kids[party] = body.kid;
  }
  const sign = (party: Party, payload: string) => ({
    kid: kids[party],
    signature: keys[party].sign(payload),
  });

  return {
    ...who,
    outsider: await identity('outsider'),
    async activeContract(body = CREATE_FIXTURE) {
      const created = await createContract(deps, who.provider, body);
      const id = created.body.id;
      for (const party of ['provider', 'consumer'] as const) {
        await signContract(
          deps,
          who[party],
          id,
          { type: 'digital', ...sign(party, created.body.signingPayload) },
          undefined,
        );
      }
      const activated = await activateContract(deps, who.provider, id, undefined);
      if (activated.body?.status !== 'Active') throw new Error('the contract did not become Active');
      return id;
    },
    async measurementSet(contractId, m, approvedBy = ['provider', 'consumer']) {
      const proposed = await proposeMeasurementSet(deps, who.provider, contractId, m);
      for (const party of approvedBy) {
        await approveMeasurementSet(
          deps,
          who[party],
          contractId,
          proposed.body.id,
          sign(party, proposed.body.signingPayload),
        );
      }
      return proposed.body.id;
    },
  };
}
