/**
 * The DynamoDB task-token store through the real `DynamoDBClient` against dynalite: a pending wait's token
 * is handed out exactly once, duplicate and late callbacks are told apart, the caller's instance is checked,
 * a newer wait supersedes an older one, and the items live beside attestation nonces in the same table.
 */
import { DynamoDBClient, GetItemCommand, PutItemCommand, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  type LocalDynamoDb,
  startLocalDynamoDb,
} from '../../infra/local/services/dynamodb/local-dynamodb.ts';
import { DynamoDbNonceStore } from '../../shared/workflow/dynamodb-nonce-store.ts';
import {
  DynamoDbTaskTokenStore,
  TASK_TOKEN_KEY_PREFIX,
  TASK_TOKEN_TABLE,
  taskTokenKey,
} from '../../shared/workflow/dynamodb-task-token-store.ts';
import {
  MAX_TASK_TOKEN_LENGTH,
  MAX_TASK_WAIT_SECONDS,
  TaskTokenStoreError,
} from '../../shared/workflow/task-token-store.ts';
import {
  clientDroppingFirstUpdateResponse,
  dynamoDbServiceError,
  sdkCalls,
} from '../support/dynamodb-faults.ts';

const TABLE = 'workflow-state';
const T0 = new Date('2026-11-25T10:00:00.250Z');
const EXEC_1 = 'arn:aws:states:eu-central-1:123456789012:execution:Provision:enc-1-v1';
const EXEC_2 = 'arn:aws:states:eu-central-1:123456789012:execution:Provision:enc-1-v2';

let local: LocalDynamoDb;
let clock = T0;
let store: DynamoDbTaskTokenStore;
let enclaveCounter = 0;

beforeAll(async () => {
  local = await startLocalDynamoDb();
  await local.createNonceTable(TABLE);
  store = new DynamoDbTaskTokenStore({ tableName: TABLE, client: sdkCalls(local.client), now: () => clock });
});

afterAll(async () => {
  await local.close();
});

afterEach(() => {
  clock = T0;
});

/** A fresh enclave id per test, so tests sharing the table never see each other's waits. */
function freshEnclave(): string {
  enclaveCounter += 1;
  return `enc-${enclaveCounter}`;
}

function inSeconds(seconds: number): Date {
  return new Date(clock.getTime() + seconds * 1000);
}

/** A token shaped like Step Functions' (opaque, long). */
function token(label: string): string {
  return `AQB8AAAAKgAAAAMAAAAAAAAAA${label}`.padEnd(700, 'x');
}

async function readItem(enclaveId: string) {
  const { Item } = await local.client.send(
    new GetItemCommand({
      TableName: TABLE,
      Key: { [TASK_TOKEN_TABLE.partitionKey]: { S: taskTokenKey(enclaveId) } },
      ConsistentRead: true,
    }),
  );
  return Item;
}

describe('DynamoDbTaskTokenStore on dynalite', () => {
  it('hands a put token out once; the duplicate callback is already_taken', async () => {
    const enclave = freshEnclave();
    await store.put(enclave, { taskToken: token('a'), executionArn: EXEC_1, expiresAt: inSeconds(600) });

    expect(await store.take(enclave)).toEqual({ taskToken: token('a'), executionArn: EXEC_1 });
    expect(await store.take(enclave)).toBe('already_taken');
    expect(await store.take(enclave, { instanceId: 'i-0123456789abcdef0' })).toBe('already_taken');

    const item = await readItem(enclave);
    expect(item).toMatchObject({
      [TASK_TOKEN_TABLE.partitionKey]: { S: `${TASK_TOKEN_KEY_PREFIX}${enclave}` },
      enclaveId: { S: enclave },
      taskToken: { S: token('a') },
      executionArn: { S: EXEC_1 },
      putAt: { S: T0.toISOString() },
      takenAt: { S: T0.toISOString() },
      // Whole seconds, rounded down.
      [TASK_TOKEN_TABLE.timeToLiveAttribute]: { N: String(Math.floor(T0.getTime() / 1000) + 600) },
    });
  });

  it('discard forgets the wait, taken or not, so the next run starts from none; discarding nothing is a no-op', async () => {
    const enclave = freshEnclave();
    await store.put(enclave, { taskToken: token('a'), executionArn: EXEC_1, expiresAt: inSeconds(600) });
    expect(await store.take(enclave)).toEqual({ taskToken: token('a'), executionArn: EXEC_1 });
    await store.discard(enclave);
    expect(await store.take(enclave)).toBe('none');
    expect(await readItem(enclave)).toBeUndefined();
    await store.discard(enclave);
    await expect(store.discard('')).rejects.toBeInstanceOf(TypeError);
  });

  it('release hands a taken token back to the same caller, and never a token a newer wait replaced', async () => {
    const enclave = freshEnclave();
    const bound = { instanceId: 'i-0123456789abcdef0' };
    await store.put(enclave, {
      taskToken: token('a'),
      executionArn: EXEC_1,
      ...bound,
      expiresAt: inSeconds(600),
    });
    expect(await store.take(enclave, bound)).toEqual({ taskToken: token('a'), executionArn: EXEC_1 });
    await store.release(enclave, token('a'));
    expect(await store.take(enclave, { instanceId: 'i-0fedcba9876543210' })).toBe('wrong_instance');
    expect(await store.take(enclave, bound)).toEqual({ taskToken: token('a'), executionArn: EXEC_1 });
    await store.put(enclave, {
      taskToken: token('b'),
      executionArn: EXEC_1,
      ...bound,
      expiresAt: inSeconds(600),
    });
    await store.release(enclave, token('a'));
    expect(await store.take(enclave, bound)).toEqual({ taskToken: token('b'), executionArn: EXEC_1 });
    await store.release(freshEnclave(), token('a'));
  });

  it('answers none when no wait was ever put, without creating an item', async () => {
    const enclave = freshEnclave();
    expect(await store.take(enclave)).toBe('none');
    expect(await store.take(enclave, { instanceId: 'i-1' })).toBe('none');
    expect(await readItem(enclave)).toBeUndefined();
    // Malformed keys: nothing was ever put under them, no round trip.
    expect(await store.take('')).toBe('none');
    expect(await store.take('x'.repeat(3000))).toBe('none');
  });

  it('answers expired for a late callback while the item still exists, from expiresAt on', async () => {
    const enclave = freshEnclave();
    const expiresAt = inSeconds(60);
    await store.put(enclave, { taskToken: token('late'), executionArn: EXEC_1, expiresAt });

    clock = new Date(Math.floor(expiresAt.getTime() / 1000) * 1000);
    expect(await store.take(enclave)).toBe('expired');
    clock = new Date(expiresAt.getTime() + 3 * 24 * 3600 * 1000);
    expect(await store.take(enclave)).toBe('expired');
    expect((await readItem(enclave))?.takenAt).toBeUndefined();
  });

  it('still hands the token out one second before expiry, and then prefers already_taken over expired', async () => {
    const enclave = freshEnclave();
    await store.put(enclave, { taskToken: token('edge'), executionArn: EXEC_1, expiresAt: inSeconds(60) });

    clock = inSeconds(59);
    expect(await store.take(enclave)).toMatchObject({ taskToken: token('edge') });
    clock = new Date(T0.getTime() + 120_000);
    expect(await store.take(enclave)).toBe('already_taken');
  });

  it('refuses another instance as wrong_instance and still lets the right one take the token', async () => {
    const enclave = freshEnclave();
    const wait = {
      taskToken: token('inst'),
      executionArn: EXEC_1,
      instanceId: 'i-right',
      expiresAt: inSeconds(600),
    };
    await store.put(enclave, wait);

    expect(await store.take(enclave, { instanceId: 'i-wrong' })).toBe('wrong_instance');
    // A caller presenting no instance is refused too (fail closed), as is a malformed identity.
    expect(await store.take(enclave)).toBe('wrong_instance');
    expect(await store.take(enclave, { instanceId: '' })).toBe('wrong_instance');
    expect(await store.take(enclave, { instanceId: 'i'.repeat(300) })).toBe('wrong_instance');
    expect((await readItem(enclave))?.takenAt).toBeUndefined();

    expect(await store.take(enclave, { instanceId: 'i-right' })).toEqual({
      taskToken: token('inst'),
      executionArn: EXEC_1,
    });
    // wrong_instance wins over already_taken and expired: another instance learns nothing more.
    expect(await store.take(enclave, { instanceId: 'i-wrong' })).toBe('wrong_instance');
    expect(await store.take(enclave, { instanceId: 'i-right' })).toBe('already_taken');
    clock = inSeconds(3600);
    expect(await store.take(enclave, { instanceId: 'i-wrong' })).toBe('wrong_instance');
  });

  it('peek reads the wait as take would judge it, and never uses it up', async () => {
    const enclave = freshEnclave();
    expect(await store.peek(enclave, { instanceId: 'i-right' })).toBe('none');
    const wait = {
      taskToken: token('peek'),
      executionArn: EXEC_1,
      instanceId: 'i-right',
      expiresAt: inSeconds(60),
    };
    await store.put(enclave, wait);
    const open = { taskToken: token('peek'), executionArn: EXEC_1 };
    // Any number of peeks (heartbeats) leave the token for the document's take.
    expect(await store.peek(enclave, { instanceId: 'i-right' })).toEqual(open);
    expect(await store.peek(enclave, { instanceId: 'i-right' })).toEqual(open);
    expect((await readItem(enclave))?.takenAt).toBeUndefined();
    expect(await store.peek(enclave, { instanceId: 'i-wrong' })).toBe('wrong_instance');
    expect(await store.peek(enclave)).toBe('wrong_instance');
    expect(await store.peek(enclave, { instanceId: 'i'.repeat(300) })).toBe('wrong_instance');
    expect(await store.peek('', { instanceId: 'i-right' })).toBe('none');
    expect(await store.take(enclave, { instanceId: 'i-right' })).toEqual(open);
    expect(await store.peek(enclave, { instanceId: 'i-right' })).toBe('already_taken');
    expect(await store.peek(enclave, { instanceId: 'i-wrong' })).toBe('wrong_instance');

    const late = freshEnclave();
    await store.put(late, { ...wait, expiresAt: inSeconds(60) });
    clock = inSeconds(60);
    expect(await store.peek(late, { instanceId: 'i-right' })).toBe('expired');
  });

  it('lets any caller take a wait that records no instance', async () => {
    const enclave = freshEnclave();
    await store.put(enclave, { taskToken: token('any'), executionArn: EXEC_1, expiresAt: inSeconds(600) });
    expect(await store.take(enclave, { instanceId: 'i-whoever' })).toMatchObject({ taskToken: token('any') });
  });

  it('hands the token to exactly one of 20 concurrent takers', async () => {
    const enclave = freshEnclave();
    await store.put(enclave, {
      taskToken: token('race'),
      executionArn: EXEC_1,
      instanceId: 'i-race',
      expiresAt: inSeconds(600),
    });
    // The SDK's HTTP agent opens parallel connections, so the 20 updates interleave inside dynalite.
    const outcomes = await Promise.all(
      Array.from({ length: 20 }, () => store.take(enclave, { instanceId: 'i-race' })),
    );

    const tokens = outcomes.filter((o) => typeof o === 'object');
    expect(tokens).toEqual([{ taskToken: token('race'), executionArn: EXEC_1 }]);
    expect(outcomes.filter((o) => o === 'already_taken')).toHaveLength(19);
  });

  it('lets a newer wait supersede an older one: only the newest token is ever handed out', async () => {
    const enclave = freshEnclave();
    await store.put(enclave, {
      taskToken: token('old'),
      executionArn: EXEC_1,
      instanceId: 'i-old',
      expiresAt: inSeconds(600),
    });
    clock = inSeconds(10);
    await store.put(enclave, {
      taskToken: token('new'),
      executionArn: EXEC_2,
      instanceId: 'i-new',
      expiresAt: inSeconds(600),
    });

    // The old instance's late callback no longer matches the pending wait.
    expect(await store.take(enclave, { instanceId: 'i-old' })).toBe('wrong_instance');
    expect(await store.take(enclave, { instanceId: 'i-new' })).toEqual({
      taskToken: token('new'),
      executionArn: EXEC_2,
    });
    expect(await store.take(enclave, { instanceId: 'i-new' })).toBe('already_taken');

    // After a take, a new wait (e.g. resume re-attesting) is pending again.
    await store.put(enclave, { taskToken: token('resume'), executionArn: EXEC_2, expiresAt: inSeconds(600) });
    expect(await store.take(enclave)).toMatchObject({ taskToken: token('resume') });
  });

  it('never revives a taken token when the same put is retried or replayed', async () => {
    const enclave = freshEnclave();
    const wait = { taskToken: token('once'), executionArn: EXEC_1, expiresAt: inSeconds(600) };
    await store.put(enclave, wait);
    await store.put(enclave, wait); // an untaken duplicate: a no-op, still takeable once
    expect(await store.take(enclave)).toMatchObject({ taskToken: token('once') });

    await store.put(enclave, { ...wait, expiresAt: inSeconds(900) });
    expect(await store.take(enclave)).toBe('already_taken');
    const item = await readItem(enclave);
    expect(item?.[TASK_TOKEN_TABLE.timeToLiveAttribute]).toEqual({
      N: String(Math.floor(T0.getTime() / 1000) + 600),
    });
  });

  it('shares the table with attestation nonces without either disturbing the other', async () => {
    const enclave = freshEnclave();
    const nonces = new DynamoDbNonceStore({
      tableName: TABLE,
      client: sdkCalls(local.client),
      now: () => clock,
    });

    const { nonce } = await nonces.issue({ enclaveId: enclave, executionId: EXEC_1 }, 300);
    await store.put(enclave, { taskToken: token('both'), executionArn: EXEC_1, expiresAt: inSeconds(300) });

    expect(await store.take(enclave)).toMatchObject({ taskToken: token('both') });
    expect(await nonces.consume(enclave, nonce)).toBe('consumed');
    expect(await nonces.consume(enclave, nonce)).toBe('already_consumed');
    expect(await store.take(enclave)).toBe('already_taken');
  });

  it('accepts tokens of 1..1024 characters and refuses malformed waits', async () => {
    const enclave = freshEnclave();
    const base = { executionArn: EXEC_1, expiresAt: inSeconds(60) };
    await store.put(enclave, { ...base, taskToken: 't'.repeat(MAX_TASK_TOKEN_LENGTH) });
    expect(await store.take(enclave)).toMatchObject({ taskToken: 't'.repeat(MAX_TASK_TOKEN_LENGTH) });
    await store.put(enclave, { ...base, taskToken: 't' });
    expect(await store.take(enclave)).toMatchObject({ taskToken: 't' });

    await expect(store.put(enclave, { ...base, taskToken: '' })).rejects.toThrow(RangeError);
    await expect(
      store.put(enclave, { ...base, taskToken: 't'.repeat(MAX_TASK_TOKEN_LENGTH + 1) }),
    ).rejects.toThrow(RangeError);
    await expect(store.put('', { ...base, taskToken: 't2' })).rejects.toThrow(TypeError);
    await expect(store.put(enclave, { ...base, taskToken: 't2', executionArn: '' })).rejects.toThrow(
      TypeError,
    );
    await expect(store.put(enclave, { ...base, taskToken: 't2', instanceId: '' })).rejects.toThrow(TypeError);
    for (const expiresAt of [
      clock,
      new Date(clock.getTime() - 1000),
      inSeconds(MAX_TASK_WAIT_SECONDS + 1),
      new Date(Number.NaN),
    ]) {
      await expect(store.put(enclave, { ...base, taskToken: 't2', expiresAt })).rejects.toThrow(RangeError);
    }
    // Nothing of the refused puts was stored.
    expect((await readItem(enclave))?.taskToken).toEqual({ S: 't' });
  });

  it('recognises its own take when the SDK retries after a lost response', async () => {
    const enclave = freshEnclave();
    await store.put(enclave, { taskToken: token('retry'), executionArn: EXEC_1, expiresAt: inSeconds(600) });
    const client = clientDroppingFirstUpdateResponse(local.endpoint);
    const retrying = new DynamoDbTaskTokenStore({
      tableName: TABLE,
      client: sdkCalls(client),
      now: () => clock,
    });

    // The first attempt takes the token, its answer is lost, the SDK's retry fails the condition.
    expect(await retrying.take(enclave)).toEqual({ taskToken: token('retry'), executionArn: EXEC_1 });
    expect(await retrying.take(enclave)).toBe('already_taken');
    client.destroy();
  });
});

describe('DynamoDbTaskTokenStore faults (aws-sdk-client-mock)', () => {
  it('wraps throttling and server errors as transient TaskTokenStoreErrors, client errors as permanent', async () => {
    const client = new DynamoDBClient({ region: 'eu-central-1' });
    const mock = mockClient(client);
    const faulty = new DynamoDbTaskTokenStore({ tableName: TABLE, client: sdkCalls(client), now: () => T0 });

    mock.on(UpdateItemCommand).rejectsOnce(dynamoDbServiceError('ThrottlingException', 'client', 400));
    const throttled = await faulty.take('enc-1').catch((e: unknown) => e);
    expect(throttled).toBeInstanceOf(TaskTokenStoreError);
    expect(throttled).toMatchObject({ transient: true, message: expect.stringContaining('Throttling') });

    mock.reset();
    mock.on(PutItemCommand).rejects(dynamoDbServiceError('InternalServerError', 'server', 500));
    await expect(
      faulty.put('enc-1', {
        taskToken: 't',
        executionArn: EXEC_1,
        expiresAt: new Date(T0.getTime() + 60_000),
      }),
    ).rejects.toMatchObject({ name: 'TaskTokenStoreError', transient: true });

    mock.reset();
    mock.on(UpdateItemCommand).rejects(dynamoDbServiceError('ResourceNotFoundException', 'client', 400));
    await expect(faulty.take('enc-1')).rejects.toMatchObject({
      name: 'TaskTokenStoreError',
      transient: false,
    });

    mock.reset();
    mock
      .on(GetItemCommand)
      .rejectsOnce(dynamoDbServiceError('ProvisionedThroughputExceededException', 'client', 400));
    await expect(faulty.peek('enc-1')).rejects.toMatchObject({
      name: 'TaskTokenStoreError',
      transient: true,
    });
    mock.restore();
  });
});
