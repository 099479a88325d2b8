/**
 * The Nitro Security Module's request interface, served over TCP for the enclave responder's `SocketNsm`
 * (infra/enclave-responder/attestation_responder.py): the same CBOR messages the NSM driver takes through its
 * ioctl, each length-prefixed (4 bytes, big-endian). An `Attestation` request is answered with a document from
 * the Nitro simulator (or whatever `attest` makes); anything else as the NSM answers it, with an error code.
 *
 * What the NSM enforces is enforced here (aws-nitro-enclaves-nsm-api): a request of at most 4 KiB;
 * `user_data` and `nonce` of at most 512 bytes, `public_key` of 1..1024 (docs/attestation_process.md), each
 * absent or null when not given; an answer within the driver's 12 KiB response buffer.
 */

import type { AddressInfo } from 'node:net';
import { createServer, type Server, type Socket } from 'node:net';
import { plainCbor } from '../../../parent-agent/attestation-protocol.ts';

export const NSM_REQUEST_MAX = 0x1000;
export const NSM_RESPONSE_MAX = 0x3000;

/** The NSM's error codes (aws-nitro-enclaves-nsm-api `ErrorCode`) this stand-in answers. */
export type NsmErrorCode = 'InvalidArgument' | 'InputTooLarge' | 'InvalidOperation' | 'InternalError';

/** What an `Attestation` request asks for. */
export interface NsmAttestationInput {
  readonly userData?: Uint8Array;
  readonly nonce?: Uint8Array;
  readonly publicKey?: Uint8Array;
}

export interface NsmEndpoint {
  readonly port: number;
  /** Requests received, as decoded (for tests). */
  readonly requests: NsmAttestationInput[];
  close(): Promise<void>;
}

// The NSM's messages are plain CBOR, as the protocol's frames are.
const { encoder, decoder } = plainCbor;

/**
 * Starts the endpoint on a loopback port.
 * @param attest makes the document (the Nitro simulator, bound to one instance and image), or names the
 *   error the NSM answers instead
 */
export async function startNsmEndpoint(
  attest: (input: NsmAttestationInput) => Promise<Uint8Array | { error: NsmErrorCode }>,
): Promise<NsmEndpoint> {
  const requests: NsmAttestationInput[] = [];
  const server: Server = createServer((socket) => {
    serveOne(socket, async (body) => {
      const parsed = parseRequest(body);
      if ('error' in parsed) return { Error: parsed.error };
      requests.push(parsed);
      const document = await attest(parsed);
      if (!(document instanceof Uint8Array)) return { Error: document.error };
      return { Attestation: { document: Buffer.from(document) } };
    }).catch(() => socket.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    requests,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

async function serveOne(socket: Socket, answer: (body: Buffer) => Promise<unknown>): Promise<void> {
  let buffered = Buffer.alloc(0);
  for await (const chunk of socket) {
    buffered = Buffer.concat([buffered, chunk as Buffer]);
    if (buffered.length < 4) continue;
    const length = buffered.readUInt32BE(0);
    // The driver refuses an oversized request before the NSM sees it (EMSGSIZE → InputTooLarge).
    const reply =
      length > NSM_REQUEST_MAX
        ? { Error: 'InputTooLarge' }
        : buffered.length >= 4 + length
          ? await answer(buffered.subarray(4, 4 + length))
          : undefined;
    if (reply === undefined) continue;
    let body = encoder.encode(reply);
    if (body.length > NSM_RESPONSE_MAX) body = encoder.encode({ Error: 'InternalError' });
    const header = Buffer.alloc(4);
    header.writeUInt32BE(body.length);
    socket.end(Buffer.concat([header, body]));
    return;
  }
}

function parseRequest(body: Buffer): NsmAttestationInput | { error: NsmErrorCode } {
  let message: unknown;
  try {
    message = decoder.decode(body);
  } catch {
    return { error: 'InvalidArgument' };
  }
  const request = message as Record<string, unknown> | null;
  if (typeof request !== 'object' || request === null || Object.keys(request).length !== 1) {
    return { error: 'InvalidArgument' };
  }
  // Another request (DescribePCR, GetRandom...): nothing here serves it.
  if (!('Attestation' in request)) return { error: 'InvalidOperation' };
  const fields = request.Attestation as Record<string, unknown> | null;
  if (typeof fields !== 'object' || fields === null) return { error: 'InvalidArgument' };
  if (Object.keys(fields).some((key) => !['user_data', 'nonce', 'public_key'].includes(key))) {
    return { error: 'InvalidArgument' };
  }
  const input: { userData?: Uint8Array; nonce?: Uint8Array; publicKey?: Uint8Array } = {};
  for (const [key, name, min, max] of [
    ['user_data', 'userData', 0, 512],
    ['nonce', 'nonce', 0, 512],
    ['public_key', 'publicKey', 1, 1024],
  ] as const) {
    const value = fields[key];
    if (value === undefined || value === null) continue;
    if (!Buffer.isBuffer(value)) return { error: 'InvalidArgument' };
    if (value.length > max) return { error: 'InputTooLarge' };
    if (value.length < min) return { error: 'InvalidArgument' };
    input[name] = new Uint8Array(value);
  }
  return input;
}
