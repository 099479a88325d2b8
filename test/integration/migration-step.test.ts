/**
 * The migration custom resource (functions/deploy/migrate.ts) as CloudFormation runs it: through the Data API
 * emulator as the master user, reading the application's secret from the local Secrets Manager with the real
 * SDK clients (endpoints from the environment, as deployed). It migrates, creates the application's user
 * from the secret, and leaves that user to the rotation on every later deployment.
 */
import { CreateSecretCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { PGlite } from '@electric-sql/pglite';
import type { CloudFormationCustomResourceEvent } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type DataApiEmulator,
  pgliteBackend,
  startDataApiEmulator,
} from '../../infra/local/services/rds-data/data-api-emulator.ts';
import {
  type SecretsManagerSimulator,
  startSecretsManagerSimulator,
} from '../../infra/local/services/secretsmanager/secrets-manager-simulator.ts';
import { DataApiDatabase } from '../../shared/database/data-api-database.ts';
import { APPLICATION_ROLE, APPLICATION_USER } from '../../shared/database/database-users.ts';
import { useDeploymentStepEnvironment } from '../support/deployment-step-environment.ts';

const APPLICATION_SECRET = 'arn:aws:secretsmanager:eu-central-1:000000000000:secret:app-AbCdEf';

let pg: PGlite;
let emulator: DataApiEmulator;
let secrets: SecretsManagerSimulator;
let applicationSecretArn: string;
let handler: typeof import('../../functions/deploy/migrate.ts').handler;

beforeAll(async () => {
  pg = new PGlite();
  secrets = await startSecretsManagerSimulator();
  const client = new SecretsManagerClient({
    endpoint: secrets.endpoint,
    region: 'eu-central-1',
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
  });
  applicationSecretArn = (
    await client.send(
      new CreateSecretCommand({
        Name: 'application',
        SecretString: JSON.stringify({
          username: APPLICATION_USER,
          password: 'Generated-by-Secrets-Manager-0123456789',
          masterarn: 'arn:aws:secretsmanager:eu-central-1:000000000000:secret:master-AbCdEf',
        }),
      }),
    )
  ).ARN!;
  client.destroy();
  emulator = await startDataApiEmulator({
    backend: pgliteBackend(pg),
    secretUsers: { [APPLICATION_SECRET]: APPLICATION_USER },
  });
  useDeploymentStepEnvironment({ rdsData: emulator.endpoint, secretsManager: secrets.endpoint });
  ({ handler } = await import('../../functions/deploy/migrate.ts'));
}, 60_000);

afterAll(async () => {
  await emulator?.close();
  await secrets?.close();
  await pg?.close();
});

const event = (type: 'Create' | 'Update'): CloudFormationCustomResourceEvent =>
  ({
    RequestType: type,
    ServiceToken: 'arn:aws:lambda:eu-central-1:000000000000:function:framework',
    ResponseURL: 'https://cloudformation-custom-resource-response.invalid/',
    StackId: 'arn:aws:cloudformation:eu-central-1:000000000000:stack/EnclaveContracts/1',
    RequestId: 'request-1',
    LogicalResourceId: 'Migrations',
    ResourceType: 'Custom::SchemaMigrations',
    ...(type === 'Create' ? {} : { PhysicalResourceId: 'schema-migrations', OldResourceProperties: {} }),
    ResourceProperties: {
      ServiceToken: 'arn:aws:lambda:eu-central-1:000000000000:function:framework',
      ResourceArn: emulator.resourceArn,
      SecretArn: emulator.secretArn,
      ApplicationSecretArn: applicationSecretArn,
      Database: 'postgres',
      MigrationsHash: 'abc',
    },
  }) as CloudFormationCustomResourceEvent;

const storedPassword = async () =>
  (
    await pg.query<{ rolpassword: string }>(
      `SELECT rolpassword FROM pg_authid WHERE rolname = '${APPLICATION_USER}'`,
    )
  ).rows[0]?.rolpassword;

describe('the migration step', () => {
  it("migrates as the master user and creates the application's user from its secret, a member of the application role only", async () => {
    const result = await handler(event('Create'));
    expect(result.PhysicalResourceId).toBe('schema-migrations');
    expect(result.Data?.Applied).toBeGreaterThan(10);
    const { rows } = await pg.query<{ role: string }>(
      `SELECT r.rolname AS role FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid
       JOIN pg_roles u ON u.oid = m.member WHERE u.rolname = '${APPLICATION_USER}'`,
    );
    expect(rows.map((r) => r.role)).toEqual([APPLICATION_ROLE]);
    // Stored as a SCRAM verifier: the password itself never reached the database.
    expect(await storedPassword()).toMatch(/^SCRAM-SHA-256\$4096:/);
  });

  it("leaves an existing user's password to the rotation on a later deployment", async () => {
    const before = await storedPassword();
    const result = await handler(event('Update'));
    expect(result.Data?.Applied).toBe(0);
    expect(await storedPassword()).toBe(before);
  });

  it('gives the application, through the Data API, what its code does and no more', async () => {
    const app = new DataApiDatabase({
      resourceArn: emulator.resourceArn,
      secretArn: APPLICATION_SECRET,
      database: 'postgres',
      endpoint: { url: emulator.endpoint, region: 'eu-central-1' },
    });
    try {
      await expect(app.query('SELECT count(*) AS n FROM contracts')).resolves.toBeDefined();
      await expect(app.query('DELETE FROM audit_log')).rejects.toThrow(
        /permission denied for table audit_log/,
      );
      await expect(app.query('UPDATE audit_checkpoints SET tree_size = tree_size')).rejects.toThrow(
        /permission denied/,
      );
      await expect(app.query('DROP TABLE contracts')).rejects.toThrow(/must be owner/);
    } finally {
      await app.close();
    }
  });
});
