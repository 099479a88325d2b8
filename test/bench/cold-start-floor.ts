import { ExecuteStatementCommand, RDSDataClient } from '@aws-sdk/client-rds-data';

/**
 * The floor of `npm run bench:cold-start`: the least a function that reaches the database must load, one
 * RDS Data API client and the command it sends, bundled by the same `AppFunction` as every function.
 */
const client = new RDSDataClient({});

export const handler = async (): Promise<{ statusCode: number; body: string }> => {
  const result = await client.send(
    new ExecuteStatementCommand({
      resourceArn: process.env.DATA_API_RESOURCE_ARN,
      secretArn: process.env.DATA_API_SECRET_ARN,
      sql: 'SELECT 1',
    }),
  );
  return { statusCode: 200, body: JSON.stringify(result.records ?? []) };
};
