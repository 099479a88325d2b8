/**
 * The certificate chain of a Nitro document: `cabundle[0]` (the root) → … → `cabundle[n-1]` → the leaf
 * (`certificate`), checked in a fixed order so that the cached and uncached paths always give the same
 * verdict:
 *   1. the root is byte-identical to a trusted root                       → untrusted_root
 *   2. every certificate is exactly one DER X.509 certificate             → malformed
 *   3. the intermediates are CAs, the leaf key is EC P-384                → chain_invalid
 *   4. each certificate is issued and signed by the one before it         → chain_invalid
 *   5. each certificate is valid at the verification instant (root first) → not_yet_valid / expired
 * Signatures come before validity so that a forged certificate is reported as forged, not as expired.
 */
import {
  bytesEqual,
  CertificateParseError,
  type ChainCache,
  type ParsedCertificate,
  parseCertificate,
} from './chain-cache.ts';
import { failure, type Parsed } from './cose.ts';

/**
 * Verifies the chain at `atMs` against `trustedRoots` (DER), using `cache` for parsed certificates and
 * verified links when given (null: parse and verify everything). Returns the parsed leaf.
 */
export function verifyCertificateChain(
  cabundle: readonly Uint8Array[],
  leafDer: Uint8Array,
  trustedRoots: readonly Uint8Array[],
  atMs: number,
  cache: ChainCache | null,
): Parsed<ParsedCertificate> {
  const rootDer = cabundle[0];
  if (rootDer === undefined || !trustedRoots.some((root) => bytesEqual(root, rootDer))) {
    return failure(
      'untrusted_root',
      'The certificate bundle does not start with a trusted root certificate.',
    );
  }

  const chain: ParsedCertificate[] = [];
  const ders = [...cabundle, leafDer];
  for (const [i, der] of ders.entries()) {
    try {
      chain.push(cache === null ? parseCertificate(der) : cache.certificate(der));
    } catch (error) {
      if (!(error instanceof CertificateParseError)) throw error;
      return failure(
        'malformed',
        `${describeAtStart(i, ders.length)} is not a DER X.509 certificate (${error.message}).`,
      );
    }
  }
  const leaf = chain[chain.length - 1]!;

  for (let i = 1; i < chain.length - 1; i++) {
    if (!chain[i]!.isCa) {
      return failure(
        'chain_invalid',
        `${describeAtStart(i, chain.length)} is not a certificate authority (basicConstraints cA).`,
      );
    }
  }
  if (!leaf.isP384) {
    return failure('chain_invalid', 'The leaf certificate does not hold an EC P-384 key.');
  }

  for (let i = 1; i < chain.length; i++) {
    const child = chain[i]!;
    const parent = chain[i - 1]!;
    if (cache?.hasVerifiedLink(child, parent, atMs)) continue;
    // checkIssued: the issuer name (and key identifiers) match; verify: the signature checks with the key.
    if (!child.x509.checkIssued(parent.x509) || !child.x509.verify(parent.publicKey)) {
      return failure(
        'chain_invalid',
        `${describeAtStart(i, chain.length)} is not issued and signed by ${describe(i - 1, chain.length)}.`,
      );
    }
    cache?.rememberVerifiedLink(child, parent);
  }

  for (const [i, certificate] of chain.entries()) {
    if (atMs < certificate.validFromMs) {
      return failure(
        'not_yet_valid',
        `${describeAtStart(i, chain.length)} is not valid before ${certificate.validFromIso} (checked at ${new Date(atMs).toISOString()}).`,
      );
    }
    if (atMs > certificate.validToMs) {
      return failure(
        'expired',
        `${describeAtStart(i, chain.length)} expired at ${certificate.validToIso} (checked at ${new Date(atMs).toISOString()}).`,
      );
    }
  }

  return { ok: true, value: leaf };
}

/** Names a certificate of the chain; `describeAtStart` starts a sentence with it. */
function describe(index: number, length: number): string {
  if (index === length - 1) return 'the leaf certificate';
  return index === 0
    ? 'the root certificate (cabundle[0])'
    : `the intermediate certificate cabundle[${index}]`;
}

function describeAtStart(index: number, length: number): string {
  const name = describe(index, length);
  return name.charAt(0).toUpperCase() + name.slice(1);
}
