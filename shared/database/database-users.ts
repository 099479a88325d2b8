import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';
import type { Queryable } from './database.ts';
import { sql } from './database.ts';

/**
 * The database users the application runs as. The master user only migrates; the functions sign in as a
 * login user that is a member of {@link APPLICATION_ROLE} (the privileges of migration
 * 0013-application-role.sql) and nothing else. Secrets Manager rotates the application's secret between two
 * such users (`contracts_app` and `contracts_app_clone`, the alternating-users scheme), so the password
 * that signed in the functions' open sessions stays valid while the other user's changes.
 *
 * Passwords never reach the server in clear: the statements carry a SCRAM-SHA-256 verifier (RFC 5802,
 * RFC 7677) computed here, which PostgreSQL stores as it is. So no statement log, `pg_stat_statements` or
 * Data API trace can hold a password, and the statements can be written out whole (utility statements take
 * no bind parameters) from values checked against narrow patterns.
 */

/** The role that holds the application's privileges; nobody logs in as it. */
export const APPLICATION_ROLE = 'contracts_application';

/** The application's first login user (its alternate is `contracts_app_clone`). */
export const APPLICATION_USER = 'contracts_app';

/** An unquoted PostgreSQL identifier that needs no quoting: what the users here are called. */
const USERNAME = /^[a-z_][a-z0-9_]{0,62}$/;

/**
 * The characters a password may hold: printable ASCII. SCRAM prepares passwords with SASLprep (RFC 4013),
 * which leaves these unchanged, so the verifier computed here is the one PostgreSQL would compute.
 */
const PRINTABLE = /^[\x21-\x7e]{1,4096}$/;

/** The shortest password a database user of this platform gets (Secrets Manager generates 32 characters). */
const MIN_PASSWORD_LENGTH = 16;

/** What PostgreSQL stores for a SCRAM-SHA-256 password: `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`. */
const VERIFIER = /^SCRAM-SHA-256\$\d{4,7}:[A-Za-z0-9+/]+={0,2}\$[A-Za-z0-9+/]+={0,2}:[A-Za-z0-9+/]+={0,2}$/;

/** PostgreSQL's own default (`scram_iterations`). */
const SCRAM_ITERATIONS = 4096;

/**
 * Characters a generated password leaves out: those that break connection strings, shell quoting or
 * PostgreSQL literals when someone pastes a password by hand (the code itself passes any safely).
 */
export const PASSWORD_EXCLUDED_CHARACTERS = ` %+~\`#$&*()|[]{}:;<>?!'/@"\\`;

/** A login user's name and password, as a Secrets Manager database secret holds them. */
export interface LoginCredentials {
  readonly username: string;
  readonly password: string;
}

/** Refuses a user name that is not a plain identifier (it is written into statements). */
export function checkUsername(username: string): string {
  if (!USERNAME.test(username)) {
    throw new Error(
      `not a database user name this platform creates: ${JSON.stringify(username.slice(0, 80))}`,
    );
  }
  return username;
}

/**
 * The SCRAM-SHA-256 verifier of `password` (RFC 5802 §3: SaltedPassword = PBKDF2-HMAC-SHA-256(password,
 * salt, i); StoredKey = SHA-256(HMAC(SaltedPassword, "Client Key")); ServerKey = HMAC(SaltedPassword,
 * "Server Key")), in PostgreSQL's format.
 */
export function scramSha256Verifier(
  password: string,
  options: { salt?: Buffer; iterations?: number } = {},
): string {
  if (!PRINTABLE.test(password))
    throw new Error('a SCRAM password here is 1 to 4096 printable ASCII characters');
  const salt = options.salt ?? randomBytes(16);
  const iterations = options.iterations ?? SCRAM_ITERATIONS;
  const salted = pbkdf2Sync(password, salt, iterations, 32, 'sha256');
  const clientKey = createHmac('sha256', salted).update('Client Key').digest();
  const storedKey = createHash('sha256').update(clientKey).digest();
  const serverKey = createHmac('sha256', salted).update('Server Key').digest();
  const verifier = `SCRAM-SHA-256$${iterations}:${salt.toString('base64')}$${storedKey.toString('base64')}:${serverKey.toString('base64')}`;
  if (!VERIFIER.test(verifier)) throw new Error('computed an ill-formed SCRAM verifier');
  return verifier;
}

/** Refuses a password too short for a database user of this platform. */
function checkPassword(password: string): string {
  if (password.length < MIN_PASSWORD_LENGTH) {
    throw new Error(`a database password must have at least ${MIN_PASSWORD_LENGTH} characters`);
  }
  return password;
}

/**
 * The other user of the alternating pair: `x` ↔ `x_clone` (the suffix of Secrets Manager's multi-user
 * rotation templates, so an operator recognises the scheme).
 */
export function alternateUsername(username: string): string {
  checkUsername(username);
  return username.endsWith('_clone')
    ? username.slice(0, -'_clone'.length)
    : checkUsername(`${username}_clone`);
}

/** Whether the login user exists. */
export async function loginUserExists(db: Queryable, username: string): Promise<boolean> {
  const { rows } = await db.query('SELECT 1 AS found FROM pg_roles WHERE rolname = :name', {
    name: sql.text(checkUsername(username)),
  });
  return rows.length > 0;
}

/**
 * Makes `credentials.username` an application user signing in with `credentials.password`: created (a
 * member of {@link APPLICATION_ROLE} and nothing else) when missing, its password set when it exists.
 * With `keepExistingPassword`, a user that exists keeps its password (the deployment uses it: once created,
 * a user's password belongs to the rotation). Answers whether the user was created.
 */
export async function setApplicationUser(
  db: Queryable,
  credentials: LoginCredentials,
  options: { keepExistingPassword?: boolean } = {},
): Promise<{ created: boolean }> {
  const username = checkUsername(credentials.username);
  const verifier = scramSha256Verifier(checkPassword(credentials.password));
  if (await loginUserExists(db, username)) {
    if (!options.keepExistingPassword) {
      await db.query(`ALTER ROLE ${username} WITH LOGIN PASSWORD '${verifier}'`);
    }
    const { rows } = await db.query<{ member: boolean }>(
      `SELECT EXISTS (
         SELECT 1 FROM pg_auth_members m
         JOIN pg_roles r ON r.oid = m.roleid JOIN pg_roles u ON u.oid = m.member
         WHERE r.rolname = :role AND u.rolname = :name
       ) AS member`,
      { role: sql.text(APPLICATION_ROLE), name: sql.text(username) },
    );
    if (rows[0]?.member !== true) await db.query(`GRANT ${APPLICATION_ROLE} TO ${username}`);
    return { created: false };
  }
  // Created a member of the role in one statement. Roles belong to the cluster: another database's
  // deployment (a shared test server) may create the same user meanwhile, a member all the same.
  await db.query(
    `DO $$ BEGIN
       CREATE ROLE ${username} WITH LOGIN PASSWORD '${verifier}' IN ROLE ${APPLICATION_ROLE};
     EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
     END $$`,
  );
  return { created: true };
}

/** Sets the password of the user signed in on `db` (single-user rotation: the master user). */
export async function setOwnPassword(db: Queryable, credentials: LoginCredentials): Promise<void> {
  const username = checkUsername(credentials.username);
  await db.query(
    `ALTER ROLE ${username} WITH PASSWORD '${scramSha256Verifier(checkPassword(credentials.password))}'`,
  );
}
