import { DynamoDBClient, DynamoDBServiceException } from '@aws-sdk/client-dynamodb';

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
