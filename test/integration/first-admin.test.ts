/**
 * The first admin custom resource (functions/deploy/first-admin.ts) against the Data API emulator on a
 * migrated PGlite: the identity and its audit record are real rows. Cognito has no local engine:
 * aws-sdk-client-mock answers its two calls as Cognito does and checks what the function asked.
 */

import { randomUUID } from 'node:crypto';
import {
  AdminCreateUserCommand,
  AdminGetUserCommand,
  CognitoIdentityProviderClient,
  UsernameExistsException,
} from '@aws-sdk/client-cognito-identity-provider';
import { PGlite } from '@electric-sql/pglite';
import type { CloudFormationCustomResourceEvent } from 'aws-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  type DataApiEmulator,
  pgliteBackend,
  startDataApiEmulator,
} from '../../infra/local/services/rds-data/data-api-emulator.ts';
import { DataApiDatabase } from '../../shared/database/data-api-database.ts';
import { loadMigrations, migrate } from '../../shared/database/migrate.ts';
import { insertIdentity, newIdentity } from '../../shared/identities/identity-service.ts';
import { unavailable } from '../../shared/runtime/adapters.ts';
import type { Dependencies } from '../../shared/runtime/dependencies.ts';
import { useDeploymentStepEnvironment } from '../support/deployment-step-environment.ts';

const cognito = mockClient(CognitoIdentityProviderClient);
let pg: PGlite;
let emulator: DataApiEmulator;
let handler: typeof import('../../functions/deploy/first-admin.ts').handler;

const POOL = 'eu-central-1_Example1';
const SUB = '1b5f3a1e-7a52-4c3b-9e4e-2f7d2f0c9a01';

beforeAll(async () => {
  pg = new PGlite();
  emulator = await startDataApiEmulator({ backend: pgliteBackend(pg) });
  const db = new DataApiDatabase({
    resourceArn: emulator.resourceArn,
    secretArn: emulator.secretArn,
    database: 'postgres',
    endpoint: { url: emulator.endpoint, region: 'eu-central-1' },
  });
  await migrate(db, await loadMigrations());
  await db.close();
  // The handler's Data API client reads its endpoint as the deployed one does: from the environment.
  useDeploymentStepEnvironment({ rdsData: emulator.endpoint });
  ({ handler } = await import('../../functions/deploy/first-admin.ts'));
}, 60_000);

afterAll(async () => {
  cognito.restore();
  await emulator?.close();
  await pg?.close();
});

beforeEach(() => cognito.reset());

const event = (
  email: string,
  type: 'Create' | 'Update' | 'Delete' = 'Create',
): CloudFormationCustomResourceEvent =>
  ({
    RequestType: type,
    ServiceToken: 'arn:aws:lambda:eu-central-1:000000000000:function:framework',
    ResponseURL: 'https://cloudformation-custom-resource-response.invalid/',
    StackId: 'arn:aws:cloudformation:eu-central-1:000000000000:stack/EnclaveContracts/1',
    RequestId: 'request-1',
    LogicalResourceId: 'FirstAdmin',
    ResourceType: 'Custom::FirstAdmin',
    ...(type === 'Create' ? {} : { PhysicalResourceId: `first-admin:${email}`, OldResourceProperties: {} }),
    ResourceProperties: {
      ServiceToken: 'arn:aws:lambda:eu-central-1:000000000000:function:framework',
      UserPoolId: POOL,
      Email: email,
      ResourceArn: emulator.resourceArn,
      SecretArn: emulator.secretArn,
      Database: 'postgres',
    },
  }) as CloudFormationCustomResourceEvent;

const created = (sub: string) => ({ User: { Username: sub, Attributes: [{ Name: 'sub', Value: sub }] } });

async function identities() {
  const { rows } = await pg.query<{
    id: string;
    subject: string;
    name: string;
    roles: string[];
    email: string;
  }>('SELECT id, subject, name, roles, email FROM identities ORDER BY created_at');
  return rows;
}

describe('the first admin of a deployment', () => {
  it('creates the Cognito user with a verified email and an emailed password, and the admin identity, audited', async () => {
    cognito.on(AdminCreateUserCommand).resolves(created(SUB));
    const result = await handler(event('admin@example.com'));
    expect(result).toEqual({
      PhysicalResourceId: 'first-admin:admin@example.com',
      Data: { Subject: SUB, Created: 'true' },
    });
    expect(cognito.commandCalls(AdminCreateUserCommand)[0]!.args[0].input).toEqual({
      UserPoolId: POOL,
      Username: 'admin@example.com',
      UserAttributes: [
        { Name: 'email', Value: 'admin@example.com' },
        { Name: 'email_verified', Value: 'true' },
      ],
      DesiredDeliveryMediums: ['EMAIL'],
    });
    const [admin, ...others] = await identities();
    expect(others).toEqual([]);
    expect(admin).toMatchObject({
      subject: SUB,
      name: 'first-admin',
      roles: ['admin'],
      email: 'admin@example.com',
    });
    const audit = await pg.query<{ action: string; actor_id: string | null; seq: number }>(
      'SELECT action, actor_id, seq FROM audit_log WHERE entity_id = $1',
      [admin!.id],
    );
    expect(audit.rows).toEqual([{ action: 'create', actor_id: null, seq: 1 }]);
    const events = await pg.query<{ type: string }>(
      'SELECT event_type AS type FROM outbox WHERE aggregate_id = $1',
      [admin!.id],
    );
    expect(events.rows).toEqual([{ type: 'IdentityCreated' }]);
  }, 30_000);

  it('changes nothing when the deployment runs again: the user exists, so its sub is looked up', async () => {
    cognito.on(AdminCreateUserCommand).rejects(
      new UsernameExistsException({
        message: 'An account with the given email already exists.',
        $metadata: {},
      }),
    );
    cognito
      .on(AdminGetUserCommand)
      .resolves({ Username: SUB, UserAttributes: [{ Name: 'sub', Value: SUB }] });
    const result = await handler(event('admin@example.com', 'Update'));
    expect(result.Data).toEqual({ Subject: SUB, Created: 'false' });
    expect(cognito.commandCalls(AdminGetUserCommand)[0]!.args[0].input).toEqual({
      UserPoolId: POOL,
      Username: 'admin@example.com',
    });
    expect(await identities()).toHaveLength(1);
  }, 30_000);

  it('fails the deployment, naming why, when another user already holds the first admin name', async () => {
    cognito.on(AdminCreateUserCommand).resolves(created('5d0c1f6e-2b8a-4f0e-8c51-0a4b7e9d3c22'));
    await expect(handler(event('other@example.com', 'Update'))).rejects.toThrow(
      /^An identity named first-admin exists for another Cognito user/,
    );
    expect(await identities()).toHaveLength(1);
  }, 30_000);

  it('fails the deployment when the Cognito user has an identity without the admin role', async () => {
    const consumerSub = '7c2e9b1a-4d3f-4a8e-b6c1-9f0e2d4a6b33';
    const db = new DataApiDatabase({
      resourceArn: emulator.resourceArn,
      secretArn: emulator.secretArn,
      database: 'postgres',
      endpoint: { url: emulator.endpoint, region: 'eu-central-1' },
    });
    const deps = {
      db,
      signer: unavailable('signer'),
      now: () => new Date(),
      newId: randomUUID,
    } as Dependencies;
    const consumer = newIdentity(deps, {
      id: randomUUID(),
      subject: consumerSub,
      name: 'a-consumer',
      displayName: 'A consumer',
      email: 'consumer@example.com',
      roles: ['consumer'],
    });
    expect(await insertIdentity(deps, null, consumer)).toBe('inserted');
    await db.close();
    cognito.on(AdminCreateUserCommand).resolves(created(consumerSub));
    await expect(handler(event('consumer@example.com', 'Update'))).rejects.toThrow(
      `The Cognito user consumer@example.com has identity ${consumer.id} without the admin role`,
    );
    expect(await identities()).toHaveLength(2);
  }, 30_000);

  it('fails on a Cognito error other than an existing user, and stores nothing', async () => {
    cognito.on(AdminCreateUserCommand).rejects(
      Object.assign(new Error('User pool eu-central-1_Example1 does not exist.'), {
        name: 'ResourceNotFoundException',
      }),
    );
    await expect(handler(event('third@example.com'))).rejects.toThrow(/does not exist/);
    expect(cognito.commandCalls(AdminGetUserCommand)).toHaveLength(0);
    expect(await identities()).toHaveLength(2);
  }, 30_000);

  it('refuses a malformed email before calling Cognito', async () => {
    await expect(handler(event('not an email'))).rejects.toThrow();
    expect(cognito.calls()).toHaveLength(0);
  });

  it('does nothing on Delete: who administered a deployment stays on record', async () => {
    const result = await handler(event('admin@example.com', 'Delete'));
    expect(result).toEqual({ PhysicalResourceId: 'first-admin:admin@example.com' });
    expect(cognito.calls()).toHaveLength(0);
    expect(await identities()).toHaveLength(2);
  });
});
