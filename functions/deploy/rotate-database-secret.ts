import { Logger } from '@aws-lambda-powertools/logger';
import {
  DescribeSecretCommand,
  GetRandomPasswordCommand,
  GetSecretValueCommand,
  PutSecretValueCommand,
  ResourceNotFoundException,
  SecretsManagerClient,
  UpdateSecretVersionStageCommand,
} from '@aws-sdk/client-secrets-manager';
import type { Database } from '../../shared/database/database.ts';
import {
  APPLICATION_ROLE,
  alternateUsername,
  checkUsername,
  PASSWORD_EXCLUDED_CHARACTERS,
  setApplicationUser,
  setOwnPassword,
} from '../../shared/database/database-users.ts';
import { PostgresDatabase } from '../../shared/database/postgres-database.ts';
import * as z from '../../shared/domain/zod.ts';
import { mapStacksWhenBundled } from '../../shared/runtime/source-mapped-stacks.ts';

/**
 * The rotation function of the database's two secrets (infra/constructs/database.ts), in place of Secrets
 * Manager's hosted Python templates (whose runtime CloudFormation picks and deprecates): the four steps of a
 * Secrets Manager rotation (createSecret, setSecret, testSecret, finishSecret), on the Node.js runtime of
 * every other function, over a direct PostgreSQL connection (TLS, verified against the RDS certificate
 * authorities Lambda ships) from the isolated subnets.
 *
 * - The application's secret (it names its master secret in `masterarn`) rotates between two users,
 *   `contracts_app` ↔ `contracts_app_clone`: the new version names the other user with a new password, set
 *   by the master user, so the sessions and Data API calls still using the current user are never cut off.
 *   Each user is a member of the application role and nothing else (shared/database/database-users.ts).
 * - The master secret (no `masterarn`) rotates in place: the master user sets its own new password.
 *
 * Passwords reach the database only as SCRAM verifiers; nothing here logs a secret's value.
 */

const SecretValueSchema = z.looseObject({
  engine: z.optional(z.string()),
  host: z.string().check(z.minLength(1)),
  port: z.union([z.number(), z.string().check(z.regex(/^\d+$/))]),
  dbname: z.optional(z.string().check(z.minLength(1))),
  username: z.string().check(z.minLength(1)),
  password: z.string().check(z.minLength(1)),
  masterarn: z.optional(z.string().check(z.minLength(1))),
});
type SecretValue = z.infer<typeof SecretValueSchema>;

const RotationEventSchema = z.object({
  SecretId: z.string().check(z.minLength(1)),
  ClientRequestToken: z.string().check(z.minLength(1)),
  Step: z.enum(['createSecret', 'setSecret', 'testSecret', 'finishSecret']),
  RotationToken: z.optional(z.string()),
});
export type RotationEvent = z.infer<typeof RotationEventSchema>;

/** What the rotation needs beyond the event. */
export interface RotationDependencies {
  readonly secrets: SecretsManagerClient;
  /** Opens a connection signed in as `credentials`, to run a step's statements. */
  readonly connect: (credentials: SecretValue) => Database;
  readonly logger?: Pick<Logger, 'info' | 'warn'>;
}

/** The database the deployed function reaches: the secret's host and port, TLS verified. */
export function connectWithTls(credentials: SecretValue, defaultDatabase: string): Database {
  return new PostgresDatabase(
    {
      host: credentials.host,
      port: Number(credentials.port),
      user: credentials.username,
      password: credentials.password,
      database: credentials.dbname ?? defaultDatabase,
      // Lambda's Node.js runtime holds the RDS certificate authorities in /var/runtime/ca-cert.pem, which
      // NODE_EXTRA_CA_CERTS adds to the default store (set on the function); the host name is checked.
      ssl: { rejectUnauthorized: true, servername: credentials.host },
      connectionTimeoutMillis: 10_000,
    },
    { max: 1 },
  );
}

/** The rotation handler over `deps`. */
export function rotationHandler(deps: RotationDependencies): (event: unknown) => Promise<void> {
  const { secrets } = deps;

  const readValue = async (
    secretId: string,
    selector: { VersionStage: string; VersionId?: string },
  ): Promise<SecretValue> => {
    const answer = await secrets.send(new GetSecretValueCommand({ SecretId: secretId, ...selector }));
    const parsed = z.safeParse(SecretValueSchema, JSON.parse(answer.SecretString ?? 'null'));
    // The issues name fields, never values: a secret's content stays out of errors and logs.
    if (!parsed.success) {
      throw new Error(
        `the secret ${secretId} (${selector.VersionStage}) is not a database secret: ${parsed.error.issues
          .map((i) => i.path.join('.') || '(value)')
          .join(', ')}`,
      );
    }
    checkUsername(parsed.data.username);
    return parsed.data;
  };

  const canSignIn = async (credentials: SecretValue): Promise<boolean> => {
    const db = deps.connect(credentials);
    try {
      await db.query('SELECT 1');
      return true;
    } catch {
      return false;
    } finally {
      await db.close().catch(() => undefined);
    }
  };

  const withConnection = async <T>(
    credentials: SecretValue,
    work: (db: Database) => Promise<T>,
  ): Promise<T> => {
    const db = deps.connect(credentials);
    try {
      return await work(db);
    } finally {
      await db.close().catch(() => undefined);
    }
  };

  const steps = {
    async createSecret(secretId: string, token: string): Promise<void> {
      const current = await readValue(secretId, { VersionStage: 'AWSCURRENT' });
      try {
        await readValue(secretId, { VersionId: token, VersionStage: 'AWSPENDING' });
        return; // created by an earlier attempt of this rotation
      } catch (error) {
        if (!(error instanceof ResourceNotFoundException)) throw error;
      }
      const { RandomPassword: password } = await secrets.send(
        new GetRandomPasswordCommand({ PasswordLength: 32, ExcludeCharacters: PASSWORD_EXCLUDED_CHARACTERS }),
      );
      if (!password) throw new Error('Secrets Manager answered no password');
      const pending: SecretValue = {
        ...current,
        username: current.masterarn ? alternateUsername(current.username) : current.username,
        password,
      };
      await secrets.send(
        new PutSecretValueCommand({
          SecretId: secretId,
          ClientRequestToken: token,
          SecretString: JSON.stringify(pending),
          VersionStages: ['AWSPENDING'],
        }),
      );
      deps.logger?.info('rotation: created the pending version', { secretId, username: pending.username });
    },

    async setSecret(secretId: string, token: string): Promise<void> {
      const pending = await readValue(secretId, { VersionId: token, VersionStage: 'AWSPENDING' });
      const current = await readValue(secretId, { VersionStage: 'AWSCURRENT' });
      if (current.masterarn) {
        // Always through the master, even when an earlier attempt set the password: the user is made what it
        // must be again (its membership, say, which testSecret checks), idempotently.
        const master = await readValue(current.masterarn, { VersionStage: 'AWSCURRENT' });
        if (master.host !== pending.host || String(master.port) !== String(pending.port)) {
          throw new Error(`the master secret ${current.masterarn} names another database than ${secretId}`);
        }
        await withConnection(master, (db) => setApplicationUser(db, pending));
      } else {
        if (await canSignIn(pending)) return; // set by an earlier attempt
        // The master user changes its own password, signed in with the current one (or the previous, when an
        // earlier rotation set the database but failed before its secret became current).
        let signedInAs = current;
        if (!(await canSignIn(current))) {
          signedInAs = await readValue(secretId, { VersionStage: 'AWSPREVIOUS' });
        }
        await withConnection(signedInAs, (db) => setOwnPassword(db, pending));
      }
      deps.logger?.info('rotation: set the pending password', { secretId, username: pending.username });
    },

    async testSecret(secretId: string, token: string): Promise<void> {
      const pending = await readValue(secretId, { VersionId: token, VersionStage: 'AWSPENDING' });
      await withConnection(pending, async (db) => {
        const { rows } = await db.query<{ member: boolean }>(
          `SELECT pg_has_role(current_user, '${APPLICATION_ROLE}', 'MEMBER') AS member`,
        );
        if (pending.masterarn && rows[0]?.member !== true) {
          throw new Error(`${pending.username} signs in but is not a member of ${APPLICATION_ROLE}`);
        }
      });
    },

    async finishSecret(secretId: string, token: string): Promise<void> {
      const { VersionIdsToStages: versions = {} } = await secrets.send(
        new DescribeSecretCommand({ SecretId: secretId }),
      );
      const current = Object.entries(versions).find(([, stages]) => stages?.includes('AWSCURRENT'))?.[0];
      if (current === token) return;
      await secrets.send(
        new UpdateSecretVersionStageCommand({
          SecretId: secretId,
          VersionStage: 'AWSCURRENT',
          MoveToVersionId: token,
          ...(current ? { RemoveFromVersionId: current } : {}),
        }),
      );
      deps.logger?.info('rotation: the new version is current', { secretId });
    },
  };

  return async (input: unknown): Promise<void> => {
    const event = z.parse(RotationEventSchema, input);
    const { SecretId: secretId, ClientRequestToken: token, Step: step } = event;
    const description = await secrets.send(new DescribeSecretCommand({ SecretId: secretId }));
    if (!description.RotationEnabled) throw new Error(`rotation is not enabled on ${secretId}`);
    const stages = description.VersionIdsToStages?.[token];
    if (!stages) throw new Error(`the secret ${secretId} has no version ${token} to rotate to`);
    if (stages.includes('AWSCURRENT')) {
      deps.logger?.info('rotation: the version is already current', { secretId, step });
      return;
    }
    if (!stages.includes('AWSPENDING')) {
      throw new Error(`the version ${token} of ${secretId} is not pending rotation`);
    }
    await steps[step](secretId, token);
  };
}

mapStacksWhenBundled(import.meta.url);

const DATABASE_NAME = process.env.DATABASE_NAME ?? 'contracts';

/** The deployed function: Secrets Manager through its VPC endpoint, the cluster over TLS. */
export const handler = rotationHandler({
  secrets: new SecretsManagerClient({}),
  connect: (credentials) => connectWithTls(credentials, DATABASE_NAME),
  logger: new Logger(),
});
