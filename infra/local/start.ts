import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { startLocalStack } from './local-stack.ts';
import { SEEDED_IDENTITIES, seededSubject } from './seed.ts';

/**
 * `npm start`: the whole API locally. PORT (default 3000), LOCAL_DATA_DIR (default .local/),
 * DATABASE_URL (a real PostgreSQL instead of the embedded one), --data-api (every statement through the
 * Data API emulator and the production adapter).
 */
const { values } = parseArgs({ options: { 'data-api': { type: 'boolean', default: false } } });
const port = Number(process.env.PORT ?? 3000);
const dataDir = resolve(process.env.LOCAL_DATA_DIR ?? '.local');

const viaDataApi = values['data-api'] || process.env.LOCAL_DATA_API === '1';
const stack = await startLocalStack({
  dataDir,
  port,
  databaseUrl: process.env.DATABASE_URL || undefined,
  viaDataApi,
});

const database = process.env.DATABASE_URL ? 'PostgreSQL (DATABASE_URL)' : `embedded PostgreSQL in ${dataDir}`;
console.log(`database: ${database}${viaDataApi ? ' via the local Data API emulator' : ''}`);
console.log(
  'bearer tokens for the seeded identities (valid 12 h; mint more with `npm run --silent token -- <name>`):',
);
for (const s of SEEDED_IDENTITIES) {
  console.log(`  ${s.name.padEnd(9)} ${s.id}  ${await stack.issuer.mint(seededSubject(s.name))}`);
}
console.log(`listening on ${stack.url}`);

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    stack.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  });
}
