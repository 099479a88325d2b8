import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  imageMeasurements,
  LOCAL_DEFAULT_IMAGE,
} from '../../infra/local/services/nitro-enclaves/nitro-simulator.ts';
import { ContractTermsSchema } from '../../shared/domain/contract-terms.ts';
import { CreateEnclaveSchema } from '../../shared/domain/enclave.ts';
import { checkCompatibility } from '../../shared/domain/enclave-compatibility.ts';
import { chooseInstanceTypes } from '../../shared/domain/instance-types.ts';
import { CREATE_FIXTURE } from '../support/contracts.ts';

/**
 * `test/fixtures/enclave-create.json` is what the README and the e2e tests post (the caller sets
 * `contractId`): it must stay a valid create body that fits the contract fixture's terms, with the
 * measurements of the local simulator's default image.
 */
const body = JSON.parse(readFileSync(new URL('../fixtures/enclave-create.json', import.meta.url), 'utf8'));

describe('the enclave create fixture', () => {
  const parsed = CreateEnclaveSchema.parse(body);

  it('carries the measurements of the local simulator default image', () => {
    const { pcr0, pcr1, pcr2 } = imageMeasurements(LOCAL_DEFAULT_IMAGE);
    expect(parsed.configuration.image).toMatchObject({ pcr0, pcr1, pcr2 });
  });

  it('meets every requirement of the contract fixture once that contract is Active', () => {
    const terms = ContractTermsSchema.parse(CREATE_FIXTURE.terms);
    expect(
      checkCompatibility(
        { status: 'Active', terms },
        { region: parsed.region, configuration: parsed.configuration },
        { localStack: false, now: new Date(Date.parse(terms.validity.start)) },
      ),
    ).toEqual([]);
  });

  it('fits a Nitro-capable parent instance', () => {
    expect(chooseInstanceTypes(parsed.configuration.resources).length).toBeGreaterThan(0);
  });
});
