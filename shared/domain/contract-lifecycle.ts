import type { ContractState, ContractStatus } from './contract.ts';
import { currentPartySignatures, partyRoleOf } from './contract.ts';
import type { ContractTerms } from './contract-terms.ts';
import { ForbiddenError, IllegalTransitionError, UnprocessableError } from './errors.ts';
import type { Role } from './identity.ts';

/** Who is acting: an identity with roles, or the platform's own automation (expiry). */
export type Actor =
  | { readonly kind: 'identity'; readonly id: string; readonly roles: readonly Role[] }
  | { readonly kind: 'system' };

export type ContractAction =
  | 'edit'
  | 'sign'
  | 'activate'
  | 'suspend'
  | 'resume'
  | 'terminate'
  | 'expire'
  | 'delete';

interface Transition {
  readonly from: readonly ContractStatus[];
  /** The status after the action; `undefined` for `delete` (the row goes away). */
  readonly to: ContractStatus | ((c: ContractState) => ContractStatus) | undefined;
  /** Who may trigger it; a sentence naming who may, for the 403. */
  readonly who: (actor: Actor, c: ContractState) => boolean;
  readonly whoMay: string;
  /** What must hold beyond the source status; returns the reason it does not, or null. */
  readonly guard?: (c: ContractState, now: Date) => string | null;
}

const isAdmin = (a: Actor) => a.kind === 'identity' && a.roles.includes('admin');
const isParty = (a: Actor, c: ContractState) => a.kind === 'identity' && partyRoleOf(c, a.id) !== null;
const expired = (c: ContractState, now: Date) => validityWindowAt(c.terms.validity, now).position === 'ended';

/** Where an instant falls against a contract's validity window `[start, end)`. */
export type ValidityWindowPosition = 'not-started' | 'open' | 'ended';

/**
 * Where `now` falls against the validity window `[validity.start, validity.end)`: open from `start`
 * included to `end` excluded. `reason` says why the window is not open (naming the instant that decides),
 * for a problem's detail; null while it is open.
 *
 * Every use that lets data be used under a contract checks this itself (activation, an enclave's create,
 * resume and activation, a measurement approval): the expiry sweep marks an ended contract Expired only on
 * its next run, and nothing may run under it in between.
 * @example
 * validityWindowAt({ start: '2027-01-01T00:00:00Z', end: '2028-01-01T00:00:00Z' }, new Date('2028-01-01T00:00:00Z'))
 * // { position: 'ended', reason: 'the contract validity window ended at 2028-01-01T00:00:00Z' }
 */
export function validityWindowAt(
  validity: Pick<ContractTerms['validity'], 'start' | 'end'>,
  now: Date,
): { readonly position: ValidityWindowPosition; readonly reason: string | null } {
  const t = now.getTime();
  if (t < Date.parse(validity.start)) {
    return {
      position: 'not-started',
      reason: `the contract validity window opens at ${validity.start}`,
    };
  }
  if (t >= Date.parse(validity.end)) {
    return { position: 'ended', reason: `the contract validity window ended at ${validity.end}` };
  }
  return { position: 'open', reason: null };
}

/**
 * The contract lifecycle, as one table:
 * `Draft → PendingSignature → Active → Suspended ⇄ Active → Terminated`, `Active|Suspended → Expired`.
 * Editing returns Draft|PendingSignature to Draft (signatures are discarded by the edit itself).
 */
export const CONTRACT_TRANSITIONS: Readonly<Record<ContractAction, Transition>> = {
  edit: {
    from: ['Draft', 'PendingSignature'],
    to: 'Draft',
    who: (a, c) => isParty(a, c) || isAdmin(a),
    whoMay: 'the parties or an admin',
  },
  sign: {
    from: ['Draft', 'PendingSignature'],
    to: 'PendingSignature',
    who: (a, c) => isParty(a, c),
    whoMay: 'the named parties',
    // Parties may sign ahead of the window's start (activation waits for it), never after its end.
    guard: (c, now) => {
      const window = validityWindowAt(c.terms.validity, now);
      return window.position === 'ended' ? window.reason : null;
    },
  },
  activate: {
    from: ['PendingSignature'],
    to: 'Active',
    who: (a, c) => isParty(a, c),
    whoMay: 'the parties',
    guard: (c, now) => {
      // A contract takes effect only inside its window: not before its start, not from its end.
      const window = validityWindowAt(c.terms.validity, now);
      if (window.reason) return window.reason;
      const roles = new Set(currentPartySignatures(c).map((s) => s.role));
      const missing = (['provider', 'consumer'] as const).filter((r) => !roles.has(r));
      return missing.length
        ? `the current version must be signed by both parties; missing: ${missing.join(', ')}`
        : null;
    },
  },
  suspend: {
    from: ['Active'],
    to: 'Suspended',
    who: (a, c) => isParty(a, c) || isAdmin(a),
    whoMay: 'the parties or an admin',
  },
  resume: {
    from: ['Suspended'],
    to: 'Active',
    who: (a, c) => isAdmin(a) || (a.kind === 'identity' && c.suspendedBy === a.id),
    whoMay: 'an admin or the party that suspended the contract',
    guard: (c, now) => {
      const window = validityWindowAt(c.terms.validity, now);
      if (window.position === 'ended') return `${window.reason}; it can only expire`;
      return window.reason;
    },
  },
  terminate: {
    from: ['Draft', 'PendingSignature', 'Active', 'Suspended'],
    to: 'Terminated',
    who: (a, c) => isParty(a, c) || isAdmin(a),
    whoMay: 'the parties or an admin',
    guard: (c) =>
      c.status === 'Draft' && !c.everSigned ? 'a never-signed draft is deleted, not terminated' : null,
  },
  expire: {
    from: ['Active', 'Suspended'],
    to: 'Expired',
    who: (a) => a.kind === 'system' || isAdmin(a),
    whoMay: 'the platform',
    guard: (c, now) => (expired(c, now) ? null : 'the contract validity window has not ended yet'),
  },
  delete: {
    from: ['Draft'],
    to: undefined,
    who: (a, c) => (a.kind === 'identity' && c.providerId === a.id) || isAdmin(a),
    whoMay: 'the provider or an admin',
    guard: (c) => (c.everSigned ? 'a contract that was ever signed is terminated, not deleted' : null),
  },
};

/**
 * Checks that `actor` may apply `action` to `c` at `now` and returns the resulting status.
 * @throws ForbiddenError when the actor may not; IllegalTransitionError when the status does not allow it;
 *   UnprocessableError when a guard fails.
 */
export function applyTransition(
  c: ContractState,
  action: ContractAction,
  actor: Actor,
  now: Date,
): ContractStatus | undefined {
  const t = CONTRACT_TRANSITIONS[action];
  if (!t.who(actor, c)) throw new ForbiddenError(`Only ${t.whoMay} may ${action} this contract.`);
  if (!t.from.includes(c.status)) {
    throw new IllegalTransitionError(
      `Cannot ${action} a contract in status ${c.status}; allowed from: ${t.from.join(', ')}.`,
    );
  }
  const reason = t.guard?.(c, now);
  if (reason)
    throw new UnprocessableError(
      'transition-guard-failed',
      'Transition not allowed now',
      `Cannot ${action}: ${reason}.`,
    );
  return typeof t.to === 'function' ? t.to(c) : t.to;
}

/** The actions `actor` could apply now, for clients to render the buttons that would work. */
export function availableActions(c: ContractState, actor: Actor, now: Date): ContractAction[] {
  return (Object.keys(CONTRACT_TRANSITIONS) as ContractAction[]).filter((action) => {
    const t = CONTRACT_TRANSITIONS[action];
    return t.who(actor, c) && t.from.includes(c.status) && !t.guard?.(c, now);
  });
}
