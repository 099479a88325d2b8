/**
 * COSE_Sign1 (RFC 9052 §4.2) as a Nitro document uses it: `[protected, unprotected, payload, signature]`,
 * optionally wrapped in tag 18, algorithm ES384 with a raw r‖s signature.
 */
import { type CborValue, decodeCbor } from './cbor.ts';
import { COSE_ALG_ES384, COSE_SIGN1_TAG, ES384_SIGNATURE_BYTES } from './constants.ts';
import { CborDecodeError } from './errors.ts';
import type { AttestationFailure } from './types.ts';

/** A structurally valid COSE_Sign1 with the ES384 algorithm; nothing about it is verified yet. */
export interface CoseSign1 {
  /** Content of the protected-header byte string: the original bytes, which the signature covers. */
  readonly protectedHeader: Uint8Array;
  /** Content of the payload byte string: the original bytes, which the signature covers. */
  readonly payload: Uint8Array;
  /** Raw r‖s, 96 bytes. */
  readonly signature: Uint8Array;
  /**
   * Where the protected header's and the payload's contents lie in the decoded input (`[start, end)`), or
   * null when the string was sent in chunks (its content is then the joined chunks).
   */
  readonly protectedRange: readonly [number, number] | null;
  readonly payloadRange: readonly [number, number] | null;
}

/** The outcome of a parsing step: the value, or the failure that the verifier returns as is. */
export type Parsed<T> = { readonly ok: true; readonly value: T } | AttestationFailure;

const HEADER_ALG = 1;
const HEADER_CRIT = 2;
const EMPTY_MAP: CborValue = { type: 'map', entries: new Map() };

/** Builds a failure result. */
export function failure(code: AttestationFailure['code'], message: string): AttestationFailure {
  return { ok: false, code, message };
}

/**
 * Decodes and checks the COSE envelope in the fixed order: shape, then algorithm, then the signature size.
 *
 * @param document raw CBOR of the whole document
 */
export function parseCoseSign1(document: Uint8Array): Parsed<CoseSign1> {
  let top: CborValue;
  try {
    top = decodeCbor(document);
  } catch (error) {
    return cborFailure('The document', error);
  }

  // Shape.
  if (top.type === 'tag') {
    if (top.tag !== COSE_SIGN1_TAG) {
      return failure('malformed', `The document carries CBOR tag ${top.tag}, not the COSE_Sign1 tag 18.`);
    }
    top = top.value;
  }
  if (top.type !== 'array' || top.items.length !== 4) {
    return failure('malformed', 'The document is not a COSE_Sign1 structure (a CBOR array of 4 items).');
  }
  const [protectedItem, unprotectedItem, payloadItem, signatureItem] = top.items as [
    CborValue,
    CborValue,
    CborValue,
    CborValue,
  ];
  if (protectedItem.type !== 'bytes') {
    return failure('malformed', 'The COSE protected header is not a byte string.');
  }
  // The unprotected header is not signed: its contents are ignored, only its type is checked.
  if (unprotectedItem.type !== 'map') {
    return failure('malformed', 'The COSE unprotected header is not a map.');
  }
  if (payloadItem.type !== 'bytes') {
    return failure('malformed', 'The COSE payload is not a byte string (a detached payload is not allowed).');
  }
  if (signatureItem.type !== 'bytes') {
    return failure('malformed', 'The COSE signature is not a byte string.');
  }

  // Algorithm: only what the protected header says counts (the unprotected one is not signed).
  let header: CborValue;
  try {
    // RFC 9052 §3: an empty protected header is sent as a zero-length byte string, meaning an empty map.
    header = protectedItem.value.length === 0 ? EMPTY_MAP : decodeCbor(protectedItem.value);
  } catch (error) {
    return cborFailure('The COSE protected header', error);
  }
  if (header.type !== 'map') {
    return failure('malformed', 'The COSE protected header does not decode to a map.');
  }
  if (header.entries.has(HEADER_CRIT)) {
    // RFC 9052 §3.1: a recipient must refuse critical parameters it does not understand; we understand none.
    return failure('unsupported_algorithm', 'The COSE protected header lists critical parameters.');
  }
  const alg = header.entries.get(HEADER_ALG);
  if (alg === undefined) {
    return failure('unsupported_algorithm', 'The COSE protected header names no algorithm.');
  }
  if (alg.type !== 'integer' || alg.value !== COSE_ALG_ES384) {
    return failure(
      'unsupported_algorithm',
      `The COSE algorithm is ${describeAlgorithm(alg)}, not ES384 (-35).`,
    );
  }

  // Bounds of the signature, which follow from the algorithm.
  if (signatureItem.value.length !== ES384_SIGNATURE_BYTES) {
    return failure(
      'malformed',
      `The COSE signature is ${signatureItem.value.length} bytes long, not the ${ES384_SIGNATURE_BYTES} of ES384.`,
    );
  }

  return {
    ok: true,
    value: {
      protectedHeader: protectedItem.value,
      payload: payloadItem.value,
      signature: signatureItem.value,
      protectedRange: range(protectedItem.contentOffset, protectedItem.value.length),
      payloadRange: range(payloadItem.contentOffset, payloadItem.value.length),
    },
  };
}

function range(offset: number, length: number): readonly [number, number] | null {
  return offset < 0 ? null : [offset, offset + length];
}

function describeAlgorithm(alg: CborValue): string {
  if (alg.type === 'integer') return String(alg.value);
  if (alg.type === 'text') return JSON.stringify(alg.value.slice(0, 32));
  return `a CBOR ${alg.type}`;
}

/** Turns a decoder error into a `malformed` failure (any other error is re-thrown to the outer guard). */
export function cborFailure(what: string, error: unknown): AttestationFailure {
  if (error instanceof CborDecodeError) {
    return failure('malformed', `${what} is not well-formed CBOR: ${error.message}.`);
  }
  throw error;
}

const SIGNATURE1_CONTEXT = new TextEncoder().encode('Signature1');

/**
 * The COSE Sig_structure `["Signature1", protected, h'', payload]` (RFC 9052 §4.4), CBOR-encoded with
 * minimal heads around the ORIGINAL protected-header and payload bytes: re-encoding them from decoded values
 * could change the bytes that were signed.
 */
export function sigStructure(protectedHeader: Uint8Array, payload: Uint8Array): Uint8Array {
  const size =
    1 +
    1 +
    SIGNATURE1_CONTEXT.length +
    headSize(protectedHeader.length) +
    protectedHeader.length +
    1 +
    headSize(payload.length) +
    payload.length;
  const out = new Uint8Array(size);
  let pos = 0;
  out[pos++] = 0x84; // array(4)
  out[pos++] = 0x60 | SIGNATURE1_CONTEXT.length; // text(10)
  out.set(SIGNATURE1_CONTEXT, pos);
  pos += SIGNATURE1_CONTEXT.length;
  pos = writeBytesHead(out, pos, protectedHeader.length);
  out.set(protectedHeader, pos);
  pos += protectedHeader.length;
  out[pos++] = 0x40; // external_aad: empty byte string
  pos = writeBytesHead(out, pos, payload.length);
  out.set(payload, pos);
  return out;
}

function headSize(length: number): number {
  if (length < 24) return 1;
  if (length < 0x100) return 2;
  if (length < 0x10000) return 3;
  return 5; // inputs are capped far below 2^32 bytes
}

function writeBytesHead(out: Uint8Array, pos: number, length: number): number {
  if (length < 24) {
    out[pos] = 0x40 | length;
    return pos + 1;
  }
  if (length < 0x100) {
    out[pos] = 0x58;
    out[pos + 1] = length;
    return pos + 2;
  }
  if (length < 0x10000) {
    out[pos] = 0x59;
    out[pos + 1] = length >> 8;
    out[pos + 2] = length & 0xff;
    return pos + 3;
  }
  out[pos] = 0x5a;
  out[pos + 1] = (length >>> 24) & 0xff;
  out[pos + 2] = (length >>> 16) & 0xff;
  out[pos + 3] = (length >>> 8) & 0xff;
  out[pos + 4] = length & 0xff;
  return pos + 5;
}
