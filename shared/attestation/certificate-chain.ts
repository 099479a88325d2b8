/**
 * The certificate chain of a Nitro document: `cabundle[0]` (the root) → … → `cabundle[n-1]` → the leaf
 * (`certificate`), checked in a fixed order so that the cached and uncached paths always give the same
 * verdict:
 *   1. the root is byte-identical to a trusted root                       → untrusted_root
 *   2. every certificate is exactly one DER X.509 certificate             → malformed
 *   3. CA constraints, root to leaf, and the leaf key is EC P-384          → chain_invalid
 *      - every certificate above the leaf (root included) has basicConstraints cA = TRUE and, when it
 *        has keyUsage, keyCertSign;
 *      - a pathLenConstraint n allows at most n intermediates below it (the leaf not counted);
 *      - the leaf is not a CA and, when it has keyUsage, has digitalSignature (it signs the document).
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
import { hasKeyUsage, KEY_USAGE } from './der.ts';

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

  const constraints = checkConstraints(chain);
  if (constraints !== null) return failure('chain_invalid', constraints);
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

/**
 * The CA constraints of RFC 5280 §4.2.1.3 and §4.2.1.9, checked root to leaf; the first violation as a
 * sentence, or null. Every input is a parsed certificate (its extensions already read strictly), so this is
 * a pure function of the DER bytes and gives the same answer on the cached and uncached paths.
 *
 * pathLenConstraint counts every intermediate below the CA, self-issued ones included: stricter than
 * RFC 5280 (which exempts self-issued certificates), and no AWS chain has one.
 */
function checkConstraints(chain: readonly ParsedCertificate[]): string | null {
  const last = chain.length - 1;
  for (let i = 0; i < last; i++) {
    const certificate = chain[i]!;
    const name = describeAtStart(i, chain.length);
    if (certificate.basicConstraints === null) {
      return `${name} is not a certificate authority: it has no basicConstraints extension.`;
    }
    if (!certificate.basicConstraints.ca) {
      return `${name} is not a certificate authority: its basicConstraints do not assert cA.`;
    }
    if (certificate.keyUsage !== null && !hasKeyUsage(certificate.keyUsage, KEY_USAGE.keyCertSign)) {
      return `${name} may not sign certificates: its keyUsage lacks keyCertSign.`;
    }
    const pathLen = certificate.basicConstraints.pathLen;
    const below = last - 1 - i; // intermediates between this certificate and the leaf
    if (pathLen !== null && below > pathLen) {
      return `${name} allows at most ${pathLen} intermediate certificate${pathLen === 1 ? '' : 's'} below it (basicConstraints pathLenConstraint), but the chain has ${below}.`;
    }
  }
  const leaf = chain[last]!;
  if (leaf.isCa) {
    return 'The leaf certificate is a certificate authority (basicConstraints cA); a leaf must not be one.';
  }
  if (leaf.keyUsage !== null && !hasKeyUsage(leaf.keyUsage, KEY_USAGE.digitalSignature)) {
    return 'The leaf certificate may not sign the document: its keyUsage lacks digitalSignature.';
  }
  return null;
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
