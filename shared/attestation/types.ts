/**
 * Types of the Nitro Enclaves attestation library: what a verified document claims, the policy it is
 * checked against, and the typed failures. The library has no AWS SDK or database imports.
 */
import type { ChainCache } from './chain-cache.ts';

/** Stable, machine-readable failure codes. */
export const FAILURE_CODES = [
  'malformed',
  'unsupported_algorithm',
  'bad_signature',
  'untrusted_root',
  'chain_invalid',
  'expired',
  'not_yet_valid',
  'pcr_mismatch',
  'debug_mode',
  'nonce_mismatch',
  'stale',
  'from_the_future',
  'public_key_mismatch',
  'user_data_mismatch',
  // The policy or options passed to verifyAttestation are unusable (e.g. a hand-made policy that
  // buildPolicy would refuse, or an invalid `at`): refused rather than thrown, since verification never throws.
  'invalid_policy',
] as const;
export type FailureCode = (typeof FAILURE_CODES)[number];

export interface AttestationFailure {
  readonly ok: false;
  readonly code: FailureCode;
  /** A human sentence saying what was wrong. */
  readonly message: string;
}

/** The trusted content of a verified document. */
export interface AttestationClaims {
  readonly moduleId: string;
  readonly digest: 'SHA384';
  /** Milliseconds since the epoch, as the enclave's NSM stamped it. */
  readonly timestamp: number;
  /** PCR index → value (lower-case hex). */
  readonly pcrs: ReadonlyMap<number, string>;
  /** DER of the leaf certificate. */
  readonly certificate: Uint8Array;
  /** DER certificates, root first. */
  readonly cabundle: readonly Uint8Array[];
  readonly publicKey: Uint8Array | null;
  readonly userData: Uint8Array | null;
  readonly nonce: Uint8Array | null;
  /** True when PCR0, PCR1 and PCR2 are all zero (an enclave started in debug mode). */
  readonly debugMode: boolean;
  /** The leaf certificate's validity window (ISO-8601). */
  readonly leafValidFrom: string;
  readonly leafValidTo: string;
}

export interface AttestationSuccess {
  readonly ok: true;
  readonly claims: AttestationClaims;
  /** Index in `policy.measurements` of the measurement set that matched. */
  readonly matchedMeasurementSet: number;
}

export type AttestationResult = AttestationSuccess | AttestationFailure;

/**
 * A set of PCR values that is acceptable together (any subset of PCR0–PCR31 may be pinned; all pinned
 * values must match, and a pinned register the document does not carry matches nothing). Values are hex
 * (case-insensitive) of 48 bytes for SHA-384 documents.
 */
export type MeasurementSet = Readonly<Partial<Record<number, string>>>;

export interface PolicyInput {
  /** Acceptable measurement sets; at least one, and none empty (fail closed). */
  readonly measurements: readonly MeasurementSet[];
  /** Accept documents from enclaves in debug mode (PCR0/1/2 zero). Only for local development. */
  readonly allowDebug?: boolean;
  /** Require `nonce` to equal this; required when `requireFreshness` is set. */
  readonly expectedNonce?: Uint8Array;
  /** The caller asks for a fresh document: an expected nonce is then mandatory. */
  readonly requireFreshness?: boolean;
  /** Maximum age of the document (its timestamp) at the verification time, in ms. */
  readonly maxAgeMs?: number;
  readonly expectedPublicKey?: Uint8Array;
  readonly expectedUserData?: Uint8Array;
}

/** A policy that passed the fail-closed checks of `buildPolicy`; only those can be used to verify. */
export interface Policy extends PolicyInput {
  readonly __brand: 'AttestationPolicy';
}

export interface VerifyOptions {
  /** Verify "as of" this instant (default now). */
  readonly at?: Date;
  /**
   * Trust anchors as DER or PEM. Default: the pinned AWS Nitro Enclaves root only. Any other root (the
   * local simulator's) is trusted only when passed here explicitly.
   */
  readonly trustedRoots?: readonly (Uint8Array | string)[];
  /** Reuse verified chain links (default true); false forces the full, uncached check. */
  readonly useCache?: boolean;
  /** The cache to use when `useCache` is not false (default: the module-level cache shared by all calls). */
  readonly chainCache?: ChainCache;
}
