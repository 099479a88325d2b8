/**
 * The local stack's enclave parents run the parent agent's real code (infra/parent-agent: `runAgent` with the
 * ports `agentPorts` builds, as the systemd unit's main.ts does), each simulated instance with what a Nitro
 * parent has around it:
 * - its own IMDSv2 stand-in: session tokens, the instance's live tags (a new nonce is seen at once), and the
 *   role session's temporary credentials, issued by the local STS stand-in ({@link LocalCredentials});
 * - S3 for the deployment's default EIF, and the local gateway for the `iam` routes, both verifying each
 *   request's SigV4 signature with those credentials and authorising the role's policies;
 * - `nitro-cli` as {@link NitroCliSimulator}: the enclave is the reference attestation responder, its NSM the
 *   Nitro simulator, reached over loopback TCP where a parent uses vsock.
 * The `simulation.fault` of an enclave's create body is played where it would happen: inside the enclave
 * (another image's PCRs, debug mode, an expired certificate, another nonce), so the agent, the API and the
 * workflow meet it as they would on AWS; `no-callback` is a parent whose agent died at boot: it sends
 * nothing at all, not even a heartbeat. (An enclave whose responder never answers is the agent's own
 * test's: it heartbeats, then gives up at its deadline.)
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import type { SimulationFault } from '../../shared/domain/enclave.ts';
import { instanceSessionArn } from '../../shared/http/instance-caller.ts';
import { INSTANCE_TAGS } from '../../shared/workflow/workflow-ports.ts';
import { type AgentConfig, type AgentExit, runAgent } from '../parent-agent/agent.ts';
import { type Connect, tcpConnector } from '../parent-agent/attestation-client.ts';
import type { ImageSource } from '../parent-agent/image-fetch.ts';
import { Imds } from '../parent-agent/imds.ts';
import { agentPorts } from '../parent-agent/ports.ts';
import type { BootHook } from './services/ec2/ec2-simulator.ts';
import { startImdsSimulator } from './services/ec2/imds-simulator.ts';
import type { LocalCredentials, TemporaryCredentials } from './services/iam/local-credentials.ts';
import { LOCAL_REGION } from './services/local-account.ts';
import { NitroCliSimulator } from './services/nitro-enclaves/nitro-cli-simulator.ts';
import type { NitroSimulator } from './services/nitro-enclaves/nitro-simulator.ts';

/** One line an agent logged, with the instance it runs on. */
export interface AgentLogLine {
  readonly instanceId: string;
  readonly level: 'info' | 'warn' | 'error';
  readonly message: string;
  readonly fields?: Record<string, unknown>;
}

export interface LocalParentsOptions {
  readonly nitro: NitroSimulator;
  readonly credentials: LocalCredentials;
  /** The instance's tags as they are now (EC2's), or undefined once it is gone. */
  readonly tagsOf: (instanceId: string) => Readonly<Record<string, string>> | undefined;
  /** The parents' role name (their sessions are `assumed-role/<role>/<instance id>`). */
  readonly roleName: string;
  /** The S3 stand-in's endpoint, and the default image the deployment gives the parents. */
  readonly s3Endpoint: string;
  readonly defaultImage: ImageSource;
  /** The API's base URL (`http://127.0.0.1:port`) once it runs; an instance booted before has no API. */
  readonly apiUrl: () => string | undefined;
  readonly faultOf: (enclaveId: string) => SimulationFault | undefined;
  /** The agent's waits, scaled to the local attestation wait. */
  readonly timing: Pick<
    AgentConfig,
    | 'heartbeatIntervalMs'
    | 'startTimeoutMs'
    | 'responderDeadlineMs'
    | 'attestTimeoutMs'
    | 'submitDeadlineMs'
    | 'watchIntervalMs'
    | 'metricsIntervalMs'
  >;
  /** Where each agent line goes besides the in-memory log (`npm start` prints them). */
  readonly log?: (line: AgentLogLine) => void;
}

/** The enclave a local parent starts: 2 vCPUs and 512 MiB unless the enclave's tags say otherwise. */
const LOCAL_ENCLAVE_SHARE = { cpuCount: 2, memoryMiB: 512 };
/** The vsock CID the agent gives its enclave (as the unit's default). */
const ENCLAVE_CID = 16;
/** Lines kept per instance for tests and diagnostics. */
const LOG_LINES_KEPT = 200;

export class LocalParents {
  /** Each instance's agent runs, in boot order, with how each ended (undefined while it runs). */
  readonly runs: { instanceId: string; exit: AgentExit | undefined }[] = [];
  private readonly logs = new Map<string, AgentLogLine[]>();
  private readonly disks = new Map<string, string>();
  private readonly sessions = new Map<string, TemporaryCredentials>();
  /** What runs on each live parent: its IMDS and its nitro-cli (whose enclave has an NSM). */
  private readonly live = new Map<
    string,
    { readonly imdsUrl: string; readonly nitroCli: NitroCliSimulator }
  >();
  private readonly running = new Set<Promise<void>>();
  private readonly workDir = mkdtempSync(join(tmpdir(), 'local-parents-'));

  constructor(private readonly options: LocalParentsOptions) {}

  /** The boot hook: the agent starts on every boot (first launch and each restart) and runs in the background. */
  readonly onBoot: BootHook = async (instance, { signal }) => {
    const apiUrl = this.options.apiUrl();
    if (apiUrl === undefined || signal.aborted) return;
    const run = this.run(instance.InstanceId, apiUrl, signal).catch((error: unknown) =>
      this.record(instance.InstanceId, 'error', `the local parent failed: ${(error as Error).message}`),
    );
    this.running.add(run);
    void run.finally(() => this.running.delete(run));
  };

  /**
   * What a workload in the enclave on `instanceId` reaches, as `npm run enclave` plays it: the enclave's NSM
   * (loopback TCP in place of /dev/nsm) and the parent's IMDS (its role session's credentials, which a
   * parent hands its enclave); undefined unless the parent runs an enclave.
   */
  consoleOf(instanceId: string): { readonly nsmPort: number; readonly imdsUrl: string } | undefined {
    const live = this.live.get(instanceId);
    const nsmPort = live?.nitroCli.nsmPort;
    return live && nsmPort !== undefined ? { nsmPort, imdsUrl: live.imdsUrl } : undefined;
  }

  /** What the agent on `instanceId` logged, oldest first. */
  logsOf(instanceId: string): readonly AgentLogLine[] {
    return this.logs.get(instanceId) ?? [];
  }

  /** Resolves when every agent has ended (their instances stopped); then removes the parents' disks. */
  async close(): Promise<void> {
    await Promise.all(this.running);
    rmSync(this.workDir, { recursive: true, force: true });
  }

  /** Resolves when no agent runs (each ends when its instance leaves `running`). */
  async settled(): Promise<void> {
    while (this.running.size > 0) await Promise.all(this.running);
  }

  private async run(instanceId: string, apiUrl: string, signal: AbortSignal): Promise<void> {
    const { options } = this;
    const enclaveId = options.tagsOf(instanceId)?.[INSTANCE_TAGS.enclaveId];
    const fault = enclaveId === undefined ? undefined : options.faultOf(enclaveId);
    if (fault === 'no-callback') {
      this.record(
        instanceId,
        'error',
        'simulation.fault no-callback: the agent died at boot, nothing is sent',
      );
      return;
    }
    const imds = await startImdsSimulator({
      instanceId,
      region: LOCAL_REGION,
      tags: () => options.tagsOf(instanceId) ?? {},
      role: { name: options.roleName, credentials: () => this.sessionOf(instanceId) },
    });
    const nitroCli = new NitroCliSimulator({
      simulator: options.nitro,
      instanceId,
      ...(fault ? { fault } : {}),
    });
    const entry: (typeof this.runs)[number] = { instanceId, exit: undefined };
    this.runs.push(entry);
    this.live.set(instanceId, { imdsUrl: imds.url, nitroCli });
    try {
      const ports = agentPorts({
        apiUrl: `${apiUrl}/api/v1`,
        imds: new Imds({ endpoint: imds.url }),
        s3Endpoint: options.s3Endpoint,
        runCommand: nitroCli.run,
        connect: (cid) => {
          const port = nitroCli.portOf(cid);
          return port === undefined ? refusedConnection : tcpConnector('127.0.0.1', port);
        },
        log: (level, message, fields) => this.record(instanceId, level, message, fields),
        defaultResources: () => LOCAL_ENCLAVE_SHARE,
      });
      const config: AgentConfig = {
        imagePath: join(this.diskOf(instanceId), 'enclave.eif'),
        defaultImage: options.defaultImage,
        enclaveCid: ENCLAVE_CID,
        ...options.timing,
      };
      entry.exit = await runAgent(config, ports, signal);
    } finally {
      // The instance stopped (or the agent ended): its enclave goes with it, as on a parent.
      this.live.delete(instanceId);
      await nitroCli.terminate();
      await imds.close();
    }
  }

  /** The role session's credentials, renewed as EC2 renews them (before they run out). */
  private sessionOf(instanceId: string): TemporaryCredentials & { expiration: Date } {
    const current = this.sessions.get(instanceId);
    if (current && current.expiration.getTime() - Date.now() > 5 * 60_000) return current;
    const issued = this.options.credentials.issue(instanceSessionArn(this.options.roleName, instanceId));
    this.sessions.set(instanceId, issued);
    return issued;
  }

  /** The instance's EBS volume, in effect: a restarted parent finds the image it fetched. */
  private diskOf(instanceId: string): string {
    let disk = this.disks.get(instanceId);
    if (!disk) {
      disk = join(this.workDir, instanceId);
      mkdirSync(disk, { recursive: true });
      this.disks.set(instanceId, disk);
    }
    return disk;
  }

  private record(
    instanceId: string,
    level: AgentLogLine['level'],
    message: string,
    fields?: Record<string, unknown>,
  ): void {
    const line: AgentLogLine = { instanceId, level, message, ...(fields ? { fields } : {}) };
    const lines = this.logs.get(instanceId) ?? [];
    lines.push(line);
    if (lines.length > LOG_LINES_KEPT) lines.shift();
    this.logs.set(instanceId, lines);
    this.options.log?.(line);
  }
}

/** A connection to a CID where nothing listens: refused, as vsock refuses it. */
const refusedConnection: Connect = () => {
  const stream = new PassThrough();
  queueMicrotask(() =>
    stream.destroy(
      Object.assign(new Error('connect ECONNREFUSED: no responder listens in the enclave'), {
        code: 'ECONNREFUSED',
      }),
    ),
  );
  return stream;
};
