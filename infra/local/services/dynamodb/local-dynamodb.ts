import type { Server } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import {
  CreateTableCommand,
  DescribeTableCommand,
  DynamoDBClient,
  ResourceNotFoundException,
} from '@aws-sdk/client-dynamodb';
import { DOORBELL_TABLE } from '../../../../shared/events/dynamodb-doorbell.ts';
import { NONCE_TABLE } from '../../../../shared/workflow/dynamodb-nonce-store.ts';
import type { AuthorizationCheck } from '../iam/iam-authorizer.ts';

/** A DynamoDB endpoint served in-process by dynalite, with a client pointed at it. */
export interface LocalDynamoDb {
  /** `http://127.0.0.1:<port>`: what `DYNAMODB_ENDPOINT` is set to for other local processes. */
  readonly endpoint: string;
  /** The real SDK client, pointed at {@link endpoint} with dummy credentials. */
  readonly client: DynamoDBClient;
  /**
   * Creates a table shaped like the CDK's nonce table ({@link NONCE_TABLE}) and waits until it is ACTIVE.
   * Without TTL: dynalite does not implement `UpdateTimeToLive` (its `DescribeTimeToLive` always answers
   * DISABLED) and never deletes expired items locally, which the store tolerates because it checks expiry
   * itself on every consumption, exactly as it must in AWS, where TTL deletion lags by up to ~48 h.
   */
  createNonceTable(name: string): Promise<void>;
  /** Creates a table shaped like the CDK's doorbell table (`DOORBELL_TABLE`) and waits until it is ACTIVE. */
  createDoorbellTable(name: string): Promise<void>;
  /**
   * Authorises every command of {@link client} first (the local IAM stand-in): `authorize` gets the checks
   * of {@link dynamoDbChecks} and answers the denial's message, and a denied command fails as DynamoDB fails
   * it (`AccessDeniedException`, 400) before anything reaches the table.
   */
  authorizeWith(authorize: (checks: AuthorizationCheck[]) => Promise<string | undefined>): void;
  /**
   * The same authorisation for a request sent without {@link client} (the signed doorbell ring): resolves
   * when allowed (or when nothing was installed), fails as DynamoDB fails a denied call.
   */
  authorizeRequest(commandName: string, input: Record<string, unknown>): Promise<void>;
  /** Destroys the client and stops the server (its in-memory data is gone). */
  close(): Promise<void>;
}

/**
 * The IAM checks DynamoDB makes for an item operation: `dynamodb:<Operation>` on the table's ARN, with
 * `dynamodb:LeadingKeys`, the partition key values the request names (Service Authorization Reference for
 * DynamoDB; "Using IAM policy conditions for fine-grained access control" in the DynamoDB developer guide).
 */
export function dynamoDbChecks(
  commandName: string,
  input: Record<string, unknown>,
  region: string,
  account: string,
): AuthorizationCheck[] {
  const action = `dynamodb:${commandName.replace(/Command$/, '')}`;
  const table = `arn:aws:dynamodb:${region}:${account}:table/${String(input.TableName)}`;
  const key = (input.Key ?? input.Item) as Record<string, { S?: string }> | undefined;
  const leading = key?.[NONCE_TABLE.partitionKey]?.S;
  return [
    { action, resource: table, context: leading === undefined ? {} : { 'dynamodb:LeadingKeys': [leading] } },
  ];
}

/** The subset of dynalite's factory that is used here (the package ships no types). */
type Dynalite = (options: {
  createTableMs?: number;
  deleteTableMs?: number;
  updateTableMs?: number;
  path?: string;
}) => Server;

const require = createRequire(import.meta.url);

/**
 * Starts dynalite (DynamoDB's JSON protocol over LevelDB, in memory) on a free loopback port. Tables become
 * ACTIVE at once (`createTableMs: 0`), so tests do not wait out the CREATING state.
 *
 * dynalite 4 predates `ReturnValuesOnConditionCheckFailure`, which the nonce store relies on; this module
 * teaches it that parameter first (see {@link supportReturnValuesOnConditionCheckFailure}).
 *
 * @example
 * const local = await startLocalDynamoDb();
 * await local.createNonceTable('nonces');
 * const nonces = new DynamoDbNonceStore({ tableName: 'nonces', client: sdkCalls(local.client) }); // test/support
 * // …
 * await local.close();
 */
export async function startLocalDynamoDb(): Promise<LocalDynamoDb> {
  supportReturnValuesOnConditionCheckFailure();
  const dynalite = require('dynalite') as Dynalite;
  const server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const endpoint = `http://127.0.0.1:${port}`;
  const client = new DynamoDBClient({
    endpoint,
    region: 'eu-central-1',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
  });

  let installed: ((checks: AuthorizationCheck[]) => Promise<string | undefined>) | undefined;
  const authorizeRequest = async (commandName: string, input: Record<string, unknown>) => {
    if (!installed) return;
    const denied = await installed(dynamoDbChecks(commandName, input, 'eu-central-1', '000000000000'));
    if (denied !== undefined) {
      throw Object.assign(new Error(denied), {
        name: 'AccessDeniedException',
        $fault: 'client',
        $metadata: { httpStatusCode: 400 },
      });
    }
  };
  return {
    endpoint,
    client,
    authorizeWith(authorize) {
      installed = authorize;
      client.middlewareStack.add(
        (next, context) => async (args) => {
          await authorizeRequest(context.commandName ?? '', args.input as Record<string, unknown>);
          return next(args);
        },
        { step: 'initialize', name: 'localIamAuthorization' },
      );
    },
    authorizeRequest,
    createNonceTable: (name) => createKeyedTable(client, name, NONCE_TABLE),
    createDoorbellTable: (name) => createKeyedTable(client, name, DOORBELL_TABLE),
    async close() {
      client.destroy();
      await new Promise<void>((resolve, reject) =>
        server.close((error) => (error ? reject(error) : resolve())),
      );
    },
  };
}

/** A table with one string partition key and on-demand billing, ACTIVE when this resolves. */
async function createKeyedTable(
  client: DynamoDBClient,
  name: string,
  shape: { readonly partitionKey: string; readonly partitionKeyType: 'S' },
): Promise<void> {
  await client.send(
    new CreateTableCommand({
      TableName: name,
      AttributeDefinitions: [{ AttributeName: shape.partitionKey, AttributeType: shape.partitionKeyType }],
      KeySchema: [{ AttributeName: shape.partitionKey, KeyType: 'HASH' }],
      BillingMode: 'PAY_PER_REQUEST',
    }),
  );
  await waitUntilActive(client, name);
}

/** Even with `createTableMs: 0` the state flips on a timer, so a write right after CreateTable could race it. */
async function waitUntilActive(client: DynamoDBClient, name: string): Promise<void> {
  const deadline = Date.now() + 5_000;
  for (;;) {
    try {
      const { Table } = await client.send(new DescribeTableCommand({ TableName: name }));
      if (Table?.TableStatus === 'ACTIVE') return;
    } catch (error) {
      if (!(error instanceof ResourceNotFoundException)) throw error;
    }
    if (Date.now() > deadline) throw new Error(`local table ${name} did not become ACTIVE`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** dynalite's internals that the patch below touches (dynalite 4.0). */
interface DynaliteDb {
  checkConditional(data: Record<string, unknown>, existingItem: unknown): DynaliteError | null | undefined;
}
interface DynaliteError extends Error {
  body?: Record<string, unknown>;
}
interface DynaliteValidation {
  types: Record<string, unknown>;
}

let patched = false;

/**
 * Makes dynalite answer like DynamoDB (since mid-2023) to `ReturnValuesOnConditionCheckFailure: ALL_OLD`
 * on PutItem, UpdateItem and DeleteItem: a failed condition's `ConditionalCheckFailedException` carries the
 * item as it was (`Item`), read under the same per-key lock as the condition check, so the answer is
 * exactly what the service would give. Without this, dynalite strips the unknown parameter and the store
 * could not tell a replay from an unknown nonce.
 *
 * The patch goes into dynalite's shared module instances (the validators' parameter tables and
 * `db.checkConditional`), so it applies to every dynalite server in the process; it only adds the
 * service's behaviour for a parameter dynalite used to drop. It checks the internals it expects and fails
 * loudly if a dynalite upgrade moved them.
 */
function supportReturnValuesOnConditionCheckFailure(): void {
  if (patched) return;
  const db = require('dynalite/db/index.js') as DynaliteDb;
  const validations = ['putItem', 'updateItem', 'deleteItem'].map(
    (action) => require(`dynalite/validations/${action}.js`) as DynaliteValidation,
  );
  if (typeof db.checkConditional !== 'function' || validations.some((v) => typeof v.types !== 'object')) {
    throw new Error('dynalite internals changed: cannot add ReturnValuesOnConditionCheckFailure');
  }
  for (const validation of validations) {
    validation.types.ReturnValuesOnConditionCheckFailure = { type: 'String', enum: ['ALL_OLD', 'NONE'] };
  }
  const checkConditional = db.checkConditional;
  db.checkConditional = (data, existingItem) => {
    const error = checkConditional(data, existingItem);
    if (error?.body && existingItem && data.ReturnValuesOnConditionCheckFailure === 'ALL_OLD') {
      error.body = { ...error.body, Item: existingItem };
    }
    return error;
  };
  patched = true;
}
