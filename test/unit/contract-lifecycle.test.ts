import { describe, expect, it } from 'vitest';
import {
  CONTRACT_STATUSES,
  type ContractSignature,
  type ContractStatus,
} from '../../shared/domain/contract.ts';
import {
  type Actor,
  applyTransition,
  availableActions,
  CONTRACT_TRANSITIONS,
  type ContractAction,
  validityWindowAt,
} from '../../shared/domain/contract-lifecycle.ts';
import { ForbiddenError, IllegalTransitionError, UnprocessableError } from '../../shared/domain/errors.ts';
import { contractFixture } from '../support/contracts.ts';

const provider: Actor = { kind: 'identity', id: '11111111-1111-4111-8111-111111111111', roles: ['provider'] };
const consumer: Actor = { kind: 'identity', id: '22222222-2222-4222-8222-222222222222', roles: ['consumer'] };
const admin: Actor = { kind: 'identity', id: '33333333-3333-4333-8333-333333333333', roles: ['admin'] };
const auditor: Actor = { kind: 'identity', id: '44444444-4444-4444-8444-444444444444', roles: ['auditor'] };
const now = new Date('2027-01-01T00:00:00Z');
const afterEnd = new Date('2031-01-01T00:00:00Z');

const sig = (role: 'provider' | 'consumer', contentVersion = 1): ContractSignature => {
  const c = contractFixture();
  return {
    role,
    identityId: role === 'provider' ? provider.id : consumer.id,
    type: 'digital',
    kid: 'k',
    alg: 'ES256',
    signature: 'x',
    contentDigest: c.contentDigest,
    contentVersion,
    signedAt: now.toISOString(),
  };
};

/** The expected target of every (action, status) pair that is allowed by status; anything else is illegal. */
const EXPECTED: Record<ContractAction, Partial<Record<ContractStatus, ContractStatus | 'deleted'>>> = {
  edit: { Draft: 'Draft', PendingSignature: 'Draft' },
  sign: { Draft: 'PendingSignature', PendingSignature: 'PendingSignature' },
  activate: { PendingSignature: 'Active' },
  suspend: { Active: 'Suspended' },
  resume: { Suspended: 'Active' },
  terminate: {
    Draft: 'Terminated',
    PendingSignature: 'Terminated',
    Active: 'Terminated',
    Suspended: 'Terminated',
  },
  expire: { Active: 'Expired', Suspended: 'Expired' },
  delete: { Draft: 'deleted' },
};

describe('the contract lifecycle table', () => {
  for (const action of Object.keys(CONTRACT_TRANSITIONS) as ContractAction[]) {
    for (const status of CONTRACT_STATUSES) {
      it(`${action} from ${status}`, () => {
        const c = contractFixture({
          status,
          everSigned: action === 'terminate' && status === 'Draft',
          signatures: action === 'activate' ? [sig('provider'), sig('consumer')] : [],
          suspendedBy: provider.id,
        });
        const actor: Actor =
          action === 'expire' ? { kind: 'system' } : action === 'resume' ? admin : provider;
        const at = action === 'expire' ? afterEnd : now;
        const expected = EXPECTED[action][status];
        if (expected === undefined) {
          expect(() => applyTransition(c, action, actor, at)).toThrow(IllegalTransitionError);
        } else {
          expect(applyTransition(c, action, actor, at) ?? 'deleted').toBe(expected);
        }
      });
    }
  }

  it('lets only the parties sign and activate, and auditors change nothing', () => {
    const c = contractFixture({ status: 'PendingSignature', signatures: [sig('provider'), sig('consumer')] });
    expect(applyTransition(c, 'activate', consumer, now)).toBe('Active');
    expect(() => applyTransition(c, 'activate', admin, now)).toThrow(ForbiddenError);
    for (const action of Object.keys(CONTRACT_TRANSITIONS) as ContractAction[]) {
      expect(() => applyTransition(c, action, auditor, now)).toThrow(ForbiddenError);
    }
  });

  it('tells a refused actor who may act instead (the problem detail a client shows)', () => {
    const c = contractFixture({ status: 'PendingSignature', signatures: [sig('provider'), sig('consumer')] });
    const whoMay: Record<ContractAction, string> = {
      edit: 'the parties or an admin',
      sign: 'the named parties',
      activate: 'the parties',
      suspend: 'the parties or an admin',
      resume: 'an admin or the party that suspended the contract',
      terminate: 'the parties or an admin',
      expire: 'the platform',
      delete: 'the provider or an admin',
    };
    for (const action of Object.keys(CONTRACT_TRANSITIONS) as ContractAction[]) {
      expect(() => applyTransition(c, action, auditor, now)).toThrow(
        new ForbiddenError(`Only ${whoMay[action]} may ${action} this contract.`),
      );
    }
  });

  it('refuses activation without both current signatures', () => {
    const stale = contractFixture({
      status: 'PendingSignature',
      signatures: [sig('provider'), sig('consumer', 0)],
    });
    expect(() => applyTransition(stale, 'activate', provider, now)).toThrow(/missing: consumer/);
  });

  it('lets only an admin or the suspending party resume, and never past the validity end', () => {
    const c = contractFixture({ status: 'Suspended', suspendedBy: consumer.id });
    expect(() => applyTransition(c, 'resume', provider, now)).toThrow(ForbiddenError);
    expect(applyTransition(c, 'resume', consumer, now)).toBe('Active');
    expect(() => applyTransition(c, 'resume', admin, afterEnd)).toThrow(UnprocessableError);
  });

  it('deletes only never-signed drafts and terminates the rest', () => {
    expect(() => applyTransition(contractFixture({ everSigned: true }), 'delete', provider, now)).toThrow(
      UnprocessableError,
    );
    expect(() => applyTransition(contractFixture(), 'terminate', provider, now)).toThrow(UnprocessableError);
    expect(() => applyTransition(contractFixture(), 'delete', consumer, now)).toThrow(ForbiddenError);
  });

  it('expires only after the validity window and only by the platform or an admin', () => {
    const c = contractFixture({ status: 'Active' });
    expect(() => applyTransition(c, 'expire', { kind: 'system' }, now)).toThrow(UnprocessableError);
    expect(() => applyTransition(c, 'expire', provider, afterEnd)).toThrow(ForbiddenError);
    expect(applyTransition(c, 'expire', admin, afterEnd)).toBe('Expired');
  });

  it('lists the actions a caller could take now', () => {
    expect(availableActions(contractFixture(), provider, now).sort()).toEqual(['delete', 'edit', 'sign']);
    expect(availableActions(contractFixture(), auditor, now)).toEqual([]);
  });
});

describe('the validity window [start, end) at its boundary instants', () => {
  // The fixture's window: 2026-01-01T00:00:00Z (included) to 2030-01-01T00:00:00Z (excluded).
  const { start, end } = contractFixture().terms.validity;
  const at = (iso: string, deltaMs: number) => new Date(Date.parse(iso) + deltaMs);
  const justBeforeStart = at(start, -1);
  const atStart = at(start, 0);
  const justBeforeEnd = at(end, -1);
  const atEnd = at(end, 0);
  const justAfterEnd = at(end, 1);
  const signed = () =>
    contractFixture({ status: 'PendingSignature', signatures: [sig('provider'), sig('consumer')] });

  const refusal = (action: ContractAction, c: ReturnType<typeof contractFixture>, actor: Actor, t: Date) => {
    try {
      applyTransition(c, action, actor, t);
    } catch (error) {
      expect(error).toBeInstanceOf(UnprocessableError);
      expect(error).toMatchObject({ status: 422, type: 'transition-guard-failed', expose: true });
      return (error as Error).message;
    }
    return expect.unreachable(`${action} at ${t.toISOString()} was allowed`);
  };

  it('places an instant before, inside or after the window, naming the instant that decides', () => {
    const validity = { start, end };
    expect(validityWindowAt(validity, justBeforeStart)).toEqual({
      position: 'not-started',
      reason: `the contract validity window opens at ${start}`,
    });
    for (const t of [atStart, justBeforeEnd]) {
      expect(validityWindowAt(validity, t)).toEqual({ position: 'open', reason: null });
    }
    for (const t of [atEnd, justAfterEnd]) {
      expect(validityWindowAt(validity, t)).toEqual({
        position: 'ended',
        reason: `the contract validity window ended at ${end}`,
      });
    }
  });

  it('activates from the start instant up to one millisecond before the end', () => {
    expect(applyTransition(signed(), 'activate', provider, atStart)).toBe('Active');
    expect(applyTransition(signed(), 'activate', provider, justBeforeEnd)).toBe('Active');
    expect(availableActions(signed(), provider, atStart)).toContain('activate');
    expect(availableActions(signed(), provider, justBeforeEnd)).toContain('activate');
  });

  it('refuses activation before the start with 422 naming the start, and does not offer it', () => {
    expect(refusal('activate', signed(), provider, justBeforeStart)).toBe(
      `Cannot activate: the contract validity window opens at ${start}.`,
    );
    expect(availableActions(signed(), provider, justBeforeStart)).not.toContain('activate');
    // Signing ahead of the window is fine: the parties sign, then activate once it opens.
    expect(availableActions(signed(), provider, justBeforeStart)).toContain('sign');
  });

  it('refuses activation at and after the end with 422 naming the end, and does not offer it', () => {
    for (const t of [atEnd, justAfterEnd]) {
      expect(refusal('activate', signed(), provider, t)).toBe(
        `Cannot activate: the contract validity window ended at ${end}.`,
      );
      expect(availableActions(signed(), consumer, t)).not.toContain('activate');
    }
  });

  it('lets the parties sign before the start and up to the end, never at or after it', () => {
    const draft = contractFixture();
    for (const t of [justBeforeStart, atStart, justBeforeEnd]) {
      expect(applyTransition(draft, 'sign', consumer, t)).toBe('PendingSignature');
    }
    for (const t of [atEnd, justAfterEnd]) {
      expect(refusal('sign', draft, consumer, t)).toBe(
        `Cannot sign: the contract validity window ended at ${end}.`,
      );
      expect(availableActions(draft, consumer, t)).not.toContain('sign');
    }
  });

  it('resumes only inside the window: from the start up to one millisecond before the end', () => {
    const suspended = contractFixture({ status: 'Suspended', suspendedBy: consumer.id });
    expect(applyTransition(suspended, 'resume', admin, atStart)).toBe('Active');
    expect(applyTransition(suspended, 'resume', admin, justBeforeEnd)).toBe('Active');
    expect(refusal('resume', suspended, admin, justBeforeStart)).toBe(
      `Cannot resume: the contract validity window opens at ${start}.`,
    );
    for (const t of [atEnd, justAfterEnd]) {
      expect(refusal('resume', suspended, admin, t)).toBe(
        `Cannot resume: the contract validity window ended at ${end}; it can only expire.`,
      );
    }
  });

  it('expires from the end instant on, not one millisecond before', () => {
    const active = contractFixture({ status: 'Active' });
    expect(refusal('expire', active, { kind: 'system' }, justBeforeEnd)).toMatch(/has not ended yet/);
    expect(applyTransition(active, 'expire', { kind: 'system' }, atEnd)).toBe('Expired');
    expect(applyTransition(active, 'expire', { kind: 'system' }, justAfterEnd)).toBe('Expired');
  });
});
