/**
 * AWS Nitro Enclaves attestation: parse and verify attestation documents against a fail-closed policy.
 * A self-contained library: node:crypto only, no AWS SDK, no database.
 *
 * @example
 * import { buildPolicy, verifyAttestation } from './shared/attestation/index.ts';
 * const policy = buildPolicy({ measurements: [{ 0: pcr0, 1: pcr1, 2: pcr2 }], expectedNonce, requireFreshness: true });
 * const result = verifyAttestation(document, policy);
 * if (result.ok) console.log(result.claims.moduleId);
 */
export { type AttestationPayload, parseAttestationPayload } from './attestation-document.ts';
export { AWS_NITRO_ROOT_PEM, AWS_NITRO_ROOT_SHA256_FINGERPRINT } from './aws-nitro-root.ts';
export {
  type CborArray,
  type CborBytes,
  type CborDecodeLimits,
  type CborFloat,
  type CborInteger,
  type CborMap,
  type CborMapKey,
  type CborSimple,
  type CborTag,
  type CborText,
  type CborValue,
  decodeCbor,
} from './cbor.ts';
export { ChainCache, defaultChainCache } from './chain-cache.ts';
export * from './constants.ts';
export { type CoseSign1, parseCoseSign1, sigStructure } from './cose.ts';
export { AttestationPolicyError, CborDecodeError } from './errors.ts';
export { buildPolicy } from './policy.ts';
export * from './types.ts';
export {
  authenticateAttestation,
  decodeUnverifiedAttestation,
  isDebugMode,
  verifyAttestation,
} from './verify.ts';
