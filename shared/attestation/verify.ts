/**
 * `verifyAttestation`: one pure, synchronous function from (document, policy, options) to a verdict.
 *
 * Checks run in a fixed order and the first failure is returned, each with its own code:
 *   request (policy, options)            → invalid_policy
 *   size, base64, CBOR, COSE shape       → malformed
 *   algorithm                            → unsupported_algorithm
 *   signature size, payload fields/bounds → malformed
 *   chain                                → untrusted_root, malformed, chain_invalid, expired, not_yet_valid
 *   COSE signature                       → bad_signature
 *   policy                               → debug_mode, pcr_mismatch, nonce_mismatch, stale, from_the_future,
 *                                          public_key_mismatch, user_data_mismatch
 * Nothing is trusted before the chain and the signature hold; the policy is only consulted afterwards.
 */
import { verify as verifySignature } from 'node:crypto';
import { type AttestationPayload, parseAttestationPayload } from './attestation-document.ts';
import { AWS_NITRO_ROOT_DER } from './aws-nitro-root.ts';
import { verifyCertificateChain } from './certificate-chain.ts';
import { bytesEqual, defaultChainCache, type ParsedCertificate } from './chain-cache.ts';
import { MAX_CLOCK_SKEW_MS, MAX_DOCUMENT_BYTES } from './constants.ts';
import { failure, type Parsed, parseCoseSign1, sigStructure } from './cose.ts';
import { AttestationPolicyError } from './errors.ts';
import { type ResolvedPolicy, resolvePolicy } from './policy.ts';
import type {
  AttestationClaims,
  AttestationFailure,
  AttestationResult,
  Policy,
  VerifyOptions,
} from './types.ts';

const DEFAULT_ROOTS: readonly Uint8Array[] = [AWS_NITRO_ROOT_DER];
// Base64 of the largest accepted document, with room for line breaks every 64 characters and padding.
const MAX_BASE64_CHARS = Math.floor(Math.ceil(MAX_DOCUMENT_BYTES / 3) * 4 * 1.1 + 64);
const BASE64 = /^(?:[A-Za-z0-9+/]*={0,2}|[A-Za-z0-9_-]*={0,2})$/;
// A global replace of each blank or of each run of them is the same.
// Stryker disable next-line Regex: equivalent (above)
const WHITESPACE = /\s+/g;
const IMAGE_PCRS = [0, 1, 2] as const;

/**
 * Verifies a Nitro Enclaves attestation document against a policy built by `buildPolicy`.
 *
 * Synchronous, and never throws: any input yields either the trusted claims or a typed failure with a
 * sentence. An unexpected internal error becomes `malformed` with a generic sentence (no internals leak).
 *
 * @param document raw CBOR of the COSE_Sign1 structure, or its base64 (standard or URL alphabet)
 * @param policy the measurement sets and expectations to check, from `buildPolicy`
 * @param options `at` (verify as of this instant, default now), `trustedRoots` (replace the pinned AWS root),
 *   `useCache` (default true; false forces the full uncached check)
 * @example
 * const result = verifyAttestation(documentBytes, policy, { at: new Date() });
 * if (!result.ok) throw new Error(`attestation refused: ${result.code}: ${result.message}`);
 */
export function verifyAttestation(
  document: Uint8Array | string,
  policy: Policy,
  options: VerifyOptions = {},
): AttestationResult {
  try {
    return verifyOrFail(document, policy, options);
  } catch {
    return failure(
      'malformed',
      'The document could not be verified: it caused an unexpected error while being read.',
    );
  }
}

function verifyOrFail(
  document: Uint8Array | string,
  policy: Policy,
  options: VerifyOptions,
): AttestationResult {
  // The request itself: a policy that buildPolicy would refuse, or an invalid instant, is refused outright.
  let resolved: ResolvedPolicy;
  try {
    resolved = resolvePolicy(policy);
  } catch (error) {
    if (error instanceof AttestationPolicyError) return failure('invalid_policy', error.message);
    throw error;
  }
  const authentic = authenticate(document, options);
  if (!authentic.ok) return authentic;
  const { payload, leaf, atMs } = authentic.value;

  // Policy.
  const matched = checkPolicy(payload, resolved, atMs);
  if (!matched.ok) return matched;
  return { ok: true, claims: claimsOf(payload, leaf), matchedMeasurementSet: matched.value };
}

/**
 * Authenticates a document without a measurement policy: its envelope, chain (to the pinned AWS root, or
 * `options.trustedRoots`) and signature are verified exactly as {@link verifyAttestation} verifies them,
 * and its claims are answered; no PCR, nonce, age, debug mode, public key or user data is checked. For a
 * relying party that decides on the claims itself, as KMS does: it authenticates a `Recipient` document,
 * then evaluates the key policy on the claims (the local KMS stand-in uses this). Anything that must hold of
 * an enclave's measurements is checked by `verifyAttestation` with a policy instead. Never throws.
 */
export function authenticateAttestation(
  document: Uint8Array | string,
  options: VerifyOptions = {},
): { readonly ok: true; readonly claims: AttestationClaims } | AttestationFailure {
  try {
    const authentic = authenticate(document, options);
    if (!authentic.ok) return authentic;
    return { ok: true, claims: claimsOf(authentic.value.payload, authentic.value.leaf) };
  } catch {
    return failure(
      'malformed',
      'The document could not be verified: it caused an unexpected error while being read.',
    );
  }
}

/** The instant, roots, envelope, payload, chain and signature checks, in that order. */
function authenticate(
  document: Uint8Array | string,
  options: VerifyOptions,
): Parsed<{ payload: AttestationPayload; leaf: ParsedCertificate; atMs: number }> {
  const atMs =
    options.at === undefined ? Date.now() : options.at instanceof Date ? options.at.getTime() : Number.NaN;
  if (!Number.isFinite(atMs))
    return failure('invalid_policy', 'The verification instant (options.at) is not a valid date.');
  const roots = trustedRoots(options.trustedRoots);
  if (!roots.ok) return roots;

  const bytes = documentBytes(document);
  if (!bytes.ok) return bytes;

  // COSE shape → algorithm → signature size.
  const cose = parseCoseSign1(bytes.value);
  if (!cose.ok) return cose;

  // Payload fields and bounds.
  const payload = parseAttestationPayload(cose.value.payload);
  if (!payload.ok) return payload;

  // Chain.
  const cache = options.useCache === false ? null : (options.chainCache ?? defaultChainCache);
  const leaf = verifyCertificateChain(
    payload.value.cabundle,
    payload.value.certificate,
    roots.value,
    atMs,
    cache,
  );
  if (!leaf.ok) return leaf;

  // COSE signature with the leaf key, over the original protected-header and payload bytes.
  const signed = verifySignature(
    'sha384',
    sigStructure(cose.value.protectedHeader, cose.value.payload),
    { key: leaf.value.publicKey, dsaEncoding: 'ieee-p1363' },
    cose.value.signature,
  );
  if (!signed) {
    return failure('bad_signature', 'The COSE signature does not verify with the leaf certificate key.');
  }
  return { ok: true, value: { payload: payload.value, leaf: leaf.value, atMs } };
}

/**
 * Decodes a document WITHOUT verifying it: envelope, algorithm and payload fields are checked, the chain
 * and the signature are not, so nothing it returns may be trusted. For diagnostics only (the CLI shows it
 * when verification fails, so that an operator can see which PCRs a document reports). Never throws.
 */
export function decodeUnverifiedAttestation(
  document: Uint8Array | string,
): { readonly ok: true; readonly unverified: AttestationPayload } | AttestationFailure {
  try {
    const bytes = documentBytes(document);
    if (!bytes.ok) return bytes;
    const cose = parseCoseSign1(bytes.value);
    if (!cose.ok) return cose;
    const payload = parseAttestationPayload(cose.value.payload);
    return payload.ok ? { ok: true, unverified: payload.value } : payload;
  } catch {
    return failure(
      'malformed',
      'The document could not be decoded: it caused an unexpected error while being read.',
    );
  }
}

function documentBytes(document: Uint8Array | string): Parsed<Uint8Array> {
  if (document instanceof Uint8Array) {
    if (document.length > MAX_DOCUMENT_BYTES) return tooLarge();
    return { ok: true, value: document };
  }
  if (typeof document !== 'string')
    return failure('malformed', 'The document is neither bytes nor a base64 string.');
  if (document.length > MAX_BASE64_CHARS) return tooLarge();
  const text = document.replace(WHITESPACE, '');
  if (!BASE64.test(text) || text.length % 4 === 1) {
    return failure('malformed', 'The document string is not base64.');
  }
  const bytes = Buffer.from(text, 'base64');
  if (bytes.length > MAX_DOCUMENT_BYTES) return tooLarge();
  return { ok: true, value: bytes };
}

function tooLarge() {
  return failure(
    'malformed',
    `The document is larger than ${MAX_DOCUMENT_BYTES} bytes; real documents are about 5 KB.`,
  );
}

const PEM_CERTIFICATE = /^-----BEGIN CERTIFICATE-----([A-Za-z0-9+/=\s]+)-----END CERTIFICATE-----$/;

function trustedRoots(roots: VerifyOptions['trustedRoots']): Parsed<readonly Uint8Array[]> {
  if (roots === undefined) return { ok: true, value: DEFAULT_ROOTS };
  if (!Array.isArray(roots)) return failure('invalid_policy', 'options.trustedRoots is not an array.');
  const ders: Uint8Array[] = [];
  for (const [i, root] of roots.entries()) {
    if (root instanceof Uint8Array) {
      ders.push(root);
      continue;
    }
    const pem = typeof root === 'string' ? PEM_CERTIFICATE.exec(root.trim()) : null;
    if (pem === null) {
      return failure(
        'invalid_policy',
        `options.trustedRoots[${i}] is neither DER bytes nor one PEM certificate.`,
      );
    }
    ders.push(Buffer.from(pem[1]!.replace(WHITESPACE, ''), 'base64'));
  }
  return { ok: true, value: ders };
}

/** The policy checks, in a fixed order; returns the index of the matching measurement set. */
function checkPolicy(document: AttestationPayload, policy: ResolvedPolicy, atMs: number): Parsed<number> {
  if (!policy.allowDebug && isDebugMode(document.pcrs)) {
    return failure(
      'debug_mode',
      'The enclave runs in debug mode (PCR0, PCR1 and PCR2 are zero) and the policy refuses it.',
    );
  }

  let matched = -1;
  let closest: { set: number; differing: number[] } | null = null;
  for (const [set, pinned] of policy.measurements.entries()) {
    const differing: number[] = [];
    for (const { index, value } of pinned) {
      const actual = document.pcrs.get(index);
      if (actual === undefined || !bytesEqual(actual, value)) differing.push(index);
    }
    if (differing.length === 0) {
      matched = set;
      break;
    }
    if (closest === null || differing.length < closest.differing.length) closest = { set, differing };
  }
  if (matched < 0) {
    const { set, differing } = closest!;
    return failure(
      'pcr_mismatch',
      `The measurements match no acceptable set; the closest, set ${set}, differs in ${differing.map((i) => `PCR${i}`).join(', ')}.`,
    );
  }

  if (
    policy.expectedNonce !== null &&
    (document.nonce === null || !bytesEqual(document.nonce, policy.expectedNonce))
  ) {
    return failure(
      'nonce_mismatch',
      document.nonce === null
        ? 'The document carries no nonce, and the policy expects one.'
        : 'The document nonce is not the expected one.',
    );
  }

  const age = atMs - document.timestamp;
  if (policy.maxAgeMs !== null && age > policy.maxAgeMs) {
    return failure(
      'stale',
      `The document is ${age} ms old, older than the ${policy.maxAgeMs} ms the policy allows.`,
    );
  }
  if (-age > MAX_CLOCK_SKEW_MS) {
    return failure(
      'from_the_future',
      `The document is stamped ${-age} ms after the verification instant (more than the ${MAX_CLOCK_SKEW_MS} ms of clock skew allowed).`,
    );
  }

  if (
    policy.expectedPublicKey !== null &&
    (document.publicKey === null || !bytesEqual(document.publicKey, policy.expectedPublicKey))
  ) {
    return failure('public_key_mismatch', 'The document public_key is not the expected one.');
  }
  if (
    policy.expectedUserData !== null &&
    (document.userData === null || !bytesEqual(document.userData, policy.expectedUserData))
  ) {
    return failure('user_data_mismatch', 'The document user_data is not the expected one.');
  }
  return { ok: true, value: matched };
}

/**
 * True when PCR0, PCR1 and PCR2 are all zero, which is how a debug-mode enclave reports them. A missing
 * image register counts as zero: fail closed.
 */
export function isDebugMode(pcrs: ReadonlyMap<number, Uint8Array>): boolean {
  return IMAGE_PCRS.every((index) => {
    const value = pcrs.get(index);
    return value === undefined || value.every((byte) => byte === 0);
  });
}

function claimsOf(document: AttestationPayload, leaf: ParsedCertificate): AttestationClaims {
  const pcrs = new Map<number, string>();
  for (const [index, value] of document.pcrs)
    pcrs.set(index, Buffer.from(value.buffer, value.byteOffset, value.length).toString('hex'));
  // Plain Uint8Array copies (Buffer#slice would be a view): the claims must not change if the caller later reuses the document's buffer.
  return {
    moduleId: document.moduleId,
    digest: document.digest,
    timestamp: document.timestamp,
    pcrs,
    certificate: copy(document.certificate),
    cabundle: document.cabundle.map(copy),
    publicKey: document.publicKey === null ? null : copy(document.publicKey),
    userData: document.userData === null ? null : copy(document.userData),
    nonce: document.nonce === null ? null : copy(document.nonce),
    debugMode: isDebugMode(document.pcrs),
    leafValidFrom: leaf.validFromIso,
    leafValidTo: leaf.validToIso,
  };
}

function copy(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(bytes);
}
