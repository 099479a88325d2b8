import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDbNonceStore } from './dynamodb-nonce-store.ts';
import { DynamoDbTaskTokenStore } from './dynamodb-task-token-store.ts';
import type { WorkflowPorts } from './workflow-ports.ts';

/** The workflow table's two stores (nonces, task tokens) on one DynamoDB client, built once per cold start. */
export function openWorkflowTable(tableName: string): Pick<WorkflowPorts, 'nonces' | 'taskTokens'> {
  const client = new DynamoDBClient({});
  return {
    nonces: new DynamoDbNonceStore({ tableName, client }),
    taskTokens: new DynamoDbTaskTokenStore({ tableName, client }),
  };
}
