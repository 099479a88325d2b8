/**
 * The request functions' doorbell ring (shared/events/signed-doorbell-ring.ts): DynamoDB's JSON protocol
 * signed by hand with the SDK's SigV4 signer, against dynalite (the real protocol), through a recording
 * proxy that checks each request's signature as DynamoDB would (recomputed from what arrived on the wire,
 * with the caller's secret key) and can answer faults in DynamoDB's shape.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Sha256 } from '@smithy/core/checksum';
import { HttpRequest } from '@smithy/core/protocols';
import { SignatureV4 } from '@smithy/signature-v4';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  type LocalDynamoDb,
  startLocalDynamoDb,
} from '../../infra/local/services/dynamodb/local-dynamodb.ts';
import { DynamoDbDoorbell } from '../../shared/events/dynamodb-doorbell.ts';
import { DoorbellRingError, SignedDoorbellRing } from '../../shared/events/signed-doorbell-ring.ts';

const CREDENTIALS = {
  accessKeyId: 'AKIDEXAMPLE',
  secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY',
  sessionToken: 'session',
};
const TABLE = 'doorbell';

interface Seen {
  readonly target: string | undefined;
  readonly contentType: string | undefined;
  readonly body: Record<string, unknown>;
  readonly signatureValid: boolean;
}

let dynamo: LocalDynamoDb;
let proxy: Server;
let endpoint: string;
let seen: Seen[] = [];
let faults: { status: number; type: string }[] = [];

/** The signature DynamoDB would compute for what arrived, with the caller's secret key. */
async function signatureValid(request: IncomingMessage, body: string): Promise<boolean> {
  const authorization = String(request.headers.authorization ?? '');
  const signedHeaders = /SignedHeaders=([^,]+)/.exec(authorization)?.[1]?.split(';') ?? [];
  const date = String(request.headers['x-amz-date'] ?? '');
  const headers = Object.fromEntries(
    signedHeaders.map((name) => [name, String(request.headers[name] ?? '')]),
  );
  const signer = new SignatureV4({
    service: 'dynamodb',
    region: 'eu-central-1',
    credentials: CREDENTIALS,
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

beforeAll(async () => {
  dynamo = await startLocalDynamoDb();
  await dynamo.createDoorbellTable(TABLE);
  proxy = createServer(async (request, response) => {
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks).toString('utf8');
    seen.push({
      target: request.headers['x-amz-target'] as string | undefined,
      contentType: request.headers['content-type'],
      body: JSON.parse(body) as Record<string, unknown>,
      signatureValid: await signatureValid(request, body),
    });
    const fault = faults.shift();
    if (fault) {
      response.writeHead(fault.status, { 'content-type': 'application/x-amz-json-1.0' });
      response.end(
        JSON.stringify({ __type: `com.amazonaws.dynamodb.v20120810#${fault.type}`, message: 'injected' }),
      );
      return;
    }
    const forwarded = await fetch(dynamo.endpoint, {
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
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', () => resolve()));
  endpoint = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
});

afterAll(async () => {
  proxy?.closeAllConnections();
  await new Promise<void>((resolve) => (proxy ? proxy.close(() => resolve()) : resolve()));
  await dynamo?.close();
});

beforeEach(() => {
  seen = [];
  faults = [];
});

const ringer = (options: Partial<ConstructorParameters<typeof SignedDoorbellRing>[0]> = {}) =>
  new SignedDoorbellRing({
    tableName: TABLE,
    region: 'eu-central-1',
    endpoint,
    credentials: async () => CREDENTIALS,
    ...options,
  });

describe('the signed doorbell ring', () => {
  it('counts every ring, concurrent ones included, as the SDK client reads them back', async () => {
    const doorbell = new DynamoDbDoorbell({ tableName: TABLE, client: dynamo.client });
    const before = (await doorbell.read()).rings;
    const ring = ringer();
    await Promise.all(Array.from({ length: 5 }, () => ring.ring()));
    expect((await doorbell.read()).rings).toBe(before + 5);
  });

  it('sends a validly signed DynamoDB JSON 1.0 UpdateItem on the doorbell item only', async () => {
    await ringer().ring();
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatchObject({
      target: 'DynamoDB_20120810.UpdateItem',
      contentType: 'application/x-amz-json-1.0',
      signatureValid: true,
      body: { TableName: TABLE, Key: { pk: { S: 'doorbell' } }, UpdateExpression: 'ADD #rings :one' },
    });
  });

  it('tries throttling and server errors again, up to three attempts', async () => {
    faults = [
      { status: 400, type: 'ThrottlingException' },
      { status: 500, type: 'InternalServerError' },
    ];
    await ringer().ring();
    expect(seen).toHaveLength(3);
    faults = Array.from({ length: 3 }, () => ({ status: 503, type: 'ServiceUnavailable' }));
    seen = [];
    const error = await ringer()
      .ring()
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DoorbellRingError);
    expect(error).toMatchObject({ name: 'ServiceUnavailable', statusCode: 503, retryable: true });
    expect(seen).toHaveLength(3);
  });

  it('does not try a refusal again, and names it as the SDK does', async () => {
    const missing = ringer({ tableName: `missing-${randomUUID()}` });
    const error = await missing.ring().catch((e: unknown) => e);
    expect(error).toMatchObject({ name: 'ResourceNotFoundException', statusCode: 400, retryable: false });
    expect(seen).toHaveLength(1);
    faults = [{ status: 400, type: 'AccessDeniedException' }];
    seen = [];
    await expect(ringer().ring()).rejects.toMatchObject({ name: 'AccessDeniedException' });
    expect(seen).toHaveLength(1);
  });

  it('sends nothing when the check before it refuses (the local IAM stand-in)', async () => {
    const denied = ringer({
      beforeSend: async (operation, input) => {
        expect(operation).toBe('UpdateItem');
        expect(input.TableName).toBe(TABLE);
        throw Object.assign(new Error('not authorized to perform: dynamodb:UpdateItem'), {
          name: 'AccessDeniedException',
        });
      },
    });
    await expect(denied.ring()).rejects.toThrow(/dynamodb:UpdateItem/);
    expect(seen).toEqual([]);
  });

  it('is refused a wrong secret key by a verifier, which shows the check above can fail', async () => {
    const forged = ringer({ credentials: async () => ({ ...CREDENTIALS, secretAccessKey: 'not-the-key' }) });
    await forged.ring();
    expect(seen[0]?.signatureValid).toBe(false);
  });
});
