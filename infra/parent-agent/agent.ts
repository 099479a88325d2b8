/**
 * The parent agent: what runs on an enclave's parent instance, from boot to a Running enclave and while it
 * runs. In order, each phase reported with the attestation wait's heartbeat route:
 *
 * 1. `booting`: reads who it is through IMDSv2 (instance id, region, and the instance's tags: the enclave id,
 *    the attestation nonce, the image source and the enclave's resources);
 * 2. `fetching-image`: fetches the EIF, the enclave's own `image.source` or the deployment's default, pinned
 *    by its SHA-256 (heartbeating every interval while it downloads; nothing is fetched when the pinned image
 *    is on disk already, as after a resume);
 * 3. `starting-enclave`: `nitro-cli run-enclave` (the allocator was sized by the unit's root step);
 * 4. `attesting`: asks the enclave's responder for a document over vsock (the attestation protocol), binding
 *    the nonce, and submits it, SigV4-signed as the instance;
 * then watches: a new nonce tag (a new execution, e.g. after a resume) is attested again, and an enclave that
 * stopped ends the agent with a failure (systemd starts it again, which starts the enclave again). Every
 * metrics interval it asks the enclave for its runtime metrics (the protocol's metrics request: the parent
 * cannot see inside the enclave) and reports them (`POST /enclaves/{id}/metrics`); an enclave whose
 * configuration disables metrics, or a responder that does not serve them, ends the reporting, never the
 * agent.
 *
 * Bad conditions end in a log line and a status, never a hang: every wait has a deadline. The exit status
 * tells systemd what to do: {@link EXIT.refused} (the API refused the document: a restart would be refused the
 * same way) is not restarted; {@link EXIT.failed} is.
 */
import type { AgentPhase } from '../../shared/domain/enclave.ts';
import { INSTANCE_TAGS } from '../../shared/workflow/workflow-ports.ts';
import { type ApiAnswer, ApiCallError } from './agent-api.ts';
import { ResponderRefusal } from './attestation-client.ts';
import { type AttestationRequest, type EnclaveRuntimeMetrics, NONCE_BYTES } from './attestation-protocol.ts';
import type { ImageSource } from './image-fetch.ts';
import type { Imds } from './imds.ts';
import type { EnclaveLaunch, EnclaveRun } from './nitro-cli.ts';

export const EXIT = { stopped: 0, failed: 1, refused: 3 } as const;

/**
 * The deployed agent's waits (ms). Heartbeats go out well inside WaitForAttestation's heartbeat (300 s), so a
 * lost one or two do not end the wait; the submission is retried within the wait's timeout.
 */
export const AGENT_TIMING = {
  heartbeatIntervalMs: 60_000,
  startTimeoutMs: 10 * 60_000,
  responderDeadlineMs: 3 * 60_000,
  attestTimeoutMs: 10_000,
  submitDeadlineMs: 4 * 60_000,
  watchIntervalMs: 10_000,
  metricsIntervalMs: 60_000,
} as const;
export type AgentExit = (typeof EXIT)[keyof typeof EXIT];

export interface AgentConfig {
  /** Where the pinned EIF is kept (the parent's encrypted root volume). */
  readonly imagePath: string;
  /** The deployment's default image, for an enclave that declares no `image.source`. */
  readonly defaultImage: ImageSource | undefined;
  /** The enclave's vsock CID (the responder listens on it). */
  readonly enclaveCid: number;
  /** Heartbeats while the image downloads or the enclave starts (ms); well inside the wait's heartbeat. */
  readonly heartbeatIntervalMs: number;
  /** How long `nitro-cli run-enclave` may take (ms). */
  readonly startTimeoutMs: number;
  /** How long the responder may take to answer after the enclave started (ms): its boot. */
  readonly responderDeadlineMs: number;
  /** One attestation request's limit (ms). */
  readonly attestTimeoutMs: number;
  /** How long a document's submission is retried (transport failures, the wait not yet open) (ms). */
  readonly submitDeadlineMs: number;
  /** How often the nonce tag and the enclave are checked once attested (ms). */
  readonly watchIntervalMs: number;
  /** How often the enclave's runtime metrics are read and reported once attested (ms). */
  readonly metricsIntervalMs: number;
}

/** Everything the agent touches, so that each is a real client on a parent and a stand-in in tests. */
export interface AgentPorts {
  readonly imds: Pick<Imds, 'instanceId' | 'region' | 'tag'>;
  readonly api: (identity: AgentIdentity) => {
    heartbeat(phase: AgentPhase): Promise<ApiAnswer>;
    submitAttestation(document: Uint8Array, deadline: number): Promise<ApiAnswer>;
    reportMetrics(sample: Record<string, unknown>, deadline: number): Promise<ApiAnswer>;
  };
  readonly fetchImage: (
    source: ImageSource,
    path: string,
    onProgress: (bytes: number) => void,
  ) => Promise<'present' | 'fetched'>;
  readonly nitro: {
    runEnclave(launch: EnclaveLaunch, timeoutMs: number): Promise<EnclaveRun>;
    running(): Promise<boolean>;
  };
  /** One attestation request to the enclave with this CID. */
  readonly attest: (cid: number, request: AttestationRequest, timeoutMs: number) => Promise<Uint8Array>;
  /** One metrics request to the enclave with this CID. */
  readonly metrics: (cid: number, timeoutMs: number) => Promise<EnclaveRuntimeMetrics>;
  /** The enclave's resources when its tags do not say (all but two vCPUs, three quarters of the memory). */
  readonly defaultResources: () => { cpuCount: number; memoryMiB: number };
  readonly log: (level: 'info' | 'warn' | 'error', message: string, fields?: Record<string, unknown>) => void;
  /** Resolves after `ms`, or at once when `signal` aborts. */
  readonly sleep: (ms: number, signal: AbortSignal) => Promise<void>;
  readonly now: () => number;
}

export interface AgentIdentity {
  readonly instanceId: string;
  readonly region: string;
  readonly enclaveId: string;
}

/** A condition the agent cannot go on from; `exit` is the status it ends with. */
class AgentStop extends Error {
  constructor(
    message: string,
    readonly exit: AgentExit,
    readonly fields: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

/** Runs the agent until `signal` aborts (the instance stops: exit 0) or a condition ends it. */
export async function runAgent(
  config: AgentConfig,
  ports: AgentPorts,
  signal: AbortSignal,
): Promise<AgentExit> {
  let api: ReturnType<AgentPorts['api']> | undefined;
  const beat = async (phase: AgentPhase) => {
    try {
      const answer = await api!.heartbeat(phase);
      if (answer.status >= 300) ports.log('warn', 'heartbeat not taken', { phase, ...answer });
    } catch (error) {
      ports.log('warn', 'heartbeat failed', { phase, error: (error as Error).message });
    }
  };
  try {
    const identity = await readIdentity(ports);
    api = ports.api(identity);
    ports.log('info', 'booting', { ...identity });
    await beat('booting');

    const source = await imageSource(ports, config);
    await whileBeating(beat, 'fetching-image', config, ports, signal, async () => {
      let last = 0;
      const outcome = await ports.fetchImage(source, config.imagePath, (bytes) => {
        if (bytes - last >= 256 << 20) ports.log('info', 'fetching the image', { bytes, url: source.url });
        last = bytes - (bytes % (256 << 20));
      });
      ports.log('info', outcome === 'present' ? 'the pinned image is on disk' : 'image fetched and checked', {
        sha256: source.sha256,
      });
    });
    if (signal.aborted) return EXIT.stopped;

    const resources = await enclaveResources(ports);
    const started = await whileBeating(beat, 'starting-enclave', config, ports, signal, () =>
      ports.nitro.runEnclave(
        { eifPath: config.imagePath, ...resources, cid: config.enclaveCid },
        config.startTimeoutMs,
      ),
    );
    ports.log('info', 'enclave started', { ...started, ...resources });

    let nonce = await nonceOf(ports);
    await attestAndSubmit(config, ports, api, beat, started.cid, nonce, signal);
    // Attested: watch for a new execution's nonce, and for the enclave's end; report its metrics.
    let reporting = true;
    let metricsDue = ports.now() + config.metricsIntervalMs;
    while (!signal.aborted) {
      const untilMetrics = reporting ? Math.max(0, metricsDue - ports.now()) : config.watchIntervalMs;
      await ports.sleep(Math.min(config.watchIntervalMs, untilMetrics), signal);
      if (signal.aborted) break;
      if (reporting && ports.now() >= metricsDue) {
        metricsDue = ports.now() + config.metricsIntervalMs;
        reporting = await reportMetrics(config, ports, api, started.cid);
        continue;
      }
      if (!(await ports.nitro.running()))
        throw new AgentStop('the enclave is no longer running', EXIT.failed);
      const current = await nonceOf(ports).catch((error: Error) => {
        ports.log('warn', 'could not read the nonce tag', { error: error.message });
        return nonce;
      });
      if (!equal(current, nonce)) {
        ports.log('info', 'a new attestation nonce: attesting again');
        nonce = current;
        await attestAndSubmit(config, ports, api, beat, started.cid, nonce, signal);
      }
    }
    ports.log('info', 'stopping');
    return EXIT.stopped;
  } catch (error) {
    if (signal.aborted) return EXIT.stopped;
    const stop =
      error instanceof AgentStop
        ? error
        : new AgentStop((error as Error).message, EXIT.failed, { error: (error as Error).name });
    ports.log('error', stop.message, stop.fields);
    return stop.exit;
  }
}

async function readIdentity(ports: AgentPorts): Promise<AgentIdentity> {
  const [instanceId, region, enclaveId] = await Promise.all([
    ports.imds.instanceId(),
    ports.imds.region(),
    ports.imds.tag(INSTANCE_TAGS.enclaveId),
  ]);
  if (!enclaveId) throw new AgentStop(`the instance has no ${INSTANCE_TAGS.enclaveId} tag`, EXIT.failed);
  return { instanceId, region, enclaveId };
}

/** The enclave's own image when its tags name one, else the deployment's default. */
async function imageSource(ports: AgentPorts, config: AgentConfig): Promise<ImageSource> {
  // RunInstances always sets both tags (empty without a source): a missing one is an error, not "no source".
  const [url, sha256] = await Promise.all([
    ports.imds.tag(INSTANCE_TAGS.imageUrl),
    ports.imds.tag(INSTANCE_TAGS.imageSha256),
  ]);
  if (url === undefined || sha256 === undefined) {
    throw new AgentStop(
      'the instance lacks its image tags (set, possibly empty, by every launch)',
      EXIT.failed,
    );
  }
  const source = url ? { url, sha256 } : config.defaultImage;
  if (!source)
    throw new AgentStop('the enclave declares no image and the deployment has no default', EXIT.failed);
  if (!/^[0-9a-f]{64}$/.test(source.sha256)) {
    throw new AgentStop('the image digest is not 64 lower-case hex digits', EXIT.failed, { url: source.url });
  }
  return source;
}

async function enclaveResources(ports: AgentPorts): Promise<{ cpuCount: number; memoryMiB: number }> {
  const [cpus, memory] = await Promise.all([
    ports.imds.tag(INSTANCE_TAGS.cpuCount),
    ports.imds.tag(INSTANCE_TAGS.memoryMiB),
  ]);
  const fallback = ports.defaultResources();
  const cpuCount = cpus ? Number(cpus) : fallback.cpuCount;
  const memoryMiB = memory ? Number(memory) : fallback.memoryMiB;
  if (!Number.isInteger(cpuCount) || cpuCount < 1 || !Number.isInteger(memoryMiB) || memoryMiB < 64) {
    throw new AgentStop('the enclave resource tags are not whole numbers', EXIT.failed, { cpus, memory });
  }
  return { cpuCount, memoryMiB };
}

/** The Challenge step's nonce, from its tag (base64). */
async function nonceOf(ports: AgentPorts): Promise<Uint8Array> {
  const tag = await ports.imds.tag(INSTANCE_TAGS.attestationNonce);
  if (!tag) throw new AgentStop(`the instance has no ${INSTANCE_TAGS.attestationNonce} tag`, EXIT.failed);
  const nonce = Buffer.from(tag, 'base64');
  if (nonce.length < NONCE_BYTES.min || nonce.length > NONCE_BYTES.max || nonce.toString('base64') !== tag) {
    throw new AgentStop('the attestation nonce tag is not base64 of 1..512 bytes', EXIT.failed);
  }
  return new Uint8Array(nonce);
}

/**
 * Asks the enclave for a document with `nonce` (the responder may still be booting: refused connections are
 * tried again until the deadline) and submits it. A refused document ends the agent ({@link EXIT.refused}).
 */
async function attestAndSubmit(
  config: AgentConfig,
  ports: AgentPorts,
  api: ReturnType<AgentPorts['api']>,
  beat: (phase: AgentPhase) => Promise<void>,
  cid: number,
  nonce: Uint8Array,
  signal: AbortSignal,
): Promise<void> {
  const document = await whileBeating(beat, 'attesting', config, ports, signal, async () => {
    const deadline = ports.now() + config.responderDeadlineMs;
    for (let attempt = 1; ; attempt++) {
      try {
        return await ports.attest(cid, { nonce }, config.attestTimeoutMs);
      } catch (error) {
        const code = (error as { code?: unknown }).code;
        const notListening =
          code === 'ECONNREFUSED' || code === 'ECONNRESET' || (error as Error).name === 'ResponderTimeout';
        if (!notListening || ports.now() >= deadline || signal.aborted) {
          throw new AgentStop(`the enclave did not attest: ${(error as Error).message}`, EXIT.failed, {
            attempt,
          });
        }
        await ports.sleep(1000, signal);
      }
    }
  });
  ports.log('info', 'document obtained', { bytes: document.length });
  try {
    await api.submitAttestation(document, ports.now() + config.submitDeadlineMs);
  } catch (error) {
    if (error instanceof ApiCallError && error.refused) {
      throw new AgentStop('the API refused the attestation document', EXIT.refused, { ...error.answer });
    }
    throw new AgentStop(`the document could not be submitted: ${(error as Error).message}`, EXIT.failed);
  }
  ports.log('info', 'document accepted: the platform verifies it');
}

/**
 * Reads the enclave's runtime metrics and reports one sample. Whether to go on: not when the enclave's
 * configuration disables metrics (409 `metrics-disabled`) or its responder does not serve them (it refuses
 * the request as a `bad-request`); a failure of one round is logged and the next round tries again.
 */
async function reportMetrics(
  config: AgentConfig,
  ports: AgentPorts,
  api: ReturnType<AgentPorts['api']>,
  cid: number,
): Promise<boolean> {
  let sample: EnclaveRuntimeMetrics;
  try {
    sample = await ports.metrics(cid, config.attestTimeoutMs);
  } catch (error) {
    if (error instanceof ResponderRefusal && error.code === 'bad-request') {
      ports.log('warn', "the enclave's responder does not serve metrics: not reporting them", {
        error: error.message,
      });
      return false;
    }
    ports.log('warn', 'metrics not read from the enclave', { error: (error as Error).message });
    return true;
  }
  try {
    await api.reportMetrics(
      {
        reportedAt: new Date(ports.now()).toISOString(),
        cpuUtilizationPercent: sample.cpuUtilizationBasisPoints / 100,
        memoryUsedMiB: sample.memoryUsedMiB,
        uptimeSeconds: sample.uptimeSeconds,
      },
      ports.now() + Math.min(config.metricsIntervalMs / 2, config.submitDeadlineMs),
    );
    return true;
  } catch (error) {
    if (error instanceof ApiCallError && error.answer?.problemType?.endsWith('/metrics-disabled')) {
      ports.log('info', "the enclave's configuration disables metrics: not reporting them");
      return false;
    }
    ports.log('warn', 'metrics not reported', { error: (error as Error).message });
    return true;
  }
}

/** Runs `work` with a heartbeat first and then every interval until it ends. */
async function whileBeating<T>(
  beat: (phase: AgentPhase) => Promise<void>,
  phase: AgentPhase,
  config: AgentConfig,
  ports: AgentPorts,
  signal: AbortSignal,
  work: () => Promise<T>,
): Promise<T> {
  await beat(phase);
  const done = new AbortController();
  const both = AbortSignal.any([signal, done.signal]);
  const beating = (async () => {
    while (!both.aborted) {
      await ports.sleep(config.heartbeatIntervalMs, both);
      if (!both.aborted) await beat(phase);
    }
  })();
  try {
    return await work();
  } finally {
    done.abort();
    await beating;
  }
}

/** Resolves after `ms`, or at once when `signal` aborts (the agent's waits). */
export function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((byte, i) => byte === b[i]);
}
