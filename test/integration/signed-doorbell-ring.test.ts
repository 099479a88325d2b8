/**
 * The request functions' doorbell ring (shared/events/signed-doorbell-ring.ts): DynamoDB's JSON protocol
 * signed by hand with the SDK's SigV4 signer, against dynalite (the real protocol), through an endpoint that
 * checks each request's signature as DynamoDB would and can answer faults in DynamoDB's shape.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  type LocalDynamoDb,
  startLocalDynamoDb,
} from '../../infra/local/services/dynamodb/local-dynamodb.ts';
import { DynamoDbDoorbell } from '../../shared/events/dynamodb-doorbell.ts';
import { SignedDoorbellRing } from '../../shared/events/signed-doorbell-ring.ts';
import { AwsJsonError } from '../../shared/runtime/signed-json-client.ts';
import { type SigV4Endpoint, startSigV4Endpoint, TEST_CREDENTIALS } from '../support/sigv4-endpoint.ts';

const TABLE = 'doorbell';
let dynamo: LocalDynamoDb;
let endpoint: SigV4Endpoint;

beforeAll(async () => {
  dynamo = await startLocalDynamoDb();
  await dynamo.createDoorbellTable(TABLE);
  endpoint = await startSigV4Endpoint({ service: 'dynamodb', forward: dynamo.endpoint });
});

afterAll(async () => {
  await endpoint?.close();
  await dynamo?.close();
});

beforeEach(() => endpoint.reset());

const ringer = (options: Partial<ConstructorParameters<typeof SignedDoorbellRing>[0]> = {}) =>
  new SignedDoorbellRing({
    tableName: TABLE,
    region: 'eu-central-1',
    endpoint: endpoint.url,
    credentials: async () => TEST_CREDENTIALS,
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
    expect(endpoint.seen).toHaveLength(1);
    expect(endpoint.seen[0]).toMatchObject({
      target: 'DynamoDB_20120810.UpdateItem',
      contentType: 'application/x-amz-json-1.0',
      signatureValid: true,
      body: { TableName: TABLE, Key: { pk: { S: 'doorbell' } }, UpdateExpression: 'ADD #rings :one' },
    });
  });

  it('tries throttling and server errors again, up to three attempts', async () => {
    endpoint.fail({ status: 400, type: 'ThrottlingException' }, { status: 500, type: 'InternalServerError' });
    await ringer().ring();
    expect(endpoint.seen).toHaveLength(3);
    endpoint.reset();
    endpoint.fail(...Array.from({ length: 3 }, () => ({ status: 503, type: 'ServiceUnavailable' })));
    const error = await ringer()
      .ring()
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AwsJsonError);
    expect(error).toMatchObject({
      name: 'ServiceUnavailable',
      $fault: 'server',
      $metadata: { httpStatusCode: 503 },
      retryable: true,
    });
    expect(endpoint.seen).toHaveLength(3);
  });

  it('does not try a refusal again, and names it as the SDK does', async () => {
    const missing = ringer({ tableName: `missing-${randomUUID()}` });
    const error = await missing.ring().catch((e: unknown) => e);
    expect(error).toMatchObject({
      name: 'ResourceNotFoundException',
      $fault: 'client',
      $metadata: { httpStatusCode: 400 },
      retryable: false,
    });
    expect(endpoint.seen).toHaveLength(1);
    endpoint.reset();
    endpoint.fail({ status: 400, type: 'AccessDeniedException' });
    await expect(ringer().ring()).rejects.toMatchObject({ name: 'AccessDeniedException' });
    expect(endpoint.seen).toHaveLength(1);
  });

  it('sends nothing when the check before it refuses (the local IAM stand-in)', async () => {
    const denied = ringer({
      beforeSend: async (operation, input) => {
        expect(operation).toBe('UpdateItem');
        expect((input as { TableName?: string }).TableName).toBe(TABLE);
        throw Object.assign(new Error('not authorized to perform: dynamodb:UpdateItem'), {
          name: 'AccessDeniedException',
        });
      },
    });
    await expect(denied.ring()).rejects.toThrow(/dynamodb:UpdateItem/);
    expect(endpoint.seen).toEqual([]);
  });

  it('is caught by the verifier when signed with another secret key (the check above can fail)', async () => {
    await ringer({
      credentials: async () => ({ ...TEST_CREDENTIALS, secretAccessKey: 'not-the-key' }),
    }).ring();
    expect(endpoint.seen[0]?.signatureValid).toBe(false);
  });
});
