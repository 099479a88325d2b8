/**
 * The agent's ports as a parent builds them: IMDSv2, the API signed with the instance role, the EIF from S3
 * or https, nitro-cli, and the enclave's attestation responder. One composition for the systemd unit
 * (main.ts) and for the local stack's simulated parents (infra/local/local-parents.ts): locally only the
 * endpoints differ (IMDS, S3), `nitro-cli` runs through a stand-in, and the responder is reached over TCP
 * instead of vsock.
 */
import { cpus, totalmem } from 'node:os';
import { type AgentPorts, abortableSleep } from './agent.ts';
import { AgentApi } from './agent-api.ts';
import { type Connect, requestAttestation, requestMetrics } from './attestation-client.ts';
import { fetchImage } from './image-fetch.ts';
import type { Imds } from './imds.ts';
import { NitroCli, type RunCommand } from './nitro-cli.ts';

export interface AgentEnvironment {
  /** The API's base URL (`https://…/api/v1`). */
  readonly apiUrl: string;
  readonly imds: Imds;
  /** Where `s3://` images are read. @default the regional S3 endpoint */
  readonly s3Endpoint?: string;
  /** How `nitro-cli` runs. @default the real command */
  readonly runCommand?: RunCommand;
  /** A connection to the attestation responder of the enclave with this CID (vsock on a parent). */
  readonly connect: (cid: number) => Connect;
  readonly log: AgentPorts['log'];
  /** The enclave's resources when its tags do not say. @default all but two vCPUs, three quarters of the memory */
  readonly defaultResources?: AgentPorts['defaultResources'];
}

export function agentPorts(environment: AgentEnvironment): AgentPorts {
  const { imds } = environment;
  return {
    imds,
    api: (identity) =>
      new AgentApi({
        apiUrl: environment.apiUrl,
        enclaveId: identity.enclaveId,
        region: identity.region,
        credentials: () => imds.credentials(),
      }),
    fetchImage: async (source, path, onProgress) =>
      fetchImage(source, path, {
        region: await imds.region(),
        credentials: () => imds.credentials(),
        onProgress,
        ...(environment.s3Endpoint ? { s3Endpoint: environment.s3Endpoint } : {}),
      }),
    nitro: new NitroCli(environment.runCommand),
    attest: (cid, request, timeoutMs) => requestAttestation(environment.connect(cid), request, { timeoutMs }),
    metrics: (cid, timeoutMs) => requestMetrics(environment.connect(cid), { timeoutMs }),
    defaultResources: environment.defaultResources ?? hostShare,
    log: environment.log,
    sleep: abortableSleep,
    now: Date.now,
  };
}

/** All but two vCPUs (at least two), three quarters of the memory: the allocator's share without tags. */
export function hostShare(): { cpuCount: number; memoryMiB: number } {
  return {
    cpuCount: Math.max(2, cpus().length - 2),
    memoryMiB: Math.floor((totalmem() / 1024 / 1024) * 0.75),
  };
}
