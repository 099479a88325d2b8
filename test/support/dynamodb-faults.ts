import {
  DeleteItemCommand,
  type DeleteItemCommandInput,
  DynamoDBClient,
  DynamoDBServiceException,
  GetItemCommand,
  type GetItemCommandInput,
  PutItemCommand,
  type PutItemCommandInput,
  UpdateItemCommand,
  type UpdateItemCommandInput,
} from '@aws-sdk/client-dynamodb';
import type { DynamoDbCalls } from '../../shared/workflow/dynamodb-calls.ts';

/**
 * The workflow stores' calls through the SDK client: for the tests that inject faults into the client
 * (its middleware, its retries, aws-sdk-client-mock). Deployed, the stores call through SignedJsonClient,
 * whose requests and answers test/integration/signed-workflow-stores.test.ts shows on the same dynalite.
 */
export function sdkCalls(client: DynamoDBClient): DynamoDbCalls {
  return {
    call: (operation, input) => {
      switch (operation) {
        case 'GetItem':
          return client.send(new GetItemCommand(input as GetItemCommandInput));
        case 'PutItem':
          return client.send(new PutItemCommand(input as PutItemCommandInput));
        case 'UpdateItem':
          return client.send(new UpdateItemCommand(input as UpdateItemCommandInput));
        case 'DeleteItem':
          return client.send(new DeleteItemCommand(input as DeleteItemCommandInput));
      }
    },
  };
}

/**
 * A client on `endpoint` whose first UpdateItem reaches the server and is applied, but whose answer is
 * replaced by a connection reset, which the SDK's standard retry strategy retries: the case a store must
 * recognise as its own earlier write.
 */
export function clientDroppingFirstUpdateResponse(endpoint: string): DynamoDBClient {
  const client = new DynamoDBClient({
    endpoint,
    region: 'eu-central-1',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    maxAttempts: 3,
  });
  let dropped = false;
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const result = await next(args);
      if (!dropped && context.commandName === 'UpdateItemCommand') {
        dropped = true;
        throw Object.assign(new Error('socket hang up'), { code: 'ECONNRESET', $metadata: {} });
      }
      return result;
    },
    // Inside the retry middleware (finalizeRequest), so the SDK sees a transient failure and retries.
    { step: 'deserialize', name: 'dropFirstUpdateResponse' },
  );
  return client;
}

/** A DynamoDB service error as the SDK raises it, for aws-sdk-client-mock. */
export function dynamoDbServiceError(name: string, fault: 'client' | 'server', status: number) {
  return new DynamoDBServiceException({ name, $fault: fault, $metadata: { httpStatusCode: status } });
}
