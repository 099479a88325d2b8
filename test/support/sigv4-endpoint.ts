import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Sha256 } from '@smithy/core/checksum';
import { HttpRequest } from '@smithy/core/protocols';
import { SignatureV4 } from '@smithy/signature-v4';

/** The credentials the signed clients under test sign with; the endpoint verifies against them. */
export const TEST_CREDENTIALS = {
  accessKeyId: 'AKIDEXAMPLE',
  secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY',
  sessionToken: 'session',
};

/** One request as it arrived. */
export interface SeenRequest {
  readonly target: string | undefined;
  readonly contentType: string | undefined;
  readonly body: Record<string, unknown>;
  /** Whether the SigV4 signature matches what arrived, recomputed with {@link TEST_CREDENTIALS}' secret. */
  readonly signatureValid: boolean;
}

/** A recording endpoint for an AWS JSON service (see {@link startSigV4Endpoint}). */
export interface SigV4Endpoint {
  readonly url: string;
  readonly seen: SeenRequest[];
  /** Answers the next requests with these, in the service's error shape (`__type`, `message`). */
  fail(...faults: { status: number; type: string }[]): void;
  reset(): void;
  close(): Promise<void>;
}

/**
 * An endpoint in front of an AWS JSON service: it checks each request's Signature Version 4 as the
 * service would (recomputed from the method, path, signed headers and body that arrived, with the caller's
 * secret key), records it, and answers an injected fault, or what `answer` makes of the request (the
 * service's behaviour, played by the test), or what `forward` (dynalite, say) answers, or 200 `{}` (Step
 * Functions' answer to SendTaskSuccess and SendTaskHeartbeat).
 */
export async function startSigV4Endpoint(options: {
  service: string;
  forward?: string;
  answer?: (target: string | undefined, body: Record<string, unknown>) => unknown;
}): Promise<SigV4Endpoint> {
  const seen: SeenRequest[] = [];
  const faults: { status: number; type: string }[] = [];
  const server = createServer(async (request, response) => {
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks).toString('utf8');
    seen.push({
      target: request.headers['x-amz-target'] as string | undefined,
      contentType: request.headers['content-type'],
      body: JSON.parse(body) as Record<string, unknown>,
      signatureValid: await signatureValid(options.service, request, body),
    });
    const fault = faults.shift();
    if (fault) {
      response.writeHead(fault.status, { 'content-type': 'application/x-amz-json-1.0' });
      response.end(JSON.stringify({ __type: `com.amazonaws.service#${fault.type}`, message: 'injected' }));
      return;
    }
    if (options.answer) {
      response.writeHead(200, { 'content-type': String(request.headers['content-type']) });
      response.end(JSON.stringify(options.answer(seen.at(-1)!.target, seen.at(-1)!.body)));
      return;
    }
    if (!options.forward) {
      response.writeHead(200, { 'content-type': 'application/x-amz-json-1.0' });
      response.end('{}');
      return;
    }
    const forwarded = await fetch(options.forward, {
      method: 'POST',
      headers: Object.fromEntries(
        Object.entries(request.headers).filter(
          ([name]) => !['host', 'content-length', 'connection'].includes(name),
        ),
      ) as Record<string, string>,
      body,
    });
    response.writeHead(forwarded.status, { 'content-type': forwarded.headers.get('content-type') ?? '' });
    response.end(await forwarded.text());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    fail: (...more) => faults.push(...more),
    reset() {
      seen.length = 0;
      faults.length = 0;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

async function signatureValid(service: string, request: IncomingMessage, body: string): Promise<boolean> {
  const authorization = String(request.headers.authorization ?? '');
  const signedHeaders = /SignedHeaders=([^,]+)/.exec(authorization)?.[1]?.split(';') ?? [];
  const date = String(request.headers['x-amz-date'] ?? '');
  const headers = Object.fromEntries(
    signedHeaders.map((name) => [name, String(request.headers[name] ?? '')]),
  );
  const signer = new SignatureV4({
    service,
    region: 'eu-central-1',
    credentials: TEST_CREDENTIALS,
    sha256: Sha256,
  });
  const signingDate = new Date(
    `${date.slice(0, 4)}-${date.slice(4, 6)}-${date.slice(6, 8)}T${date.slice(9, 11)}:${date.slice(11, 13)}:${date.slice(13, 15)}Z`,
  );
  const recomputed = await signer.sign(
    new HttpRequest({
      method: request.method!,
      protocol: 'http:',
      hostname: '127.0.0.1',
      path: request.url!,
      headers,
      body,
    }),
    { signingDate },
  );
  return (
    signedHeaders.includes('host') &&
    signedHeaders.includes('x-amz-target') &&
    recomputed.headers.authorization === authorization
  );
}
