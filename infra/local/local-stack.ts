import { randomBytes, randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { DataApiRetryOptions } from '../../shared/database/data-api-retry.ts';
import type { Database } from '../../shared/database/database.ts';
import { APPLICATION_USER, setApplicationUser } from '../../shared/database/database-users.ts';
import { loadMigrations, migrate } from '../../shared/database/migrate.ts';
import { ringingDatabase } from '../../shared/events/doorbell.ts';
import { checkpointAuditWhenRung, expireContractsWhenDue } from '../../shared/events/doorbell-jobs.ts';
import type { EventBus } from '../../shared/events/event-bus.ts';
import { InProcessBus } from '../../shared/events/in-process-bus.ts';
import { drainOutbox, OUTBOX_PUBLISHER_SCHEDULE } from '../../shared/events/outbox-publisher.ts';
import { reportCredentialsDueForRotation } from '../../shared/identities/credential-rotation.ts';
import type { Dependencies } from '../../shared/runtime/dependencies.ts';
import { logger } from '../../shared/runtime/logger.ts';
import { useRuntime } from '../../shared/runtime/runtime.ts';
import { LocalSigner } from '../../shared/signing/local-signer.ts';
import { EnvelopeSealer, LocalDataKeys } from '../../shared/signing/secret-sealer.ts';
import { buildSigningPage, signingPageCsp } from '../signing-page/build.ts';
import { startLocalConsole } from './local-console.ts';
import {
  failOrphanedEnclaves,
  type LocalEnclaveOptions,
  type LocalEnclaves,
  startLocalEnclaves,
} from './local-enclaves.ts';
import type { AgentLogLine } from './local-parents.ts';
import { seedIdentities } from './seed.ts';
import { type DevServer, startDevServer } from './services/apigateway/dev-server.ts';
import { LocalIssuer } from './services/cognito/local-auth.ts';
import { authorizedBus } from './services/iam/authorized-ports.ts';
import { outsideAnyFunction } from './services/iam/local-caller.ts';
import { LOCAL_AWS_RESOURCES, type LocalJobName } from './services/iam/stack-policies.ts';
import type { DataApiErrorName } from './services/rds-data/data-api-emulator.ts';
import { LOCAL_REGION } from './services/stepfunctions/provisioning-definition.ts';

export interface LocalStackOptions {
  /** Where the embedded database and local keys live; undefined keeps everything in memory (tests). */
  readonly dataDir?: string | undefined;
  readonly port?: number;
  /** A real PostgreSQL server instead of the embedded one. */
  readonly databaseUrl?: string | undefined;
  /** Route every statement through the local Data API emulator and the production Data API adapter. */
  readonly viaDataApi?: boolean;
  /** Retry policy of the Data API adapter (tests shorten it). */
  readonly dataApiRetry?: Partial<DataApiRetryOptions>;
  /**
   * Run the scheduled jobs (outbox publisher, expiry sweep) in this process, as EventBridge Scheduler runs
   * them in AWS (default true). The API benchmark turns them off: in AWS they are separate functions.
   */
  readonly scheduledJobs?: boolean;
  /** Injected clock (tests of expiry). */
  readonly now?: () => Date;
  /** The local enclave platform's timings (simulated boot, local attestation wait). */
  readonly enclaves?: LocalEnclaveOptions;
  /** Log one JSON line per request, as `npm start` does (default false: tests and benchmarks). */
  readonly requestLog?: boolean;
}

export interface LocalStack {
  readonly url: string;
  readonly deps: Dependencies;
  readonly issuer: LocalIssuer;
  readonly server: DevServer;
  /** Where the outbox publisher delivers domain events locally. */
  readonly bus: InProcessBus;
  /** DynamoDB, EC2, Nitro and the provisioning state machine, locally. */
  readonly enclaves: LocalEnclaves;
  /** Publishes the outbox now (as the scheduled publisher would within a second). */
  publishEvents(): Promise<void>;
  /** With `viaDataApi`: the emulator's fault switch (e.g. `injectFaults('DatabaseResumingException', 3)`). */
  readonly dataApi?: { injectFaults(errorName: string, count: number): void; clearFaults(): void };
  close(): Promise<void>;
}

/**
 * The whole API on one machine: database, migrations, seeded identities, local keys, the dev server. When a
 * step fails (the port is taken, say), what the earlier steps started is closed before the error is thrown.
 */
export async function startLocalStack(options: LocalStackOptions = {}): Promise<LocalStack> {
  const closers: (() => Promise<void>)[] = [];
  try {
    return await start(options, closers);
  } catch (error) {
    for (const close of closers.reverse()) await close().catch(() => undefined);
    throw error;
  }
}

async function start(options: LocalStackOptions, closers: (() => Promise<void>)[]): Promise<LocalStack> {
  if (options.dataDir) mkdirSync(options.dataDir, { recursive: true });
  const { db, dataApi } = await openLocalDatabase(options, closers);
  // The platform keys behind their alias, as KMS keeps them (rotations included), persisted with the data.
  const signer = await LocalSigner.create({
    initialKeyId: LOCAL_AWS_RESOURCES.signingKeyArn,
    ...(options.dataDir ? { keyFile: join(options.dataDir, 'platform-signing-keys.json') } : {}),
  });
  // The credential key, as KMS would wrap the data keys that seal the TOTP seeds (persisted with the data).
  const secrets = new EnvelopeSealer(
    LocalDataKeys.create({
      keyId: LOCAL_AWS_RESOURCES.credentialKeyArn,
      ...(options.dataDir ? { keyFile: join(options.dataDir, 'credential-key') } : {}),
    }),
  );
  const enclaves = await startLocalEnclaves({
    ...options.enclaves,
    ...(options.dataDir ? { kmsStateFile: join(options.dataDir, 'kms-contract-keys.json') } : {}),
    // `npm start` prints what the parents' agents log, beside the gateway's request lines.
    ...(options.requestLog && !options.enclaves?.agentLog ? { agentLog: printAgentLine } : {}),
  });
  closers.push(() => enclaves.close());
  // The WebAuthn relying party: `localhost` (a browser runs passkey ceremonies on it over plain HTTP), its
  // origin the dev server's once it listens.
  const origins: string[] = [];
  const deps: Dependencies = {
    // Writes ring the doorbell, which the scheduled jobs below read before they query, as in AWS.
    db: ringingDatabase(db, enclaves.doorbellRing),
    doorbell: enclaves.doorbell,
    signer,
    platformKeys: signer,
    secrets,
    ...(enclaves.contractKeys ? { contractKeys: enclaves.contractKeys } : {}),
    relyingParty: { id: 'localhost', name: 'Enclave Contracts (local)', origins },
    now: options.now ?? (() => new Date()),
    newId: randomUUID,
    // The region the rendered definition and the simulated EC2 stand for.
    region: LOCAL_REGION,
    workflow: enclaves.workflow,
    local: enclaves.local,
  };
  useRuntime(deps);
  await seedIdentities(deps);
  // A persistent data folder outlives the in-memory EC2 and executions of the previous run.
  if (options.dataDir) await failOrphanedEnclaves(deps);
  const issuer = options.dataDir ? LocalIssuer.open(options.dataDir) : LocalIssuer.ephemeral();
  const server = await startDevServer({
    issuer,
    staticFiles: signingPageFiles(),
    iam: enclaves.gatewayIam,
    ...(options.port !== undefined ? { port: options.port } : {}),
    ...(options.requestLog ? { requestLog: true } : {}),
  });
  origins.push(localOrigin(server.url));
  // The local commands' way in (`npm run enclave`): what a workload in an enclave reaches.
  const console = await startLocalConsole({
    enclave: (id) => enclaves.enclaveConsole(id),
    dataDir: options.dataDir,
  });
  closers.push(() => console.close());
  // The schedules EventBridge Scheduler runs in AWS: the outbox is looked at every second, as the deployed
  // publisher's overlapping runs look at it (OUTBOX_PUBLISHER_SCHEDULE); faster than in AWS, an audit
  // checkpoint is signed every 10 seconds, contracts are expired every minute and credentials due for
  // rotation reported every hour. As deployed, each look
  // reads the doorbell first and queries the database only when a write rang it (shared/events/doorbell.ts).
  enclaves.attach({ deps, url: server.url });
  // The EventBridge rules, locally: provisioning starts on EnclaveCreated/EnclaveResumed.
  const bus = new InProcessBus();
  bus.subscribe((event) => outsideAnyFunction(() => enclaves.onEvent(event)));
  // The scheduled jobs run as their functions: the database as the Data API and the bus as EventBridge
  // answer as each one's role (with IAM enforced; as they are without).
  const asJob = (job: LocalJobName) => enclaves.local.asFunction?.({ job }, deps) ?? deps;
  const publisherDeps = asJob('publishOutbox');
  const publisher = {
    db: publisherDeps.db,
    doorbell: publisherDeps.doorbell ?? enclaves.doorbell,
    bus: enclaves.iam ? authorizedBus(bus, enclaves.iam.jobs.publishOutbox) : bus,
  };
  const expirer = asJob('expireContracts');
  const checkpoints = asJob('checkpointAudit');
  const rotationReport = asJob('reportCredentialRotation');
  let stopping = false;
  let background: Promise<unknown> = Promise.resolve();
  const every = (ms: number, job: () => Promise<unknown>) =>
    setInterval(() => {
      if (!stopping) background = background.then(job).catch(() => undefined);
    }, ms).unref();
  const timers =
    options.scheduledJobs === false
      ? []
      : [
          every(OUTBOX_PUBLISHER_SCHEDULE.pollMs, () =>
            drainOutbox(publisher.db, publisher.bus, {
              remainingMs: () => 0,
              reserveMs: 0,
              doorbell: publisher.doorbell,
              now: deps.now,
            }),
          ),
          every(10_000, () =>
            checkpointAuditWhenRung(checkpoints, checkpoints.doorbell ?? enclaves.doorbell),
          ),
          every(60_000, () => expireContractsWhenDue(expirer, expirer.doorbell ?? enclaves.doorbell)),
          // Daily in AWS; hourly here, so that a long-running local stack reports too.
          every(3_600_000, () => reportCredentialsDueForRotation(rotationReport)),
        ];
  return {
    url: server.url,
    deps,
    issuer,
    server,
    bus,
    enclaves,
    publishEvents: () => {
      background = background.then(() => publishPending(publisher.db, publisher.bus)).catch(() => undefined);
      return background as Promise<void>;
    },
    ...(dataApi ? { dataApi } : {}),
    async close() {
      stopping = true;
      for (const t of timers) clearInterval(t);
      await background;
      await enclaves.runner().stopAll();
      await server.close();
      for (const close of closers.reverse()) await close();
    },
  };
}

/**
 * The signing page at `/signing/` (built on its first request, then kept), with the headers a static host
 * would send: its Content-Security-Policy, no sniffing, no framing.
 */
function signingPageFiles() {
  let assets: ReturnType<typeof buildSigningPage> | undefined;
  return async (pathname: string) => {
    if (!pathname.startsWith('/signing/')) return undefined;
    assets ??= buildSigningPage();
    const asset = (await assets).get(pathname.slice('/signing/'.length) || 'index.html');
    return (
      asset && {
        ...asset,
        headers: {
          'content-security-policy': signingPageCsp(),
          'x-content-type-options': 'nosniff',
          'referrer-policy': 'no-referrer',
          'cache-control': 'no-store',
        },
      }
    );
  };
}

/** The origin a browser reaches the dev server at: `localhost`, the one host name WebAuthn allows over HTTP. */
export function localOrigin(url: string): string {
  return url.replace('//127.0.0.1:', '//localhost:');
}

const agentLogger = logger.createChild({ persistentKeys: { component: 'parent-agent' } });

/** One line of a local parent's agent, as its journal would hold it on a parent. */
function printAgentLine(line: AgentLogLine): void {
  agentLogger[line.level](line.message, { instanceId: line.instanceId, ...line.fields });
}

/**
 * Publishes until the outbox is empty, with the deployed publisher's rounds: a run with no time left to
 * wait, called every second (in AWS one run waits and looks again every second itself).
 */
async function publishPending(db: Database, bus: EventBus): Promise<void> {
  await drainOutbox(db, bus, { remainingMs: () => 0, reserveMs: 0 });
}

/**
 * The database the functions use, migrated. Through the Data API it is as deployed: the migration step signs
 * in as the master user, migrates and creates the application's user; the functions sign in with the
 * application's secret, so every statement runs with the application role's privileges only (a grant a
 * migration forgot fails the end-to-end suites here).
 */
async function openLocalDatabase(
  options: LocalStackOptions,
  closers: (() => Promise<void>)[],
): Promise<{ db: Database; dataApi?: LocalStack['dataApi'] }> {
  if (options.databaseUrl) await claimDatabase(options.databaseUrl, closers);
  if (options.databaseUrl && !options.viaDataApi) {
    const { PostgresDatabase } = await import('../../shared/database/postgres-database.ts');
    const db = new PostgresDatabase(options.databaseUrl);
    closers.push(() => db.close());
    await migrate(db, await loadMigrations());
    return { db };
  }
  if (options.viaDataApi) {
    const { PGlite } = await import('@electric-sql/pglite');
    const { pgliteBackend, postgresBackend } = await import('./services/rds-data/data-api-emulator.ts');
    const { openLocalDataApi } = await import('./services/rds-data/local-data-api.ts');
    let backend: import('./services/rds-data/data-api-emulator.ts').DataApiBackend;
    if (options.databaseUrl) {
      backend = postgresBackend(options.databaseUrl);
      closers.push(() => backend.close());
    } else {
      const pg = new PGlite(options.dataDir ? join(options.dataDir, 'pgdata') : undefined);
      closers.push(() => pg.close());
      backend = pgliteBackend(pg);
    }
    const applicationSecret = LOCAL_AWS_RESOURCES.secretArn;
    const local = await openLocalDataApi(backend, {
      ...(options.dataApiRetry ? { retry: options.dataApiRetry } : {}),
      secretUsers: { [applicationSecret]: APPLICATION_USER },
    });
    closers.push(() => local.close());
    await migrate(local.db, await loadMigrations());
    // Its password does not matter locally (the emulator takes the user from the secret's name); in AWS it
    // is the secret's, and the rotation's from then on.
    await setApplicationUser(
      local.db,
      { username: APPLICATION_USER, password: randomBytes(24).toString('base64url') },
      { keepExistingPassword: true },
    );
    return {
      db: local.withSecret(applicationSecret),
      dataApi: {
        injectFaults: (name, count) => local.emulator.injectFaults(name as DataApiErrorName, count),
        clearFaults: () => local.emulator.clearFaults(),
      },
    };
  }
  const { PgliteDatabase } = await import('../../shared/database/pglite-database.ts');
  const db = await PgliteDatabase.open(options.dataDir ? join(options.dataDir, 'pgdata') : undefined);
  closers.push(() => db.close());
  await migrate(db, await loadMigrations());
  return { db };
}

/**
 * One local stack per server database: the stack holds a session advisory lock on it while it runs, and a
 * second stack on the same database refuses to start. Two would share the outbox but not the bus: one's
 * publisher would start provisioning for the other's enclaves on its own simulated EC2 (stopped when it
 * closes, leaving them Initializing) and run the other's enforcement. In AWS every publisher delivers to
 * the one event bus, so concurrent publishers are safe there.
 */
async function claimDatabase(databaseUrl: string, closers: (() => Promise<void>)[]): Promise<void> {
  const { default: pg } = await import('pg');
  const client = new pg.Client({ connectionString: databaseUrl });
  client.on('error', () => undefined);
  await client.connect();
  closers.push(() => client.end());
  const { rows } = await client.query<{ claimed: boolean; database: string }>(
    "SELECT pg_try_advisory_lock(hashtext('enclave-contracts local stack')) AS claimed, current_database() AS database",
  );
  if (!rows[0]?.claimed) {
    throw new Error(
      `another local stack is running on database ${rows[0]?.database}: give each stack a database of its own ` +
        "(two would publish and act on each other's events)",
    );
  }
}
