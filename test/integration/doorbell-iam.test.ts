/**
 * The doorbell (shared/events/doorbell.ts) as the local IAM stand-in serves it on dynalite, with the policies
 * the synthesized stack gives each function: a writer may ring it and nothing more, a scheduled job may read
 * it and record its marks, and a function built without the database may not touch it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type LocalDynamoDb,
  startLocalDynamoDb,
} from '../../infra/local/services/dynamodb/local-dynamodb.ts';
import { denialMessage, firstDenial } from '../../infra/local/services/iam/iam-authorizer.ts';
import { actingAs, currentCaller } from '../../infra/local/services/iam/local-caller.ts';
import { type StackPrincipals, stackPrincipals } from '../../infra/local/services/iam/stack-policies.ts';
import { DynamoDbDoorbell } from '../../shared/events/dynamodb-doorbell.ts';
import { TEST_RESOURCE_NAMES } from '../support/local-iam.ts';

let principals: StackPrincipals;
let dynamo: LocalDynamoDb;
let doorbell: DynamoDbDoorbell;

beforeAll(async () => {
  principals = stackPrincipals(TEST_RESOURCE_NAMES);
  dynamo = await startLocalDynamoDb();
  await dynamo.createDoorbellTable(TEST_RESOURCE_NAMES.doorbellTableName);
  dynamo.authorizeWith(async (checks) => {
    const caller = currentCaller();
    const denial = caller && (await firstDenial(caller, checks));
    return denial ? denialMessage(denial) : undefined;
  });
  doorbell = new DynamoDbDoorbell({
    tableName: TEST_RESOURCE_NAMES.doorbellTableName,
    client: dynamo.client,
  });
}, 120_000);
afterAll(async () => dynamo?.close());

const denied = (action: string) =>
  expect.objectContaining({
    name: 'AccessDeniedException',
    message: expect.stringContaining(
      `is not authorized to perform: ${action} on resource: arn:aws:dynamodb:`,
    ),
  });

describe('the doorbell, as IAM allows it', () => {
  it('rings for a route that writes the database, which may not read it', async () => {
    const asRoute = actingAs(principals.routes.get('createContract')!, doorbell);
    const before = (await doorbell.read()).rings;
    await asRoute.ring();
    expect((await doorbell.read()).rings).toBe(before + 1);
    await expect(asRoute.read()).rejects.toEqual(denied('dynamodb:GetItem'));
  });

  it('is read and marked by the scheduled jobs', async () => {
    for (const job of ['publishOutbox', 'checkpointAudit', 'expireContracts'] as const) {
      const asJob = actingAs(principals.jobs[job], doorbell);
      const { rings } = await asJob.read();
      const at = new Date().toISOString();
      if (job === 'publishOutbox') await asJob.recordDrain({ rings, at });
      if (job === 'checkpointAudit') await asJob.recordCheckpoint({ rings, at });
      if (job === 'expireContracts') await asJob.recordExpiry({ rings, at, nextDeadline: null });
    }
    const state = await doorbell.read();
    expect(state.outbox.drained?.rings).toBe(state.rings);
    expect(state.checkpoint?.rings).toBe(state.rings);
    expect(state.expiry).toMatchObject({ rings: state.rings, nextDeadline: null });
  });

  it('is out of reach of a function built without the database', async () => {
    const asOpenApi = actingAs(principals.routes.get('getOpenApi')!, doorbell);
    await expect(asOpenApi.ring()).rejects.toEqual(denied('dynamodb:UpdateItem'));
  });
});
