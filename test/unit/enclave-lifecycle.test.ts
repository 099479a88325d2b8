import { describe, expect, it } from 'vitest';
import { CONTRACT_STATUSES, type ContractStatus } from '../../shared/domain/contract.ts';
import type { Actor } from '../../shared/domain/contract-lifecycle.ts';
import { ENCLAVE_STATUSES, type EnclaveStatus, isFinalEnclaveStatus } from '../../shared/domain/enclave.ts';
import {
  applyEnclaveTransition,
  availableEnclaveActions,
  ENCLAVE_ACTIONS,
  ENCLAVE_TRANSITIONS,
  type EnclaveAction,
  type EnclaveTransitionContext,
} from '../../shared/domain/enclave-lifecycle.ts';
import { ForbiddenError, IllegalTransitionError, UnprocessableError } from '../../shared/domain/errors.ts';

const provider: Actor = { kind: 'identity', id: '11111111-1111-4111-8111-111111111111', roles: ['provider'] };
const consumer: Actor = { kind: 'identity', id: '22222222-2222-4222-8222-222222222222', roles: ['consumer'] };
const admin: Actor = { kind: 'identity', id: '33333333-3333-4333-8333-333333333333', roles: ['admin'] };
const auditor: Actor = { kind: 'identity', id: '44444444-4444-4444-8444-444444444444', roles: ['auditor'] };
/** A provider, but of another contract: roles alone never make a party. */
const stranger: Actor = { kind: 'identity', id: '55555555-5555-4555-8555-555555555555', roles: ['provider'] };
const system: Actor = { kind: 'system' };

const ctx = (status: ContractStatus = 'Active'): EnclaveTransitionContext => ({
  contract: { providerId: provider.id, consumerId: consumer.id, status },
});

/** The expected target of every (action, status) pair allowed by status; anything else is illegal. */
const EXPECTED: Record<EnclaveAction, Partial<Record<EnclaveStatus, EnclaveStatus>>> = {
  edit: { Suspended: 'Suspended' },
  activate: { Initializing: 'Running' },
  suspend: { Running: 'Suspended' },
  resume: { Suspended: 'Initializing' },
  terminate: { Initializing: 'Terminated', Running: 'Terminated', Suspended: 'Terminated' },
  fail: { Initializing: 'Failed', Running: 'Failed', Suspended: 'Failed' },
};

/** Who may apply each action (under an Active contract); everyone else gets 403. */
const WHO_MAY: Record<EnclaveAction, readonly Actor[]> = {
  edit: [provider, consumer, admin],
  activate: [system],
  suspend: [provider, consumer, admin, system],
  resume: [provider, consumer, admin],
  terminate: [provider, consumer, admin, system],
  fail: [system],
};
const ACTORS = { provider, consumer, admin, auditor, stranger, system } as const;

/** An actor allowed to try `action`, so the table test exercises status, not permission. */
const allowedActor = (action: EnclaveAction) => WHO_MAY[action][0]!;

describe('the enclave lifecycle table', () => {
  it('covers exactly the seed statuses and these actions', () => {
    expect(ENCLAVE_STATUSES).toEqual(['Initializing', 'Running', 'Suspended', 'Failed', 'Terminated']);
    expect([...ENCLAVE_ACTIONS].sort()).toEqual(Object.keys(EXPECTED).sort());
  });

  for (const action of ENCLAVE_ACTIONS) {
    for (const status of ENCLAVE_STATUSES) {
      const expected = EXPECTED[action][status];
      it(`${action} from ${status} → ${expected ?? 'illegal'}`, () => {
        const act = () => applyEnclaveTransition({ status }, action, allowedActor(action), ctx());
        if (expected === undefined) {
          expect(act).toThrow(IllegalTransitionError);
        } else {
          expect(act()).toBe(expected);
        }
      });
    }
  }

  it('never leaves a final status', () => {
    for (const status of ENCLAVE_STATUSES.filter(isFinalEnclaveStatus)) {
      for (const action of ENCLAVE_ACTIONS) {
        expect(ENCLAVE_TRANSITIONS[action].from).not.toContain(status);
      }
    }
    expect(ENCLAVE_STATUSES.filter(isFinalEnclaveStatus)).toEqual(['Failed', 'Terminated']);
  });

  it('lets every non-final status fail and be terminated', () => {
    const nonFinal = ENCLAVE_STATUSES.filter((s) => !isFinalEnclaveStatus(s));
    expect([...ENCLAVE_TRANSITIONS.fail.from].sort()).toEqual([...nonFinal].sort());
    expect([...ENCLAVE_TRANSITIONS.terminate.from].sort()).toEqual([...nonFinal].sort());
  });
});

describe('who may act on an enclave', () => {
  for (const action of ENCLAVE_ACTIONS) {
    const from = ENCLAVE_TRANSITIONS[action].from[0]!;
    for (const [name, actor] of Object.entries(ACTORS)) {
      const allowed = WHO_MAY[action].includes(actor);
      it(`${action}: ${name} ${allowed ? 'may' : 'may not'}`, () => {
        const act = () => applyEnclaveTransition({ status: from }, action, actor, ctx());
        if (allowed) expect(act()).toBe(ENCLAVE_TRANSITIONS[action].to);
        else expect(act).toThrow(ForbiddenError);
      });
    }
  }

  it('checks permission before status, and names who may in the 403', () => {
    expect(() => applyEnclaveTransition({ status: 'Terminated' }, 'activate', provider, ctx())).toThrow(
      /Only the platform may activate/,
    );
    const whoMay: Record<EnclaveAction, string> = {
      edit: 'the contract parties or an admin',
      activate: 'the platform',
      suspend: 'the contract parties, an admin or the platform',
      resume: 'the contract parties or an admin',
      terminate: 'the contract parties, an admin or the platform',
      fail: 'the platform',
    };
    for (const action of ENCLAVE_ACTIONS) {
      expect(() => applyEnclaveTransition({ status: 'Running' }, action, auditor, ctx())).toThrow(
        new ForbiddenError(`Only ${whoMay[action]} may ${action} this enclave.`),
      );
    }
  });
});

describe('guards', () => {
  it('resumes only under an Active contract', () => {
    for (const status of CONTRACT_STATUSES) {
      const act = () => applyEnclaveTransition({ status: 'Suspended' }, 'resume', consumer, ctx(status));
      if (status === 'Active') expect(act()).toBe('Initializing');
      else
        expect(act).toThrow(
          new UnprocessableError(
            'transition-guard-failed',
            'Transition not allowed now',
            `Cannot resume: the contract is ${status}, resuming needs it Active.`,
          ),
        );
    }
  });

  it('reaches Running only through activate (a verified attestation): resume re-enters provisioning', () => {
    const intoRunning = ENCLAVE_ACTIONS.filter((a) => ENCLAVE_TRANSITIONS[a].to === 'Running');
    expect(intoRunning).toEqual(['activate']);
    expect(ENCLAVE_TRANSITIONS.resume.to).toBe('Initializing');
  });

  it('activates only under an Active contract (it may have been suspended while provisioning ran)', () => {
    expect(() =>
      applyEnclaveTransition({ status: 'Initializing' }, 'activate', system, ctx('Suspended')),
    ).toThrow('Cannot activate: the contract is Suspended, activation needs it Active.');
  });

  it('still suspends, terminates and fails under a contract that is no longer Active', () => {
    const c = ctx('Terminated');
    expect(applyEnclaveTransition({ status: 'Running' }, 'suspend', system, c)).toBe('Suspended');
    expect(applyEnclaveTransition({ status: 'Running' }, 'terminate', provider, c)).toBe('Terminated');
    expect(applyEnclaveTransition({ status: 'Suspended' }, 'fail', system, c)).toBe('Failed');
  });

  it('reports a failed guard as 422 transition-guard-failed', () => {
    try {
      applyEnclaveTransition({ status: 'Suspended' }, 'resume', admin, ctx('Expired'));
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(UnprocessableError);
      expect((err as UnprocessableError).status).toBe(422);
      expect((err as UnprocessableError).type).toBe('transition-guard-failed');
    }
  });
});

describe('available actions', () => {
  it('lists what a party could do now', () => {
    expect(availableEnclaveActions({ status: 'Running' }, provider, ctx()).sort()).toEqual([
      'suspend',
      'terminate',
    ]);
    expect(availableEnclaveActions({ status: 'Suspended' }, consumer, ctx()).sort()).toEqual([
      'edit',
      'resume',
      'terminate',
    ]);
    expect(availableEnclaveActions({ status: 'Suspended' }, consumer, ctx('Suspended')).sort()).toEqual([
      'edit',
      'terminate',
    ]);
  });

  it('lists what the platform could do now', () => {
    expect(availableEnclaveActions({ status: 'Initializing' }, system, ctx()).sort()).toEqual([
      'activate',
      'fail',
      'terminate',
    ]);
  });

  it('offers nothing to outsiders or on final statuses', () => {
    expect(availableEnclaveActions({ status: 'Running' }, auditor, ctx())).toEqual([]);
    expect(availableEnclaveActions({ status: 'Running' }, stranger, ctx())).toEqual([]);
    for (const actor of Object.values(ACTORS)) {
      expect(availableEnclaveActions({ status: 'Failed' }, actor, ctx())).toEqual([]);
      expect(availableEnclaveActions({ status: 'Terminated' }, actor, ctx())).toEqual([]);
    }
  });

  it('agrees with applyEnclaveTransition on every (status, actor, contract status)', () => {
    for (const status of ENCLAVE_STATUSES) {
      for (const actor of Object.values(ACTORS)) {
        for (const contractStatus of CONTRACT_STATUSES) {
          const c = ctx(contractStatus);
          const available = availableEnclaveActions({ status }, actor, c);
          for (const action of ENCLAVE_ACTIONS) {
            let ok = true;
            try {
              applyEnclaveTransition({ status }, action, actor, c);
            } catch {
              ok = false;
            }
            expect(available.includes(action)).toBe(ok);
          }
        }
      }
    }
  });
});
