/**
 * The DynamoDB nonce store through the real `DynamoDBClient` against dynalite (the DynamoDB protocol, served
 * in-process): issue, consume exactly once, refusals told apart from the item returned by a failed
 * condition, expiry checked by the store itself, concurrency, and the SDK retrying an update that landed.
 */
import { randomBytes } from 'node:crypto';
import {
  ConditionalCheckFailedException,
  DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  UpdateItemCommand,
} from '@aws-sdk/client-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import fc from 'fast-check';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  type LocalDynamoDb,
  startLocalDynamoDb,
} from '../../infra/local/services/dynamodb/local-dynamodb.ts';
import { DynamoDbNonceStore, NONCE_TABLE, nonceKey } from '../../shared/workflow/dynamodb-nonce-store.ts';
import { MAX_NONCE_TTL_SECONDS, NONCE_BYTES, NonceStoreError } from '../../shared/workflow/nonce-store.ts';
import {
  clientDroppingFirstUpdateResponse,
  dynamoDbServiceError,
  sdkCalls,
} from '../support/dynamodb-faults.ts';

const TABLE = 'attestation-nonces';
const T0 = new Date('2026-11-25T10:00:00.250Z');

let local: LocalDynamoDb;
let clock = T0;
let store: DynamoDbNonceStore;

beforeAll(async () => {
  local = await startLocalDynamoDb();
  await local.createNonceTable(TABLE);
  store = new DynamoDbNonceStore({ tableName: TABLE, client: sdkCalls(local.client), now: () => clock });
});

afterAll(async () => {
  await local.close();
});

afterEach(() => {
  clock = T0;
});

/** The stored item, read strongly consistently with the plain client (not through the store). */
async function readItem(nonce: Uint8Array) {
  const { Item } = await local.client.send(
    new GetItemCommand({
      TableName: TABLE,
      Key: { [NONCE_TABLE.partitionKey]: { S: nonceKey(nonce) } },
      ConsistentRead: true,
    }),
  );
  return Item;
}

describe('DynamoDbNonceStore on dynalite', () => {
  it('consumes an issued nonce once; the replay is already_consumed', async () => {
    const { nonce } = await store.issue({ enclaveId: 'enc-1', executionId: 'exec-1' }, 300);

    expect(await store.consume('enc-1', nonce)).toBe('consumed');
    expect(await store.consume('enc-1', nonce)).toBe('already_consumed');
    expect(await store.consume('enc-1', Uint8Array.from(nonce))).toBe('already_consumed');
  });

  it('answers consumed again to a repeat of a named consumption, and already_consumed to any other', async () => {
    const { nonce } = await store.issue({ enclaveId: 'enc-1', executionId: 'exec-1' }, 300);

    expect(await store.consume('enc-1', nonce, 'exec-1')).toBe('consumed');
    expect(await store.consume('enc-1', nonce, 'exec-1')).toBe('consumed');
    expect(await store.consume('enc-1', nonce, 'exec-2')).toBe('already_consumed');
    expect(await store.consume('enc-1', nonce)).toBe('already_consumed');
    await expect(store.consume('enc-1', nonce, '')).rejects.toBeInstanceOf(RangeError);
  });

  it('answers unknown for a nonce bound to another enclave, and leaves it consumable by its own', async () => {
    const { nonce } = await store.issue({ enclaveId: 'enc-a' }, 300);

    expect(await store.consume('enc-b', nonce)).toBe('unknown');
    expect(await store.consume('enc-a', nonce)).toBe('consumed');
    // Another enclave never learns that the nonce exists, consumed or not.
    expect(await store.consume('enc-b', nonce)).toBe('unknown');
  });

  it('answers unknown for a nonce it never issued, and for malformed nonces without a write', async () => {
    const random = new Uint8Array(randomBytes(NONCE_BYTES));
    expect(await store.consume('enc-1', random)).toBe('unknown');
    // The update's condition failed, so it did not create an item (an unconditioned UpdateItem would).
    expect(await readItem(random)).toBeUndefined();

    expect(await store.consume('enc-1', new Uint8Array(0))).toBe('unknown');
    expect(await store.consume('enc-1', new Uint8Array(NONCE_BYTES + 1))).toBe('unknown');
    const { nonce } = await store.issue({ enclaveId: 'enc-1' }, 300);
    expect(await store.consume('', nonce)).toBe('unknown');
    expect(await store.consume('enc-1', nonce.subarray(1))).toBe('unknown');
    expect(await store.consume('enc-1', nonce)).toBe('consumed');
  });

  it('answers expired once the clock reaches expiresAt, while the item still exists', async () => {
    const { nonce, expiresAt } = await store.issue({ enclaveId: 'enc-1' }, 60);
    // Rounded down to whole seconds: never longer than asked for.
    expect(expiresAt.toISOString()).toBe('2026-11-25T10:01:00.000Z');

    clock = new Date(expiresAt.getTime() - 1);
    const { nonce: other } = await store.issue({ enclaveId: 'enc-1' }, 60);
    expect(await store.consume('enc-1', other)).toBe('consumed');

    clock = expiresAt;
    expect(await store.consume('enc-1', nonce)).toBe('expired');
    clock = new Date(expiresAt.getTime() + 3 * 24 * 3600 * 1000);
    expect(await store.consume('enc-1', nonce)).toBe('expired');

    const item = await readItem(nonce);
    expect(item?.[NONCE_TABLE.timeToLiveAttribute]).toEqual({ N: String(expiresAt.getTime() / 1000) });
    expect(item?.consumedAt).toBeUndefined();
  });

  it('prefers already_consumed over expired, and unknown over both', async () => {
    const { nonce, expiresAt } = await store.issue({ enclaveId: 'enc-1' }, 60);
    expect(await store.consume('enc-1', nonce)).toBe('consumed');
    clock = new Date(expiresAt.getTime() + 1000);

    expect(await store.consume('enc-1', nonce)).toBe('already_consumed');
    expect(await store.consume('enc-2', nonce)).toBe('unknown');
  });

  it('lets exactly one of 20 concurrent consumers through', async () => {
    const { nonce } = await store.issue({ enclaveId: 'enc-race' }, 300);
    // The SDK's HTTP agent opens parallel connections, so the 20 updates interleave inside dynalite.
    const outcomes = await Promise.all(
      Array.from({ length: 20 }, () => store.consume('enc-race', Uint8Array.from(nonce))),
    );

    expect(outcomes.filter((o) => o === 'consumed')).toHaveLength(1);
    expect(outcomes.filter((o) => o === 'already_consumed')).toHaveLength(19);
  });

  it('lets exactly one consumer through across many nonces raced at once', async () => {
    const nonces = await Promise.all(
      Array.from({ length: 10 }, (_, i) => store.issue({ enclaveId: `enc-${i % 3}` }, 300)),
    );
    const outcomes = await Promise.all(
      nonces.flatMap(({ nonce }, i) =>
        Array.from({ length: 5 }, async () => [i, await store.consume(`enc-${i % 3}`, nonce)] as const),
      ),
    );
    for (let i = 0; i < nonces.length; i++) {
      const mine = outcomes.filter(([n]) => n === i).map(([, o]) => o);
      expect(mine.filter((o) => o === 'consumed')).toHaveLength(1);
    }
  });

  it('issues distinct 32-byte nonces, each stored with its binding and TTL in epoch seconds', async () => {
    const seen = new Set<string>();
    await fc.assert(
      fc.asyncProperty(
        fc.stringMatching(/^[a-z0-9-]{1,40}$/),
        fc.option(fc.uuid(), { nil: undefined }),
        fc.integer({ min: 1, max: MAX_NONCE_TTL_SECONDS }),
        fc.integer({ min: 0, max: 10 * 365 * 24 * 3600 * 1000 }),
        async (enclaveId, executionId, ttlSeconds, offsetMs) => {
          clock = new Date(T0.getTime() + offsetMs);
          const { nonce, expiresAt } = await store.issue({ enclaveId, executionId }, ttlSeconds);

          expect(nonce).toBeInstanceOf(Uint8Array);
          expect(nonce.length).toBe(NONCE_BYTES);
          const hex = Buffer.from(nonce).toString('hex');
          expect(seen.has(hex)).toBe(false);
          seen.add(hex);

          const expectedSeconds = Math.floor(clock.getTime() / 1000) + ttlSeconds;
          expect(expiresAt.getTime()).toBe(expectedSeconds * 1000);
          expect(expiresAt.getTime()).toBeLessThanOrEqual(clock.getTime() + ttlSeconds * 1000);
          expect(expiresAt.getTime()).toBeGreaterThan(clock.getTime() + (ttlSeconds - 1) * 1000);

          const item = await readItem(nonce);
          expect(item).toEqual({
            [NONCE_TABLE.partitionKey]: { S: `nonce#${hex}` },
            [NONCE_TABLE.timeToLiveAttribute]: { N: String(expectedSeconds) },
            enclaveId: { S: enclaveId },
            issuedAt: { S: clock.toISOString() },
            ...(executionId ? { executionId: { S: executionId } } : {}),
          });
        },
      ),
      { numRuns: 200 },
    );
    expect(seen.size).toBe(200);
  });

  it('refuses a TTL outside 1..MAX_NONCE_TTL_SECONDS and an empty binding', async () => {
    for (const ttl of [0, -1, 1.5, Number.NaN, MAX_NONCE_TTL_SECONDS + 1]) {
      await expect(store.issue({ enclaveId: 'enc-1' }, ttl)).rejects.toThrow(RangeError);
    }
    await expect(store.issue({ enclaveId: '' }, 60)).rejects.toThrow(TypeError);
  });

  it('never overwrites a taken key, so a consumed nonce cannot be re-bound or revived', async () => {
    const { nonce } = await store.issue({ enclaveId: 'enc-1' }, 300);
    expect(await store.consume('enc-1', nonce)).toBe('consumed');

    // The same put the store makes, for the consumed nonce: the condition must refuse it.
    await expect(
      local.client.send(
        new PutItemCommand({
          TableName: TABLE,
          Item: {
            [NONCE_TABLE.partitionKey]: { S: nonceKey(nonce) },
            enclaveId: { S: 'enc-evil' },
            [NONCE_TABLE.timeToLiveAttribute]: { N: String(Math.floor(T0.getTime() / 1000) + 300) },
          },
          ConditionExpression: 'attribute_not_exists(#pk)',
          ExpressionAttributeNames: { '#pk': NONCE_TABLE.partitionKey },
        }),
      ),
    ).rejects.toMatchObject({ name: 'ConditionalCheckFailedException' });
    expect(await store.consume('enc-evil', nonce)).toBe('unknown');
  });

  it('recognises its own update when the SDK retries after a lost response', async () => {
    const { nonce } = await store.issue({ enclaveId: 'enc-retry' }, 300);
    const client = clientDroppingFirstUpdateResponse(local.endpoint);
    const retrying = new DynamoDbNonceStore({ tableName: TABLE, client: sdkCalls(client), now: () => clock });

    // The first attempt consumes the nonce, its answer is lost, the SDK's retry fails the condition.
    expect(await retrying.consume('enc-retry', nonce)).toBe('consumed');
    expect((await readItem(nonce))?.consumedAt).toBeDefined();
    // A different call is a replay.
    expect(await retrying.consume('enc-retry', nonce)).toBe('already_consumed');
    client.destroy();
  });
});

describe('DynamoDbNonceStore faults (aws-sdk-client-mock)', () => {
  it('wraps throttling and server errors as transient NonceStoreErrors, client errors as permanent', async () => {
    const client = new DynamoDBClient({ region: 'eu-central-1' });
    const mock = mockClient(client);
    const faulty = new DynamoDbNonceStore({ tableName: TABLE, client: sdkCalls(client), now: () => T0 });

    mock
      .on(UpdateItemCommand)
      .rejectsOnce(dynamoDbServiceError('ProvisionedThroughputExceededException', 'client', 400));
    const throttled = await faulty.consume('enc-1', new Uint8Array(NONCE_BYTES)).catch((e: unknown) => e);
    expect(throttled).toBeInstanceOf(NonceStoreError);
    expect(throttled).toMatchObject({ transient: true, message: expect.stringContaining('Provisioned') });

    mock.reset();
    mock.on(PutItemCommand).rejects(dynamoDbServiceError('InternalServerError', 'server', 500));
    await expect(faulty.issue({ enclaveId: 'enc-1' }, 60)).rejects.toMatchObject({
      name: 'NonceStoreError',
      transient: true,
    });

    mock.reset();
    mock.on(UpdateItemCommand).rejects(dynamoDbServiceError('ResourceNotFoundException', 'client', 400));
    await expect(faulty.consume('enc-1', new Uint8Array(NONCE_BYTES))).rejects.toMatchObject({
      name: 'NonceStoreError',
      transient: false,
    });
    mock.restore();
  });

  it('retries a key collision with a fresh nonce, and gives up after three', async () => {
    const client = new DynamoDBClient({ region: 'eu-central-1' });
    const mock = mockClient(client);
    const faulty = new DynamoDbNonceStore({ tableName: TABLE, client: sdkCalls(client), now: () => T0 });
    const taken = () =>
      new ConditionalCheckFailedException({ message: 'The conditional request failed', $metadata: {} });

    mock.on(PutItemCommand).rejectsOnce(taken()).resolves({});
    const { nonce } = await faulty.issue({ enclaveId: 'enc-1' }, 60);
    const keys = mock.commandCalls(PutItemCommand).map((call) => call.args[0].input.Item?.pk?.S);
    expect(keys).toHaveLength(2);
    expect(keys[0]).not.toBe(keys[1]);
    expect(keys[1]).toBe(nonceKey(nonce));

    mock.reset();
    mock.on(PutItemCommand).rejects(taken());
    await expect(faulty.issue({ enclaveId: 'enc-1' }, 60)).rejects.toThrow(NonceStoreError);
    expect(mock.commandCalls(PutItemCommand)).toHaveLength(3);
    mock.restore();
  });
});
