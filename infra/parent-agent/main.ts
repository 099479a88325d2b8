/**
 * The parent agent's entry point: `node parent-agent.mjs run` (the systemd unit's main process, as the
 * unprivileged `enclave-agent` user) or `node parent-agent.mjs configure-allocator` (the unit's root step
 * before it: sizes the Nitro Enclaves allocator from the instance's tags and restarts it).
 *
 * Configuration, from the environment (`/etc/enclave-contracts/parent.env`, written by the user data):
 * - `API_URL`: the API's base URL (`https://…/api/v1`);
 * - `DEFAULT_IMAGE_URL`, `DEFAULT_IMAGE_SHA256`: the deployment's default EIF (`s3://bucket/key`);
 * - `ENCLAVE_CID` (default 16), `IMAGE_PATH` (default /var/lib/enclave-contracts/enclave.eif);
 * - local stack only: `IMDS_ENDPOINT`, `S3_ENDPOINT`, and `VSOCK_TCP` (`host:port`, the responder's TCP
 *   stand-in) in place of socat's vsock.
 * Logs are JSON lines on stdout (journald keeps them).
 */
import { INSTANCE_TAGS } from '../../shared/workflow/workflow-ports.ts';
import { AGENT_TIMING, type AgentConfig, EXIT, runAgent } from './agent.ts';
import { tcpConnector, vsockConnector } from './attestation-client.ts';
import { Imds } from './imds.ts';
import { configureAllocator } from './nitro-cli.ts';
import { agentPorts, hostShare } from './ports.ts';

/** The agent's version, for its log lines (the bundle's SHA-256 is what the user data pins). */
declare const __AGENT_VERSION__: string | undefined;

function log(level: 'info' | 'warn' | 'error', message: string, fields: Record<string, unknown> = {}): void {
  process.stdout.write(
    `${JSON.stringify({ time: new Date().toISOString(), level, message, agent: typeof __AGENT_VERSION__ === 'string' ? __AGENT_VERSION__ : 'dev', ...fields })}\n`,
  );
}

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set (see /etc/enclave-contracts/parent.env)`);
  return value;
}

async function configure(imds: Imds): Promise<void> {
  const [cpus, memory] = await Promise.all([
    imds.tag(INSTANCE_TAGS.cpuCount),
    imds.tag(INSTANCE_TAGS.memoryMiB),
  ]);
  const fallback = hostShare();
  const resources = {
    cpuCount: cpus ? Number(cpus) : fallback.cpuCount,
    memoryMiB: memory ? Number(memory) : fallback.memoryMiB,
  };
  if (!Number.isInteger(resources.cpuCount) || !Number.isInteger(resources.memoryMiB)) {
    throw new Error('the enclave resource tags are not whole numbers');
  }
  await configureAllocator(resources);
  log('info', 'allocator configured', resources);
}

async function run(imds: Imds): Promise<number> {
  const defaultUrl = process.env.DEFAULT_IMAGE_URL;
  const config: AgentConfig = {
    imagePath: process.env.IMAGE_PATH ?? '/var/lib/enclave-contracts/enclave.eif',
    defaultImage: defaultUrl ? { url: defaultUrl, sha256: required('DEFAULT_IMAGE_SHA256') } : undefined,
    enclaveCid: Number(process.env.ENCLAVE_CID ?? 16),
    ...AGENT_TIMING,
  };
  const vsockTcp = process.env.VSOCK_TCP;
  const ports = agentPorts({
    apiUrl: required('API_URL'),
    imds,
    ...(process.env.S3_ENDPOINT ? { s3Endpoint: process.env.S3_ENDPOINT } : {}),
    connect: (cid) => {
      const [host, port] = (vsockTcp ?? '').split(':');
      return vsockTcp ? tcpConnector(host!, Number(port)) : vsockConnector(cid);
    },
    log,
  });
  const stop = new AbortController();
  // systemd stops the unit (the instance stops): end what runs, report nothing more.
  for (const name of ['SIGTERM', 'SIGINT'] as const) process.once(name, () => stop.abort());
  return runAgent(config, ports, stop.signal);
}

export async function main(argv: readonly string[]): Promise<number> {
  const imds = new Imds(process.env.IMDS_ENDPOINT ? { endpoint: process.env.IMDS_ENDPOINT } : {});
  const command = argv[0] ?? 'run';
  try {
    if (command === 'configure-allocator') {
      await configure(imds);
      return EXIT.stopped;
    }
    if (command === 'run') return await run(imds);
    log('error', `unknown command ${command}: run | configure-allocator`);
    return 2;
  } catch (error) {
    log('error', (error as Error).message, { error: (error as Error).name });
    return EXIT.failed;
  }
}

// The bundle's entry: run when executed, not when imported (tests import `main`).
if (process.argv[1] && /parent-agent\.mjs$|main\.ts$/.test(process.argv[1])) {
  main(process.argv.slice(2)).then((code) => process.exit(code));
}
