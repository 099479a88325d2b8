import { randomBytes, randomUUID } from 'node:crypto';
import {
  CreateSecretCommand,
  DescribeSecretCommand,
  GetSecretValueCommand,
  PutSecretValueCommand,
  ResourceNotFoundException,
  RotateSecretCommand,
  SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rotationHandler } from '../../functions/deploy/rotate-database-secret.ts';
import {
  type SecretsManagerSimulator,
  startSecretsManagerSimulator,
} from '../../infra/local/services/secretsmanager/secrets-manager-simulator.ts';
import type { Database } from '../../shared/database/database.ts';
import {
  APPLICATION_ROLE,
  scramSha256Verifier,
  setApplicationUser,
} from '../../shared/database/database-users.ts';
import { loadMigrations, migrate } from '../../shared/database/migrate.ts';
import { PostgresDatabase } from '../../shared/database/postgres-database.ts';
import { serverDatabase } from '../support/databases.ts';

/**
 * The database secrets' rotation (functions/deploy/rotate-database-secret.ts) end to end: the real function,
 * the real SDK client against the local Secrets Manager, a real PostgreSQL server that checks SCRAM passwords
 * (every user but the test superuser signs in with its password; test/support/postgres-server.mjs), and a
 * master user that is not a superuser, only CREATEROLE and the database's owner, as Aurora's master is.
 */
const serverUrl = process.env.TEST_DATABASE_URL;

interface DatabaseSecret {
  engine: string;
  host: string;
  port: number;
  dbname: string;
  username: string;
  password: string;
  masterarn?: string;
}

describe.skipIf(serverUrl === undefined)('database secret rotation', () => {
  const suffix = randomUUID().replaceAll('-', '').slice(0, 12);
  const masterName = `master_${suffix}`;
  const appName = `app_${suffix}`;
  let database: Awaited<ReturnType<typeof serverDatabase>>;
  let superuser: PostgresDatabase;
  let simulator: SecretsManagerSimulator;
  let secrets: SecretsManagerClient;
  let masterArn: string;
  let appArn: string;
  let base: Omit<DatabaseSecret, 'username' | 'password'>;
  let rotate: (event: unknown) => Promise<void>;

  const password = () => randomBytes(24).toString('base64url');
  const signIn = (credentials: { username: string; password: string }): Database =>
    new PostgresDatabase(
      {
        ...base,
        port: base.port,
        user: credentials.username,
        password: credentials.password,
        database: base.dbname,
      },
      { max: 1 },
    );
  const signsIn = async (credentials: { username: string; password: string }): Promise<boolean> => {
    const db = signIn(credentials);
    try {
      await db.query('SELECT 1');
      return true;
    } catch {
      return false;
    } finally {
      await db.close();
    }
  };
  const current = async (secretId: string, stage = 'AWSCURRENT'): Promise<DatabaseSecret> => {
    const answer = await secrets.send(new GetSecretValueCommand({ SecretId: secretId, VersionStage: stage }));
    return JSON.parse(answer.SecretString!) as DatabaseSecret;
  };
  const stagesOf = async (secretId: string) =>
    (await secrets.send(new DescribeSecretCommand({ SecretId: secretId }))).VersionIdsToStages ?? {};

  beforeAll(async () => {
    database = (await serverDatabase())!;
    const url = new URL(database.url);
    base = {
      engine: 'postgres',
      host: url.hostname,
      port: Number(url.port),
      dbname: url.pathname.slice(1),
    };
    superuser = new PostgresDatabase(database.url, { max: 1 });
    const masterPassword = password();
    await superuser.query(
      `CREATE ROLE ${masterName} LOGIN CREATEROLE PASSWORD '${scramSha256Verifier(masterPassword)}'`,
    );
    await superuser.query(`ALTER DATABASE ${base.dbname} OWNER TO ${masterName}`);
    // Aurora's master creates the application role in its first migration and so administers it; here the
    // role may already exist on the shared test server (other suites migrate as the superuser).
    await superuser.query(
      `DO $$ BEGIN CREATE ROLE ${APPLICATION_ROLE} NOLOGIN; EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$`,
    );
    await superuser.query(`GRANT ${APPLICATION_ROLE} TO ${masterName} WITH ADMIN OPTION`);

    const master = signIn({ username: masterName, password: masterPassword });
    await migrate(master, await loadMigrations());
    const appPassword = password();
    // What the migration step does after migrating: the application's first user, from its secret.
    expect(
      await setApplicationUser(
        master,
        { username: appName, password: appPassword },
        { keepExistingPassword: true },
      ),
    ).toEqual({
      created: true,
    });
    await master.close();

    simulator = await startSecretsManagerSimulator();
    secrets = new SecretsManagerClient({
      endpoint: simulator.endpoint,
      region: 'eu-central-1',
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    });
    masterArn = (
      await secrets.send(
        new CreateSecretCommand({
          Name: `master-${suffix}`,
          SecretString: JSON.stringify({ ...base, username: masterName, password: masterPassword }),
        }),
      )
    ).ARN!;
    appArn = (
      await secrets.send(
        new CreateSecretCommand({
          Name: `app-${suffix}`,
          SecretString: JSON.stringify({
            ...base,
            username: appName,
            password: appPassword,
            masterarn: masterArn,
          }),
        }),
      )
    ).ARN!;
    rotate = rotationHandler({
      secrets,
      connect: (credentials) =>
        new PostgresDatabase(
          {
            host: credentials.host,
            port: Number(credentials.port),
            user: credentials.username,
            password: credentials.password,
            database: credentials.dbname ?? base.dbname,
          },
          { max: 1 },
        ),
    });
    simulator.setRotationFunction(rotate);
  });

  afterAll(async () => {
    secrets?.destroy();
    await simulator?.close();
    await superuser?.close();
    await database?.drop();
  });

  it('computes the SCRAM-SHA-256 verifier PostgreSQL computes for the same password, salt and iterations', async () => {
    const name = `scram_${suffix}`;
    const plain = password();
    await superuser.query(`SET password_encryption = 'scram-sha-256'`);
    await superuser.query(`CREATE ROLE ${name} LOGIN PASSWORD '${plain}'`);
    const { rows } = await superuser.query<{ rolpassword: string }>(
      `SELECT rolpassword FROM pg_authid WHERE rolname = '${name}'`,
    );
    const stored = rows[0]!.rolpassword;
    const [, iterations, salt] = /^SCRAM-SHA-256\$(\d+):([^$]+)\$/.exec(stored)!;
    expect(
      scramSha256Verifier(plain, { salt: Buffer.from(salt!, 'base64'), iterations: Number(iterations) }),
    ).toBe(stored);
    await superuser.query(`DROP ROLE ${name}`);
  });

  it('gives the application user the application role only: the audit trail is append-only for it', async () => {
    const app = await current(appArn);
    const db = signIn(app);
    try {
      await expect(db.query('SELECT count(*) FROM audit_log')).resolves.toBeDefined();
      await expect(db.query('DELETE FROM audit_log')).rejects.toThrow(
        /permission denied for table audit_log/,
      );
      await expect(db.query(`UPDATE audit_log SET hash = hash`)).rejects.toThrow(/permission denied/);
      await expect(db.query('DELETE FROM audit_checkpoints')).rejects.toThrow(/permission denied/);
      await expect(db.query('SELECT * FROM schema_migrations')).rejects.toThrow(/permission denied/);
      await expect(db.query('CREATE TABLE intruder (x int)')).rejects.toThrow(
        /permission denied for schema public/,
      );
      const { rows } = await db.query<{ role: string }>(
        `SELECT r.rolname AS role FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid
         JOIN pg_roles u ON u.oid = m.member WHERE u.rolname = current_user`,
      );
      expect(rows.map((r) => r.role)).toEqual([APPLICATION_ROLE]);
    } finally {
      await db.close();
    }
  });

  it('rotates the application secret between two users, the previous one still signing in until the next rotation', async () => {
    const first = await current(appArn);
    await secrets.send(new RotateSecretCommand({ SecretId: appArn }));
    const second = await current(appArn);
    expect(second.username).toBe(`${appName}_clone`);
    expect(second.password).not.toBe(first.password);
    expect(second.masterarn).toBe(masterArn);
    expect(await signsIn(second)).toBe(true);
    // The sessions and Data API calls still on the previous user are not cut off.
    expect(await signsIn(first)).toBe(true);
    expect((await current(appArn, 'AWSPREVIOUS')).username).toBe(appName);

    await secrets.send(new RotateSecretCommand({ SecretId: appArn }));
    const third = await current(appArn);
    expect(third.username).toBe(appName);
    expect(third.password).not.toBe(first.password);
    expect(await signsIn(third)).toBe(true);
    expect(await signsIn(first)).toBe(false);
    expect(await signsIn(second)).toBe(true);
    const db = signIn(third);
    try {
      const { rows } = await db.query<{ member: boolean }>(
        `SELECT pg_has_role(current_user, '${APPLICATION_ROLE}', 'MEMBER') AS member`,
      );
      expect(rows[0]?.member).toBe(true);
    } finally {
      await db.close();
    }
  });

  it('rotates the master secret in place: the new password signs in, the old one no longer does', async () => {
    const before = await current(masterArn);
    await secrets.send(new RotateSecretCommand({ SecretId: masterArn }));
    const after = await current(masterArn);
    expect(after.username).toBe(masterName);
    expect(after.password).not.toBe(before.password);
    expect(await signsIn(after)).toBe(true);
    expect(await signsIn(before)).toBe(false);
    expect((await current(masterArn, 'AWSPREVIOUS')).password).toBe(before.password);
    // The application's rotation reads the master's new password.
    await secrets.send(new RotateSecretCommand({ SecretId: appArn }));
    expect(await signsIn(await current(appArn))).toBe(true);

    // The database went back to the previous password (a restored snapshot, say): the rotation signs in
    // with AWSPREVIOUS, as Secrets Manager's own single-user template does, and sets the new one.
    await superuser.query(`ALTER ROLE ${masterName} PASSWORD '${scramSha256Verifier(before.password)}'`);
    expect(await signsIn(after)).toBe(false);
    await secrets.send(new RotateSecretCommand({ SecretId: masterArn }));
    expect(await signsIn(await current(masterArn))).toBe(true);
    expect(await signsIn(before)).toBe(false);
  });

  it('leaves the current version in place when the new user fails its test; a retry of the same rotation repairs it', async () => {
    const before = await current(appArn);
    const token = randomUUID();
    let pendingUser = '';
    simulator.setRotationFunction(async (event) => {
      if (event.Step === 'testSecret') {
        // Someone takes the pending user out of the application role between setSecret and testSecret.
        pendingUser = (await current(appArn, 'AWSPENDING')).username;
        await superuser.query(`REVOKE ${APPLICATION_ROLE} FROM ${pendingUser}`);
      }
      await rotate(event);
    });
    try {
      await expect(
        secrets.send(new RotateSecretCommand({ SecretId: appArn, ClientRequestToken: token })),
      ).rejects.toThrow(/testSecret failed: .* is not a member of contracts_application/);
    } finally {
      simulator.setRotationFunction(rotate);
    }
    expect(await current(appArn)).toEqual(before);
    expect((await stagesOf(appArn))[token]).toEqual(['AWSPENDING']);
    // An unfinished rotation blocks the next one until it is retried.
    await expect(secrets.send(new RotateSecretCommand({ SecretId: appArn }))).rejects.toThrow(
      /isn’t complete/,
    );

    // Secrets Manager retries the same rotation (same token): every step runs again, setSecret restores the
    // user's membership, and the rotation finishes.
    for (const step of ['createSecret', 'setSecret', 'testSecret', 'finishSecret'] as const) {
      await rotate({ SecretId: appArn, ClientRequestToken: token, Step: step });
    }
    const after = await current(appArn);
    expect(after.username).toBe(pendingUser);
    expect(after.username).not.toBe(before.username);
    expect(await signsIn(after)).toBe(true);
  });

  it('refuses a secret whose rotation is not enabled, and a master secret that names another database', async () => {
    const stray = (
      await secrets.send(
        new CreateSecretCommand({
          Name: `stray-${suffix}`,
          SecretString: JSON.stringify({
            ...base,
            username: appName,
            password: password(),
            masterarn: masterArn,
          }),
        }),
      )
    ).ARN!;
    const token = randomUUID();
    await secrets.send(
      new PutSecretValueCommand({
        SecretId: stray,
        ClientRequestToken: token,
        SecretString: JSON.stringify({
          ...base,
          username: `${appName}_clone`,
          password: password(),
          masterarn: masterArn,
        }),
        VersionStages: ['AWSPENDING'],
      }),
    );
    await expect(rotate({ SecretId: stray, ClientRequestToken: token, Step: 'setSecret' })).rejects.toThrow(
      /rotation is not enabled/,
    );

    // A secret whose master lives elsewhere: setSecret must not change users on the master's database.
    const elsewhere = (
      await secrets.send(
        new CreateSecretCommand({
          Name: `elsewhere-${suffix}`,
          SecretString: JSON.stringify({ ...(await current(masterArn)), host: 'other-cluster.example' }),
        }),
      )
    ).ARN!;
    const misnamed = (
      await secrets.send(
        new CreateSecretCommand({
          Name: `misnamed-${suffix}`,
          SecretString: JSON.stringify({
            ...base,
            username: `mis_${suffix}`,
            password: password(),
            masterarn: elsewhere,
          }),
        }),
      )
    ).ARN!;
    await expect(secrets.send(new RotateSecretCommand({ SecretId: misnamed }))).rejects.toThrow(
      /setSecret failed: the master secret .* names another database/,
    );
    const { rows } = await superuser.query(`SELECT 1 FROM pg_roles WHERE rolname = 'mis_${suffix}_clone'`);
    expect(rows).toEqual([]);
  });

  it('refuses a version that is not pending, and does nothing for one that is already current', async () => {
    const stages = await stagesOf(appArn);
    const currentVersion = Object.entries(stages).find(([, s]) => s.includes('AWSCURRENT'))![0];
    await expect(
      rotate({ SecretId: appArn, ClientRequestToken: currentVersion, Step: 'setSecret' }),
    ).resolves.toBeUndefined();
    const previous = Object.entries(stages).find(([, s]) => s.includes('AWSPREVIOUS'))![0];
    await expect(
      rotate({ SecretId: appArn, ClientRequestToken: previous, Step: 'setSecret' }),
    ).rejects.toThrow(/is not pending rotation/);
    await expect(
      rotate({ SecretId: appArn, ClientRequestToken: randomUUID(), Step: 'createSecret' }),
    ).rejects.toThrow(/has no version/);
    await expect(
      rotate({ SecretId: appArn, ClientRequestToken: currentVersion, Step: 'dropTables' }),
    ).rejects.toThrow();
    await expect(
      secrets.send(
        new GetSecretValueCommand({ SecretId: appArn, VersionId: previous, VersionStage: 'AWSPENDING' }),
      ),
    ).rejects.toBeInstanceOf(ResourceNotFoundException);
  });
});
