/**
 * The enclave attestation protocol, version 1: how the parent agent asks the enclave for an attestation
 * document. Any workload image that runs a responder speaking it can be provisioned (the reference responder
 * is `infra/enclave-responder/attestation_responder.py`; the README's "Enclave attestation protocol"
 * section is the specification).
 *
 * - Transport: a stream to the enclave's vsock port {@link ATTESTATION_PORT} (locally, a TCP port). One
 *   request per connection: the responder answers and closes.
 * - Frame: a 4-byte big-endian length, then that many bytes holding exactly one CBOR data item (RFC 8949),
 *   a map with text keys. Requests are at most {@link MAX_REQUEST_FRAME} bytes (the NSM's own request limit),
 *   answers at most {@link MAX_RESPONSE_FRAME}.
 * - Request: `{v: 1, nonce: bytes(1..512), userData?: bytes(0..512), publicKey?: bytes(1..1024)}`, the
 *   sizes the NSM accepts for an attestation (aws-nitro-enclaves-nsm-api, docs/attestation_process.md); or
 *   exactly `{v: 1, metrics: true}`, the enclave's runtime metrics. Anything else is a `bad-request`.
 * - Answer: `{v: 1, document: bytes}` (the NSM's COSE_Sign1 document, untouched), `{v: 1, metrics:
 *   {cpuUtilizationBasisPoints: 0..10000, memoryUsedMiB, uptimeSeconds}}` (whole numbers: the enclave's own
 *   /proc, which the parent cannot see), or `{v: 1, error: {code, message}}` with `code` one of
 *   {@link RESPONDER_ERROR_CODES}.
 *
 * The frames are encoded and decoded with cbor-x, never the verifier's strict decoder: the document inside
 * an answer stays opaque bytes here, and only the verifier parses it.
 */
import { Decoder, Encoder } from 'cbor-x';

export const PROTOCOL_VERSION = 1;
/** The vsock port the responder listens on inside the enclave. */
export const ATTESTATION_PORT = 5005;
/** The NSM refuses a request over 4 KiB; a frame that could not fit one is refused before it is read. */
export const MAX_REQUEST_FRAME = 4096;
/** An attestation document is at most 16 KiB (its COSE payload's bound), plus the answer's few bytes. */
export const MAX_RESPONSE_FRAME = 16_384 + 256;
export const NONCE_BYTES = { min: 1, max: 512 } as const;
export const USER_DATA_BYTES = { min: 0, max: 512 } as const;
export const PUBLIC_KEY_BYTES = { min: 1, max: 1024 } as const;

/** What a responder may answer instead of a document. */
export const RESPONDER_ERROR_CODES = [
  'bad-request',
  'unsupported-version',
  'nsm-error',
  'metrics-unavailable',
] as const;
export type ResponderErrorCode = (typeof RESPONDER_ERROR_CODES)[number];

export interface AttestationRequest {
  readonly nonce: Uint8Array;
  readonly userData?: Uint8Array;
  readonly publicKey?: Uint8Array;
}

/** The enclave's runtime metrics, as the responder reads them from the enclave's /proc. */
export interface EnclaveRuntimeMetrics {
  /** CPU busy since the previous sample, in 1/100 of a percent. */
  readonly cpuUtilizationBasisPoints: number;
  readonly memoryUsedMiB: number;
  readonly uptimeSeconds: number;
}

export type AttestationAnswer =
  | { readonly document: Uint8Array }
  | { readonly metrics: EnclaveRuntimeMetrics }
  | { readonly error: { readonly code: ResponderErrorCode; readonly message: string } };

/** A frame or message that breaks the protocol; `code` says which rule. */
export class ProtocolError extends Error {
  override readonly name = 'ProtocolError';
  constructor(
    readonly code: 'frame-too-large' | 'empty-frame' | 'malformed' | 'unsupported-version' | 'truncated',
    message: string,
  ) {
    super(message);
  }
}

/** Plain CBOR: maps with text keys, byte strings untagged (cbor-x's own extensions off). */
export const plainCbor = {
  encoder: new Encoder({
    useRecords: false,
    mapsAsObjects: true,
    tagUint8Array: false,
    variableMapSize: true,
    pack: false,
    structuredClone: false,
  }),
  decoder: new Decoder({ useRecords: false, mapsAsObjects: true }),
};
const { encoder, decoder } = plainCbor;

/** One frame: the big-endian length, then the CBOR item. */
export function encodeFrame(message: Record<string, unknown>, maxBytes: number): Buffer {
  const body = encoder.encode(message);
  if (body.length > maxBytes) {
    throw new ProtocolError('frame-too-large', `a ${body.length}-byte frame is over ${maxBytes} bytes`);
  }
  const header = Buffer.alloc(4);
  header.writeUInt32BE(body.length);
  return Buffer.concat([header, body]);
}

/** The request frame for `request`, its sizes checked as the responder checks them. */
export function encodeRequest(request: AttestationRequest): Buffer {
  checkSize('nonce', request.nonce, NONCE_BYTES);
  if (request.userData !== undefined) checkSize('userData', request.userData, USER_DATA_BYTES);
  if (request.publicKey !== undefined) checkSize('publicKey', request.publicKey, PUBLIC_KEY_BYTES);
  return encodeFrame(
    {
      v: PROTOCOL_VERSION,
      nonce: Buffer.from(request.nonce),
      ...(request.userData === undefined ? {} : { userData: Buffer.from(request.userData) }),
      ...(request.publicKey === undefined ? {} : { publicKey: Buffer.from(request.publicKey) }),
    },
    MAX_REQUEST_FRAME,
  );
}

/** The request frame asking for the enclave's runtime metrics. */
export function encodeMetricsRequest(): Buffer {
  return encodeFrame({ v: PROTOCOL_VERSION, metrics: true }, MAX_REQUEST_FRAME);
}

function checkSize(field: string, value: Uint8Array, bounds: { min: number; max: number }): void {
  if (!(value instanceof Uint8Array) || value.length < bounds.min || value.length > bounds.max) {
    throw new ProtocolError('malformed', `${field} must be ${bounds.min}..${bounds.max} bytes`);
  }
}

/**
 * Decodes an answer's frame body (after its length): a document, or the responder's error. Strict: one CBOR
 * map, version 1, exactly the keys of one of the two shapes, byte strings untagged.
 * @throws ProtocolError when the body is anything else
 */
export function decodeAnswer(body: Uint8Array): AttestationAnswer {
  const message = decodeMap(body);
  const keys = Object.keys(message).sort().join(',');
  if (keys === 'document,v' && isBytes(message.document) && message.document.length > 0) {
    return { document: new Uint8Array(message.document) };
  }
  if (keys === 'metrics,v' && isPlainObject(message.metrics)) {
    const m = message.metrics;
    const whole = (value: unknown, max: number) =>
      Number.isSafeInteger(value) && (value as number) >= 0 && (value as number) <= max;
    if (
      Object.keys(m).sort().join(',') === 'cpuUtilizationBasisPoints,memoryUsedMiB,uptimeSeconds' &&
      whole(m.cpuUtilizationBasisPoints, 10_000) &&
      whole(m.memoryUsedMiB, Number.MAX_SAFE_INTEGER) &&
      whole(m.uptimeSeconds, Number.MAX_SAFE_INTEGER)
    ) {
      return { metrics: m as unknown as EnclaveRuntimeMetrics };
    }
  }
  if (keys === 'error,v' && isPlainObject(message.error)) {
    const { code, message: text } = message.error;
    if (
      Object.keys(message.error).sort().join(',') === 'code,message' &&
      (RESPONDER_ERROR_CODES as readonly unknown[]).includes(code) &&
      typeof text === 'string'
    ) {
      return { error: { code: code as ResponderErrorCode, message: text.slice(0, 500) } };
    }
  }
  throw new ProtocolError(
    'malformed',
    'the answer is none of {v, document}, {v, metrics: {cpuUtilizationBasisPoints, memoryUsedMiB, uptimeSeconds}}, {v, error: {code, message}}',
  );
}

function decodeMap(body: Uint8Array): Record<string, unknown> {
  if (body.length === 0) throw new ProtocolError('empty-frame', 'an empty frame');
  let value: unknown;
  try {
    value = decoder.decode(Buffer.from(body.buffer, body.byteOffset, body.length));
  } catch (error) {
    throw new ProtocolError('malformed', `not one CBOR item: ${(error as Error).message}`);
  }
  if (!isPlainObject(value)) throw new ProtocolError('malformed', 'the frame is not a CBOR map');
  if (value.v !== PROTOCOL_VERSION) {
    throw new ProtocolError('unsupported-version', `protocol version ${String(value.v)} is not 1`);
  }
  return value;
}

/** A CBOR byte string as cbor-x decodes one (a Buffer); a tagged typed array is not one. */
function isBytes(value: unknown): value is Buffer {
  return Buffer.isBuffer(value);
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && Object.getPrototypeOf(value) === Object.prototype;
}

/**
 * Reads one frame from `chunks` (a stream's data): its length first, refused at once when over `maxBytes`
 * (nothing more is read), then exactly that many bytes.
 * @throws ProtocolError `truncated` when the stream ends first, `frame-too-large` over the limit
 */
export async function readFrame(chunks: AsyncIterable<Uint8Array>, maxBytes: number): Promise<Buffer> {
  let buffered = Buffer.alloc(0);
  let length: number | undefined;
  for await (const chunk of chunks) {
    buffered = Buffer.concat([buffered, chunk]);
    if (length === undefined && buffered.length >= 4) {
      length = buffered.readUInt32BE(0);
      if (length > maxBytes) {
        throw new ProtocolError('frame-too-large', `a ${length}-byte frame is over ${maxBytes} bytes`);
      }
    }
    if (length !== undefined && buffered.length >= 4 + length) return buffered.subarray(4, 4 + length);
  }
  throw new ProtocolError(
    'truncated',
    `the stream ended ${length === undefined ? 'before a length' : 'inside a frame'}`,
  );
}
