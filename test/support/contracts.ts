import { readFileSync } from 'node:fs';
import { type ContractData, contentDigest } from '../../shared/domain/contract.ts';
import { ContractTermsSchema } from '../../shared/domain/contract-terms.ts';

export const CREATE_FIXTURE = JSON.parse(
  readFileSync(new URL('../fixtures/contract-create.json', import.meta.url), 'utf8'),
);

/** A valid contract value for pure tests, with overrides. */
export function contractFixture(overrides: Partial<ContractData> = {}): ContractData {
  const base = {
    id: '99999999-9999-4999-8999-999999999999',
    title: CREATE_FIXTURE.title as string,
    description: CREATE_FIXTURE.description as string,
    providerId: '11111111-1111-4111-8111-111111111111',
    consumerId: '22222222-2222-4222-8222-222222222222',
    terms: ContractTermsSchema.parse(CREATE_FIXTURE.terms),
  };
  return {
    ...base,
    status: 'Draft',
    signatures: [],
    version: 1,
    contentVersion: 1,
    contentDigest: contentDigest(base),
    everSigned: false,
    statusReason: null,
    suspendedBy: null,
    createdAt: '2026-11-25T10:00:00.000Z',
    updatedAt: '2026-11-25T10:00:00.000Z',
    ...overrides,
  };
}
