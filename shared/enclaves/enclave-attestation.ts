import {
  type AttestationClaims,
  AttestationPolicyError,
  buildPolicy,
  type FailureCode,
  type Policy,
  type MeasurementSet as PolicyMeasurementSet,
  verifyAttestation,
} from '../attestation/index.ts';
import { isAdditionalPcrKey, type MeasurementSet } from '../domain/measurement-set.ts';
import type { NonceConsumption, NonceStore } from '../workflow/nonce-store.ts';
import { pcr4ForInstanceId } from './parent-pcr4.ts';

/**
 * The provisioning workflow's VerifyAttestation step, as a use case: is this attestation document, sent by
 * the enclave just launched on `instanceId`, acceptable for enclave `enclaveId`?
 *
 * Accepted only when, in this order:
 * 1. the document verifies (chain to a trusted root, COSE signature) against a fail-closed policy built
 *    from the approved measurement sets, each pinning PCR0/1/2 (and PCR8 when the set pins a signer), the
 *    set's additional PCRs, and PCR4 bound to the launched instance, with the expected nonce, no debug mode
 *    and a maximum age;
 * 2. then, and only then, the nonce is consumed, exactly once: a forged or mismatching document cannot burn
 *    a legitimate nonce, and a replayed document finds its nonce already consumed.
 *
 * Beyond the nonce store it is pure: the clock and the trust anchors come from the caller. Refusals are
 * values; only a failing nonce store throws (`NonceStoreError`, see `transient`), so the workflow can retry
 * it. A retry after a consume that landed answers `nonce_replayed`, which fails closed.
 */

/** The default maximum age of a document at verification: 5 minutes. */
export const DEFAULT_ATTESTATION_MAX_AGE_MS = 5 * 60 * 1000;

/** Refusal codes: the verifier's, plus the measurement and nonce refusals of this step. */
export type EnclaveAttestationFailureCode =
  | FailureCode
  /** No Approved measurement set was given: there is nothing a document may match. */
  | 'measurements-not-approved'
  /** The document verified, but its nonce was consumed before: a replay. */
  | 'nonce_replayed'
  /** The document verified, but its nonce expired before it was consumed. */
  | 'nonce_expired'
  /** The document verified, but its nonce was never issued to this enclave (or is gone). */
  | 'nonce_unknown';

export interface EnclaveAttestationInput {
  /** Raw CBOR of the COSE_Sign1 document, or its base64, as the parent agent submitted it (untrusted). */
  readonly document: Uint8Array | string;
  /** The platform's enclave id, to which the nonce was issued. */
  readonly enclaveId: string;
  /** The parent instance launched for the enclave (`i-` + 8 or 17 hex digits): PCR4 is pinned to it. */
  readonly instanceId: string;
  /** The Approved sets that admit the enclave's image (`ProvisioningPlan.approvedMeasurements`). */
  readonly approvedMeasurements: readonly MeasurementSet[];
  /** The nonce the Challenge step issued for this enclave. */
  readonly expectedNonce: Uint8Array;
  /**
   * The PCR8 values (image signing certificates) the enclave may run with: its image's declared `pcr8`, or
   * else its `securityPolicies.allowedSigners`. Empty or absent: any signer, or none (unless an approved
   * set pins one). See {@link allowedSignersOf}.
   */
  readonly allowedSigners?: readonly string[];
  /**
   * Names the nonce's consumption (the workflow execution): a retried verification by the same execution is
   * not a replay. See `NonceStore.consume`.
   */
  readonly consumptionId?: string;
}

/**
 * The PCR8 values an enclave's configuration allows: exactly the image's declared signer when it declares
 * one (the configuration schema already requires it to be among `allowedSigners`), else the allowed
 * signers; empty when the configuration allows any image, signed or not.
 */
export function allowedSignersOf(configuration: {
  readonly image: { readonly pcr8?: string | undefined };
  readonly securityPolicies: { readonly allowedSigners: readonly string[] };
}): string[] {
  const declared = configuration.image.pcr8;
  return declared !== undefined ? [declared] : [...configuration.securityPolicies.allowedSigners];
}

export interface EnclaveAttestationDeps {
  readonly nonces: NonceStore;
  readonly now: () => Date;
  /**
   * Trust anchors (DER or PEM) replacing the pinned AWS Nitro Enclaves root. Only the local stack passes
   * one (the simulator's root); when absent, the verifier's default, the AWS root alone, applies.
   */
  readonly trustedRoots?: readonly (string | Uint8Array)[];
  /** Maximum age of the document at `now()`, in ms (default {@link DEFAULT_ATTESTATION_MAX_AGE_MS}). */
  readonly maxAgeMs?: number;
}

/** The verified claims in a JSON-safe form (strings, numbers, booleans, null), for storage and audit. */
export interface AttestationClaimsSummary {
  readonly moduleId: string;
  readonly digest: 'SHA384';
  /** The document's timestamp (ISO-8601). */
  readonly timestamp: string;
  /** PCR index (decimal string) → lower-case hex, every register the document reports. */
  readonly pcrs: Readonly<Record<string, string>>;
  /** The leaf certificate's validity window (ISO-8601). */
  readonly leafValidFrom: string;
  readonly leafValidTo: string;
  /** Lower-case hex, or null when absent. */
  readonly nonce: string | null;
  readonly publicKey: string | null;
  readonly userData: string | null;
}

export interface EnclaveAttestationSuccess {
  readonly ok: true;
  readonly claims: AttestationClaimsSummary;
  /** The approved set the document matched: its position in the Approved sets given, and its id. */
  readonly matchedMeasurementSet: { readonly index: number; readonly id: string };
}

export interface EnclaveAttestationFailure {
  readonly ok: false;
  readonly code: EnclaveAttestationFailureCode;
  /** A sentence for the enclave's failure reason and the audit trail (no secrets, no nonce values). */
  readonly message: string;
}

export type EnclaveAttestationResult = EnclaveAttestationSuccess | EnclaveAttestationFailure;

const INSTANCE_ID = /^i-(?:[0-9a-f]{8}|[0-9a-f]{17})$/;

export { pcr4ForInstanceId };

/**
 * Verifies the attestation document of a freshly launched enclave and consumes its nonce.
 *
 * @returns the JSON-safe claims and the matched set, or a refusal: any verifier code (`untrusted_root`,
 *   `pcr_mismatch`, `debug_mode`, `nonce_mismatch`, `stale`, `expired`, …; `invalid_policy` for an
 *   instance id or a measurement set that cannot make a fail-closed policy), `measurements-not-approved`,
 *   `nonce_replayed`, `nonce_expired` or `nonce_unknown`.
 * @throws NonceStoreError when the nonce store fails (only after the document verified).
 * @example
 * const verdict = await verifyEnclaveAttestation(
 *   { document, enclaveId, instanceId, approvedMeasurements: plan.approvedMeasurements, expectedNonce },
 *   { nonces, now: () => new Date(), ...(config.localStack ? { trustedRoots: [simulatorRootPem] } : {}) },
 * );
 * if (!verdict.ok) throw new AttestationRefused(verdict.code, verdict.message); // → Compensate
 */
export async function verifyEnclaveAttestation(
  input: EnclaveAttestationInput,
  deps: EnclaveAttestationDeps,
): Promise<EnclaveAttestationResult> {
  // Only sets approved by both parties count; anything else passed in is ignored (fail closed).
  const approved = (input.approvedMeasurements ?? []).filter((set) => set.status === 'Approved');
  if (approved.length === 0) {
    return refuse(
      'measurements-not-approved',
      'No measurement set approved by both parties was given: the document cannot be accepted for any image.',
    );
  }
  if (typeof input.instanceId !== 'string' || !INSTANCE_ID.test(input.instanceId)) {
    return refuse(
      'invalid_policy',
      'The launched instance id is not an EC2 instance id: PCR4 cannot be pinned.',
    );
  }

  const pcr4 = pcr4ForInstanceId(input.instanceId);
  // One policy set per (approved set, admissible signer): PCR8 is pinned whenever the set or the
  // enclave's configuration constrains the signer, so an allowlist is enforced by the NSM's own PCR8.
  const candidates = approved.flatMap((set) =>
    signersFor(set, input.allowedSigners ?? []).map((pcr8) => ({ set, pcr8 })),
  );
  if (candidates.length === 0) {
    return refuse(
      'measurements-not-approved',
      "No approved measurement set is signed by a certificate the enclave's allowed signers list.",
    );
  }
  let policy: Policy;
  try {
    policy = buildPolicy({
      measurements: candidates.map(({ set, pcr8 }) => policySet(set, pcr4, pcr8)),
      requireFreshness: true,
      expectedNonce: input.expectedNonce,
      maxAgeMs: deps.maxAgeMs ?? DEFAULT_ATTESTATION_MAX_AGE_MS,
    });
  } catch (error) {
    if (error instanceof AttestationPolicyError) return refuse('invalid_policy', error.message);
    throw error;
  }

  const verdict = verifyAttestation(input.document, policy, {
    at: deps.now(),
    // Never passed unless given: the default is the pinned AWS root alone.
    ...(deps.trustedRoots === undefined ? {} : { trustedRoots: deps.trustedRoots }),
  });
  if (!verdict.ok) return refuse(verdict.code, verdict.message);

  // The document is authentic and carries the expected nonce (the policy checked it): only now is the
  // nonce consumed, so neither a forgery nor a mismatching document can use it up.
  const consumption = await deps.nonces.consume(input.enclaveId, input.expectedNonce, input.consumptionId);
  if (consumption !== 'consumed') return nonceRefusal(consumption);

  const { set } = candidates[verdict.matchedMeasurementSet]!;
  return {
    ok: true,
    claims: summarize(verdict.claims),
    matchedMeasurementSet: { index: approved.indexOf(set), id: set.id },
  };
}

/** The PCR8 values `set` may match under `allowed` (empty: unconstrained); `undefined` = PCR8 not pinned. */
function signersFor(set: MeasurementSet, allowed: readonly string[]): (string | undefined)[] {
  if (set.pcr8) return allowed.length === 0 || allowed.includes(set.pcr8) ? [set.pcr8] : [];
  return allowed.length === 0 ? [undefined] : [...allowed];
}

/**
 * The registers one approved set pins: PCR0/1/2, PCR4 of the launched instance, PCR8 when a signer is
 * pinned, and the set's additional PCRs (a register the document does not carry is a `pcr_mismatch`).
 * @throws AttestationPolicyError (→ `invalid_policy`) when the additional PCRs are not an object or name a
 *   register outside the allowed ones: the proposal schema and the table's CHECK refuse that, so such a row
 *   was altered, and it must neither replace an image pin nor the platform's PCR4 pin.
 */
function policySet(set: MeasurementSet, pcr4: string, pcr8: string | undefined): PolicyMeasurementSet {
  const additional: unknown = set.additionalPcrs;
  if (typeof additional !== 'object' || additional === null || Array.isArray(additional)) {
    throw new AttestationPolicyError(
      'additionalPcrs',
      `Measurement set ${set.id} holds additional PCRs that are not an object of index to value.`,
    );
  }
  const pinned: Record<string, string> = {};
  for (const [key, value] of Object.entries(additional as Record<string, unknown>)) {
    if (!isAdditionalPcrKey(key)) {
      throw new AttestationPolicyError(
        'additionalPcrs',
        `Measurement set ${set.id} pins "${key}" among its additional PCRs, a register it may not pin there.`,
      );
    }
    pinned[key] = value as string; // buildPolicy refuses anything but 96 hex digits
  }
  return {
    ...pinned,
    0: set.pcr0,
    1: set.pcr1,
    2: set.pcr2,
    4: pcr4,
    ...(pcr8 ? { 8: pcr8 } : {}),
  };
}

function nonceRefusal(consumption: Exclude<NonceConsumption, 'consumed'>): EnclaveAttestationFailure {
  switch (consumption) {
    case 'already_consumed':
      return refuse('nonce_replayed', 'The document is authentic but its nonce was already used: a replay.');
    case 'expired':
      return refuse(
        'nonce_expired',
        'The document is authentic but its nonce expired before it was presented.',
      );
    case 'unknown':
      return refuse(
        'nonce_unknown',
        'The document is authentic but its nonce was not issued to this enclave.',
      );
  }
}

function summarize(claims: AttestationClaims): AttestationClaimsSummary {
  const pcrs: Record<string, string> = {};
  for (const index of [...claims.pcrs.keys()].sort((a, b) => a - b))
    pcrs[String(index)] = claims.pcrs.get(index)!;
  return {
    moduleId: claims.moduleId,
    digest: claims.digest,
    timestamp: new Date(claims.timestamp).toISOString(),
    pcrs,
    leafValidFrom: claims.leafValidFrom,
    leafValidTo: claims.leafValidTo,
    nonce: hexOrNull(claims.nonce),
    publicKey: hexOrNull(claims.publicKey),
    userData: hexOrNull(claims.userData),
  };
}

function hexOrNull(bytes: Uint8Array | null): string | null {
  return bytes === null
    ? null
    : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

function refuse(code: EnclaveAttestationFailureCode, message: string): EnclaveAttestationFailure {
  return { ok: false, code, message };
}
