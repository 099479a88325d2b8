/**
 * Verification policies, built fail-closed: a policy that could match "anything" cannot be built.
 * Real verifiers have shipped exactly that bug (checking only PCR8; skipping PCR matching when the reference
 * value was missing), so every gap is refused here, when the policy is built, not discovered in production.
 */
import { MAX_POLICY_PCR_INDEX, MAX_USER_FIELD_BYTES, SHA384_PCR_BYTES } from './constants.ts';
import { AttestationPolicyError } from './errors.ts';
import type { MeasurementSet, Policy, PolicyInput } from './types.ts';

/** One pinned register: its index and the expected value. */
export interface PinnedPcr {
  readonly index: number;
  readonly value: Uint8Array;
}

/** The checked, private form of a policy that verification reads (copies: the caller's input may change). */
export interface ResolvedPolicy {
  /** Each set's pinned registers, in ascending index order. */
  readonly measurements: readonly (readonly PinnedPcr[])[];
  readonly allowDebug: boolean;
  readonly expectedNonce: Uint8Array | null;
  readonly maxAgeMs: number | null;
  readonly expectedPublicKey: Uint8Array | null;
  readonly expectedUserData: Uint8Array | null;
}

const resolved = new WeakMap<object, ResolvedPolicy>();
const PCR_HEX = new RegExp(`^[0-9a-fA-F]{${SHA384_PCR_BYTES * 2}}$`);
// Decimal without leading zeros, so that "01" cannot name PCR1 beside "1" (two keys, one register).
const PCR_INDEX = /^(?:0|[1-9][0-9]?)$/;
const IMAGE_PCRS = [0, 1, 2];

/**
 * Checks a policy input and returns the policy that `verifyAttestation` accepts.
 *
 * @throws AttestationPolicyError when the policy would not fail closed: no measurement set, an empty set, a
 *   PCR index that is not 0–31 in decimal without leading zeros, a value that is not 48 bytes of hex,
 *   PCR0/1/2 pinned to zero without `allowDebug`, a `requireFreshness` or `allowDebug` that is not a
 *   boolean, `requireFreshness` without `expectedNonce`, a `maxAgeMs` that is not positive, or an expected
 *   nonce, public key or user data that is not a Uint8Array of at most 1024 bytes.
 * @example
 * const policy = buildPolicy({ measurements: [{ 0: pcr0Hex, 1: pcr1Hex, 2: pcr2Hex }], maxAgeMs: 300_000 });
 */
export function buildPolicy(input: PolicyInput): Policy {
  const resolvedPolicy = resolvePolicyInput(input);
  const policy: Policy = Object.freeze({
    ...input,
    measurements: Object.freeze(input.measurements.map((set) => Object.freeze({ ...set }))),
    __brand: 'AttestationPolicy' as const,
  });
  resolved.set(policy, resolvedPolicy);
  return policy;
}

/**
 * The resolved form of a policy: the one recorded by `buildPolicy`, or, for an object that did not come
 * from it (a copy, or a plain object from untyped code), the result of checking it now.
 *
 * @throws AttestationPolicyError as `buildPolicy` does.
 */
export function resolvePolicy(policy: Policy): ResolvedPolicy {
  // A WeakMap answers undefined for a key that is no object: untyped input falls through to the checks.
  return resolved.get(policy) ?? resolvePolicyInput(policy);
}

function resolvePolicyInput(input: PolicyInput): ResolvedPolicy {
  if (typeof input !== 'object' || input === null) {
    throw new AttestationPolicyError('policy', 'The policy is not an object.');
  }
  const allowDebug = input.allowDebug ?? false;
  if (typeof allowDebug !== 'boolean') {
    throw new AttestationPolicyError('allowDebug', 'allowDebug must be a boolean.');
  }

  if (!Array.isArray(input.measurements) || input.measurements.length === 0) {
    throw new AttestationPolicyError(
      'measurements',
      'The policy pins no measurement set: at least one set of PCR values is required (fail closed).',
    );
  }
  const measurements = input.measurements.map((set, i) => resolveMeasurementSet(set, i, allowDebug));

  const expectedNonce = optionalBytes(input.expectedNonce, 'expectedNonce');
  if (input.requireFreshness !== undefined && typeof input.requireFreshness !== 'boolean') {
    throw new AttestationPolicyError('requireFreshness', 'requireFreshness must be a boolean.');
  }
  if (input.requireFreshness === true && expectedNonce === null) {
    throw new AttestationPolicyError(
      'expectedNonce',
      'requireFreshness is set but no expectedNonce is given: freshness cannot be checked without a nonce.',
    );
  }

  let maxAgeMs: number | null = null;
  if (input.maxAgeMs !== undefined) {
    // Number.isFinite is false for anything but a finite number (it does not coerce: '5' is refused).
    if (!Number.isFinite(input.maxAgeMs) || input.maxAgeMs <= 0) {
      throw new AttestationPolicyError(
        'maxAgeMs',
        'maxAgeMs must be a positive, finite number of milliseconds.',
      );
    }
    maxAgeMs = input.maxAgeMs;
  }

  return {
    measurements,
    allowDebug,
    expectedNonce,
    maxAgeMs,
    expectedPublicKey: optionalBytes(input.expectedPublicKey, 'expectedPublicKey'),
    expectedUserData: optionalBytes(input.expectedUserData, 'expectedUserData'),
  };
}

function resolveMeasurementSet(set: MeasurementSet, setIndex: number, allowDebug: boolean): PinnedPcr[] {
  const field = `measurements[${setIndex}]`;
  if (typeof set !== 'object' || set === null || Array.isArray(set)) {
    throw new AttestationPolicyError(field, `${field} is not an object of PCR index → hex value.`);
  }
  const keys = Object.keys(set);
  if (keys.length === 0) {
    throw new AttestationPolicyError(
      field,
      `${field} pins no PCR: an empty set would match anything (fail closed).`,
    );
  }
  const pinned: PinnedPcr[] = [];
  for (const key of keys) {
    const index = Number(key);
    if (!PCR_INDEX.test(key) || index > MAX_POLICY_PCR_INDEX) {
      throw new AttestationPolicyError(
        `${field}[${key}]`,
        `${field} pins "${key}", not a PCR index 0 to ${MAX_POLICY_PCR_INDEX} (decimal, no leading zeros).`,
      );
    }
    const hex: unknown = set[index];
    if (typeof hex !== 'string' || !PCR_HEX.test(hex)) {
      throw new AttestationPolicyError(
        `${field}[${key}]`,
        `${field} pins PCR${index} to something that is not ${SHA384_PCR_BYTES} bytes of hex.`,
      );
    }
    pinned.push({ index, value: Buffer.from(hex, 'hex') });
  }
  // In ascending PCR order without sorting: the keys passed PCR_INDEX, so they are canonical array indices,
  // which Object.keys lists in ascending numeric order (ECMA-262 OrdinaryOwnPropertyKeys).
  if (!allowDebug) {
    for (const { index, value } of pinned) {
      if (IMAGE_PCRS.includes(index) && value.every((byte) => byte === 0)) {
        throw new AttestationPolicyError(
          `${field}[${index}]`,
          `${field} pins PCR${index} to zero, which only a debug-mode enclave reports: set allowDebug to mean it.`,
        );
      }
    }
  }
  return pinned;
}

function optionalBytes(value: Uint8Array | undefined, field: string): Uint8Array | null {
  if (value === undefined) return null;
  if (!(value instanceof Uint8Array))
    throw new AttestationPolicyError(field, `${field} must be a Uint8Array.`);
  if (value.length > MAX_USER_FIELD_BYTES) {
    throw new AttestationPolicyError(
      field,
      `${field} is longer than the ${MAX_USER_FIELD_BYTES} bytes a document can hold.`,
    );
  }
  return new Uint8Array(value);
}
