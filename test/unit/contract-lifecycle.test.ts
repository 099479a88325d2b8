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
