import { resolve } from 'node:path';
import { LocalIssuer } from './local-auth.ts';
import { subjectFor } from './seed.ts';

/** `npm run --silent token -- <name-or-identity-id>`: prints a bearer token and nothing else. */
const who = process.argv[2];
const subject = who ? subjectFor(who) : undefined;
if (!subject) {
  console.error('usage: npm run --silent token -- <provider|consumer|admin|auditor|outsider|identity-id>');
  process.exit(2);
}
const issuer = LocalIssuer.open(resolve(process.env.LOCAL_DATA_DIR ?? '.local'));
process.stdout.write(`${await issuer.mint(subject)}\n`);
