import {
  type AttributeValue,
  ConditionalCheckFailedException,
  DynamoDBClient,
  GetItemCommand,
  UpdateItemCommand,
} from '@aws-sdk/client-dynamodb';
import type { Doorbell, DoorbellState, ExpiryMark, JobMark, OutboxDrainMark } from './doorbell.ts';

/**
 * The doorbell table's shape, for the CDK construct that creates it and the local stack that mirrors it: a
 * string partition key and one item, {@link DOORBELL_TABLE.itemKey}. IAM grants name that key
 * (`dynamodb:LeadingKeys`), so a grant reaches this item only.
 */
export const DOORBELL_TABLE = {
  partitionKey: 'pk',
  partitionKeyType: 'S',
  itemKey: 'doorbell',
} as const;

/**
 * The ring: `UpdateItem ADD rings 1` on the doorbell item, the request the SDK client sends here and the
 * request functions send signed by hand (shared/events/signed-doorbell-ring.ts), in DynamoDB's JSON shape.
 */
export function ringRequest(tableName: string) {
  return {
    TableName: tableName,
    Key: { [DOORBELL_TABLE.partitionKey]: { S: DOORBELL_TABLE.itemKey } },
    UpdateExpression: 'ADD #rings :one',
    ExpressionAttributeNames: { '#rings': 'rings' },
    ExpressionAttributeValues: { ':one': { N: '1' } },
  };
}

/** The item's attributes: the counter, and each job's mark (numbers and ISO-8601 strings). */
const ATTR = {
  rings: 'rings',
  drainedRings: 'outboxDrainedRings',
  drainedAt: 'outboxDrainedAt',
  drainFailedAt: 'outboxFailedAt',
  checkpointRings: 'checkpointRings',
  checkpointAt: 'checkpointAt',
  expiryRings: 'expiryRings',
  expiryAt: 'expiryAt',
  expiryDeadline: 'expiryDeadline',
} as const;

/** Options of {@link DynamoDbDoorbell}. */
export interface DynamoDbDoorbellOptions {
  /** The doorbell table, shaped as {@link DOORBELL_TABLE} (environment variable `DOORBELL_TABLE_NAME`). */
  readonly tableName: string;
  /** A client built once per cold start (or pointed at dynalite); a default client is created otherwise. */
  readonly client?: DynamoDBClient;
}

/**
 * {@link Doorbell} on one DynamoDB item. A ring is `UpdateItem ADD rings 1` (atomic, so concurrent rings
 * all count); a read is a strongly consistent `GetItem`, so a job never reads a counter older than a ring
 * that already returned. Marks are `UpdateItem SET` of the job's own attributes only, so jobs and rings
 * never overwrite one another. One item takes far more than the API's write rate (1,000 writes a second).
 *
 * @example
 * const doorbell = new DynamoDbDoorbell({ tableName: config.DOORBELL_TABLE_NAME, client }); // module scope
 * const db = ringingDatabase(dataApiDatabase, doorbell);
 */
export class DynamoDbDoorbell implements Doorbell {
  private readonly client: DynamoDBClient;
  private readonly tableName: string;
  private readonly key: Record<string, AttributeValue>;

  constructor(options: DynamoDbDoorbellOptions) {
    if (!options.tableName) throw new TypeError('DynamoDbDoorbell needs a tableName');
    this.client = options.client ?? new DynamoDBClient({});
    this.tableName = options.tableName;
    this.key = { [DOORBELL_TABLE.partitionKey]: { S: DOORBELL_TABLE.itemKey } };
  }

  async ring(): Promise<void> {
    await this.client.send(new UpdateItemCommand(ringRequest(this.tableName)));
  }

  async read(): Promise<DoorbellState> {
    const { Item: item = {} } = await this.client.send(
      new GetItemCommand({ TableName: this.tableName, Key: this.key, ConsistentRead: true }),
    );
    const n = (name: string) => (item[name]?.N === undefined ? undefined : Number(item[name].N));
    const s = (name: string) => item[name]?.S;
    const mark = (rings: string, at: string): JobMark | undefined => {
      const r = n(rings);
      const a = s(at);
      return r === undefined || a === undefined ? undefined : { rings: r, at: a };
    };
    const drained = mark(ATTR.drainedRings, ATTR.drainedAt);
    const failedAt = s(ATTR.drainFailedAt);
    const checkpoint = mark(ATTR.checkpointRings, ATTR.checkpointAt);
    const expiry = mark(ATTR.expiryRings, ATTR.expiryAt);
    return {
      rings: n(ATTR.rings) ?? 0,
      outbox: { ...(drained ? { drained } : {}), ...(failedAt ? { failedAt } : {}) },
      ...(checkpoint ? { checkpoint } : {}),
      ...(expiry ? { expiry: { ...expiry, nextDeadline: s(ATTR.expiryDeadline) ?? null } } : {}),
    };
  }

  async recordDrain(drain: OutboxDrainMark): Promise<void> {
    if ('failedAt' in drain) {
      await this.set({ [ATTR.drainFailedAt]: { S: drain.failedAt } });
      return;
    }
    try {
      // A drain clears a failure only if it started after the failure was recorded: one that started
      // earlier may have skipped the failed rows while the failing run held their locks.
      await this.set(
        { [ATTR.drainedRings]: { N: String(drain.rings) }, [ATTR.drainedAt]: { S: drain.at } },
        { remove: ATTR.drainFailedAt, unlessNewerThan: drain.at },
      );
    } catch (error) {
      if (!(error instanceof ConditionalCheckFailedException)) throw error;
      // A newer failure stands: the next run drains again, which is what it asks for.
    }
  }

  async recordCheckpoint(mark: JobMark): Promise<void> {
    await this.set({
      [ATTR.checkpointRings]: { N: String(mark.rings) },
      [ATTR.checkpointAt]: { S: mark.at },
    });
  }

  async recordExpiry(mark: ExpiryMark): Promise<void> {
    await this.set(
      { [ATTR.expiryRings]: { N: String(mark.rings) }, [ATTR.expiryAt]: { S: mark.at } },
      mark.nextDeadline === null
        ? { remove: ATTR.expiryDeadline }
        : { extra: { [ATTR.expiryDeadline]: { S: mark.nextDeadline } } },
    );
  }

  /** `SET` of `values` (and `extra`), `REMOVE` of `remove` only if it is absent or not newer than `unlessNewerThan`. */
  private async set(
    values: Record<string, AttributeValue>,
    options: { remove?: string; unlessNewerThan?: string; extra?: Record<string, AttributeValue> } = {},
  ): Promise<void> {
    const all = { ...values, ...options.extra };
    const names: Record<string, string> = {};
    const attributeValues: Record<string, AttributeValue> = {};
    const sets = Object.entries(all).map(([name, value], i) => {
      names[`#a${i}`] = name;
      attributeValues[`:v${i}`] = value;
      return `#a${i} = :v${i}`;
    });
    let expression = `SET ${sets.join(', ')}`;
    let condition: string | undefined;
    if (options.remove) {
      names['#r'] = options.remove;
      expression += ' REMOVE #r';
      if (options.unlessNewerThan !== undefined) {
        attributeValues[':since'] = { S: options.unlessNewerThan };
        condition = 'attribute_not_exists(#r) OR #r < :since';
      }
    }
    await this.client.send(
      new UpdateItemCommand({
        TableName: this.tableName,
        Key: this.key,
        UpdateExpression: expression,
        ExpressionAttributeNames: names,
        ExpressionAttributeValues: attributeValues,
        ...(condition ? { ConditionExpression: condition } : {}),
      }),
    );
  }
}
