import { loadContract } from '../contracts/contract-store.ts';
import { listMeasurementSets } from '../contracts/measurement-store.ts';
import type { ContractData } from '../domain/contract.ts';
import type { EnclaveData, EnclaveImage } from '../domain/enclave.ts';
import { assertCompatible } from '../domain/enclave-compatibility.ts';
import { ConflictError, type FieldIssue, NotFoundError, UnprocessableError } from '../domain/errors.ts';
import { chooseInstanceTypes } from '../domain/instance-types.ts';
import type { MeasurementSet } from '../domain/measurement-set.ts';
import type { Dependencies } from '../runtime/dependencies.ts';
import { loadEnclave } from './enclave-store.ts';

/**
 * The provisioning workflow's Validate step: may this enclave be provisioned now, and on what? Beyond the
 * loads it is pure logic; every refusal is a `DomainError`, so the workflow's Compensate step can record
 * its status, type and message as the enclave's failure reason.
 */

/** What the rest of the workflow needs once the enclave passed validation. */
export interface ProvisioningPlan {
  readonly enclave: EnclaveData;
  readonly contract: ContractData;
  /**
   * The contract's sets approved by both parties that the enclave's image matches (usually one): the
   * attestation policy is built from these, so a document is accepted only for the image the enclave
   * declares, not for another image the parties happen to have approved too.
   */
  readonly approvedMeasurements: MeasurementSet[];
  /** Parent instance types, smallest first: the first is the choice, the rest the capacity fallbacks. */
  readonly instanceTypes: string[];
}

export interface ValidationOptions {
  /** True only in the local stack (the Nitro simulator), where a debug-mode enclave may be tried. */
  readonly localStack: boolean;
}

/** The image measurements of a set or an enclave's image, for comparison. */
type Measurements = Pick<EnclaveImage, 'pcr0' | 'pcr1' | 'pcr2' | 'pcr8'>;
type SetMeasurements = Pick<MeasurementSet, 'pcr0' | 'pcr1' | 'pcr2' | 'pcr8'>;

const samePcr012 = (set: SetMeasurements, image: Measurements) =>
  set.pcr0 === image.pcr0 && set.pcr1 === image.pcr1 && set.pcr2 === image.pcr2;

/**
 * True when `set` admits `image`: PCR0/1/2 equal, and when the set pins a signer (PCR8) the image is
 * signed by exactly that certificate. A set without PCR8 approves the image whoever signed it (the parties
 * chose not to pin a signer); the enclave's own `securityPolicies.allowedSigners` and `image.pcr8` still
 * constrain the attestation.
 */
export function setAdmitsImage(set: SetMeasurements, image: Measurements): boolean {
  return samePcr012(set, image) && (set.pcr8 === null || set.pcr8 === image.pcr8);
}

/**
 * The sets among `sets` that are Approved (by both parties) and admit `image`; the sets that pin PCR8
 * first, as the more specific approval.
 * @throws UnprocessableError (`measurements-not-approved`) when none does, saying why: a matching set is
 *   only proposed, an approved set pins another signer, or nothing approved matches PCR0/1/2.
 * @example
 * const approved = assertImageApproved(enclave.configuration.image, await listMeasurementSets(db, contractId));
 */
export function assertImageApproved(image: Measurements, sets: readonly MeasurementSet[]): MeasurementSet[] {
  const approved = sets.filter((s) => s.status === 'Approved' && setAdmitsImage(s, image));
  if (approved.length > 0) {
    return approved.sort((a, b) => Number(b.pcr8 !== null) - Number(a.pcr8 !== null));
  }
  const proposed = sets.find((s) => s.status !== 'Approved' && setAdmitsImage(s, image));
  const otherSigner = sets.find((s) => s.status === 'Approved' && samePcr012(s, image));
  let reason: string;
  if (proposed) {
    reason = `the image's measurements are proposed (measurement set ${proposed.id}) but not yet approved by both parties`;
  } else if (otherSigner) {
    reason =
      image.pcr8 === undefined
        ? `the approved measurement set ${otherSigner.id} requires an image signed by its PCR8 certificate; the image is unsigned`
        : `the approved measurement set ${otherSigner.id} pins a different signing certificate (PCR8) than the image's`;
  } else {
    reason = "no measurement set approved by both parties matches the image's PCR0, PCR1 and PCR2";
  }
  const issues: FieldIssue[] = [{ field: 'configuration.image', message: reason }];
  throw new UnprocessableError(
    'measurements-not-approved',
    'Image measurements not approved',
    `The enclave's image may not run under its contract: ${reason}.`,
    issues,
  );
}

/**
 * Validates enclave `enclaveId` for provisioning: it must be `Initializing`, satisfy its contract (which
 * must be Active and inside its validity window now), run an image both parties approved, and fit a Nitro
 * Enclaves parent instance.
 *
 * The checks run in that order, each reporting everything it found: a state conflict first (retrying
 * cannot help and nothing should be compensated for it), then the contract's requirements, then the
 * measurements, then sizing.
 * @throws NotFoundError (404) when the enclave does not exist.
 * @throws ConflictError (409, `enclave-not-initializing`) when the enclave is in any other status: a
 *   duplicate or late execution must not provision it again, and its Compensate step must not fail or
 *   terminate an enclave that another execution owns.
 * @throws UnprocessableError (422): `enclave-incompatible` listing every unmet requirement (including
 *   `contract-not-active` and `contract-outside-validity`), `measurements-not-approved`, or
 *   `no-instance-type-fits`.
 * @example
 * const plan = await validateEnclaveForProvisioning(deps, enclaveId, { localStack: config.localStack });
 * // plan.instanceTypes[0] is launched first; plan.approvedMeasurements build the attestation policy.
 */
export async function validateEnclaveForProvisioning(
  deps: Dependencies,
  enclaveId: string,
  options: ValidationOptions,
): Promise<ProvisioningPlan> {
  const loaded = await loadEnclave(deps.db, enclaveId);
  if (!loaded) throw new NotFoundError(`Enclave ${enclaveId}`);
  const { enclave } = loaded;
  if (enclave.status !== 'Initializing') {
    throw new ConflictError(
      'enclave-not-initializing',
      'Enclave not provisionable',
      `Enclave ${enclave.id} is ${enclave.status}; only an Initializing enclave is provisioned.`,
    );
  }
  // Both keyed by the contract: one round trip's latency instead of two.
  const [contractLoaded, sets] = await Promise.all([
    loadContract(deps.db, enclave.contractId),
    listMeasurementSets(deps.db, enclave.contractId),
  ]);
  // The foreign key makes this impossible; kept as a DomainError so Compensate can still record it.
  if (!contractLoaded) throw new NotFoundError(`Contract ${enclave.contractId} of enclave ${enclave.id}`);
  const { contract } = contractLoaded;
  assertCompatible(contract, enclave, {
    localStack: options.localStack,
    deploymentRegion: deps.region,
    now: deps.now(),
  });
  const approvedMeasurements = assertImageApproved(enclave.configuration.image, sets);
  const instanceTypes = chooseInstanceTypes(enclave.configuration.resources);
  return { enclave, contract, approvedMeasurements, instanceTypes };
}
