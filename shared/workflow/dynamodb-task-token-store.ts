import { randomUUID } from 'node:crypto';
import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import { SignedJsonClient } from '../runtime/signed-json-client.ts';
import { type DynamoDbCalls, type ItemOutput, isConditionalCheckFailed } from './dynamodb-calls.ts';
import { describeDynamoDbFailure, epochSeconds } from './dynamodb-errors.ts';
import { NONCE_TABLE } from './dynamodb-nonce-store.ts';
import {
  MAX_INSTANCE_ID_LENGTH,
  MAX_TASK_TOKEN_LENGTH,
  MAX_TASK_WAIT_SECONDS,
  type PendingTaskWait,
  type TaskTokenCaller,
  type TaskTokenStore,
  TaskTokenStoreError,
  type TaskTokenTake,
} from './task-token-store.ts';

/**
 * The task-token table's shape: exactly the nonce table's ({@link NONCE_TABLE}), so one table holds both
 * kinds of short-lived workflow state, told apart by the partition key's prefix (`nonce#…`, `task#…`). A
 * string partition key and the TTL attribute (epoch seconds); no sort key, no indexes, never scanned.
 */
export const TASK_TOKEN_TABLE = NONCE_TABLE;

/** Prefix of a task-token item's partition key: `task#<enclaveId>`, one item per enclave. */
export const TASK_TOKEN_KEY_PREFIX = 'task#';

/** DynamoDB's limit on a partition key value, in UTF-8 bytes. */
const MAX_PARTITION_KEY_BYTES = 2048;

/** ARNs are at most 2048 characters. */
const MAX_EXECUTION_ARN_LENGTH = 2048;

/** Attribute names of a task-token item (besides the key and the TTL attribute). */
const ATTR = {
  enclaveId: 'enclaveId',
  taskToken: 'taskToken',
  executionArn: 'executionArn',
  instanceId: 'instanceId',
  putAt: 'putAt',
  takenAt: 'takenAt',
  /** A random id per `take` call, so the SDK's retry of an applied update is recognised as ours. */
  takeId: 'takeId',
} as const;

/** Options of {@link DynamoDbTaskTokenStore}. */
export interface DynamoDbTaskTokenStoreOptions {
  /** The table, shaped as {@link TASK_TOKEN_TABLE}; may be the nonce table itself. */
  readonly tableName: string;
  /**
   * How it reaches DynamoDB, built once per cold start: by default a signed JSON client in the function's
   * region (no DynamoDB client module in the bundle); the local stack's points at dynalite.
   */
  readonly client?: DynamoDbCalls;
  /** The clock; tests inject one to reach expiry without waiting. */
  readonly now?: () => Date;
}

/**
 * {@link TaskTokenStore} on a DynamoDB table with TTL. One item per enclave, keyed `task#<enclaveId>`.
 *
 * - `put` is one `PutItem` that replaces the enclave's item unless it already holds the same token
 *   (`attribute_not_exists(pk) OR taskToken <> :taskToken`); a failed condition is that no-op, so a retried
 *   or replayed put can never revive a token that was taken.
 * - `take` is one conditional `UpdateItem` that sets `takenAt` only if the item holds a token, is untaken,
 *   unexpired and bound to the caller's instance (or to none). DynamoDB applies a conditional write
 *   atomically per item, so of concurrent takers exactly one succeeds; `ReturnValues: ALL_OLD` hands it the
 *   token in the same round trip. On failure, `ReturnValuesOnConditionCheckFailure: ALL_OLD` returns the
 *   item as it was, so the refusal is classified without a second read (which could race with writers).
 * - Expiry is checked in the condition, not left to TTL: TTL deletion is lazy (typically within 48 h).
 *
 * @example
 * const client = new DynamoDBClient({}); // module scope
 * const tokens = new DynamoDbTaskTokenStore({ tableName: config.NONCE_TABLE_NAME, client });
 * // WaitForAttestation (with $$.Task.Token in its payload):
 * await tokens.put(enclaveId, { taskToken, executionArn, instanceId, expiresAt });
 * // The attestation route, for the authenticated parent instance:
 * const taken = await tokens.take(enclaveId, { instanceId: callerInstanceId });
 * if (typeof taken === 'string') refuse(taken); else await sfn.send(new SendTaskSuccessCommand({ … }));
 */
export class DynamoDbTaskTokenStore implements TaskTokenStore {
  private readonly client: DynamoDbCalls;
  private readonly tableName: string;
  private readonly now: () => Date;

  constructor(options: DynamoDbTaskTokenStoreOptions) {
    if (!options.tableName) throw new TypeError('DynamoDbTaskTokenStore needs a tableName');
    this.client = options.client ?? new SignedJsonClient({ service: 'dynamodb' });
    this.tableName = options.tableName;
    this.now = options.now ?? (() => new Date());
  }

  async put(enclaveId: string, wait: PendingTaskWait): Promise<void> {
    if (!isValidEnclaveId(enclaveId)) throw new TypeError('a task wait needs a valid enclaveId');
    const { taskToken, executionArn, instanceId, expiresAt } = wait;
    if (typeof taskToken !== 'string' || taskToken.length < 1 || taskToken.length > MAX_TASK_TOKEN_LENGTH) {
      throw new RangeError(`taskToken must have 1..${MAX_TASK_TOKEN_LENGTH} characters`);
    }
    if (
      typeof executionArn !== 'string' ||
      executionArn.length < 1 ||
      executionArn.length > MAX_EXECUTION_ARN_LENGTH
    ) {
      throw new TypeError('a task wait needs an executionArn');
    }
    if (instanceId !== undefined && !isValidInstanceId(instanceId)) {
      throw new TypeError(`instanceId must have 1..${MAX_INSTANCE_ID_LENGTH} characters when given`);
    }
    if (!(expiresAt instanceof Date) || Number.isNaN(expiresAt.getTime())) {
      throw new RangeError('expiresAt must be a valid Date');
    }
    const now = this.now();
    const nowSeconds = epochSeconds(now);
    // Whole seconds, rounded down: the wait is never accepted later than asked.
    const expiresAtSeconds = epochSeconds(expiresAt);
    if (expiresAtSeconds <= nowSeconds || expiresAtSeconds > nowSeconds + MAX_TASK_WAIT_SECONDS) {
      throw new RangeError(
        `expiresAt must lie within (now, now + ${MAX_TASK_WAIT_SECONDS} s]: ${expiresAt.toISOString()}`,
      );
    }
    const item: Record<string, AttributeValue> = {
      [TASK_TOKEN_TABLE.partitionKey]: { S: taskTokenKey(enclaveId) },
      [ATTR.enclaveId]: { S: enclaveId },
      [ATTR.taskToken]: { S: taskToken },
      [ATTR.executionArn]: { S: executionArn },
      [ATTR.putAt]: { S: now.toISOString() },
      [TASK_TOKEN_TABLE.timeToLiveAttribute]: { N: String(expiresAtSeconds) },
    };
    if (instanceId !== undefined) item[ATTR.instanceId] = { S: instanceId };
    try {
      await this.client.call('PutItem', {
        TableName: this.tableName,
        Item: item,
        ConditionExpression: 'attribute_not_exists(#pk) OR #taskToken <> :taskToken',
        ExpressionAttributeNames: { '#pk': TASK_TOKEN_TABLE.partitionKey, '#taskToken': ATTR.taskToken },
        ExpressionAttributeValues: { ':taskToken': { S: taskToken } },
      });
    } catch (error) {
      // The same token is stored already (a retried or replayed put): leave it, taken or not, as it is.
      if (isConditionalCheckFailed(error)) return;
      throw toTaskTokenStoreError('PutItem', error);
    }
  }

  async discard(enclaveId: string): Promise<void> {
    if (!isValidEnclaveId(enclaveId)) throw new TypeError('discard needs a valid enclaveId');
    try {
      await this.client.call('DeleteItem', {
        TableName: this.tableName,
        Key: { [TASK_TOKEN_TABLE.partitionKey]: { S: taskTokenKey(enclaveId) } },
      });
    } catch (error) {
      throw toTaskTokenStoreError('DeleteItem', error);
    }
  }

  async release(enclaveId: string, taskToken: string): Promise<void> {
    if (!isValidEnclaveId(enclaveId)) throw new TypeError('release needs a valid enclaveId');
    try {
      await this.client.call('UpdateItem', {
        TableName: this.tableName,
        Key: { [TASK_TOKEN_TABLE.partitionKey]: { S: taskTokenKey(enclaveId) } },
        UpdateExpression: 'REMOVE #takenAt, #takeId',
        ConditionExpression: '#taskToken = :taskToken AND attribute_exists(#takenAt)',
        ExpressionAttributeNames: {
          '#taskToken': ATTR.taskToken,
          '#takenAt': ATTR.takenAt,
          '#takeId': ATTR.takeId,
        },
        ExpressionAttributeValues: { ':taskToken': { S: taskToken } },
      });
    } catch (error) {
      // Not taken, or a newer wait replaced it: nothing to hand back.
      if (isConditionalCheckFailed(error)) return;
      throw toTaskTokenStoreError('UpdateItem', error);
    }
  }

  async peek(enclaveId: string, caller: TaskTokenCaller = {}): Promise<TaskTokenTake> {
    if (!isValidEnclaveId(enclaveId)) return 'none';
    const { instanceId } = caller;
    if (instanceId !== undefined && !isValidInstanceId(instanceId)) return 'wrong_instance';
    try {
      const { Item } = (await this.client.call('GetItem', {
        TableName: this.tableName,
        Key: { [TASK_TOKEN_TABLE.partitionKey]: { S: taskTokenKey(enclaveId) } },
        ConsistentRead: true,
      })) as ItemOutput;
      return judgeWait(Item, instanceId, epochSeconds(this.now())) ?? tokenOf(Item) ?? 'none';
    } catch (error) {
      throw toTaskTokenStoreError('GetItem', error);
    }
  }

  async take(enclaveId: string, caller: TaskTokenCaller = {}): Promise<TaskTokenTake> {
    // Untrusted input: nothing was ever put under a malformed key, and a malformed identity is refused.
    if (!isValidEnclaveId(enclaveId)) return 'none';
    const { instanceId } = caller;
    if (instanceId !== undefined && !isValidInstanceId(instanceId)) return 'wrong_instance';
    const now = this.now();
    const nowSeconds = epochSeconds(now);
    const takeId = randomUUID();
    const values: Record<string, AttributeValue> = {
      ':takenAt': { S: now.toISOString() },
      ':takeId': { S: takeId },
      ':now': { N: String(nowSeconds) },
    };
    // A wait bound to an instance only goes to that instance; a caller presenting none gets none of those.
    let instanceClause = 'attribute_not_exists(#instanceId)';
    if (instanceId !== undefined) {
      instanceClause = '(attribute_not_exists(#instanceId) OR #instanceId = :instanceId)';
      values[':instanceId'] = { S: instanceId };
    }
    try {
      const { Attributes } = (await this.client.call('UpdateItem', {
        TableName: this.tableName,
        Key: { [TASK_TOKEN_TABLE.partitionKey]: { S: taskTokenKey(enclaveId) } },
        UpdateExpression: 'SET #takenAt = :takenAt, #takeId = :takeId',
        // expiresAt is whole seconds and nowSeconds is rounded down, so `>` means "now < expiresAt".
        ConditionExpression: `attribute_exists(#taskToken) AND attribute_exists(#executionArn) AND attribute_not_exists(#takenAt) AND #expiresAt > :now AND ${instanceClause}`,
        ExpressionAttributeNames: {
          '#taskToken': ATTR.taskToken,
          '#executionArn': ATTR.executionArn,
          '#instanceId': ATTR.instanceId,
          '#takenAt': ATTR.takenAt,
          '#takeId': ATTR.takeId,
          '#expiresAt': TASK_TOKEN_TABLE.timeToLiveAttribute,
        },
        ExpressionAttributeValues: values,
        ReturnValues: 'ALL_OLD',
        ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
      })) as ItemOutput;
      const taken = tokenOf(Attributes);
      // The condition required both attributes, so this only fails for a non-string value: malformed.
      if (!taken) throw new TaskTokenStoreError('task-token item without a string token or execution ARN');
      return taken;
    } catch (error) {
      if (isConditionalCheckFailed(error)) {
        return classifyTakeRefusal(error.Item, instanceId, takeId, nowSeconds);
      }
      if (error instanceof TaskTokenStoreError) throw error;
      throw toTaskTokenStoreError('UpdateItem', error);
    }
  }
}

/**
 * Why the take condition failed, from the item as it was when it failed (`undefined`: no item).
 * Exported for unit tests; the order of the checks is the precedence documented on the port.
 */
export function classifyTakeRefusal(
  item: Record<string, AttributeValue> | undefined,
  instanceId: string | undefined,
  takeId: string,
  nowSeconds: number,
): TaskTokenTake {
  const taken = tokenOf(item);
  if (!item || !taken) return 'none';
  // Our own update landed but its response was lost, and the SDK retried: this call did take it.
  const takenBy = item[ATTR.takeId]?.S;
  if (takenBy !== undefined && takenBy === takeId) return taken;
  // Every clause held in the item we were shown, yet the condition failed: a malformed item. Refuse.
  return judgeWait(item, instanceId, nowSeconds) ?? 'none';
}

/**
 * Why `item` is not open to the caller now, in the port's precedence; `undefined` when it is (a token, for
 * this caller, untaken and unexpired).
 */
function judgeWait(
  item: Record<string, AttributeValue> | undefined,
  instanceId: string | undefined,
  nowSeconds: number,
): Exclude<TaskTokenTake, object> | undefined {
  if (!item || !tokenOf(item)) return 'none';
  const boundTo = item[ATTR.instanceId];
  if (boundTo !== undefined && boundTo.S !== instanceId) return 'wrong_instance';
  if (item[ATTR.takenAt] !== undefined) return 'already_taken';
  const expiresAt = Number(item[TASK_TOKEN_TABLE.timeToLiveAttribute]?.N);
  if (!(expiresAt > nowSeconds)) return 'expired';
  return undefined;
}

/** The partition key of an enclave's pending wait. */
export function taskTokenKey(enclaveId: string): string {
  return `${TASK_TOKEN_KEY_PREFIX}${enclaveId}`;
}

function tokenOf(item: Record<string, AttributeValue> | undefined) {
  const taskToken = item?.[ATTR.taskToken]?.S;
  const executionArn = item?.[ATTR.executionArn]?.S;
  return taskToken !== undefined && executionArn !== undefined ? { taskToken, executionArn } : undefined;
}

function isValidEnclaveId(enclaveId: unknown): enclaveId is string {
  return (
    typeof enclaveId === 'string' &&
    enclaveId.length > 0 &&
    Buffer.byteLength(taskTokenKey(enclaveId), 'utf8') <= MAX_PARTITION_KEY_BYTES
  );
}

function isValidInstanceId(instanceId: unknown): instanceId is string {
  return (
    typeof instanceId === 'string' && instanceId.length > 0 && instanceId.length <= MAX_INSTANCE_ID_LENGTH
  );
}

function toTaskTokenStoreError(operation: string, error: unknown): TaskTokenStoreError {
  const { name, transient } = describeDynamoDbFailure(error);
  return new TaskTokenStoreError(`DynamoDB ${operation} failed: ${name}`, { cause: error, transient });
}
