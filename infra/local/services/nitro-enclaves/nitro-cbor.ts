/**
 * A tiny, deterministic CBOR encoder (RFC 8949) for the Nitro simulator.
 *
 * Why not cbor-x: the simulator must reproduce the exact bytes real Nitro hardware emits, and a general
 * encoder picks its own encodings (float vs int, map ordering, BigInt tags, record extensions). This one
 * only knows what an attestation document contains and always encodes it the way the NSM does:
 * definite lengths, the shortest head for every integer and length, and map entries in insertion order
 * (the caller decides the order; the NSM's order is not the canonical "sorted keys" order).
 */

/** A CBOR map whose entries are encoded in exactly the given order (keys may be text or integers). */
export class CborMap {
  /** @param entries key/value pairs, encoded in this order. */
  constructor(readonly entries: readonly (readonly [CborValue, CborValue])[]) {}
}

/**
 * A CBOR tag (major type 6) around a value; COSE_Sign1 may be wrapped in tag 18 by some producers
 * (the NSM does not tag it).
 */
export class CborTag {
  /**
   * @param tag the tag number.
   * @param value the tagged item.
   */
  constructor(
    readonly tag: number,
    readonly value: CborValue,
  ) {}
}

/**
 * The values the encoder knows. `number` must be a safe integer (attestation documents carry no floats);
 * `bigint` covers the full unsigned/negative 64-bit range.
 */
export type CborValue =
  | number
  | bigint
  | string
  | boolean
  | null
  | undefined
  | Uint8Array
  | readonly CborValue[]
  | CborMap
  | CborTag;

const MAX_U64 = (1n << 64n) - 1n;

/** A growable byte sink; avoids Buffer.concat of many small pieces. */
class Sink {
  private buffer = new Uint8Array(4096);
  private length = 0;

  private reserve(extra: number): void {
    if (this.length + extra <= this.buffer.length) return;
    let size = this.buffer.length * 2;
    while (size < this.length + extra) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buffer.subarray(0, this.length));
    this.buffer = next;
  }

  byte(value: number): void {
    this.reserve(1);
    this.buffer[this.length++] = value;
  }

  bytes(value: Uint8Array): void {
    this.reserve(value.length);
    this.buffer.set(value, this.length);
    this.length += value.length;
  }

  result(): Uint8Array {
    return this.buffer.slice(0, this.length);
  }
}

/** Writes a head (major type + argument) in its shortest form, as RFC 8949 §4.2.1 prescribes. */
function writeHead(sink: Sink, major: number, argument: bigint): void {
  const top = major << 5;
  if (argument < 24n) {
    sink.byte(top | Number(argument));
  } else if (argument <= 0xffn) {
    sink.byte(top | 24);
    sink.byte(Number(argument));
  } else if (argument <= 0xffffn) {
    sink.byte(top | 25);
    sink.byte(Number(argument >> 8n));
    sink.byte(Number(argument & 0xffn));
  } else if (argument <= 0xffff_ffffn) {
    sink.byte(top | 26);
    for (let shift = 24n; shift >= 0n; shift -= 8n) sink.byte(Number((argument >> shift) & 0xffn));
  } else {
    sink.byte(top | 27);
    for (let shift = 56n; shift >= 0n; shift -= 8n) sink.byte(Number((argument >> shift) & 0xffn));
  }
}

function writeInteger(sink: Sink, value: bigint): void {
  if (value >= 0n) {
    if (value > MAX_U64) throw new RangeError('CBOR integer above 2^64-1');
    writeHead(sink, 0, value);
  } else {
    const argument = -1n - value;
    if (argument > MAX_U64) throw new RangeError('CBOR integer below -2^64');
    writeHead(sink, 1, argument);
  }
}

const textEncoder = new TextEncoder();

function write(sink: Sink, value: CborValue): void {
  if (value === null) {
    sink.byte(0xf6);
  } else if (value === undefined) {
    sink.byte(0xf7);
  } else if (value === false) {
    sink.byte(0xf4);
  } else if (value === true) {
    sink.byte(0xf5);
  } else if (typeof value === 'number') {
    if (!Number.isSafeInteger(value)) throw new RangeError(`CBOR encoder takes safe integers only: ${value}`);
    writeInteger(sink, BigInt(value));
  } else if (typeof value === 'bigint') {
    writeInteger(sink, value);
  } else if (typeof value === 'string') {
    const utf8 = textEncoder.encode(value);
    writeHead(sink, 3, BigInt(utf8.length));
    sink.bytes(utf8);
  } else if (value instanceof Uint8Array) {
    writeHead(sink, 2, BigInt(value.length));
    sink.bytes(value);
  } else if (value instanceof CborMap) {
    writeHead(sink, 5, BigInt(value.entries.length));
    for (const [key, item] of value.entries) {
      write(sink, key);
      write(sink, item);
    }
  } else if (value instanceof CborTag) {
    writeHead(sink, 6, BigInt(value.tag));
    write(sink, value.value);
  } else {
    writeHead(sink, 4, BigInt(value.length));
    for (const item of value) write(sink, item);
  }
}

/**
 * Encodes a value with definite lengths and shortest-form heads.
 * @param value the item to encode.
 * @returns the CBOR bytes.
 */
export function encodeCbor(value: CborValue): Uint8Array {
  const sink = new Sink();
  write(sink, value);
  return sink.result();
}
