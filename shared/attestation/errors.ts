/**
 * Errors of the attestation library. Verification itself never throws (it returns a typed failure); these
 * are thrown only by the builders that a caller controls: a policy that would not fail closed, and the
 * low-level CBOR decoder (which `verifyAttestation` wraps).
 */

/** A policy input that would not fail closed (no measurement set, an empty set, a bad PCR value …). */
export class AttestationPolicyError extends Error {
  override readonly name = 'AttestationPolicyError';
  /** The offending part of the policy input, e.g. `measurements[0][3]` or `maxAgeMs`. */
  readonly field: string;

  constructor(field: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.field = field;
  }
}

/** Input that is not one well-formed CBOR item within the decoder's bounds. */
export class CborDecodeError extends Error {
  override readonly name = 'CborDecodeError';
  /** Byte offset in the input where decoding stopped. */
  readonly offset: number;

  constructor(message: string, offset: number) {
    super(`${message} (at byte ${offset})`);
    this.offset = offset;
  }
}
