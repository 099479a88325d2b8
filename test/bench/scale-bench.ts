/**
 * `npm run bench:scale`: lists and trails at scale. The same reads and jobs on two data sets, 10 k and 1 M
 * contracts (an enclave per 10 contracts, 10 audit records per contract; `scale-data.ts` generates them),
 * through the code the routes and the scheduled functions run (the services of `shared/` and the handlers of
 * `functions/events/` on a node-postgres `PostgresDatabase`):
 * - `GET /contracts?role=provider&status=Active&limit=20` of a provider with a busy catalogue (5% of all
 *   contracts): the first page, and the page 500 pages deep reached through the cursors (the 10 k set holds
 *   fewer pages: its deepest full one);
 * - `GET /enclaves?contractId=…` of a contract with 100 enclaves;
 * - `GET /audit?entityId=…` of a contract whose chain holds 10 000 records: its first page, and its last
 *   (which holds the head, checked against the signed checkpoint);
 * - the expiry sweep (`functions/events/expire-contracts.ts`) with 100 contracts due, then the checkpoint
 *   job (`functions/events/checkpoint-audit.ts`) over the heads those expiries moved, five times each;
 * - beyond the list (marked `+`): the last page of the long trail, the busy provider's default
 *   `GET /contracts` (both roles, every status), and an auditor's `GET /contracts?status=Expired`.
 * Each read runs on both data sets in turn, in rounds, so that the load of the (shared) machine weighs on
 * both alike. Target: every p50 at 1 M within 2 × its p50 at 10 k. The plans of every SELECT each of them issues
 * (`EXPLAIN (ANALYZE, BUFFERS)` as auto_explain reports it for the prepared statement, generic or custom
 * plan as PostgreSQL chose) go to a file the summary names. The last line is
 * `scale: worst p50(1M)/p50(10k)=<ratio>`.
 *
 * Its own PostgreSQL server (the installed binaries: `PG_BIN`, else the newest
 * /usr/lib/postgresql/<version>/bin, else PATH) on a data directory kept between runs, under
 * `BENCH_SCALE_DIR` (default `<os temp dir>/enclave-contracts-bench-scale`) in a folder named after the
 * server's major version, the migrations and the generator's version: a change to any of them generates
 * the data again (older folders are removed). The sweeps expire contracts, so a data set whose live
 * contracts run short is generated again. `BENCH_SCALE_CONTRACTS` (default `10000,1000000`) sets the two
 * sizes. Progress goes to stderr, the summary alone to stdout (see `bench-output.ts`).
 */

import { spawnSync } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { getAuditTrail } from '../../shared/audit/audit-service.ts';
import { listContracts } from '../../shared/contracts/contract-service.ts';
import { type Database, type SqlParams, sql } from '../../shared/database/database.ts';
import { loadMigrations } from '../../shared/database/migrate.ts';
import { bindPositional } from '../../shared/database/positional-binding.ts';
import { PostgresDatabase } from '../../shared/database/postgres-database.ts';
import type { Identity } from '../../shared/domain/identity.ts';
import { listEnclaves } from '../../shared/enclaves/enclave-service.ts';
import {
  AuditQuerySchema,
  ListContractsQuerySchema,
  ListEnclavesQuerySchema,
} from '../../shared/http/api-schemas.ts';
import { findIdentity } from '../../shared/identities/identity-store.ts';
import type { Dependencies } from '../../shared/runtime/dependencies.ts';
import { useRuntime } from '../../shared/runtime/runtime.ts';
import { LocalSigner } from '../../shared/signing/local-signer.ts';
// @ts-expect-error: a plain ESM helper shared with the test runner, without type declarations
import { findPgBin, startPersistentPostgresServer } from '../support/postgres-server.mjs';
import { progress, summary } from './bench-output.ts';
import {
  DATA_AS_OF,
  GENERATOR_VERSION,
  generateScaleData,
  type ScaleDataSet,
  scaleSpec,
} from './scale-data.ts';

const step = (line: string) => progress('bench:scale', line);
const SIZES = (process.env.BENCH_SCALE_CONTRACTS ?? '10000,1000000').split(',').map(Number);
if (SIZES.length !== 2 || SIZES.some((n) => !Number.isSafeInteger(n) || n < 200) || SIZES[0]! >= SIZES[1]!) {
  console.error('BENCH_SCALE_CONTRACTS must be two increasing sizes of at least 200, e.g. 10000,1000000');
  process.exit(2);
}
const ROOT = process.env.BENCH_SCALE_DIR ?? join(tmpdir(), 'enclave-contracts-bench-scale');
/** Timed runs of each read (after WARMUP untimed ones); of each job. */
const RUNS = 200;
const AUDIT_RUNS = 60;
const WARMUP = 20;
const SWEEPS = 5;
const DUE_PER_SWEEP = 100;
const DEEP_PAGE = 500;
const AUDITOR_ID = '44444444-4444-4444-8444-444444444444';

const label = (n: number) => (n >= 1_000_000 ? `${n / 1_000_000}M` : n >= 1000 ? `${n / 1000}k` : String(n));

// ---------------------------------------------------------------------------------------------------------
// The server and the data sets

const bin: string | undefined = findPgBin();
if (!bin) {
  console.error('bench:scale needs a PostgreSQL server: install the postgresql package (or set PG_BIN)');
  process.exit(2);
}
const psql = join(bin, 'psql');
const pgVersion = /(\d+)/.exec(
  spawnSync(join(bin, 'pg_ctl'), ['--version'], { encoding: 'utf8' }).stdout,
)?.[1];
const migrations = await loadMigrations();
const migrationsHash = createHash('sha256')
  .update(migrations.map((m) => `${m.name}\n${m.script}`).join('\n'))
  .digest('hex')
  .slice(0, 12);
const key = `pg${pgVersion}-m${migrations.length}-${migrationsHash}-g${GENERATOR_VERSION}`;
const dir = join(ROOT, key);
mkdirSync(ROOT, { recursive: true });
for (const other of readdirSync(ROOT)) {
  if (other !== key && /^pg\d+-m\d+-[0-9a-f]{12}-g\d+$/.test(other)) {
    step(`removing data generated for another schema or generator: ${join(ROOT, other)}`);
    rmSync(join(ROOT, other), { recursive: true, force: true });
  }
}
mkdirSync(dir, { recursive: true });
const signer = await LocalSigner.create({ keyFile: join(dir, 'platform-key.pem') });

step(`PostgreSQL ${pgVersion}: the server on ${join(dir, 'pg')}`);
const server = await startPersistentPostgresServer(join(dir, 'pg'), [
  'shared_buffers=1GB',
  'maintenance_work_mem=1GB',
  // WAL only as far as the server needs it: the data are regenerated rather than recovered.
  'wal_level=minimal',
  'max_wal_senders=0',
  'max_wal_size=2GB',
  'checkpoint_timeout=30min',
  'fsync=off',
  'synchronous_commit=off',
  'full_page_writes=off',
  'max_connections=50',
]);
let stopped = false;
const stopServer = () => {
  if (stopped) return;
  stopped = true;
  step('stopping the server (the data stay)');
  server.stop();
};
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    step(`${signal}: stopping`);
    stopServer();
    process.exit(130);
  });
}
const urlOf = (database: string) => {
  const url = new URL(server.url);
  url.pathname = `/${database}`;
  return url.href;
};
const admin = new PostgresDatabase(server.url, { max: 1 });

/** A data set of `contracts` contracts: the stored one when complete and not used up, else a new one. */
async function dataSet(contracts: number): Promise<{ name: string; data: ScaleDataSet; reused: boolean }> {
  const name = `scale_${contracts}`;
  const marker = join(dir, `${name}.json`);
  const { rows } = await admin.query('SELECT 1 FROM pg_database WHERE datname = :name', {
    name: sql.text(name),
  });
  if (rows.length && existsSync(marker)) {
    const data = JSON.parse(readFileSync(marker, 'utf8')) as ScaleDataSet;
    const db = new PostgresDatabase(urlOf(name), { max: 1 });
    const { rows: live } = await db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM contracts WHERE status IN ('Active', 'Suspended') AND valid_until < '2090-01-01'`,
    );
    await db.close();
    if (live[0]!.n >= SWEEPS * DUE_PER_SWEEP) return { name, data, reused: true };
    step(
      `${name}: fewer than ${SWEEPS * DUE_PER_SWEEP} live contracts left for the sweeps: generating it again`,
    );
  }
  rmSync(marker, { force: true });
  await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  await admin.query(`CREATE DATABASE ${name}`);
  const started = performance.now();
  const db = new PostgresDatabase(urlOf(name), { max: 1 });
  const generated = await generateScaleData(db, urlOf(name), scaleSpec(contracts), {
    psql,
    signer,
    progress: (line) => step(`${name}: ${line}`),
  });
  await db.close();
  const data = {
    ...generated,
    seconds: { ...generated.seconds, total: Math.round((performance.now() - started) / 100) / 10 },
  };
  writeFileSync(marker, JSON.stringify(data, null, 2));
  return { name, data, reused: false };
}

// ---------------------------------------------------------------------------------------------------------
// Measuring

/** The dependencies every service call and handler sees; `current` points at the data set being measured. */
let current: Dependencies;
const deps: Dependencies = {
  get db() {
    return current.db;
  },
  get signer() {
    return current.signer;
  },
  now: () => current.now(),
  newId: randomUUID,
  region: 'eu-central-1',
};
useRuntime(deps);
const { handler: expiryHandler } = await import('../../functions/events/expire-contracts.ts');
const { handler: checkpointHandler } = await import('../../functions/events/checkpoint-audit.ts');

interface Statement {
  readonly sql: string;
  readonly params: SqlParams | undefined;
}

/** `db`, recording each statement it is given. */
function recording(db: Database, into: Map<string, Statement>): Database {
  return {
    query: (text, params) => {
      into.set(text, { sql: text, params });
      return db.query(text, params);
    },
    transaction: (work) =>
      db.transaction((tx) =>
        work({
          query: (text, params) => {
            into.set(text, { sql: text, params });
            return tx.query(text, params);
          },
        }),
      ),
    close: () => db.close(),
  };
}

const p50 = (samples: readonly number[]) =>
  [...samples].sort((a, b) => a - b)[Math.floor(samples.length / 2)]!;

/** One data set under measurement: its dependencies and what was measured on it. */
interface Scale {
  readonly contracts: number;
  readonly name: string;
  readonly data: ScaleDataSet;
  readonly reused: boolean;
  readonly db: PostgresDatabase;
  readonly deps: Dependencies;
  readonly reads: Map<string, Read>;
  readonly jobs: Record<'sweep' | 'checkpoint', Job>;
}

interface Read {
  readonly run: () => Promise<unknown>;
  readonly samples: number[];
  readonly statements: Statement[];
  readonly note?: string;
}

interface Job {
  readonly samples: number[];
  rows: number;
  readonly statements: Map<string, Statement>;
}

/** Runs `work` on `scale`'s data set (the services and handlers read `deps`). */
async function on<T>(
  scale: Scale,
  work: () => Promise<T>,
  db: Database = scale.db,
  at = DATA_AS_OF,
): Promise<T> {
  current = { ...scale.deps, db, now: () => new Date(at) };
  try {
    return await work();
  } finally {
    current = scale.deps;
  }
}

/**
 * Each read on both data sets in turn, ten rounds of a tenth of the runs each, so that a change in the
 * machine's load (it is shared) weighs on both sizes alike; then once more recording its statements.
 */
async function measureReads(scales: readonly Scale[], names: readonly string[]): Promise<void> {
  for (const name of names) {
    const runs = name.startsWith('GET /audit') ? AUDIT_RUNS : RUNS;
    step(`${name}: ${WARMUP} warm-up and ${runs} timed calls on each data set, interleaved`);
    for (const scale of scales) {
      const read = scale.reads.get(name)!;
      await on(scale, async () => {
        for (let i = 0; i < WARMUP; i++) await read.run();
      });
    }
    for (let round = 0; round < 10; round++) {
      for (const scale of scales) {
        const read = scale.reads.get(name)!;
        await on(scale, async () => {
          for (let i = 0; i < runs / 10; i++) {
            const started = performance.now();
            await read.run();
            read.samples.push(performance.now() - started);
          }
        });
      }
    }
    for (const scale of scales) {
      const read = scale.reads.get(name)!;
      const recorded = new Map<string, Statement>();
      await on(scale, read.run, recording(scale.db, recorded));
      read.statements.push(...recorded.values());
    }
  }
}

/**
 * SWEEPS rounds, on both data sets in turn: an expiry sweep with DUE_PER_SWEEP contracts due (the clock
 * set to the instant the next ones fall due), then the checkpoint job over what it changed.
 */
async function measureJobs(scales: readonly Scale[]): Promise<void> {
  for (const scale of scales) {
    // Heads a previous run left unanchored (none, normally) would count as this run's work.
    await on(scale, checkpointHandler);
  }
  for (let run = 0; run < SWEEPS; run++) {
    for (const scale of scales) {
      const { rows } = await scale.db.query<{ valid_until: string }>(
        `SELECT valid_until FROM contracts WHERE status IN ('Active', 'Suspended')
         ORDER BY valid_until OFFSET :offset LIMIT 1`,
        { offset: sql.int(DUE_PER_SWEEP - 1) },
      );
      const dueAt = Date.parse(rows[0]!.valid_until);
      const last = run === SWEEPS - 1;
      const { sweep, checkpoint } = scale.jobs;
      let started = performance.now();
      const swept = await on(
        scale,
        expiryHandler,
        last ? recording(scale.db, sweep.statements) : scale.db,
        dueAt,
      );
      sweep.samples.push(performance.now() - started);
      sweep.rows = swept.expired;
      started = performance.now();
      const anchored = await on(
        scale,
        checkpointHandler,
        last ? recording(scale.db, checkpoint.statements) : scale.db,
        dueAt,
      );
      checkpoint.samples.push(performance.now() - started);
      checkpoint.rows = anchored.heads;
    }
  }
}

/**
 * The plan of every SELECT among `statements`, as auto_explain reports it for a prepared statement run as
 * the adapter runs it (after five executions PostgreSQL may settle on a generic plan; the seventh is
 * explained). Writes are not explained (ANALYZE would apply them).
 */
async function explainAll(url: string, statements: readonly Statement[]): Promise<string[]> {
  const client = new pg.Client({ connectionString: url, options: '-c TimeZone=UTC' });
  await client.connect();
  let notices: string[] = [];
  client.on('notice', (n) => notices.push(n.message ?? ''));
  await client.query("LOAD 'auto_explain'");
  for (const setting of ['log_analyze = on', 'log_buffers = on', 'log_timing = on', 'log_level = notice']) {
    await client.query(`SET auto_explain.${setting}`);
  }
  await client.query('SET client_min_messages = notice');
  const out: string[] = [];
  for (const [i, st] of statements.entries()) {
    if (!/^\s*SELECT\b/i.test(st.sql)) continue;
    const { text, values } = bindPositional(st.sql, st.params);
    const name = `explain_${i}`;
    for (let r = 0; r < 6; r++) await client.query({ name, text, values });
    await client.query('SET auto_explain.log_min_duration = 0');
    notices = [];
    await client.query({ name, text, values });
    await client.query('SET auto_explain.log_min_duration = -1');
    const { rows } = await client.query(
      'SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE name = $1',
      [name],
    );
    const chosen = rows[0]?.generic_plans > 0 ? 'generic plan' : 'custom plan';
    out.push(`(${chosen}; parameters ${JSON.stringify(values)})\n${notices.join('\n')}`);
  }
  await client.end();
  return out;
}

const READS = {
  first: 'GET /contracts?role=provider&status=Active&limit=20',
  deep: 'GET /contracts?…&cursor=… (page 500)',
  enclaves: 'GET /enclaves?contractId=… (100 enclaves)',
  auditFirst: 'GET /audit?entityId=… (10k records)',
  auditLast: 'GET /audit?entityId=…&afterSeq=9900 (+)',
  partyList: 'GET /contracts?limit=20 (+, both roles)',
  auditorList: 'GET /contracts?status=Expired (+, auditor)',
} as const;

/** The data set of `contracts` contracts, ready to measure: its reads built and checked once. */
async function prepare(contracts: number): Promise<Scale> {
  const { name, data, reused } = await dataSet(contracts);
  step(`${name}: ${reused ? 'reusing the stored data set' : 'generated'}; preparing the reads`);
  const db = new PostgresDatabase(urlOf(name), { max: 2 });
  const scale: Scale = {
    contracts,
    name,
    data,
    reused,
    db,
    deps: { db, signer, now: () => new Date(DATA_AS_OF), newId: randomUUID, region: 'eu-central-1' },
    reads: new Map(),
    jobs: {
      sweep: { samples: [], rows: 0, statements: new Map() },
      checkpoint: { samples: [], rows: 0, statements: new Map() },
    },
  };
  const read = (label: string, run: () => Promise<unknown>, note?: string) =>
    scale.reads.set(label, { run, samples: [], statements: [], ...(note ? { note } : {}) });
  await on(scale, async () => {
    const provider = (await findIdentity(db, data.busyProviderId)) as Identity;
    const auditor = (await findIdentity(db, AUDITOR_ID)) as Identity;

    const listQuery = (cursor?: string) =>
      ListContractsQuerySchema.parse({
        role: 'provider',
        status: 'Active',
        limit: '20',
        ...(cursor ? { cursor } : {}),
      });
    const first = listQuery();
    const page1 = await listContracts(deps, provider, first);
    if (
      page1.body.items.length !== 20 ||
      page1.body.items.some((c) => c.status !== 'Active' || c.providerId !== provider.id)
    ) {
      throw new Error('the first page is not 20 Active contracts of the provider');
    }
    read(READS.first, () => listContracts(deps, provider, first));

    // Page 500, or (a smaller set holds fewer) its deepest full page: a page of as many rows as at 1 M.
    step(`${name}: walking ${DEEP_PAGE} pages through the cursors`);
    let cursor = page1.body.nextCursor;
    let deep = { query: first, page: 1 };
    for (let page = 2; page <= DEEP_PAGE && cursor; page++) {
      const query = listQuery(cursor);
      const { body } = await listContracts(deps, provider, query);
      if (body.items.length === 20) deep = { query, page };
      cursor = body.nextCursor;
    }
    read(
      READS.deep,
      () => listContracts(deps, provider, deep.query),
      deep.page < DEEP_PAGE ? `page ${deep.page}, the deepest full one` : undefined,
    );

    const enclaveQuery = ListEnclavesQuerySchema.parse({ contractId: data.busyEnclaveContractId });
    const enclaves = await listEnclaves(deps, provider, enclaveQuery);
    if (enclaves.body.items.length !== 20) throw new Error('the busy contract does not list 20 enclaves');
    read(READS.enclaves, () => listEnclaves(deps, provider, enclaveQuery));

    const chain = data.spec.longChainRecords;
    const auditFirst = AuditQuerySchema.parse({ entityId: data.longChainContractId });
    const auditLast = AuditQuerySchema.parse({
      entityId: data.longChainContractId,
      afterSeq: String(chain - 100),
    });
    const trailFirst = (await getAuditTrail(deps, auditor, auditFirst)).body;
    const trailLast = (await getAuditTrail(deps, auditor, auditLast)).body;
    if (
      !trailFirst.verification.valid ||
      !trailLast.verification.valid ||
      trailLast.verification.anchored !== true
    ) {
      const found = JSON.stringify([trailFirst.verification, trailLast.verification]);
      throw new Error(`the long chain does not verify: ${found}`);
    }
    read(READS.auditFirst, () => getAuditTrail(deps, auditor, auditFirst));
    read(READS.auditLast, () => getAuditTrail(deps, auditor, auditLast));

    const partyQuery = ListContractsQuerySchema.parse({});
    if ((await listContracts(deps, provider, partyQuery)).body.items.length !== 20) {
      throw new Error('the provider does not list 20 contracts');
    }
    read(READS.partyList, () => listContracts(deps, provider, partyQuery));
    const auditorQuery = ListContractsQuerySchema.parse({ status: 'Expired' });
    if ((await listContracts(deps, auditor, auditorQuery)).body.items.length !== 20) {
      throw new Error('the auditor does not list 20 Expired contracts');
    }
    read(READS.auditorList, () => listContracts(deps, auditor, auditorQuery));
  });
  return scale;
}

const plans: string[] = [];
const scales: Scale[] = [];
const sizes = new Map<string, string>();
try {
  for (const n of SIZES) scales.push(await prepare(n));
  await measureReads(scales, Object.values(READS));
  step(`${SWEEPS} rounds of an expiry sweep with ${DUE_PER_SWEEP} contracts due, then the checkpoint job`);
  await measureJobs(scales);
  for (const scale of scales) {
    step(`${scale.name}: EXPLAIN (ANALYZE, BUFFERS) of every SELECT they issued`);
    plans.push(`######## ${label(scale.contracts)} contracts (database ${scale.name})\n`);
    const explained: [string, Statement[]][] = [
      ...[...scale.reads].map(([what, r]): [string, Statement[]] => [what, r.statements]),
      ['expiry sweep (after its last run)', [...scale.jobs.sweep.statements.values()]],
      ['checkpoint job (after its last run)', [...scale.jobs.checkpoint.statements.values()]],
    ];
    for (const [what, statements] of explained) {
      plans.push(`==== ${what}\n${(await explainAll(urlOf(scale.name), statements)).join('\n\n')}\n`);
    }
  }
  for (const scale of scales) {
    const { rows } = await admin.query<{ size: string }>(
      'SELECT pg_size_pretty(pg_database_size(:name)) AS size',
      { name: sql.text(scale.name) },
    );
    sizes.set(scale.name, rows[0]!.size);
    await scale.db.close();
  }
} finally {
  await admin.close().catch(() => undefined);
  stopServer();
}
const plansFile = join(dir, 'plans.txt');
writeFileSync(plansFile, plans.join('\n'));

// ---------------------------------------------------------------------------------------------------------
// Summary

const [small, large] = scales as [Scale, Scale];
const S = label(small.contracts);
const L = label(large.contracts);
summary(`PostgreSQL ${pgVersion}, data sets in ${dir}`);
for (const scale of scales) {
  const c = scale.data.counts;
  const phases = Object.entries(scale.data.seconds)
    .filter(([k]) => k !== 'total')
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
  summary(
    `${label(scale.contracts)}: ${c.contracts} contracts, ${c.enclaves} enclaves, ${c.audit_log} audit records,`,
    `${c.identities} identities; ${sizes.get(scale.name)}; ${scale.reused ? 'reused' : 'generated now'},`,
    `generation took ${scale.data.seconds.total} s (${phases})`,
  );
}
summary('');
const ms = (v: number) => v.toFixed(2);
const ratios: number[] = [];
summary(
  'query (p50 of each call, as the route runs it)'.padEnd(50),
  `${S} ms`.padStart(9),
  `${L} ms`.padStart(9),
  'ratio'.padStart(7),
);
for (const [name, big] of large.reads) {
  const little = small.reads.get(name)!;
  const ratio = p50(big.samples) / p50(little.samples);
  ratios.push(ratio);
  const notes = [little.note && `${S}: ${little.note}`, big.note && `${L}: ${big.note}`].filter(Boolean);
  summary(
    name.padEnd(50),
    ms(p50(little.samples)).padStart(9),
    ms(p50(big.samples)).padStart(9),
    ratio.toFixed(2).padStart(7),
    notes.length ? ` ${notes.join('; ')}` : '',
  );
}
summary('');
summary(
  `job (p50 of ${SWEEPS} runs)`.padEnd(50),
  `${S} ms`.padStart(9),
  `${L} ms`.padStart(9),
  'ratio'.padStart(7),
  `   rows touched per run, ms per row (${S} / ${L})`,
);
for (const job of ['sweep', 'checkpoint'] as const) {
  const name = job === 'sweep' ? 'expiry sweep (expire-contracts)' : 'audit checkpoint (checkpoint-audit)';
  const [a, b] = [small.jobs[job], large.jobs[job]];
  const ratio = p50(b.samples) / p50(a.samples);
  ratios.push(ratio);
  const perRow = (j: Job) => (p50(j.samples) / Math.max(j.rows, 1)).toFixed(2);
  summary(
    name.padEnd(50),
    ms(p50(a.samples)).padStart(9),
    ms(p50(b.samples)).padStart(9),
    ratio.toFixed(2).padStart(7),
    `   ${a.rows} / ${b.rows} rows, ${perRow(a)} / ${perRow(b)} ms per row`,
  );
}
summary('');
summary("(+) beyond the issue's list: the trail's last page, the provider's default list, an auditor's list");
summary(`plans (EXPLAIN ANALYZE, BUFFERS of every SELECT above): ${plansFile}`);
summary(`target: every p50(${L})/p50(${S}) <= 2`);
summary(`scale: worst p50(${L})/p50(${S})=${Math.max(...ratios).toFixed(2)}`);
