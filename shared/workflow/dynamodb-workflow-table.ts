import { SignedJsonClient } from '../runtime/signed-json-client.ts';
import { DynamoDbNonceStore } from './dynamodb-nonce-store.ts';
import { DynamoDbTaskTokenStore } from './dynamodb-task-token-store.ts';
import type { WorkflowPorts } from './workflow-ports.ts';

/**
 * The workflow table's two stores (nonces, task tokens) on one signed JSON client, built once per cold start
 * (no DynamoDB client module in the bundles of the routes that use them).
 */
export function openWorkflowTable(tableName: string): Pick<WorkflowPorts, 'nonces' | 'taskTokens'> {
  const client = new SignedJsonClient({ service: 'dynamodb' });
  return {
    nonces: new DynamoDbNonceStore({ tableName, client }),
    taskTokens: new DynamoDbTaskTokenStore({ tableName, client }),
  };
}
