import type { AttributeValue } from '@aws-sdk/client-dynamodb';

/** The item operations the workflow stores make. */
export type DynamoDbOperation = 'GetItem' | 'PutItem' | 'UpdateItem' | 'DeleteItem';

/**
 * How the workflow stores reach DynamoDB: one operation with its input in DynamoDB's JSON shape (attribute
 * values as `{ S: … }`, `{ N: … }`), answered with its output, failing as the SDK v3 fails (`name` the
 * service's code, `$fault`, `$metadata.httpStatusCode`, and a refusal's fields such as the `Item` of a
 * ConditionalCheckFailedException). Deployed, a `SignedJsonClient` for `dynamodb`
 * (shared/runtime/signed-json-client.ts), so the attestation routes carry no DynamoDB client module; the SDK
 * client serves the same interface in the tests that inject its faults (test/support/dynamodb-faults.ts).
 */
export interface DynamoDbCalls {
  call(operation: DynamoDbOperation, input: object): Promise<unknown>;
}

/** What GetItem answers, and UpdateItem with `ReturnValues`. */
export interface ItemOutput {
  readonly Item?: Record<string, AttributeValue>;
  readonly Attributes?: Record<string, AttributeValue>;
}

/** Whether `error` is DynamoDB's refusal of a condition; its `Item` is there when the call asked for it. */
export function isConditionalCheckFailed(
  error: unknown,
): error is { readonly name: string; readonly Item?: Record<string, AttributeValue> } {
  return (error as { name?: unknown } | null)?.name === 'ConditionalCheckFailedException';
}
