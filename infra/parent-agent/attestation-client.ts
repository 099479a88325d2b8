import { spawn } from 'node:child_process';
import { connect as connectTcp } from 'node:net';
import { Duplex } from 'node:stream';
import {
  ATTESTATION_PORT,
  type AttestationAnswer,
  type AttestationRequest,
  decodeAnswer,
  type EnclaveRuntimeMetrics,
  encodeMetricsRequest,
  encodeRequest,
  MAX_RESPONSE_FRAME,
  ProtocolError,
  type ResponderErrorCode,
  readFrame,
} from './attestation-protocol.ts';

/** Opens a stream to the enclave's responder. */
export type Connect = () => Duplex;

/** The enclave answered, but with an error instead of a document (it is running, and said no). */
export class ResponderRefusal extends Error {
  override readonly name = 'ResponderRefusal';
  constructor(
    readonly code: ResponderErrorCode,
    message: string,
  ) {
    super(`the enclave's responder refused: ${code}: ${message}`);
  }
}

/** The responder did not answer in time (not started, hung, or unreachable). */
export class ResponderTimeout extends Error {
  override readonly name = 'ResponderTimeout';
}

/**
 * Node.js has no AF_VSOCK sockets: on the parent, the agent reaches the enclave through socat, which Amazon
 * Linux 2023 packages (`socat - VSOCK-CONNECT:<cid>:<port>`), its standard input and output the stream.
 */
export function vsockConnector(cid: number, port = ATTESTATION_PORT, socat = 'socat'): Connect {
  return () => {
    const child = spawn(socat, ['-', `VSOCK-CONNECT:${cid}:${port}`], { stdio: ['pipe', 'pipe', 'inherit'] });
    const stream = Duplex.from({ readable: child.stdout, writable: child.stdin });
    stream.once('close', () => child.kill());
    child.once('error', (error) => stream.destroy(error));
    return stream;
  };
}

/** The same framing over TCP: the local stack's stand-in for vsock, and the tests'. */
export function tcpConnector(host: string, port: number): Connect {
  return () => connectTcp({ host, port });
}

/**
 * Asks the enclave for an attestation document over one connection: sends the request, reads one answer,
 * closes. Within `timeoutMs` in all (connection included), or {@link ResponderTimeout}.
 * @throws ResponderRefusal the responder's error answer; ProtocolError an answer that breaks the protocol
 *   (a metrics answer included); ResponderTimeout no answer in time; the stream's own error (connection
 *   refused, socat missing)
 */
export async function requestAttestation(
  connect: Connect,
  request: AttestationRequest,
  options: { timeoutMs: number },
): Promise<Uint8Array> {
  const answer = await exchange(connect, encodeRequest(request), options.timeoutMs);
  if (!('document' in answer))
    throw new ProtocolError('malformed', 'a metrics answer to an attestation request');
  return answer.document;
}

/** Asks the enclave for its runtime metrics, as {@link requestAttestation} asks for a document. */
export async function requestMetrics(
  connect: Connect,
  options: { timeoutMs: number },
): Promise<EnclaveRuntimeMetrics> {
  const answer = await exchange(connect, encodeMetricsRequest(), options.timeoutMs);
  if (!('metrics' in answer)) throw new ProtocolError('malformed', 'a document answer to a metrics request');
  return answer.metrics;
}

/** One request, one answer (an error answer thrown as {@link ResponderRefusal}). */
async function exchange(
  connect: Connect,
  frame: Buffer,
  timeoutMs: number,
): Promise<Exclude<AttestationAnswer, { error: unknown }>> {
  const stream = connect();
  const timer = setTimeout(
    () => stream.destroy(new ResponderTimeout(`no answer from the enclave within ${timeoutMs} ms`)),
    timeoutMs,
  );
  try {
    // Not ended after writing: a half-close would make socat give up on the answer after 0.5 s.
    stream.write(frame);
    const answer = decodeAnswer(await readFrame(stream, MAX_RESPONSE_FRAME));
    if ('error' in answer) throw new ResponderRefusal(answer.error.code, answer.error.message);
    return answer;
  } finally {
    clearTimeout(timer);
    stream.destroy();
  }
}
