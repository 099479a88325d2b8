import type { ContractData } from './contract.ts';
import type { Actor } from './contract-lifecycle.ts';
import type { EnclaveData, EnclaveStatus } from './enclave.ts';
import { ForbiddenError, IllegalTransitionError, UnprocessableError } from './errors.ts';

export type EnclaveAction = 'edit' | 'activate' | 'suspend' | 'resume' | 'terminate' | 'fail';

/** What the rules need to know beyond the enclave itself: its contract's parties and status. */
export interface EnclaveTransitionContext {
  readonly contract: Pick<ContractData, 'providerId' | 'consumerId' | 'status'>;
}

/** The part of an enclave the rules read. */
export type EnclaveState = Pick<EnclaveData, 'status'>;

interface EnclaveTransition {
  readonly from: readonly EnclaveStatus[];
  readonly to: EnclaveStatus;
  /** Who may trigger it; a sentence naming who may, for the 403. */
  readonly who: (actor: Actor, ctx: EnclaveTransitionContext) => boolean;
  readonly whoMay: string;
  /** What must hold beyond the source status; returns the reason it does not, or null. */
  readonly guard?: (e: EnclaveState, ctx: EnclaveTransitionContext) => string | null;
}

const isAdmin = (a: Actor) => a.kind === 'identity' && a.roles.includes('admin');
const isSystem = (a: Actor) => a.kind === 'system';
const isParty = (a: Actor, ctx: EnclaveTransitionContext) =>
  a.kind === 'identity' && (a.id === ctx.contract.providerId || a.id === ctx.contract.consumerId);
const contractActive = (what: string) => (_e: EnclaveState, ctx: EnclaveTransitionContext) =>
  ctx.contract.status === 'Active' ? null : `the contract is ${ctx.contract.status}, ${what} needs it Active`;

/**
 * The enclave lifecycle, as one table:
 * `Initializing → Running → Suspended → Initializing → Running …`, any non-final status `→ Terminated` or
 * `→ Failed`; `Failed` and `Terminated` are final.
 *
 * - `activate` is the provisioning workflow's Activate step (after a verified attestation), so only the
 *   platform; it re-checks the contract because the contract may have been suspended while provisioning ran.
 *   It is the ONLY way into `Running`: an enclave runs only with an attestation verified by the platform.
 * - `suspend` may also come from the platform: when a contract is suspended its enclaves are suspended too,
 *   or training would continue on data whose use is on hold. Suspension voids the attestation.
 * - `resume` is a human decision (a party or an admin), and only under an Active contract. It does not go
 *   straight back to `Running`: the suspended enclave's attestation was voided, so resume re-enters
 *   provisioning (`Initializing`; the `EnclaveResumed` event starts the workflow), which validates the
 *   (possibly edited) configuration again, re-attests, and activates.
 * - `edit` (a new configuration) is allowed only while `Suspended`. Not while `Running` (the rule:
 *   the live enclave would no longer match its record), and not while `Initializing` either: the workflow
 *   in flight has already validated and sized the parent from the stored configuration, so an edit there
 *   would let an enclave reach `Running` with a configuration nobody checked. A suspended enclave re-attests
 *   (and is re-validated) through the same workflow on resume.
 * - `fail` is the workflow's Compensate step: platform only.
 */
export const ENCLAVE_TRANSITIONS: Readonly<Record<EnclaveAction, EnclaveTransition>> = {
  edit: {
    from: ['Suspended'],
    to: 'Suspended',
    who: (a, ctx) => isParty(a, ctx) || isAdmin(a),
    whoMay: 'the contract parties or an admin',
  },
  activate: {
    from: ['Initializing'],
    to: 'Running',
    who: (a) => isSystem(a),
    whoMay: 'the platform',
    guard: contractActive('activation'),
  },
  suspend: {
    from: ['Running'],
    to: 'Suspended',
    who: (a, ctx) => isParty(a, ctx) || isAdmin(a) || isSystem(a),
    whoMay: 'the contract parties, an admin or the platform',
  },
  resume: {
    from: ['Suspended'],
    to: 'Initializing',
    who: (a, ctx) => isParty(a, ctx) || isAdmin(a),
    whoMay: 'the contract parties or an admin',
    guard: contractActive('resuming'),
  },
  terminate: {
    from: ['Initializing', 'Running', 'Suspended'],
    to: 'Terminated',
    who: (a, ctx) => isParty(a, ctx) || isAdmin(a) || isSystem(a),
    whoMay: 'the contract parties, an admin or the platform',
  },
  fail: {
    from: ['Initializing', 'Running', 'Suspended'],
    to: 'Failed',
    who: (a) => isSystem(a),
    whoMay: 'the platform',
  },
};

/** Every action, in table order. */
export const ENCLAVE_ACTIONS: readonly EnclaveAction[] = Object.keys(ENCLAVE_TRANSITIONS) as EnclaveAction[];

/**
 * Checks that `actor` may apply `action` to enclave `e` and returns the resulting status.
 *
 * The checks run in the contract lifecycle's order: who, then status, then guard.
 * @throws ForbiddenError when the actor may not; IllegalTransitionError when the status does not allow it;
 *   UnprocessableError when a guard fails.
 * @example
 * applyEnclaveTransition({ status: 'Running' }, 'suspend', provider, { contract }) // 'Suspended'
 */
export function applyEnclaveTransition(
  e: EnclaveState,
  action: EnclaveAction,
  actor: Actor,
  ctx: EnclaveTransitionContext,
): EnclaveStatus {
  const t = ENCLAVE_TRANSITIONS[action];
  if (!t.who(actor, ctx)) throw new ForbiddenError(`Only ${t.whoMay} may ${action} this enclave.`);
  if (!t.from.includes(e.status)) {
    throw new IllegalTransitionError(
      `Cannot ${action} an enclave in status ${e.status}; allowed from: ${t.from.join(', ')}.`,
    );
  }
  const reason = t.guard?.(e, ctx);
  if (reason) {
    throw new UnprocessableError(
      'transition-guard-failed',
      'Transition not allowed now',
      `Cannot ${action}: ${reason}.`,
    );
  }
  return t.to;
}

/** The actions `actor` could apply now, for clients to render the buttons that would work. */
export function availableEnclaveActions(
  e: EnclaveState,
  actor: Actor,
  ctx: EnclaveTransitionContext,
): EnclaveAction[] {
  return ENCLAVE_ACTIONS.filter((action) => {
    const t = ENCLAVE_TRANSITIONS[action];
    return t.who(actor, ctx) && t.from.includes(e.status) && !t.guard?.(e, ctx);
  });
}
