/**
 * A small CBOR encoder for tests: re-encodes documents with other (valid) encoding choices — key order,
 * indefinite lengths, non-minimal heads — and builds documents from scratch.
 */
import type { CborValue } from '../../shared/attestation/cbor.ts';

/** Encoding choices applied to the whole tree. */
export interface EncodeStyle {
  /** Arrays, maps and strings with indefinite lengths (strings in two chunks). */
  readonly indefinite?: boolean;
  /** Every head with an 8-byte argument, however small the value. */
  readonly nonMinimal?: boolean;
}

/** A value to encode: plain JS values, or a decoded `CborValue`, or pre-encoded bytes (`RawCbor`). */
export type Encodable =
  | number
  | bigint
  | string
  | Uint8Array
  | boolean
  | null
  | undefined
  | readonly Encodable[]
  | ReadonlyMap<string | number, Encodable>
  | RawCbor
  | Tagged
  | CborValue;

/** Bytes inserted as they are (already CBOR). */
export class RawCbor {
  constructor(readonly bytes: Uint8Array) {}
}

export class Tagged {
  constructor(
    readonly tag: number,
    readonly value: Encodable,
  ) {}
}

export function encodeCbor(value: Encodable, style: EncodeStyle = {}): Uint8Array {
  const out: number[] = [];
  write(out, value, style);
  return Uint8Array.from(out);
}

function head(out: number[], major: number, arg: number | bigint, style: EncodeStyle): void {
  const n = BigInt(arg);
  if (style.nonMinimal) {
    out.push((major << 5) | 27);
    for (let shift = 56n; shift >= 0n; shift -= 8n) out.push(Number((n >> shift) & 0xffn));
    return;
  }
  if (n < 24n) out.push((major << 5) | Number(n));
  else if (n < 0x100n) out.push((major << 5) | 24, Number(n));
  else if (n < 0x10000n) out.push((major << 5) | 25, Number(n >> 8n), Number(n & 0xffn));
  else if (n < 0x1_0000_0000n) {
    out.push((major << 5) | 26);
    for (let shift = 24n; shift >= 0n; shift -= 8n) out.push(Number((n >> shift) & 0xffn));
  } else {
    out.push((major << 5) | 27);
    for (let shift = 56n; shift >= 0n; shift -= 8n) out.push(Number((n >> shift) & 0xffn));
  }
}

function isCborValue(value: object): value is CborValue {
  return 'type' in value && typeof (value as { type: unknown }).type === 'string' && !(value instanceof Map);
}

function write(out: number[], value: Encodable, style: EncodeStyle): void {
  const simple =
    value === null ? 0xf6 : value === undefined ? 0xf7 : value === false ? 0xf4 : value === true ? 0xf5 : -1;
  if (simple >= 0) {
    out.push(simple);
    return;
  }
  if (typeof value === 'number' || typeof value === 'bigint') {
    if (typeof value === 'number' && !Number.isInteger(value)) {
      out.push(0xfb);
      const view = new DataView(new ArrayBuffer(8));
      view.setFloat64(0, value);
      out.push(...new Uint8Array(view.buffer));
      return;
    }
    const n = BigInt(value);
    if (n >= 0n) head(out, 0, n, style);
    else head(out, 1, -1n - n, style);
    return;
  }
  if (typeof value === 'string') {
    writeString(out, 3, new TextEncoder().encode(value), style);
    return;
  }
  if (value instanceof Uint8Array) {
    writeString(out, 2, value, style);
    return;
  }
  if (value instanceof RawCbor) {
    out.push(...value.bytes);
    return;
  }
  if (value instanceof Tagged) {
    head(out, 6, value.tag, style);
    write(out, value.value, style);
    return;
  }
  if (Array.isArray(value)) {
    if (style.indefinite) out.push(0x9f);
    else head(out, 4, value.length, style);
    for (const item of value) write(out, item, style);
    if (style.indefinite) out.push(0xff);
    return;
  }
  if (value instanceof Map) {
    if (style.indefinite) out.push(0xbf);
    else head(out, 5, value.size, style);
    for (const [k, v] of value) {
      write(out, k, style);
      write(out, v, style);
    }
    if (style.indefinite) out.push(0xff);
    return;
  }
  if (typeof value !== 'object' || value === null || !isCborValue(value))
    throw new Error('cannot encode this value');
  write(out, fromCborValue(value), style);
}

function writeString(out: number[], major: number, bytes: Uint8Array, style: EncodeStyle): void {
  if (style.indefinite && major === 2) {
    // Two chunks (text is left definite: splitting could cut a code point).
    const middle = bytes.length >> 1;
    out.push((major << 5) | 31);
    head(out, major, middle, style);
    out.push(...bytes.subarray(0, middle));
    head(out, major, bytes.length - middle, style);
    out.push(...bytes.subarray(middle));
    out.push(0xff);
    return;
  }
  head(out, major, bytes.length, style);
  for (const b of bytes) out.push(b);
}

/** A decoded value back to plain encodable form. */
export function fromCborValue(value: CborValue): Encodable {
  switch (value.type) {
    case 'integer':
    case 'text':
    case 'bytes':
      return value.value;
    case 'simple':
      return value.value;
    case 'float':
      return value.value;
    case 'array':
      return value.items.map(fromCborValue);
    case 'map':
      return new Map([...value.entries].map(([k, v]) => [k, fromCborValue(v)]));
    case 'tag':
      return new Tagged(Number(value.tag), fromCborValue(value.value));
  }
}
