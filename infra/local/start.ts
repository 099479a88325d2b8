import { createServer } from 'node:net';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { LocalStack } from './local-stack.ts';

/**
 * `npm start`: the whole API locally. PORT (default 3000), LOCAL_DATA_DIR (default .local/),
 * DATABASE_URL (a real PostgreSQL instead of the embedded one), --data-api (every statement through the
 * Data API emulator and the production adapter).
 *
 * SIGINT or SIGTERM, to this process or to the npm (and tsx) that started it, stops everything the stack
 * runs in this process (server, embedded PostgreSQL, dynalite, simulated EC2 and enclaves, scheduled jobs)
 * and says so; a signal during startup stops the stack as soon as it is up. A port already in use is one
 * sentence and exit status 1, before anything is opened.
 */
const HOST = '127.0.0.1';
/** How long a clean stop may take before the process gives up on it (exit status 1). */
const STOP_TIMEOUT_MS = 15_000;

// First of all, so that a signal at any moment ends in a clean stop rather than Node's default exit.
const stopSignal = new Promise<NodeJS.Signals>((resolveSignal) => {
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => resolveSignal(signal));
});

const { values } = parseArgs({ options: { 'data-api': { type: 'boolean', default: false } } });
const port = portFrom(process.env.PORT);
const dataDir = resolve(process.env.LOCAL_DATA_DIR ?? '.local');
const viaDataApi = values['data-api'] || process.env.LOCAL_DATA_API === '1';

const taken = await listenProblem(port);
if (taken) fail(taken);

// Loaded once the port is known to be free: the stack's modules (PGlite, the AWS SDK) take seconds to load.
const { startLocalStack } = await import('./local-stack.ts');
const { SEEDED_IDENTITIES, seededSubject } = await import('./seed.ts');
let stack: LocalStack;
try {
  stack = await startLocalStack({
    dataDir,
    port,
    databaseUrl: process.env.DATABASE_URL || undefined,
    viaDataApi,
    requestLog: true,
  });
} catch (error) {
  // The port was free a moment ago; another process may have taken it since.
  const problem = listenProblemOf(error, port);
  if (problem) fail(problem);
  throw error;
}

const database = process.env.DATABASE_URL ? 'PostgreSQL (DATABASE_URL)' : `embedded PostgreSQL in ${dataDir}`;
console.log(`database: ${database}${viaDataApi ? ' via the local Data API emulator' : ''}`);
console.log(
  'bearer tokens for the seeded identities (valid 12 h; mint more with `npm run --silent token -- <name>`):',
);
for (const s of SEEDED_IDENTITIES) {
  console.log(`  ${s.name.padEnd(9)} ${s.id}  ${await stack.issuer.mint(seededSubject(s.name))}`);
}
console.log(`listening on ${stack.url}`);

const signal = await stopSignal;
console.log(`${signal}: stopping the local stack…`);
const timeout = setTimeout(() => {
  console.error(`the local stack did not stop within ${STOP_TIMEOUT_MS / 1000} s; exiting anyway`);
  process.exit(1);
}, STOP_TIMEOUT_MS);
timeout.unref();
try {
  await stack.close();
} catch (error) {
  console.error(`the local stack failed while stopping: ${(error as Error).message}`);
  process.exit(1);
}
console.log('stopped: the server, the database and the local AWS stand-ins are closed');
process.exit(0);

/** PORT as a TCP port; anything else ends the start with a usage error (exit status 2). */
function portFrom(text: string | undefined): number {
  if (text === undefined || text === '') return 3000;
  const value = /^\d{1,5}$/.test(text) ? Number(text) : Number.NaN;
  if (!(value <= 65_535)) {
    console.error(`PORT=${text.slice(0, 40)} is not a TCP port: set PORT to a number from 0 to 65535`);
    process.exit(2);
  }
  return value;
}

/** Whether the dev server could listen on `port`, tried before the database and the rest are opened. */
function listenProblem(port: number): Promise<string | undefined> {
  return new Promise((resolveProblem) => {
    const probe = createServer();
    probe.once('error', (error) => resolveProblem(listenProblemOf(error, port) ?? (error as Error).message));
    probe.listen({ port, host: HOST, exclusive: true }, () => probe.close(() => resolveProblem(undefined)));
  });
}

/** The sentence for an error of `listen`, when it is one a person can act on. */
function listenProblemOf(error: unknown, port: number): string | undefined {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'EADDRINUSE')
    return `port ${port} on ${HOST} is already in use: stop the other process or set PORT to a free port (e.g. PORT=${port === 65_535 ? 3001 : port + 1} npm start)`;
  if (code === 'EACCES')
    return `port ${port} on ${HOST} needs privileges this process does not have: set PORT to a port above 1023`;
  return undefined;
}

function fail(sentence: string): never {
  console.error(sentence);
  process.exit(1);
}
