import { readFileSync } from 'node:fs';
import { storedJsonBytes } from '../../shared/domain/canonical-json.ts';
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

/**
 * A contract create body whose title, description and terms take exactly `bytes` as a database row
 * carries them (`storedJsonBytes`), built of the costliest characters to carry: quotes, which the
 * Data API's JSON-in-JSON doubles twice. Datasets with quote-filled locations grow it, an ASCII title
 * pads it to the byte.
 */
export function contractOfStoredSize(bytes: number, base = CREATE_FIXTURE): typeof CREATE_FIXTURE {
  const body = structuredClone(base);
  body.title = 'x';
  body.description = '';
  const datasets = body.terms.dataAccess.datasets as { id: string; location?: string }[];
  const size = () => storedJsonBytes({ title: body.title, description: body.description, terms: body.terms });
  for (let i = 0; size() < bytes; i++) {
    const dataset = { id: `ds-${i}`, location: '' };
    datasets.push(dataset);
    // The longest quote-filled location that still fits (4 bytes stored per quote).
    let low = 0;
    let high = 2048;
    while (low < high) {
      const mid = Math.ceil((low + high) / 2);
      dataset.location = '"'.repeat(mid);
      if (size() <= bytes) low = mid;
      else high = mid - 1;
    }
    dataset.location = '"'.repeat(low);
    if (size() > bytes) {
      datasets.pop();
      break;
    }
    if (low < 2048) break;
  }
  const missing = bytes - size();
  if (missing < 0 || missing > 199) throw new Error(`cannot pad the contract to ${bytes} bytes`);
  body.title = 'x'.repeat(1 + missing);
  if (size() !== bytes) throw new Error(`the contract takes ${size()} bytes, not ${bytes}`);
  return body;
}
