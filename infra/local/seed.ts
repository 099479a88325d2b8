import type { Identity, Role } from '../../shared/domain/identity.ts';
import { insertIdentity, newIdentity } from '../../shared/identities/identity-service.ts';
import type { Dependencies } from '../../shared/runtime/dependencies.ts';

/** The local stack's identities: stable names, ids and token subjects that the README and tests use. */
export const SEEDED_IDENTITIES = [
  {
    name: 'provider',
    id: '11111111-1111-4111-8111-111111111111',
    roles: ['provider'],
    displayName: 'Acme Data Ltd (provider)',
  },
  {
    name: 'consumer',
    id: '22222222-2222-4222-8222-222222222222',
    roles: ['consumer'],
    displayName: 'Model Works Inc (consumer)',
  },
  {
    name: 'admin',
    id: '33333333-3333-4333-8333-333333333333',
    roles: ['admin'],
    displayName: 'Platform admin',
  },
  {
    name: 'auditor',
    id: '44444444-4444-4444-8444-444444444444',
    roles: ['auditor'],
    displayName: 'Independent auditor',
  },
  {
    name: 'outsider',
    id: '55555555-5555-4555-8555-555555555555',
    roles: ['consumer'],
    displayName: 'Unrelated consumer',
  },
] as const satisfies readonly { name: string; id: string; roles: readonly Role[]; displayName: string }[];

export type SeededName = (typeof SEEDED_IDENTITIES)[number]['name'];

/** Token subject of a seeded identity. */
export function seededSubject(name: string): string {
  return `local|${name}`;
}

/** The token subject for a seeded name or id, or any other identity's id (whose subject defaults to it). */
export function subjectFor(nameOrId: string): string | undefined {
  const seeded = SEEDED_IDENTITIES.find((s) => s.name === nameOrId || s.id === nameOrId);
  if (seeded) return seededSubject(seeded.name);
  return /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(nameOrId)
    ? nameOrId.toLowerCase()
    : undefined;
}

/**
 * Creates the seeded identities that do not exist yet (idempotent), and returns them as created (for one
 * that existed already, as it would have been: read it from the database where its current state matters).
 * A suite that seeds a database migrated only part way uses them, since the identity queries name the
 * latest schema's columns.
 */
export async function seedIdentities(deps: Dependencies): Promise<Identity[]> {
  const seeded: Identity[] = [];
  for (const s of SEEDED_IDENTITIES) {
    const identity = newIdentity(deps, {
      id: s.id,
      subject: seededSubject(s.name),
      name: s.name,
      displayName: s.displayName,
      email: `${s.name}@example.test`,
      roles: s.roles,
    });
    await insertIdentity(deps, null, identity);
    seeded.push(identity);
  }
  return seeded;
}
