import {
  checkPrimeSync,
  constants,
  createPublicKey,
  type JsonWebKey,
  type KeyObject,
  verify,
} from 'node:crypto';
import type { FieldIssue } from '../domain/errors.ts';
import type { SignatureAlgorithm } from '../domain/identity.ts';
import { ed25519PointIssue } from './ed25519-point.ts';

/**
 * Parties' public keys and their signatures (JWS algorithms, RFC 7518): ES256/ES384 as r‖s, EdDSA
 * (Ed25519, RFC 8037), PS256 (RSA-PSS, SHA-256, MGF1, 32-byte salt). A key is checked once, when it is
 * registered ({@link checkPublicJwk}); a signature is verified with the stored key every time
 * ({@link verifyPartySignature}).
 */
const KEY_TYPE_OF: Record<SignatureAlgorithm, { kty: string; crv?: string }> = {
  ES256: { kty: 'EC', crv: 'P-256' },
  ES384: { kty: 'EC', crv: 'P-384' },
  EdDSA: { kty: 'OKP', crv: 'Ed25519' },
  PS256: { kty: 'RSA' },
};

/** Octets of an EC coordinate: RFC 7518 §6.2.1.2 requires the full size of the field, leading zeros kept. */
const COORDINATE_OCTETS: Record<string, number> = { 'P-256': 32, 'P-384': 48 };

/**
 * RSA modulus size bounds. 2048 bits is the floor of NIST SP 800-57 Part 1 (112-bit security); 4096 is
 * the largest key AWS KMS and common HSMs make, and bounds what a registration (trial division, primality)
 * and every verification cost.
 */
export const RSA_MIN_BITS = 2048;
export const RSA_MAX_BITS = 4096;

/** The odd primes below `limit`, by the sieve of Eratosthenes. */
export function oddPrimesBelow(limit: number): bigint[] {
  const composite = new Uint8Array(limit);
  const primes: bigint[] = [];
  for (let i = 3; i < limit; i += 2) {
    if (composite[i]) continue;
    primes.push(BigInt(i));
    // `j <= limit` would be the same: a typed array ignores the write at index `limit`.
    // Stryker disable next-line EqualityOperator: equivalent (above)
    for (let j = i * i; j < limit; j += 2 * i) composite[j] = 1;
  }
  return primes;
}

/**
 * The odd primes below 2^16, for trial division of RSA moduli (a real modulus has two ~1024-bit factors).
 * Sieved when an RSA key is first checked, not when the module loads: every API function imports this
 * module, and the sieve alone cost more cold start than the rest of it.
 */
let smallOddPrimes: readonly bigint[] | undefined;
function SMALL_ODD_PRIMES(): readonly bigint[] {
  smallOddPrimes ??= oddPrimesBelow(1 << 16);
  return smallOddPrimes;
}

/** The first issue with the key's type for `alg` (kty, then crv), or undefined when it fits. */
function keyTypeIssue(alg: SignatureAlgorithm, jwk: Record<string, unknown>): FieldIssue | undefined {
  const expected = KEY_TYPE_OF[alg];
  if (jwk.kty !== expected.kty) return { field: 'jwk.kty', message: `${alg} needs kty ${expected.kty}` };
  if (expected.crv !== undefined && jwk.crv !== expected.crv)
    return { field: 'jwk.crv', message: `${alg} needs crv ${expected.crv}` };
  return undefined;
}

/**
 * The octets of a base64url member, or undefined unless it is written the one canonical way: the URL-safe
 * alphabet only, no padding, no non-zero trailing bits (RFC 7515 §2, RFC 4648 §3.5). Node's decoder skips
 * characters outside the alphabet, so without this `x` with junk appended would name the same key twice;
 * re-encoding the octets gives back exactly the input only when it was canonical.
 */
export function decodeBase64url(value: unknown): Buffer | undefined {
  if (typeof value !== 'string') return undefined;
  const octets = Buffer.from(value, 'base64url');
  return octets.toString('base64url') === value ? octets : undefined;
}

/**
 * Checks that `jwk` is a usable public key for `alg`, and a sound one: a key under which anyone could
 * forge the party's signatures is refused, since a party could register one and later disown what it
 * signed. Returns the problems found (empty when fine), each naming the JWK member at fault.
 */
export function checkPublicJwk(alg: SignatureAlgorithm, jwk: Record<string, unknown>): FieldIssue[] {
  const typeIssue = keyTypeIssue(alg, jwk);
  if (typeIssue) return [typeIssue];
  const issue = jwk.kty === 'RSA' ? rsaIssue(jwk) : jwk.kty === 'EC' ? ecIssue(jwk) : ed25519Issue(jwk.x);
  if (issue) return [issue];
  try {
    importJwk(jwk);
  } catch {
    // For EC keys this is OpenSSL's own check: the point is on the curve and its coordinates below p.
    return [{ field: 'jwk', message: 'not a valid public key' }];
  }
  return [];
}

function ecIssue(jwk: Record<string, unknown>): FieldIssue | undefined {
  const octets = COORDINATE_OCTETS[jwk.crv as string]!;
  for (const member of ['x', 'y'] as const) {
    const coordinate = decodeBase64url(jwk[member]);
    if (coordinate?.length !== octets)
      return {
        field: `jwk.${member}`,
        message: `must be the ${octets}-octet coordinate in canonical base64url (RFC 7518 §6.2.1.2)`,
      };
  }
  return undefined;
}

function ed25519Issue(x: unknown): FieldIssue | undefined {
  const point = decodeBase64url(x);
  if (!point) return { field: 'jwk.x', message: 'must be canonical base64url' };
  const issue = ed25519PointIssue(point);
  return issue ? { field: 'jwk.x', message: `the Ed25519 public key ${issue}` } : undefined;
}

/**
 * An RSA public key anyone could sign with is refused. The exponent must be 65537: e = 1 makes every
 * "signature" its own message, a small e invites low-exponent attacks, and F4 is what every generator
 * uses. The modulus must be a plausible product of two large primes: canonically encoded (RFC 7518
 * §6.3.1.1: no leading zero octet), within the size bounds, odd, with no prime factor below 2^16, not
 * itself prime and not a perfect power. For a prime or a prime power φ(n) is known to everyone, and a
 * small factor makes factoring the rest easy.
 */
function rsaIssue(jwk: Record<string, unknown>): FieldIssue | undefined {
  if (jwk.e !== 'AQAB') return { field: 'jwk.e', message: 'the RSA public exponent must be 65537 (AQAB)' };
  const octets = decodeBase64url(jwk.n);
  if (!octets) return { field: 'jwk.n', message: 'must be canonical base64url' };
  const problem = rsaModulusIssue(octets);
  return problem ? { field: 'jwk.n', message: `the RSA modulus ${problem}` } : undefined;
}

function rsaModulusIssue(octets: Buffer): string | undefined {
  if (octets[0] === 0) return 'has a leading zero octet (RFC 7518 §6.3.1.1)';
  const bits = (octets.length - 1) * 8 + (32 - Math.clz32(octets[0]!));
  if (bits < RSA_MIN_BITS) return `must be at least ${RSA_MIN_BITS} bits`;
  if (bits > RSA_MAX_BITS) return `must be at most ${RSA_MAX_BITS} bits`;
  const n = BigInt(`0x${octets.toString('hex')}`);
  if ((n & 1n) === 0n) return 'is even';
  const factor = SMALL_ODD_PRIMES().find((p) => n % p === 0n);
  if (factor !== undefined) return `has the small prime factor ${factor}`;
  if (checkPrimeSync(n)) return 'is prime';
  if (isPerfectPower(n, bits)) return 'is a perfect power';
  return undefined;
}

/**
 * True when n = r^k for some k ≥ 2. It suffices to try prime k (r^6 = (r^3)^2), and, n having no factor
 * below 2^16, only k ≤ bits/16 (a larger k would make r < 2^16).
 */
function isPerfectPower(n: bigint, bits: number): boolean {
  for (const k of [2n, ...SMALL_ODD_PRIMES()]) {
    // `>=` would be the same: it differs only for k = bits / 16 (a prime k, so bits = 16k), where
    // r = n^(1/k) < 2^16 would be a factor the trial division already refused. A larger bound (`bits * 16`)
    // only tries exponents whose roots would be such factors: more work, the same answer.
    // Stryker disable next-line EqualityOperator,ArithmeticOperator: equivalent (above)
    if (k > bits / 16) return false;
    if (integerRoot(n, bits, k) ** k === n) return true;
  }
  // Unreachable: bits ≤ RSA_MAX_BITS makes the loop stop at k > 256, far below the largest small prime.
  // Stryker disable next-line BooleanLiteral: equivalent (unreachable, above)
  return false;
}

/** ⌊n^(1/k)⌋ by Newton's method, started just above the root from a floating-point estimate. */
function integerRoot(n: bigint, bits: number, k: bigint): bigint {
  const shift = Math.max(bits - 64, 0);
  const log2 = shift + Math.log2(Number(n >> BigInt(shift)));
  const exponent = log2 / Number(k);
  // 2^exponent as (mantissa · 2^scale) with a 40-bit mantissa, raised a little to stay above the root.
  // Changing the 40, the 2^-30 margin or the + 1n leaves the start at or above the root (the margin is 2^10
  // units of the mantissa), from where Newton's method descends to the same ⌊root⌋: only the number of
  // steps changes.
  // Stryker disable next-line ArithmeticOperator: equivalent (above)
  const scale = Math.max(Math.floor(exponent) - 40, 0);
  // Stryker disable next-line UnaryOperator: equivalent (above)
  const estimate = 2 ** (exponent - scale) * (1 + 2 ** -30);
  // Stryker disable next-line ArithmeticOperator: equivalent (above)
  let x = (BigInt(Math.ceil(estimate)) + 1n) << BigInt(scale);
  for (;;) {
    const next = ((k - 1n) * x + n / x ** (k - 1n)) / k;
    if (next >= x) return x;
    x = next;
  }
}

function importJwk(jwk: Record<string, unknown>): KeyObject {
  const { kty, crv, x, y, n, e } = jwk;
  // `kty === 'EC'` → true would be the same: node:crypto ignores `y` in an OKP key.
  // Stryker disable next-line ConditionalExpression: equivalent (above)
  const material = kty === 'RSA' ? { kty, n, e } : kty === 'EC' ? { kty, crv, x, y } : { kty, crv, x };
  return createPublicKey({ key: material as JsonWebKey, format: 'jwk' });
}

/**
 * True only when `signature` (base64url) is `alg`'s valid signature of `message` under `jwk`. Never throws:
 * anything that goes wrong on the way (a key that does not import, a malformed signature) answers false.
 * The key must be of `alg`'s type: without that an Ed448 key would verify Ed448 signatures as "EdDSA".
 */
export function verifyPartySignature(
  alg: SignatureAlgorithm,
  jwk: Record<string, unknown>,
  message: Uint8Array,
  signature: string,
): boolean {
  if (keyTypeIssue(alg, jwk)) return false;
  try {
    const key = importJwk(jwk);
    const sig = Buffer.from(signature, 'base64url');
    // The r‖s lengths are checked here, not left to the library; without the checks the outcome would be
    // the same today, as node:crypto's ieee-p1363 decoding answers false for any other length
    // (test/unit/signatures.test.ts holds both).
    switch (alg) {
      case 'ES256':
        // Stryker disable next-line ConditionalExpression: equivalent (above)
        return sig.length === 64 && verify('sha256', message, { key, dsaEncoding: 'ieee-p1363' }, sig);
      case 'ES384':
        // Stryker disable next-line ConditionalExpression: equivalent (above)
        return sig.length === 96 && verify('sha384', message, { key, dsaEncoding: 'ieee-p1363' }, sig);
      case 'EdDSA':
        return verify(null, message, key, sig);
      case 'PS256':
        return verify(
          'sha256',
          message,
          { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST },
          sig,
        );
    }
  } catch {
    return false;
  }
}

/** The algorithms of WebAuthn credentials the platform registers (COSE: -7, -8, -257). */
export type WebAuthnAlgorithm = 'ES256' | 'EdDSA' | 'RS256';

/**
 * True only when `signature` is `alg`'s valid WebAuthn signature of `message` under `jwk`: ECDSA as DER
 * (X9.62, WebAuthn §6.5.6), EdDSA raw, RS256 as RSASSA-PKCS1-v1_5 with SHA-256 (COSE -257). The key checks
 * are those of the same key type above (RS256 keys as PS256's). Never throws.
 */
export function verifyWebAuthnSignature(
  alg: WebAuthnAlgorithm,
  jwk: Record<string, unknown>,
  message: Uint8Array,
  signature: Uint8Array,
): boolean {
  if (keyTypeIssue(alg === 'RS256' ? 'PS256' : alg, jwk)) return false;
  try {
    const key = importJwk(jwk);
    // Without its own case, ES256 would fall to EdDSA's `verify(null, …)`, which for a P-256 key (the only kind
    // keyTypeIssue lets through) is OpenSSL's default digest, SHA-256: the same outcome. The case says it.
    switch (alg) {
      // Stryker disable next-line ConditionalExpression: equivalent (above)
      case 'ES256':
        return verify('sha256', message, { key, dsaEncoding: 'der' }, signature);
      case 'EdDSA':
        return verify(null, message, key, signature);
      case 'RS256':
        return verify('sha256', message, { key, padding: constants.RSA_PKCS1_PADDING }, signature);
    }
  } catch {
    return false;
  }
}
