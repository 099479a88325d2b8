/**
 * `npm run bench:cold-start`: what a caller of the deployed API meets first. Synthesizes the stack (every
 * function bundled by `AppFunction`, esbuild as in a deployment) and, beside it, a floor: one RDS Data API
 * client and its command (`cold-start-floor.ts`), bundled by the same `AppFunction`. Then measures each
 * function's module init (importing its bundle with its own environment and NODE_OPTIONS, top-level awaits
 * included, in a fresh Node process: Lambda's init phase), each measurement paired with one of the floor
 * right before it, in a shuffled order each round, so that the machine's noise hits both alike.
 *
 * Beside them, the same floor bundled with the SDK's defaults (without the replacements every bundle makes),
 * to show what those replacements save.
 *
 * Prints a table (bundle and source map sizes, init p50, init/floor as the median of the paired ratios, and
 * the same ratio in CPU time, which a loaded machine disturbs far less than the clock) and
 * the last line `cold-start: N API routes, worst init/floor=X median=Y largest-kb=Z floor-kb=W` (over the
 * API routes; the workflow and event functions are in the table beside them).
 *
 * Options: `--assembly <dir>` measures an existing cloud assembly (e.g. `npm run synth`'s cdk.out, with the
 * floor missing: it is then bundled into a stack of its own here) instead of synthesizing;
 * BENCH_ROUNDS (default 15) measurements per function: the last line reports the worst of 36 medians, which
 * rises with the noise of each; 15 paired rounds keep that noise under a few hundredths on these machines.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { App, Stack } from 'aws-cdk-lib';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import { buildSync } from 'esbuild';
import {
  AppFunction,
  ESM_REQUIRE_BANNER,
  LAMBDA_ESBUILD_OPTIONS,
} from '../../infra/constructs/app-function.ts';
import { ContractsStack } from '../../infra/contracts-stack.ts';
import { WORKFLOW_STEPS } from '../../shared/enclaves/provisioning-workflow.ts';
import { ROUTES } from '../../shared/http/routes.ts';
import { progress, summary } from './bench-output.ts';
import { median } from './statistics.ts';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 15);
const STACK = 'EnclaveContracts';
const FLOOR_STACK = 'ColdStartFloor';
const step = (line: string) => progress('bench:cold-start', line);
const INIT_SCRIPT = new URL('./cold-start-init.mjs', import.meta.url).pathname;

type Kind = 'api' | 'workflow' | 'event' | 'deploy' | 'floor' | 'sdk';

interface Bundle {
  readonly name: string;
  readonly kind: Kind;
  readonly file: string;
  readonly bytes: number;
  readonly mapBytes: number;
  readonly env: Record<string, string>;
}

const { values } = parseArgs({ options: { assembly: { type: 'string' } } });
const assembly = values.assembly ?? synthesize();
const floors = floorOf(assembly);
const bundles = [...functionsOf(assembly, STACK), ...floors, sdkDefaultsFloor(floors[0]!.env)];
const floor = bundles.find((b) => b.kind === 'floor');
if (!floor) throw new Error('no floor bundle in the assembly');
const measured = bundles.filter((b) => b.kind !== 'floor');

step(`${measured.length} functions, ${ROUNDS} rounds, each measurement paired with the floor`);
interface Samples {
  readonly ms: number[];
  readonly cpuMs: number[];
  /** This function's init over the floor's measured right before it: on the clock, and in CPU time. */
  readonly ratios: number[];
  readonly cpuRatios: number[];
}
const samples = new Map<Bundle, Samples>(
  bundles.map((b) => [b, { ms: [], cpuMs: [], ratios: [], cpuRatios: [] }]),
);
for (const b of measured) initOnce(b); // each import once: the file cache warm, as on a Lambda host
for (let round = 1; round <= ROUNDS; round++) {
  step(`round ${round}/${ROUNDS}`);
  for (const b of shuffle(measured)) {
    const base = initOnce(floor);
    const init = initOnce(b);
    samples.get(floor)!.ms.push(base.initMs);
    samples.get(floor)!.cpuMs.push(base.cpuMs);
    const own = samples.get(b)!;
    own.ms.push(init.initMs);
    own.cpuMs.push(init.cpuMs);
    own.ratios.push(init.initMs / base.initMs);
    own.cpuRatios.push(init.cpuMs / base.cpuMs);
  }
}

const rows = measured
  .map((b) => {
    const own = samples.get(b)!;
    return { b, p50: median(own.ms), ratio: median(own.ratios), cpuRatio: median(own.cpuRatios) };
  })
  .sort((x, y) => x.b.kind.localeCompare(y.b.kind) || y.ratio - x.ratio);
const kb = (bytes: number) => (bytes / 1024).toFixed(0);
const row = (
  name: string,
  kind: string,
  b: Pick<Bundle, 'bytes' | 'mapBytes'>,
  p50: number,
  ratio: number,
  cpu: number,
) =>
  summary(
    name.padEnd(34),
    kind.padEnd(8),
    kb(b.bytes).padStart(6),
    kb(b.mapBytes).padStart(7),
    p50.toFixed(1).padStart(12),
    ratio.toFixed(2).padStart(11),
    cpu.toFixed(2).padStart(10),
  );
summary(
  'function'.padEnd(34),
  'kind'.padEnd(8),
  'kb'.padStart(6),
  'map-kb'.padStart(7),
  'init-p50-ms'.padStart(12),
  'init/floor'.padStart(11),
  'cpu/floor'.padStart(10),
);
row(floor.name, floor.kind, floor, median(samples.get(floor)!.ms), 1, 1);
for (const { b, p50, ratio, cpuRatio } of rows) row(b.name, b.kind, b, p50, ratio, cpuRatio);
const api = rows.filter((r) => r.b.kind === 'api');
summary(
  `(floor: init p50 ${median(samples.get(floor)!.ms).toFixed(1)} ms, CPU p50 ${median(samples.get(floor)!.cpuMs).toFixed(1)} ms;` +
    ` API routes' CPU-time ratios: worst ${Math.max(...api.map((r) => r.cpuRatio)).toFixed(2)}, median ${median(api.map((r) => r.cpuRatio)).toFixed(2)})`,
);
const sdk = rows.find((r) => r.b.kind === 'sdk');
if (sdk) {
  summary(
    `(the same floor with the SDK's defaults, without the bundles' replacements of node:http and the credential chain:` +
      ` init p50 ${sdk.p50.toFixed(1)} ms, ${sdk.ratio.toFixed(2)}x the floor; API routes over it: worst ${(Math.max(...api.map((r) => r.ratio)) / sdk.ratio).toFixed(2)},` +
      ` median ${(median(api.map((r) => r.ratio)) / sdk.ratio).toFixed(2)})`,
  );
}
summary(
  `cold-start: ${api.length} API routes, worst init/floor=${Math.max(...api.map((r) => r.ratio)).toFixed(2)}` +
    ` median=${median(api.map((r) => r.ratio)).toFixed(2)}` +
    ` largest-kb=${kb(Math.max(...api.map((r) => r.b.bytes)))} floor-kb=${kb(floor.bytes)}`,
);

/** The stack and the floor, bundled as in a deployment, into a fresh directory. */
function synthesize(): string {
  const outdir = mkdtempSync(join(tmpdir(), 'cold-start-'));
  step(`synthesizing the stack and the floor into ${outdir} (esbuild bundles every function: minutes)`);
  const app = new App({ outdir });
  new ContractsStack(app, STACK, { env: { account: '000000000000', region: 'eu-central-1' } });
  floorStack(app);
  return app.synth().directory;
}

function floorStack(app: App): void {
  const stack = new Stack(app, FLOOR_STACK, { env: { account: '000000000000', region: 'eu-central-1' } });
  new AppFunction(stack, 'Floor', {
    entry: 'test/bench/cold-start-floor.ts',
    description: 'The cold-start floor',
    adapters: [],
    logs: { encryptionKey: new kms.Key(stack, 'LogKey'), retention: logs.RetentionDays.ONE_DAY },
  });
}

/**
 * The floor as the SDK ships it: the same handler bundled by esbuild (ESM, minified, the same banner) without
 * the replacements `AppFunction` makes in every bundle (node:http by require, the Lambda credential chain),
 * to show what those save; measured beside the others, never the reference of a ratio.
 */
function sdkDefaultsFloor(env: Record<string, string>): Bundle {
  const outdir = mkdtempSync(join(tmpdir(), 'cold-start-sdk-floor-'));
  const file = join(outdir, 'index.mjs');
  buildSync({
    entryPoints: ['test/bench/cold-start-floor.ts'],
    outfile: file,
    ...LAMBDA_ESBUILD_OPTIONS,
    mainFields: [...LAMBDA_ESBUILD_OPTIONS.mainFields],
    sourcemap: true,
    sourcesContent: false,
    banner: { js: ESM_REQUIRE_BANNER },
    logLevel: 'warning',
  });
  return {
    name: 'Floor, SDK defaults',
    kind: 'sdk',
    file,
    bytes: statSync(file).size,
    mapBytes: statSync(`${file}.map`).size,
    env,
  };
}

/** The floor from the assembly, or bundled now into one of its own when the assembly has none. */
function floorOf(dir: string): Bundle[] {
  if (existsSync(join(dir, `${FLOOR_STACK}.template.json`))) return functionsOf(dir, FLOOR_STACK);
  const outdir = mkdtempSync(join(tmpdir(), 'cold-start-floor-'));
  step(`bundling the floor into ${outdir}`);
  const app = new App({ outdir });
  floorStack(app);
  return functionsOf(app.synth().directory, FLOOR_STACK);
}

/** Every Lambda function of a synthesized stack: its bundle and its environment. */
function functionsOf(dir: string, stackName: string): Bundle[] {
  const template = JSON.parse(readFileSync(join(dir, `${stackName}.template.json`), 'utf8')) as {
    Resources: Record<
      string,
      { Type: string; Properties: Record<string, unknown>; Metadata?: Record<string, unknown> }
    >;
  };
  const routeIds: string[] = ROUTES.map((r) => r.id);
  const stepStates: string[] = WORKFLOW_STEPS.map((s) => s.state);
  const found: Bundle[] = [];
  for (const [logicalId, resource] of Object.entries(template.Resources)) {
    if (resource.Type !== 'AWS::Lambda::Function') continue;
    const code = resource.Properties.Code as { S3Key?: unknown };
    if (typeof code?.S3Key !== 'string' || !code.S3Key.endsWith('.zip')) continue; // inline code (CDK helpers)
    const assetDir = join(dir, `asset.${code.S3Key.replace(/\.zip$/, '')}`);
    const file = join(assetDir, 'index.mjs');
    if (!existsSync(file)) continue; // a CDK-provided function (custom resource providers), not ours
    // The logical id is the construct path without separators, and a hash: `ApigetHealthFunction1A2B3C4D`.
    const stem = logicalId.replace(/[0-9A-F]{8}$/, '').replace(/Function$/, '');
    const route = routeIds.find((id) => stem === `Api${id}`);
    const state = stepStates.find((s) => stem === `EnclaveWorkflow${s}`);
    const name = route ?? state ?? stem;
    const kind: Kind =
      stackName === FLOOR_STACK
        ? 'floor'
        : route
          ? 'api'
          : state
            ? 'workflow'
            : /Migrat/.test(stem)
              ? 'deploy'
              : 'event';
    const variables = (resource.Properties.Environment as { Variables?: Record<string, unknown> } | undefined)
      ?.Variables;
    found.push({
      name,
      kind,
      file,
      bytes: statSync(file).size,
      mapBytes: existsSync(`${file}.map`) ? statSync(`${file}.map`).size : 0,
      env: lambdaEnvironment(name, variables ?? {}),
    });
  }
  if (found.length === 0)
    throw new Error(`no bundled function in ${stackName} (${readdirSync(dir).length} files in ${dir})`);
  return found;
}

/**
 * What Lambda gives the process: the function's variables (references to other resources, unresolved in
 * a template, become placeholders of the right shape) and the variables the runtime sets.
 */
function lambdaEnvironment(name: string, variables: Record<string, unknown>): Record<string, string> {
  const env: Record<string, string> = {
    PATH: '/var/lang/bin:/usr/local/bin:/usr/bin/:/bin:/opt/bin', // Lambda's
    TZ: ':UTC',
    LANG: 'en_US.UTF-8',
    AWS_REGION: 'eu-central-1',
    AWS_DEFAULT_REGION: 'eu-central-1',
    AWS_LAMBDA_FUNCTION_NAME: name,
    AWS_LAMBDA_FUNCTION_MEMORY_SIZE: '512',
    AWS_LAMBDA_FUNCTION_VERSION: '$LATEST',
    AWS_EXECUTION_ENV: 'AWS_Lambda_nodejs24.x',
    AWS_ACCESS_KEY_ID: 'ASIABENCH',
    AWS_SECRET_ACCESS_KEY: 'bench',
    AWS_SESSION_TOKEN: 'bench',
  };
  for (const [key, value] of Object.entries(variables)) {
    env[key] =
      typeof value === 'string'
        ? value
        : /ROLE_ARN$/.test(key)
          ? `arn:aws:iam::000000000000:role/bench-${key.toLowerCase().replaceAll('_', '-')}`
          : /ARN|KEY_ID/.test(key)
            ? `arn:aws:bench:eu-central-1:000000000000:${key.toLowerCase()}`
            : `bench-${key.toLowerCase().replaceAll('_', '-')}`;
  }
  return env;
}

/** One cold start: a fresh Node process importing the bundle; its init time and CPU time, in ms. */
function initOnce(bundle: Bundle): { initMs: number; cpuMs: number } {
  const run = spawnSync(process.execPath, [INIT_SCRIPT, bundle.file], { env: bundle.env, encoding: 'utf8' });
  const last = run.stdout.trim().split('\n').at(-1) ?? '';
  if (run.status !== 0 || !last.startsWith('{')) {
    throw new Error(`${bundle.name} failed to initialize (exit ${run.status}): ${run.stderr.slice(-2000)}`);
  }
  return JSON.parse(last) as { initMs: number; cpuMs: number };
}

function shuffle<T>(items: readonly T[]): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}
