import { randomBytes, randomUUID } from 'node:crypto';
import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import { SignedJsonClient } from '../runtime/signed-json-client.ts';
import { type DynamoDbCalls, isConditionalCheckFailed } from './dynamodb-calls.ts';
import { describeDynamoDbFailure, epochSeconds } from './dynamodb-errors.ts';
import {
  type IssuedNonce,
  MAX_NONCE_TTL_SECONDS,
  NONCE_BYTES,
  type NonceBinding,
  type NonceConsumption,
  type NonceStore,
  NonceStoreError,
} from './nonce-store.ts';

/**
 * The nonce table's shape, for the CDK construct that creates it and the local stack that mirrors it:
 * a string partition key and the TTL attribute (epoch seconds). No sort key, no indexes: every access is
 * by the full key, so the table is never scanned.
 *
 * @example
 * new dynamodb.TableV2(this, 'AttestationNonces', {
 *   partitionKey: { name: NONCE_TABLE.partitionKey, type: dynamodb.AttributeType.STRING },
 *   timeToLiveAttribute: NONCE_TABLE.timeToLiveAttribute,
 *   billing: dynamodb.Billing.onDemand(),
 * });
 */
export const NONCE_TABLE = {
  /** Partition key, a string `nonce#<64 lowercase hex digits>`. */
  partitionKey: 'pk',
  partitionKeyType: 'S',
  /** Number, epoch seconds: DynamoDB TTL deletes the item some time (up to ~48 h) after it. */
  timeToLiveAttribute: 'expiresAt',
} as const;

/** Attribute names of a nonce item (besides the key and the TTL attribute). */
const ATTR = {
  enclaveId: 'enclaveId',
  executionId: 'executionId',
  issuedAt: 'issuedAt',
  consumedAt: 'consumedAt',
  /** A random id per `consume` call, so the SDK's retry of an applied update is recognised as ours. */
  consumptionId: 'consumptionId',
} as const;

/** Fresh nonces tried when the conditional put finds the key taken (2^-256 odds, or an SDK retry). */
const ISSUE_ATTEMPTS = 3;

/** Options of {@link DynamoDbNonceStore}. */
export interface DynamoDbNonceStoreOptions {
  /** The nonce table, shaped as {@link NONCE_TABLE} (environment variable `NONCE_TABLE_NAME`). */
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
 * {@link NonceStore} on a DynamoDB table with TTL. One item per nonce, keyed by the nonce itself.
 *
 * - `issue` is a conditional `PutItem` (`attribute_not_exists(pk)`), so an existing nonce is never
 *   overwritten, and with it never re-bound or revived after consumption.
 * - `consume` is one conditional `UpdateItem` that sets `consumedAt` only if the item exists, is bound to
 *   the enclave, is unconsumed and unexpired. DynamoDB applies a conditional write atomically per item, so
 *   of concurrent consumers exactly one succeeds. On failure, `ReturnValuesOnConditionCheckFailure:
 *   ALL_OLD` returns the item as it was, so the refusal is classified without a second read (which could
 *   race with other writers).
 * - Expiry is checked in the condition, not left to TTL: TTL deletion is lazy (typically within 48 h), so an
 *   expired item may still be read for a long time after `expiresAt`.
 *
 * @example
 * const client = new DynamoDBClient({}); // module scope
 * const nonces = new DynamoDbNonceStore({ tableName: config.NONCE_TABLE_NAME, client });
 * const { nonce, expiresAt } = await nonces.issue({ enclaveId, executionId }, 900);
 * // … later, with the nonce read from the verified attestation document:
 * if ((await nonces.consume(enclaveId, documentNonce)) !== 'consumed') fail('nonce');
 */
export class DynamoDbNonceStore implements NonceStore {
  private readonly client: DynamoDbCalls;
  private readonly tableName: string;
  private readonly now: () => Date;

  constructor(options: DynamoDbNonceStoreOptions) {
    if (!options.tableName) throw new TypeError('DynamoDbNonceStore needs a tableName');
    this.client = options.client ?? new SignedJsonClient({ service: 'dynamodb' });
    this.tableName = options.tableName;
    this.now = options.now ?? (() => new Date());
  }

  async issue(binding: NonceBinding, ttlSeconds: number): Promise<IssuedNonce> {
    if (!Number.isSafeInteger(ttlSeconds) || ttlSeconds < 1 || ttlSeconds > MAX_NONCE_TTL_SECONDS) {
      throw new RangeError(`ttlSeconds must be a whole number in 1..${MAX_NONCE_TTL_SECONDS}: ${ttlSeconds}`);
    }
    if (!binding.enclaveId) throw new TypeError('a nonce must be bound to an enclaveId');
    const now = this.now();
    // Whole seconds, rounded down: the nonce lives at most ttlSeconds, and the TTL attribute is exact.
    const expiresAtSeconds = epochSeconds(now) + ttlSeconds;
    for (let attempt = 1; attempt <= ISSUE_ATTEMPTS; attempt++) {
      const nonce = new Uint8Array(randomBytes(NONCE_BYTES));
      const item: Record<string, AttributeValue> = {
        [NONCE_TABLE.partitionKey]: { S: nonceKey(nonce) },
        [ATTR.enclaveId]: { S: binding.enclaveId },
        [ATTR.issuedAt]: { S: now.toISOString() },
        [NONCE_TABLE.timeToLiveAttribute]: { N: String(expiresAtSeconds) },
      };
      if (binding.executionId) item[ATTR.executionId] = { S: binding.executionId };
      try {
        await this.client.call('PutItem', {
          TableName: this.tableName,
          Item: item,
          ConditionExpression: 'attribute_not_exists(#pk)',
          ExpressionAttributeNames: { '#pk': NONCE_TABLE.partitionKey },
        });
        return { nonce, expiresAt: new Date(expiresAtSeconds * 1000) };
      } catch (error) {
        // Taken: a 2^-256 collision, or the SDK retried a put that had landed (that item simply expires).
        if (isConditionalCheckFailed(error)) continue;
        throw toNonceStoreError('PutItem', error);
      }
    }
    throw new NonceStoreError(`no free nonce after ${ISSUE_ATTEMPTS} attempts`);
  }

  async consume(enclaveId: string, nonce: Uint8Array, named?: string): Promise<NonceConsumption> {
    const consumptionId = named ?? randomUUID();
    // Untrusted input: nothing of another length was ever issued, so there is nothing to look up.
    if (!enclaveId || !(nonce instanceof Uint8Array) || nonce.length !== NONCE_BYTES) return 'unknown';
    const now = this.now();
    const nowSeconds = epochSeconds(now);
    if (consumptionId.length < 1 || consumptionId.length > 2048) {
      throw new RangeError('consumptionId must have 1..2048 characters');
    }
    try {
      await this.client.call('UpdateItem', {
        TableName: this.tableName,
        Key: { [NONCE_TABLE.partitionKey]: { S: nonceKey(nonce) } },
        UpdateExpression: 'SET #consumedAt = :consumedAt, #consumptionId = :consumptionId',
        // expiresAt is whole seconds and nowSeconds is rounded down, so `>` means "now < expiresAt".
        ConditionExpression:
          'attribute_exists(#pk) AND #enclaveId = :enclaveId AND attribute_not_exists(#consumedAt) AND #expiresAt > :now',
        ExpressionAttributeNames: {
          '#pk': NONCE_TABLE.partitionKey,
          '#enclaveId': ATTR.enclaveId,
          '#consumedAt': ATTR.consumedAt,
          '#consumptionId': ATTR.consumptionId,
          '#expiresAt': NONCE_TABLE.timeToLiveAttribute,
        },
        ExpressionAttributeValues: {
          ':enclaveId': { S: enclaveId },
          ':consumedAt': { S: now.toISOString() },
          ':consumptionId': { S: consumptionId },
          ':now': { N: String(nowSeconds) },
        },
        ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
      });
      return 'consumed';
    } catch (error) {
      if (isConditionalCheckFailed(error)) {
        return classifyRefusal(error.Item, enclaveId, consumptionId, nowSeconds);
      }
      throw toNonceStoreError('UpdateItem', error);
    }
  }
}

/**
 * Why the consume condition failed, from the item as it was when it failed (`undefined`: no item).
 * Exported for unit tests; the order of the checks is the precedence documented on the port.
 */
export function classifyRefusal(
  item: Record<string, AttributeValue> | undefined,
  enclaveId: string,
  consumptionId: string,
  nowSeconds: number,
): NonceConsumption {
  if (!item || item[ATTR.enclaveId]?.S !== enclaveId) return 'unknown';
  const consumedBy = item[ATTR.consumptionId]?.S;
  // This consumption again: our own update landed but its response was lost (the SDK retried), or the
  // caller repeats a consumption it names (a retried workflow step).
  if (consumedBy !== undefined && consumedBy === consumptionId) return 'consumed';
  if (item[ATTR.consumedAt] !== undefined) return 'already_consumed';
  const expiresAt = Number(item[NONCE_TABLE.timeToLiveAttribute]?.N);
  if (!(expiresAt > nowSeconds)) return 'expired';
  // Every clause held in the item we were shown, yet the condition failed: a malformed item. Refuse.
  return 'unknown';
}

/** The partition key of a nonce: lowercase hex, so one nonce has exactly one key. */
export function nonceKey(nonce: Uint8Array): string {
  return `nonce#${Buffer.from(nonce.buffer, nonce.byteOffset, nonce.byteLength).toString('hex')}`;
}

function toNonceStoreError(operation: string, error: unknown): NonceStoreError {
  const { name, transient } = describeDynamoDbFailure(error);
  return new NonceStoreError(`DynamoDB ${operation} failed: ${name}`, { cause: error, transient });
}
