import { createHash, createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  alternateUsername,
  checkUsername,
  PASSWORD_EXCLUDED_CHARACTERS,
  scramSha256Verifier,
  setApplicationUser,
  setOwnPassword,
} from '../../shared/database/database-users.ts';
import { PgliteDatabase } from '../../shared/database/pglite-database.ts';

/**
 * The values database-users.ts writes into statements (utility statements take no bind parameters): only
 * plain identifiers and SCRAM verifiers get there. The verifier's agreement with PostgreSQL's own is shown
 * against a real server in test/integration/database-rotation.test.ts.
 */
describe('database users', () => {
  it.each([
    'contracts_app; DROP TABLE contracts',
    'Contracts_app',
    '"contracts_app"',
    "contracts_app' OR '1'='1",
    '1app',
    '',
    'a'.repeat(64),
    'app-name',
  ])('refuses %j as a user name', (name) => {
    expect(() => checkUsername(name)).toThrow(/not a database user name/);
  });

  it('accepts plain identifiers up to 63 characters', () => {
    expect(checkUsername('contracts_app')).toBe('contracts_app');
    expect(checkUsername(`_${'a'.repeat(62)}`)).toHaveLength(63);
  });

  it('alternates a user with its clone, both ways, and refuses a clone name too long to exist', () => {
    expect(alternateUsername('contracts_app')).toBe('contracts_app_clone');
    expect(alternateUsername('contracts_app_clone')).toBe('contracts_app');
    expect(() => alternateUsername('a'.repeat(60))).toThrow(/not a database user name/);
  });

  it('computes the verifier of the RFC 7677 §3 exchange (password "pencil"): its keys check the proof and signature there', () => {
    const verifier = scramSha256Verifier('pencil', {
      salt: Buffer.from('W22ZaJ0SNY7soEsUEjb6gQ==', 'base64'),
      iterations: 4096,
    });
    const [, storedKey, serverKey] = /^SCRAM-SHA-256\$4096:W22ZaJ0SNY7soEsUEjb6gQ==\$([^:]+):(.+)$/.exec(
      verifier,
    )!;
    const authMessage = [
      'n=user,r=rOprNGfwEbeRWgbNEkqO',
      'r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096',
      'c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0',
    ].join(',');
    // The server's signature in the RFC, from ServerKey.
    expect(createHmac('sha256', Buffer.from(serverKey!, 'base64')).update(authMessage).digest('base64')).toBe(
      '6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=',
    );
    // The client's proof in the RFC, checked as a server checks it: ClientKey = proof XOR HMAC(StoredKey, msg).
    const proof = Buffer.from('dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=', 'base64');
    const signature = createHmac('sha256', Buffer.from(storedKey!, 'base64')).update(authMessage).digest();
    const clientKey = Buffer.from(proof.map((byte, i) => byte ^ signature[i]!));
    expect(createHash('sha256').update(clientKey).digest('base64')).toBe(storedKey);
  });

  it('differs with the salt, so two users with one password store different verifiers', () => {
    expect(scramSha256Verifier('correct horse battery'.replaceAll(' ', '-'))).not.toBe(
      scramSha256Verifier('correct horse battery'.replaceAll(' ', '-')),
    );
  });

  it.each([
    ['a space', 'abcdefgh ijklmnop'],
    ['non-ASCII (SASLprep would change it)', 'abcdefghijklmnopé'],
    ['a newline', 'abcdefghijklmnop\n'],
    ['nothing', ''],
  ])('refuses a password with %s', (_reason, password) => {
    expect(() => scramSha256Verifier(password)).toThrow(/printable ASCII/);
  });

  it('excludes from generated passwords what would break a literal or a connection string when pasted', () => {
    for (const c of ` '"\\/@:`) expect(PASSWORD_EXCLUDED_CHARACTERS).toContain(c);
  });

  it('gives no user a password under 16 characters, and leaves the database as it was', async () => {
    const db = await PgliteDatabase.open();
    try {
      await expect(
        setApplicationUser(db, { username: 'short_pw', password: 'fifteen-chars!!' }),
      ).rejects.toThrow(/at least 16 characters/);
      await expect(setOwnPassword(db, { username: 'postgres', password: 'x' })).rejects.toThrow(
        /at least 16/,
      );
      const { rows } = await db.query("SELECT 1 FROM pg_roles WHERE rolname = 'short_pw'");
      expect(rows).toEqual([]);
    } finally {
      await db.close();
    }
  });
});
