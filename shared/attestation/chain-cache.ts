/**
 * The fast path: documents from one enclave share their whole certificate chain, and documents from one
 * region share the root and upper intermediates, so parsed certificates and verified chain links are
 * remembered. A document whose chain was seen then costs one P-384 verification (the COSE signature) plus
 * parsing the CBOR.
 *
 * What is cached and why it cannot change a verdict:
 * - parsed certificates (X509Certificate, its public KeyObject, validity window, basicConstraints and
 *   keyUsage as `der.ts` reads them, key curve): a pure function of the DER bytes, kept only once the
 *   certificate is part of a verified link, so that input which does not chain to a trusted root cannot fill
 *   the cache;
 * - verified links ("child was issued and signed by parent"): also a pure function of the two DER byte
 *   strings, independent of the time and of the trust anchors. Which root is trusted, and whether every
 *   certificate is valid at the verification instant, are checked on every call, never cached.
 *
 * Keying: an entry's key is SHA-256 of the DER, and a hit additionally compares the stored DER with the
 * presented bytes in full. SHA-256 alone would do in practice; the full comparison (about 600 bytes, far
 * cheaper than a signature check) makes "a cached link is only reused for the exact bytes it verified" true
 * by construction rather than by a collision-resistance argument. A link entry is keyed by the two
 * certificate keys, and is only looked up after both certificates were resolved to their exact bytes.
 *
 * Bounds: each map is an LRU of `maxEntries` (insertion order of a `Map`, refreshed on hit), and a link
 * entry is never used past the earliest `notAfter` of its two certificates, measured on the verification's
 * own clock (`at`): time is a parameter of verification, so the cache follows the same instant. An entry
 * found past that instant is dropped.
 */
import { hash, type KeyObject, X509Certificate } from 'node:crypto';
import { DEFAULT_CHAIN_CACHE_ENTRIES } from './constants.ts';
import { type BasicConstraints, type KeyUsage, readCertificateConstraints } from './der.ts';

/** A certificate parsed once, with everything the chain check reads from it. */
export interface ParsedCertificate {
  /** Cache key: base64 of SHA-256(DER). */
  readonly key: string;
  /** A private copy of the DER bytes (the caller's buffer may change after the call). */
  readonly der: Uint8Array;
  readonly x509: X509Certificate;
  readonly publicKey: KeyObject;
  readonly validFromMs: number;
  readonly validToMs: number;
  readonly validFromIso: string;
  readonly validToIso: string;
  /** basicConstraints cA = TRUE (read by the strict DER reader, not OpenSSL). */
  readonly isCa: boolean;
  /** The basicConstraints extension, or null when the certificate has none. */
  readonly basicConstraints: BasicConstraints | null;
  /** The keyUsage extension, or null when the certificate has none. */
  readonly keyUsage: KeyUsage | null;
  /** The subject key is an EC key on P-384 (secp384r1). */
  readonly isP384: boolean;
}

/** Thrown by `parseCertificate` for bytes that are not exactly one DER X.509 certificate. */
export class CertificateParseError extends Error {
  override readonly name = 'CertificateParseError';
}

/** Cache key of a certificate: base64 of SHA-256 of its DER. */
export function certificateKey(der: Uint8Array): string {
  return hash('sha256', der, 'base64');
}

/**
 * Parses one DER certificate. The bytes must be exactly the certificate: `X509Certificate` would also take
 * PEM text or ignore trailing bytes, and two encodings of one certificate must not both pass.
 *
 * @throws CertificateParseError when they are not.
 */
export function parseCertificate(der: Uint8Array, key = certificateKey(der)): ParsedCertificate {
  if (der.length === 0 || der[0] !== 0x30) throw new CertificateParseError('not a DER SEQUENCE');
  const copy = new Uint8Array(der);
  let x509: X509Certificate;
  let publicKey: KeyObject;
  try {
    x509 = new X509Certificate(copy);
    // Read here so that a key OpenSSL cannot load counts as an unreadable certificate.
    publicKey = x509.publicKey;
  } catch (error) {
    throw new CertificateParseError('not an X.509 certificate', { cause: error });
  }
  if (!bytesEqual(x509.raw, copy)) throw new CertificateParseError('not exactly one DER certificate');
  // Not `validFromDate`/`validToDate`: for a time OpenSSL cannot read, Node 24 returns a Date built from
  // uninitialised memory (a different instant on each call), which would make verdicts nondeterministic.
  // The text form is deterministic ("Bad time value" for an unreadable time) and is parsed strictly here.
  const validFromMs = parseOpenSslTime(x509.validFrom);
  const validToMs = parseOpenSslTime(x509.validTo);
  if (validFromMs === null || validToMs === null)
    throw new CertificateParseError('unreadable validity window');
  // OpenSSL reads extensions leniently and node:crypto exposes neither pathLenConstraint nor keyUsage.
  const constraints = readCertificateConstraints(copy);
  if (!constraints.ok) throw new CertificateParseError(`not strict DER: ${constraints.reason}`);
  const { basicConstraints, keyUsage } = constraints.value;
  return {
    key,
    der: copy,
    x509,
    publicKey,
    validFromMs,
    validToMs,
    validFromIso: new Date(validFromMs).toISOString(),
    validToIso: new Date(validToMs).toISOString(),
    isCa: basicConstraints?.ca === true,
    basicConstraints,
    keyUsage,
    isP384:
      publicKey.asymmetricKeyType === 'ec' && publicKey.asymmetricKeyDetails?.namedCurve === 'secp384r1',
  };
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
// OpenSSL's ASN1_TIME_print layout: "Oct 13 08:57:59 2022 GMT", fractional seconds for GeneralizedTime.
const OPENSSL_TIME = /^([A-Z][a-z]{2}) {1,2}(\d{1,2}) (\d{2}):(\d{2}):(\d{2})(\.\d+)? (\d{4}) GMT$/;

/** Milliseconds since the epoch of an OpenSSL-printed certificate time, or null when it is not one. */
function parseOpenSslTime(text: string): number | null {
  const match = OPENSSL_TIME.exec(text);
  if (match === null) return null;
  const [, month, day, hours, minutes, seconds, fraction, year] = match;
  const monthIndex = MONTHS.indexOf(month!);
  // Years below 100 would be read by Date.UTC as 19xx; no certificate carries one.
  if (monthIndex < 0 || Number(year) < 100) return null;
  const ms = Date.UTC(Number(year), monthIndex, Number(day), Number(hours), Number(minutes), Number(seconds));
  // Certificate times have whole seconds in practice; a fraction is kept to the millisecond.
  return ms + (fraction === undefined ? 0 : Math.floor(Number(`0${fraction}`) * 1000));
}

/** Byte equality of two byte arrays (length first, then content). */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  return Buffer.from(a.buffer, a.byteOffset, a.length).equals(b);
}

/**
 * A bounded cache of parsed certificates and verified chain links. Use the module-level default through
 * `verifyAttestation` (or pass `useCache: false`); construct one only to isolate a workload or a test.
 */
export class ChainCache {
  private readonly certificates = new Map<string, ParsedCertificate>();
  private readonly links = new Map<string, number>();

  /** @param maxEntries most entries kept in each of the two maps (least recently used go first) */
  constructor(readonly maxEntries: number = DEFAULT_CHAIN_CACHE_ENTRIES) {
    if (!Number.isInteger(maxEntries) || maxEntries < 1)
      throw new RangeError('maxEntries must be a positive integer');
  }

  /**
   * The parsed certificate for these exact DER bytes: the cached one, or a fresh parse on a miss. A fresh
   * parse is only kept once it is part of a verified link (`rememberVerifiedLink`), so input that does not
   * chain to a trusted root cannot fill the cache or evict genuine entries.
   *
   * @throws CertificateParseError when the bytes are not one DER certificate.
   */
  certificate(der: Uint8Array): ParsedCertificate {
    const key = certificateKey(der);
    const hit = this.certificates.get(key);
    if (hit !== undefined && bytesEqual(hit.der, der)) {
      touch(this.certificates, key, hit);
      return hit;
    }
    return parseCertificate(der, key);
  }

  /** True when this link was verified before and both certificates are still within validity at `atMs`. */
  hasVerifiedLink(child: ParsedCertificate, parent: ParsedCertificate, atMs: number): boolean {
    const key = linkKey(child, parent);
    const notAfter = this.links.get(key);
    if (notAfter === undefined) return false;
    if (atMs > notAfter) {
      // Never outlive the certificates: an entry found past its notAfter is dropped, not reused.
      this.links.delete(key);
      return false;
    }
    touch(this.links, key, notAfter);
    this.keep(parent);
    this.keep(child);
    return true;
  }

  /** Records that `child` was issued and signed by `parent` (call only after checking it), and keeps both. */
  rememberVerifiedLink(child: ParsedCertificate, parent: ParsedCertificate): void {
    remember(
      this.links,
      linkKey(child, parent),
      Math.min(child.validToMs, parent.validToMs),
      this.maxEntries,
    );
    this.keep(parent);
    this.keep(child);
  }

  /** Keeps a certificate of a verified link (again, if it was evicted while its link stayed cached). */
  private keep(certificate: ParsedCertificate): void {
    if (this.certificates.get(certificate.key) !== certificate) {
      remember(this.certificates, certificate.key, certificate, this.maxEntries);
    }
  }

  /** Entries held: parsed certificates and verified links. */
  get size(): { readonly certificates: number; readonly links: number } {
    return { certificates: this.certificates.size, links: this.links.size };
  }

  /** Forgets everything. */
  clear(): void {
    this.certificates.clear();
    this.links.clear();
  }
}

function linkKey(child: ParsedCertificate, parent: ParsedCertificate): string {
  return `${child.key}<${parent.key}`;
}

function touch<V>(map: Map<string, V>, key: string, value: V): void {
  // Re-inserting moves the key to the end of the Map's iteration order: the most recently used.
  map.delete(key);
  map.set(key, value);
}

function remember<V>(map: Map<string, V>, key: string, value: V, maxEntries: number): void {
  map.delete(key);
  map.set(key, value);
  while (map.size > maxEntries) {
    const oldest = map.keys().next().value as string;
    map.delete(oldest);
  }
}

/** The cache shared by every `verifyAttestation` call that does not opt out. */
export const defaultChainCache = new ChainCache();
