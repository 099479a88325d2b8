/**
 * Checks of an Ed25519 public key's point, done when the key is registered: its 32-byte encoding decodes
 * (RFC 8032 §5.1.3), and the point generates the prime-order subgroup that honest keys live in.
 *
 * Why: a small-order public key A (one of the 8 points with [8]A = identity) lets anyone make a signature
 * that verifies for many messages without a private key (R = -[k]A has few values), and a key with a
 * small-order component (A = [s]B + T) makes a signature's validity depend on whether the verifier
 * multiplies by the cofactor ("Taming the many EdDSAs", Chalkias et al., 2020). Key generation always
 * yields A = [s]B with B the base point, in the subgroup of prime order L, so refusing anything else costs
 * an honest party nothing. Arithmetic is BigInt on public values (no secret, so no constant-time need).
 */

/** The field prime p = 2^255 - 19 (RFC 8032 §5.1). */
const P = 2n ** 255n - 19n;
/** The order of the base point's subgroup, L = 2^252 + 27742317777372353535851937790883648493. */
const L = 2n ** 252n + 27742317777372353535851937790883648493n;

const mod = (a: bigint): bigint => {
  const r = a % P;
  return r < 0n ? r + P : r;
};

function power(base: bigint, exponent: bigint): bigint {
  let result = 1n;
  let b = mod(base);
  for (let e = exponent; e > 0n; e >>= 1n) {
    if (e & 1n) result = (result * b) % P;
    b = (b * b) % P;
  }
  return result;
}

/**
 * d = -121665/121666 mod p (RFC 8032 §5.1) and sqrt(-1) = 2^((p-1)/4) mod p (§5.1.3), as literals: every
 * function bundles this module, and computing them (two 255-bit exponentiations) at load cost each cold
 * start about half a millisecond. Their defining identities are tested (test/unit/signatures.test.ts).
 */
export const D = 37095705934669439343138083508754565189542113879843219016388785533085940283555n;
export const SQRT_MINUS_ONE = 19681161376707505956807079304988542015446066515923890162744021073123829784752n;

/** A point in extended homogeneous coordinates: x = X/Z, y = Y/Z, x·y = T/Z (RFC 8032 §5.1.4). */
interface Point {
  readonly X: bigint;
  readonly Y: bigint;
  readonly Z: bigint;
  readonly T: bigint;
}

const IDENTITY: Point = { X: 0n, Y: 1n, Z: 1n, T: 0n };

/** Point addition, RFC 8032 §5.1.4 (complete on edwards25519: it also doubles and adds the identity). */
function add(p: Point, q: Point): Point {
  const a = mod((p.Y - p.X) * (q.Y - q.X));
  const b = mod((p.Y + p.X) * (q.Y + q.X));
  const c = mod(2n * D * p.T * q.T);
  const d = mod(2n * p.Z * q.Z);
  const e = b - a;
  const f = d - c;
  const g = d + c;
  const h = b + a;
  return { X: mod(e * f), Y: mod(g * h), Z: mod(f * g), T: mod(e * h) };
}

function multiply(scalar: bigint, point: Point): Point {
  let result = IDENTITY;
  for (let bit = BigInt(scalar.toString(2).length - 1); bit >= 0n; bit--) {
    result = add(result, result);
    if ((scalar >> bit) & 1n) result = add(result, point);
  }
  return result;
}

/** The identity is (0, 1): X = 0 and Y = Z in projective terms. */
const isIdentity = (p: Point): boolean => mod(p.X) === 0n && mod(p.Y - p.Z) === 0n;

/**
 * Decodes a point (RFC 8032 §5.1.3); a string naming what is wrong when it does not decode. Unlike
 * OpenSSL's import, this refuses y ≥ p (the same point spelled a second way) and x = 0 with the sign bit
 * set, both of which RFC 8032 §5.1.3 says must fail.
 */
function decodePoint(encoded: Uint8Array): Point | string {
  if (encoded.length !== 32) return 'must be 32 octets (RFC 8037 §2)';
  const bytes = Uint8Array.from(encoded);
  const sign = bytes[31]! >> 7;
  bytes[31]! &= 0x7f;
  const y = BigInt(`0x${Buffer.from(bytes).reverse().toString('hex')}`);
  if (y >= P) return 'is not canonical: y ≥ p (RFC 8032 §5.1.3)';
  // x² = (y² - 1) / (d·y² + 1); the square root as in RFC 8032 §5.1.3 step 3 (p ≡ 5 mod 8).
  const u = mod(y * y - 1n);
  const v = mod(D * y * y + 1n);
  let x = mod(u * power(v, 3n) * power(u * power(v, 7n), (P - 5n) / 8n));
  const vx2 = mod(v * x * x);
  if (vx2 === mod(-u)) x = mod(x * SQRT_MINUS_ONE);
  else if (vx2 !== u) return 'is not a point on Ed25519';
  if (x === 0n && sign === 1) return 'is not canonical: x = 0 with the sign bit set (RFC 8032 §5.1.3)';
  if (Number(x & 1n) !== sign) x = P - x;
  return { X: x, Y: y, Z: 1n, T: mod(x * y) };
}

/**
 * What makes `encoded` (the JWK's `x`, RFC 8037 §2) unfit as an Ed25519 public key, or undefined when it
 * is a canonical encoding of a point of order L.
 * @example
 * ed25519PointIssue(new Uint8Array(32)); // 'has small order (…)': y = 0 is a point of order 4
 */
export function ed25519PointIssue(encoded: Uint8Array): string | undefined {
  const point = decodePoint(encoded);
  if (typeof point === 'string') return point;
  const twice = add(point, point);
  const fourTimes = add(twice, twice);
  if (isIdentity(add(fourTimes, fourTimes)))
    return 'has small order: [8]A is the identity, so signatures under it can be forged';
  if (!isIdentity(multiply(L, point)))
    return 'is not in the prime-order subgroup: [L]A is not the identity (a small-order component)';
  return undefined;
}
