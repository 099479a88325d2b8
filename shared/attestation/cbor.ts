/**
 * A strict, bounded CBOR decoder (RFC 8949) for untrusted input.
 *
 * Strict about well-formedness, lenient about encoding choices that carry the same meaning, because Nitro
 * firmware generations encode documents differently: definite and indefinite lengths, non-minimal integer
 * and length arguments are all accepted. Refused: reserved additional-information values, a stray or
 * misplaced "break", chunks of the wrong type inside an indefinite string, invalid UTF-8, map keys that are
 * neither text nor integers, duplicate map keys (two readers could otherwise disagree on the value), simple
 * values other than false/true/null/undefined, trailing bytes, and anything past the bounds below.
 *
 * Bounds: every declared length or item count is compared with the bytes that remain BEFORE anything is
 * allocated (each item takes at least one byte), so a header claiming 2^64 items or a 10 MB string fails
 * at once; nesting depth and items per container are capped. Byte strings are views of the input, never
 * copies (except indefinite ones, whose chunks must be joined).
 */
import { MAX_CBOR_DEPTH, MAX_CBOR_ITEMS } from './constants.ts';
import { CborDecodeError } from './errors.ts';

/** An integer (major types 0 and 1): a `number` when it is a safe integer, else a `bigint`. */
export interface CborInteger {
  readonly type: 'integer';
  readonly value: number | bigint;
}

/** A byte string; `value` is a view of the input unless the string was sent in chunks. */
export interface CborBytes {
  readonly type: 'bytes';
  readonly value: Uint8Array;
  /** Offset of the content in the decoded input, or -1 for an indefinite (chunked) string. */
  readonly contentOffset: number;
}

export interface CborText {
  readonly type: 'text';
  readonly value: string;
}

export interface CborArray {
  readonly type: 'array';
  readonly items: readonly CborValue[];
}

/** Map keys are text (`string`) or integers (`number`); the two never collide in a JS `Map`. */
export type CborMapKey = string | number;

export interface CborMap {
  readonly type: 'map';
  readonly entries: ReadonlyMap<CborMapKey, CborValue>;
}

export interface CborTag {
  readonly type: 'tag';
  readonly tag: number | bigint;
  readonly value: CborValue;
}

export interface CborSimple {
  readonly type: 'simple';
  readonly value: boolean | null | undefined;
}

/** A half, single or double precision float (decoded, but invalid wherever a schema wants an integer). */
export interface CborFloat {
  readonly type: 'float';
  readonly value: number;
}

export type CborValue =
  | CborInteger
  | CborBytes
  | CborText
  | CborArray
  | CborMap
  | CborTag
  | CborSimple
  | CborFloat;

/** Bounds of one decoding; the defaults suit attestation documents. */
export interface CborDecodeLimits {
  /** Deepest nesting of arrays, maps and tags (default 16). */
  readonly maxDepth?: number;
  /** Most items in one array, or entries in one map (default 1024). */
  readonly maxItems?: number;
}

const BREAK = 0xff;
const TWO_POW_32 = 0x1_0000_0000;
// An 8-byte argument whose high word is below 2^21 is at most 2^53 - 1: a safe JS integer.
const SAFE_HIGH_WORD_LIMIT = 0x20_0000;

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * Decodes exactly one CBOR item that spans the whole input.
 *
 * @throws CborDecodeError on anything that is not one well-formed item within the limits.
 * @example
 * const value = decodeCbor(new Uint8Array([0x82, 0x01, 0x61, 0x61])); // [1, "a"]
 */
export function decodeCbor(input: Uint8Array, limits: CborDecodeLimits = {}): CborValue {
  const decoder = new Decoder(input, limits.maxDepth ?? MAX_CBOR_DEPTH, limits.maxItems ?? MAX_CBOR_ITEMS);
  const value = decoder.item(0);
  if (decoder.pos !== input.length) {
    throw new CborDecodeError(
      `${input.length - decoder.pos} trailing byte(s) after the CBOR item`,
      decoder.pos,
    );
  }
  return value;
}

/**
 * Decodes the one CBOR item at the start of `input` and says how many bytes it took: for formats that put
 * bytes after an item without a length (WebAuthn's authenticator data: the credential's COSE key, then
 * extensions). Otherwise as strict as {@link decodeCbor}.
 */
export function decodeCborPrefix(
  input: Uint8Array,
  limits: CborDecodeLimits = {},
): { readonly value: CborValue; readonly length: number } {
  const decoder = new Decoder(input, limits.maxDepth ?? MAX_CBOR_DEPTH, limits.maxItems ?? MAX_CBOR_ITEMS);
  const value = decoder.item(0);
  return { value, length: decoder.pos };
}

/** An argument as read from the head: a safe integer, or a bigint above 2^53 - 1. */
type Argument = number | bigint;

class Decoder {
  pos = 0;
  private readonly view: DataView;

  constructor(
    private readonly input: Uint8Array,
    private readonly maxDepth: number,
    private readonly maxItems: number,
  ) {
    this.view = new DataView(input.buffer, input.byteOffset, input.byteLength);
  }

  private fail(message: string, at = this.pos): never {
    throw new CborDecodeError(message, at);
  }

  private remaining(): number {
    return this.input.length - this.pos;
  }

  private need(bytes: number): void {
    if (bytes > this.remaining()) this.fail(`truncated: ${bytes} byte(s) needed, ${this.remaining()} left`);
  }

  /** Reads the argument of a head whose additional information is `info` (0–27). */
  private argument(info: number, headAt: number): Argument {
    if (info < 24) return info;
    switch (info) {
      case 24:
        this.need(1);
        return this.input[this.pos++]!;
      case 25: {
        this.need(2);
        const v = this.view.getUint16(this.pos);
        this.pos += 2;
        return v;
      }
      case 26: {
        this.need(4);
        const v = this.view.getUint32(this.pos);
        this.pos += 4;
        return v;
      }
      case 27: {
        this.need(8);
        const high = this.view.getUint32(this.pos);
        const low = this.view.getUint32(this.pos + 4);
        this.pos += 8;
        if (high < SAFE_HIGH_WORD_LIMIT) return high * TWO_POW_32 + low;
        return (BigInt(high) << 32n) | BigInt(low);
      }
      default:
        return this.fail(`reserved additional information ${info}`, headAt);
    }
  }

  /** A length or count that must fit in what is left of the input, `unit` bytes per element at least. */
  private boundedLength(arg: Argument, unit: number, what: string, headAt: number): number {
    // Compared before any allocation: a hostile head cannot make us reserve memory it does not back.
    if (typeof arg === 'bigint' || arg * unit > this.remaining()) {
      this.fail(`${what} declares ${arg} but only ${this.remaining()} byte(s) remain`, headAt);
    }
    return arg;
  }

  private checkItems(count: number, headAt: number): void {
    if (count > this.maxItems) this.fail(`${count} items exceed the limit of ${this.maxItems}`, headAt);
  }

  item(depth: number): CborValue {
    const headAt = this.pos;
    this.need(1);
    const initial = this.input[this.pos++]!;
    const major = initial >> 5;
    const info = initial & 0x1f;

    if (info === 31) return this.indefinite(major, depth, headAt);

    if (major === 7) return this.simpleOrFloat(info, headAt);
    const arg = this.argument(info, headAt);
    switch (major) {
      case 0:
        return { type: 'integer', value: arg };
      case 1:
        // -1 - n: stays a safe number while n ≤ 2^53 - 2.
        return {
          type: 'integer',
          value: typeof arg === 'number' && arg < Number.MAX_SAFE_INTEGER ? -1 - arg : -1n - BigInt(arg),
        };
      case 2: {
        const length = this.boundedLength(arg, 1, 'byte string', headAt);
        const start = this.pos;
        this.pos += length;
        return { type: 'bytes', value: this.input.subarray(start, start + length), contentOffset: start };
      }
      case 3: {
        const length = this.boundedLength(arg, 1, 'text string', headAt);
        const start = this.pos;
        this.pos += length;
        return { type: 'text', value: this.text(this.input.subarray(start, start + length), start) };
      }
      case 4: {
        const count = this.boundedLength(arg, 1, 'array', headAt);
        this.checkItems(count, headAt);
        this.enter(depth, headAt);
        const items: CborValue[] = new Array(count);
        for (let i = 0; i < count; i++) items[i] = this.item(depth + 1);
        return { type: 'array', items };
      }
      case 5: {
        const count = this.boundedLength(arg, 2, 'map', headAt);
        this.checkItems(count, headAt);
        this.enter(depth, headAt);
        const entries = new Map<CborMapKey, CborValue>();
        for (let i = 0; i < count; i++) this.entry(entries, depth);
        return { type: 'map', entries };
      }
      default: {
        // Major type 6: a tag. It wraps exactly one item, which counts as a nesting level.
        this.enter(depth, headAt);
        return { type: 'tag', tag: arg, value: this.item(depth + 1) };
      }
    }
  }

  private enter(depth: number, headAt: number): void {
    if (depth + 1 > this.maxDepth) this.fail(`nesting deeper than ${this.maxDepth}`, headAt);
  }

  private entry(entries: Map<CborMapKey, CborValue>, depth: number): void {
    const keyAt = this.pos;
    const key = this.item(depth + 1);
    let mapKey: CborMapKey;
    if (key.type === 'text') mapKey = key.value;
    else if (key.type === 'integer' && typeof key.value === 'number') mapKey = key.value;
    else throw new CborDecodeError('map key is neither a text string nor a safe integer', keyAt);
    if (entries.has(mapKey)) this.fail(`duplicate map key ${JSON.stringify(mapKey)}`, keyAt);
    if (this.remaining() > 0 && this.input[this.pos] === BREAK) this.fail('map key without a value');
    entries.set(mapKey, this.item(depth + 1));
  }

  private atBreak(): boolean {
    this.need(1);
    if (this.input[this.pos] !== BREAK) return false;
    this.pos++;
    return true;
  }

  private indefinite(major: number, depth: number, headAt: number): CborValue {
    switch (major) {
      case 2:
      case 3: {
        // Chunks must be definite strings of the same major type (RFC 8949 §3.2.3).
        const chunks: Uint8Array[] = [];
        let total = 0;
        while (!this.atBreak()) {
          const chunkAt = this.pos;
          const initial = this.input[this.pos++]!;
          if (initial >> 5 !== major || (initial & 0x1f) === 31) {
            this.fail('indefinite-length string chunk of the wrong type', chunkAt);
          }
          const length = this.boundedLength(
            this.argument(initial & 0x1f, chunkAt),
            1,
            'string chunk',
            chunkAt,
          );
          const chunk = this.input.subarray(this.pos, this.pos + length);
          // Each text chunk must be valid UTF-8 on its own: a code point may not straddle chunks.
          if (major === 3) this.text(chunk, this.pos);
          this.pos += length;
          chunks.push(chunk);
          total += length;
        }
        const joined = new Uint8Array(total);
        let offset = 0;
        for (const chunk of chunks) {
          joined.set(chunk, offset);
          offset += chunk.length;
        }
        return major === 2
          ? { type: 'bytes', value: joined, contentOffset: -1 }
          : { type: 'text', value: this.text(joined, headAt) };
      }
      case 4: {
        this.enter(depth, headAt);
        const items: CborValue[] = [];
        while (!this.atBreak()) {
          this.checkItems(items.length + 1, headAt);
          items.push(this.item(depth + 1));
        }
        return { type: 'array', items };
      }
      case 5: {
        this.enter(depth, headAt);
        const entries = new Map<CborMapKey, CborValue>();
        while (!this.atBreak()) {
          this.checkItems(entries.size + 1, headAt);
          this.entry(entries, depth);
        }
        return { type: 'map', entries };
      }
      case 7:
        return this.fail('unexpected "break"', headAt);
      default:
        return this.fail(`indefinite length is not allowed for major type ${major}`, headAt);
    }
  }

  private simpleOrFloat(info: number, headAt: number): CborValue {
    switch (info) {
      case 20:
        return { type: 'simple', value: false };
      case 21:
        return { type: 'simple', value: true };
      case 22:
        return { type: 'simple', value: null };
      case 23:
        return { type: 'simple', value: undefined };
      case 25: {
        this.need(2);
        const half = this.view.getUint16(this.pos);
        this.pos += 2;
        return { type: 'float', value: decodeHalf(half) };
      }
      case 26: {
        this.need(4);
        const value = this.view.getFloat32(this.pos);
        this.pos += 4;
        return { type: 'float', value };
      }
      case 27: {
        this.need(8);
        const value = this.view.getFloat64(this.pos);
        this.pos += 8;
        return { type: 'float', value };
      }
      default:
        // 0–19 and 24 (one-byte simple values) are unassigned or meaningless here; 28–30 are reserved.
        return this.fail(`unsupported simple value (additional information ${info})`, headAt);
    }
  }

  private text(bytes: Uint8Array, at: number): string {
    try {
      return utf8.decode(bytes);
    } catch {
      return this.fail('text string is not valid UTF-8', at);
    }
  }
}

/** IEEE 754 half precision → number (RFC 8949 Appendix D). */
function decodeHalf(half: number): number {
  const exponent = (half >> 10) & 0x1f;
  const mantissa = half & 0x3ff;
  let value: number;
  if (exponent === 0) value = mantissa * 2 ** -24;
  else if (exponent === 31) value = mantissa === 0 ? Number.POSITIVE_INFINITY : Number.NaN;
  else value = (mantissa + 1024) * 2 ** (exponent - 25);
  return half & 0x8000 ? -value : value;
}
