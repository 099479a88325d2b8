import { PGlite } from '@electric-sql/pglite';
import { afterEach, describe, expect, it } from 'vitest';
import {
  pgliteBackend,
  startDataApiEmulator,
} from '../../infra/local/services/rds-data/data-api-emulator.ts';
import { DataApiDatabase } from '../../shared/database/data-api-database.ts';
import { parseConfig } from '../../shared/runtime/config.ts';
import type { Dependencies } from '../../shared/runtime/dependencies.ts';
import { buildRuntime } from '../../shared/runtime/runtime.ts';
import { DynamoDbNonceStore } from '../../shared/workflow/dynamodb-nonce-store.ts';
import { DynamoDbTaskTokenStore } from '../../shared/workflow/dynamodb-task-token-store.ts';
import { Ec2InstanceControl } from '../../shared/workflow/ec2-instance-control.ts';
import { SfnTaskCallback } from '../../shared/workflow/sfn-task-callback.ts';

/**
 * The deployed composition root. In-memory PGlite and the local signer keep it off AWS: building the
 * workflow ports constructs SDK clients but sends nothing.
 */
const BASE = { DATABASE_DRIVER: 'pglite', SIGNER: 'local', AWS_REGION: 'eu-central-1' };

const built: Dependencies[] = [];
afterEach(async () => {
  await Promise.all(built.splice(0).map((deps) => deps.db.close()));
});

async function build(env: Record<string, string | undefined>): Promise<Dependencies> {
  const deps = await buildRuntime(parseConfig({ ...BASE, ...env }));
  built.push(deps);
  return deps;
}

describe('buildRuntime', () => {
  it.each([
    {},
    { WORKFLOW_TABLE_NAME: 'workflow' },
    { WORKFLOW_TABLE_NAME: 'workflow', PARENT_ROLE_NAME: 'enclave-parent' },
    // Variables a local stack might set must not switch the local-only features on in a deployed function.
    { WORKFLOW_TABLE_NAME: 'workflow', LOCAL: 'true', LOCAL_STACK: '1', NODE_ENV: 'development' },
  ])('never sets the local-stack hooks (env %j)', async (env) => {
    const deps = await build(env);
    expect(deps.local).toBeUndefined();
    expect(Object.keys(deps)).not.toContain('local');
  });

  it('builds no workflow ports without WORKFLOW_TABLE_NAME', async () => {
    const deps = await build({ PARENT_ROLE_NAME: 'enclave-parent' });
    expect(deps.workflow).toBeUndefined();
  });

  it('builds the AWS workflow adapters on one table with WORKFLOW_TABLE_NAME', async () => {
    const deps = await build({ WORKFLOW_TABLE_NAME: 'workflow', PARENT_ROLE_NAME: 'enclave-parent' });
    expect(deps.workflow?.nonces).toBeInstanceOf(DynamoDbNonceStore);
    expect(deps.workflow?.taskTokens).toBeInstanceOf(DynamoDbTaskTokenStore);
    expect(deps.workflow?.callbacks).toBeInstanceOf(SfnTaskCallback);
    expect(deps.workflow?.instances).toBeInstanceOf(Ec2InstanceControl);
    expect(deps.workflow?.parentRoleName).toBe('enclave-parent');
  });

  it('fails closed without PARENT_ROLE_NAME: an empty role name, which no iam route accepts', async () => {
    const deps = await build({ WORKFLOW_TABLE_NAME: 'workflow' });
    expect(deps.workflow?.parentRoleName).toBe('');
  });

  it('refuses an empty WORKFLOW_TABLE_NAME instead of building ports on no table', () => {
    expect(() => parseConfig({ ...BASE, WORKFLOW_TABLE_NAME: '' })).toThrow();
  });

  it('reaches the Data API at DATA_API_ENDPOINT (the local emulator) with the data-api driver', async () => {
    const pg = new PGlite();
    const emulator = await startDataApiEmulator({ backend: pgliteBackend(pg) });
    try {
      const deps = await build({
        DATABASE_DRIVER: 'data-api',
        DATA_API_RESOURCE_ARN: emulator.resourceArn,
        DATA_API_SECRET_ARN: emulator.secretArn,
        DATABASE_NAME: 'postgres',
        DATA_API_ENDPOINT: emulator.endpoint,
      });
      expect(deps.db).toBeInstanceOf(DataApiDatabase);
      const { rows } = await deps.db.query('SELECT 41 + 1 AS answer');
      expect(rows).toEqual([{ answer: 42 }]);
    } finally {
      await emulator.close();
      await pg.close();
    }
  });
});

describe('parseConfig', () => {
  const DATA_API = {
    DATABASE_DRIVER: 'data-api',
    DATA_API_RESOURCE_ARN: 'arn:aws:rds:eu-central-1:111122223333:cluster:contracts',
    DATA_API_SECRET_ARN: 'arn:aws:secretsmanager:eu-central-1:111122223333:secret:db',
    DATABASE_NAME: 'contracts',
    SIGNING_KEY_ID: 'alias/platform',
  };

  it("takes the rotation report's ages as whole days from 1 to 99999 only", () => {
    expect(parseConfig({ ...DATA_API, CREDENTIAL_MAX_AGE_DAYS: '180' }).CREDENTIAL_MAX_AGE_DAYS).toBe('180');
    for (const bad of ['0', '-1', '1.5', '100000', 'a year', '']) {
      expect(() => parseConfig({ ...DATA_API, CREDENTIAL_MAX_AGE_DAYS: bad }), bad).toThrow();
      expect(() => parseConfig({ ...DATA_API, PLATFORM_KEY_MAX_AGE_DAYS: bad }), bad).toThrow();
    }
  });

  it('reads what a deployed function is given, the database apart from the rest', () => {
    expect(parseConfig({ ...DATA_API, AWS_REGION: 'eu-central-1', UNRELATED: 'x' })).toEqual({
      SIGNER: 'kms',
      SIGNING_KEY_ID: 'alias/platform',
      PROBLEM_TYPE_BASE: 'https://problems.enclave-contracts.dev/',
      AWS_REGION: 'eu-central-1',
      // The rotation report's ages, a year each unless the deployment says otherwise.
      CREDENTIAL_MAX_AGE_DAYS: '365',
      PLATFORM_KEY_MAX_AGE_DAYS: '365',
      database: {
        DATABASE_DRIVER: 'data-api',
        DATA_API_RESOURCE_ARN: DATA_API.DATA_API_RESOURCE_ARN,
        DATA_API_SECRET_ARN: DATA_API.DATA_API_SECRET_ARN,
        DATABASE_NAME: 'contracts',
      },
    });
    expect(
      parseConfig({ ...BASE, DATABASE_DRIVER: 'postgres', DATABASE_URL: 'postgres://db' }).database,
    ).toEqual({
      DATABASE_DRIVER: 'postgres',
      DATABASE_URL: 'postgres://db',
    });
  });

  it.each([
    ['DATA_API_RESOURCE_ARN', 'data-api'],
    ['DATA_API_SECRET_ARN', 'data-api'],
    ['DATABASE_NAME', 'data-api'],
  ])('refuses the data-api driver without %s, or with it empty', (name, driver) => {
    for (const value of [undefined, '']) {
      expect(() => parseConfig({ ...DATA_API, [name]: value }), driver).toThrow(name);
    }
  });

  it('refuses the postgres driver without DATABASE_URL, an unknown driver, and kms without a key', () => {
    expect(() => parseConfig({ ...BASE, DATABASE_DRIVER: 'postgres' })).toThrow('DATABASE_URL');
    expect(() => parseConfig({ ...BASE, DATABASE_DRIVER: 'mysql' })).toThrow(/DATABASE_DRIVER/);
    expect(() => parseConfig({ ...BASE, DATABASE_DRIVER: undefined })).toThrow(/DATABASE_DRIVER/);
    expect(() => parseConfig({ ...DATA_API, SIGNING_KEY_ID: undefined })).toThrow(
      'SIGNING_KEY_ID is required when SIGNER=kms',
    );
    expect(() => parseConfig({ ...DATA_API, DATA_API_ENDPOINT: 'not a url' })).toThrow(/DATA_API_ENDPOINT/);
  });
});
