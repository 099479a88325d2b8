/**
 * The workflow stores as deployed: their calls through SignedJsonClient (no DynamoDB client module in the
 * attestation routes), against dynalite (the real protocol) behind an endpoint that checks each request's
 * signature as DynamoDB would. The stores' full contracts run through the SDK client in nonce-store.test.ts
 * and task-token-store.test.ts; here, that the hand-signed calls carry them too, refusals included (a
 * ConditionalCheckFailedException's `Item`, which the stores read to say why).
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type LocalDynamoDb,
  startLocalDynamoDb,
} from '../../infra/local/services/dynamodb/local-dynamodb.ts';
import { SignedJsonClient } from '../../shared/runtime/signed-json-client.ts';
import { DynamoDbNonceStore } from '../../shared/workflow/dynamodb-nonce-store.ts';
import { DynamoDbTaskTokenStore } from '../../shared/workflow/dynamodb-task-token-store.ts';
import { type SigV4Endpoint, startSigV4Endpoint, TEST_CREDENTIALS } from '../support/sigv4-endpoint.ts';

const TABLE = 'workflow';
let dynamo: LocalDynamoDb;
let endpoint: SigV4Endpoint;
let client: SignedJsonClient;

beforeAll(async () => {
  dynamo = await startLocalDynamoDb();
  await dynamo.createNonceTable(TABLE);
  endpoint = await startSigV4Endpoint({ service: 'dynamodb', forward: dynamo.endpoint });
  client = new SignedJsonClient({
    service: 'dynamodb',
    region: 'eu-central-1',
    endpoint: endpoint.url,
    credentials: async () => TEST_CREDENTIALS,
  });
});

afterAll(async () => {
  await endpoint?.close();
  await dynamo?.close();
});

describe('the workflow stores over signed calls', () => {
  it('issue a nonce and consume it once; the second consumption is refused as already consumed', async () => {
    const nonces = new DynamoDbNonceStore({ tableName: TABLE, client });
    const enclaveId = randomUUID();
    const { nonce } = await nonces.issue({ enclaveId }, 300);
    await expect(nonces.consume(randomUUID(), nonce)).resolves.toBe('unknown');
    await expect(nonces.consume(enclaveId, nonce)).resolves.toBe('consumed');
    await expect(nonces.consume(enclaveId, nonce)).resolves.toBe('already_consumed');
    expect(endpoint.seen.every((request) => request.signatureValid)).toBe(true);
    expect(new Set(endpoint.seen.map((r) => r.target))).toEqual(
      new Set(['DynamoDB_20120810.PutItem', 'DynamoDB_20120810.UpdateItem']),
    );
  });

  it('hand a task token out once, to its instance only', async () => {
    const tokens = new DynamoDbTaskTokenStore({ tableName: TABLE, client });
    const enclaveId = randomUUID();
    const wait = {
      taskToken: `token-${randomUUID()}`,
      executionArn: 'arn:aws:states:eu-central-1:000000000000:execution:provision:one',
      instanceId: 'i-0123456789abcdef0',
      expiresAt: new Date(Date.now() + 600_000),
    };
    await tokens.put(enclaveId, wait);
    await expect(tokens.peek(enclaveId, { instanceId: wait.instanceId })).resolves.toMatchObject({
      taskToken: wait.taskToken,
    });
    await expect(tokens.take(enclaveId, { instanceId: 'i-0fedcba9876543210' })).resolves.toBe(
      'wrong_instance',
    );
    await expect(tokens.take(enclaveId, { instanceId: wait.instanceId })).resolves.toEqual({
      taskToken: wait.taskToken,
      executionArn: wait.executionArn,
    });
    await expect(tokens.take(enclaveId, { instanceId: wait.instanceId })).resolves.toBe('already_taken');
    // Released after a transient callback failure, it can be taken again (an UpdateItem REMOVE).
    await tokens.release(enclaveId, wait.taskToken);
    await expect(tokens.take(enclaveId, { instanceId: wait.instanceId })).resolves.toMatchObject({
      taskToken: wait.taskToken,
    });
    await tokens.discard(enclaveId);
    await expect(tokens.take(enclaveId, { instanceId: wait.instanceId })).resolves.toBe('none');
    expect(endpoint.seen.every((request) => request.signatureValid)).toBe(true);
  });
});
