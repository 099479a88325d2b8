import { resolve } from 'node:path';
import { subjectFor } from './seed.ts';
import { IssuerKeyMissingError, LocalIssuer } from './services/cognito/local-auth.ts';

/**
 * `npm run --silent token -- <name-or-identity-id>`: prints a bearer token and nothing else. It signs with
 * the issuer key `npm start` keeps in LOCAL_DATA_DIR (default .local/) and never creates one: a token from
 * a key the running server does not know would only be refused, with nothing to say why.
 */
const who = process.argv[2];
const subject = who ? subjectFor(who) : undefined;
if (!subject) {
  console.error('usage: npm run --silent token -- <provider|consumer|admin|auditor|outsider|identity-id>');
  process.exit(2);
}
const dataDir = resolve(process.env.LOCAL_DATA_DIR ?? '.local');
let issuer: LocalIssuer;
try {
  issuer = LocalIssuer.load(dataDir);
} catch (error) {
  if (!(error instanceof IssuerKeyMissingError)) throw error;
  const from =
    process.env.LOCAL_DATA_DIR === undefined ? 'the default, LOCAL_DATA_DIR unset' : 'from LOCAL_DATA_DIR';
  console.error(
    `npm run token: no local issuer key in ${dataDir} (${from}). Run \`npm start\` first with the same LOCAL_DATA_DIR ` +
      '(export it in both terminals): the token must be signed with the key the running server checks.',
  );
  process.exit(1);
}
process.stdout.write(`${await issuer.mint(subject)}\n`);
