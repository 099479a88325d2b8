/**
 * A local stand-in for the Nitro Enclaves CLI on one parent instance, behind the agent's `RunCommand` seam:
 * `run-enclave` starts an "enclave" from the EIF on disk, that is, the reference attestation responder
 * (infra/enclave-responder/attestation_responder.py, the very program an enclave image runs) listening on a
 * loopback TCP port in place of the enclave's vsock port, its NSM answered by the Nitro simulator for this
 * instance and that image: the EIF's bytes are the image (PCR0/1/2 derive from them), so a parent that fetched
 * another file attests another image. `describe-enclaves` and `terminate-enclave --all` answer as nitro-cli
 * does, in its JSON.
 *
 * Failure paths: an EIF that is missing fails `run-enclave` with nitro-cli's error line; `responder: 'silent'`
 * starts an enclave whose responder never listens (an image without one, or one that hangs); `fault` plays
 * one of the `simulation.fault` knobs of an enclave's create body inside the enclave (see {@link FAULT_DOCUMENT}).
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { FailureCode } from '../../../../shared/attestation/types.ts';
import type { SimulationFault } from '../../../../shared/domain/enclave.ts';
import type { CommandResult, RunCommand } from '../../../parent-agent/nitro-cli.ts';
import type { Defect, NitroSimulator } from './nitro-simulator.ts';
import { type NsmEndpoint, startNsmEndpoint } from './nsm-endpoint.ts';

export const RESPONDER_SCRIPT = fileURLToPath(
  new URL('../../../enclave-responder/attestation_responder.py', import.meta.url),
);

/** A fault the enclave itself plays: every `simulation.fault` but `no-callback` (a silent responder). */
export type EnclaveFault = Exclude<SimulationFault, 'no-callback'>;

/** What the NSM attests under each fault: the Nitro simulator's defect, or debug mode. */
const FAULT_DOCUMENT: Readonly<Record<EnclaveFault, { defects: Defect[]; debug: boolean }>> = {
  // Another image's PCR0/1/2, as if the parent had been given an image nobody approved.
  'wrong-image': { defects: ['wrong_pcrs'], debug: false },
  // PCR0/1/2/8 zero, as the NSM reports for `nitro-cli run-enclave --debug-mode`.
  'debug-mode': { defects: [], debug: true },
  // A leaf whose window ended before the document's timestamp.
  'expired-document': { defects: ['expired_leaf'], debug: false },
  // A genuine document, for a nonce the platform never issued (the responder asks with another one).
  'wrong-nonce': { defects: [], debug: false },
};

/** What a correct verifier answers for the document of each enclave fault (with the approved image pinned). */
export const ENCLAVE_FAULT_CODES: Readonly<Record<EnclaveFault, FailureCode>> = {
  'wrong-image': 'pcr_mismatch',
  'debug-mode': 'debug_mode',
  'expired-document': 'expired',
  'wrong-nonce': 'nonce_mismatch',
};

interface RunningEnclave {
  readonly enclaveId: string;
  readonly cid: number;
  readonly port: number | undefined;
  readonly startedAt: number;
  readonly cpuCount: number;
  readonly memoryMiB: number;
  readonly responder: ChildProcess | undefined;
  readonly nsm: NsmEndpoint;
}

export interface NitroCliSimulatorOptions {
  readonly simulator: NitroSimulator;
  readonly instanceId: string;
  /** The parent's role (PCR3), when documents should measure it. */
  readonly iamRoleArn?: string;
  /** `silent`: the enclave starts but its responder never listens. @default 'python' */
  readonly responder?: 'python' | 'silent';
  /** A failure the enclave plays in its documents (see {@link ENCLAVE_FAULT_CODES}). */
  readonly fault?: EnclaveFault;
  /** The Python interpreter. @default the `python3` on the PATH, resolved once (see {@link pythonInterpreter}) */
  readonly python?: string;
}

export class NitroCliSimulator {
  private enclave: RunningEnclave | undefined;

  constructor(private readonly options: NitroCliSimulatorOptions) {}

  /** The TCP port standing in for the running enclave's vsock port (undefined: none, or a silent one). */
  portOf(cid: number): number | undefined {
    return this.enclave?.cid === cid ? this.enclave.port : undefined;
  }

  /** The `RunCommand` the agent's NitroCli runs `nitro-cli` through. */
  readonly run: RunCommand = async (command, args) => {
    if (command !== 'nitro-cli') return { code: 127, stdout: '', stderr: `${command}: command not found` };
    const [verb, ...rest] = args;
    switch (verb) {
      case 'run-enclave':
        return this.runEnclave(rest);
      case 'describe-enclaves':
        return ok(JSON.stringify(this.enclave ? [this.describe(this.enclave)] : []));
      case 'terminate-enclave':
        await this.terminate();
        return ok(JSON.stringify({ Terminated: true }));
      default:
        return { code: 1, stdout: '', stderr: `[ E1 ] Unknown subcommand: ${verb}` };
    }
  };

  /** The running enclave's NSM port (what its workload attests through), or undefined when none runs. */
  get nsmPort(): number | undefined {
    return this.enclave?.nsm.port;
  }

  /** Ends the enclave (as stopping the instance does). */
  async terminate(): Promise<void> {
    const enclave = this.enclave;
    this.enclave = undefined;
    if (!enclave) return;
    enclave.responder?.kill();
    await enclave.nsm.close();
  }

  private async runEnclave(args: readonly string[]): Promise<CommandResult> {
    const flag = (name: string) => args[args.indexOf(name) + 1];
    const eifPath = flag('--eif-path');
    const cid = Number(flag('--enclave-cid'));
    const cpuCount = Number(flag('--cpu-count'));
    const memoryMiB = Number(flag('--memory'));
    if (this.enclave) return { code: 1, stdout: '', stderr: '[ E26 ] Enclave already running.' };
    let eif: Buffer;
    try {
      eif = await readFile(eifPath ?? '');
    } catch {
      return {
        code: 1,
        stdout: '',
        stderr: `[ E19 ] File open failure. Failed to open the EIF file: ${eifPath}`,
      };
    }
    const { simulator, instanceId, iamRoleArn, fault } = this.options;
    const enclaveId = randomBytes(8).toString('hex');
    const nsm = await startNsmEndpoint((input) =>
      simulator.attest({
        instanceId,
        enclaveId,
        image: { eif },
        ...(iamRoleArn === undefined ? {} : { iamRoleArn }),
        ...input,
        ...(fault === undefined ? {} : FAULT_DOCUMENT[fault]),
        ...(fault === 'wrong-nonce' && input.nonce
          ? { nonce: new Uint8Array(randomBytes(input.nonce.length)) }
          : {}),
      }),
    );
    let responder: ChildProcess | undefined;
    let port: number | undefined;
    if ((this.options.responder ?? 'python') === 'python') {
      ({ child: responder, port } = await startResponder(nsm.port, this.options.python));
    }
    this.enclave = { enclaveId, cid, port, startedAt: Date.now(), cpuCount, memoryMiB, responder, nsm };
    return ok(
      JSON.stringify({
        EnclaveName: 'enclave',
        EnclaveID: `${instanceId}-enc${enclaveId}`,
        ProcessID: responder?.pid ?? 0,
        EnclaveCID: cid,
        NumberOfCPUs: cpuCount,
        CPUIDs: Array.from({ length: cpuCount }, (_, i) => i + 1),
        MemoryMiB: memoryMiB,
      }),
    );
  }

  private describe(enclave: RunningEnclave): Record<string, unknown> {
    const alive = enclave.responder === undefined || enclave.responder.exitCode === null;
    return {
      EnclaveName: 'enclave',
      EnclaveID: `${this.options.instanceId}-enc${enclave.enclaveId}`,
      EnclaveCID: enclave.cid,
      NumberOfCPUs: enclave.cpuCount,
      MemoryMiB: enclave.memoryMiB,
      State: alive ? 'RUNNING' : 'TERMINATING',
      Flags: 'NONE',
    };
  }
}

function ok(stdout: string): CommandResult {
  return { code: 0, stdout, stderr: '' };
}

/**
 * Starts the reference responder on a loopback TCP port, its NSM at `nsmPort`; resolves once it listens
 * (the port it reports on stderr). Kill `child` to stop it.
 */
export async function startResponder(
  nsmPort: number,
  python?: string,
): Promise<{ child: ChildProcess; port: number }> {
  // Isolated (-I: no environment variables or user site) and without `site` (-S): the responder needs the
  // standard library alone, as in an enclave image, and starts in a fraction of the time.
  const child = spawn(
    python ?? (await pythonInterpreter()),
    ['-I', '-S', RESPONDER_SCRIPT, '--listen', 'tcp:127.0.0.1:0', '--nsm', `tcp:127.0.0.1:${nsmPort}`],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  return { child, port: await listeningPort(child) };
}

/** What the workload inside a local enclave reaches to release a data key (see {@link releaseDataKey}). */
export interface KeyReleaseInput {
  /** The enclave's NSM stand-in (in place of /dev/nsm). */
  readonly nsmPort: number;
  /** KMS: the local stand-in's URL (in place of the parent's vsock-proxy). */
  readonly kms: string;
  readonly region: string;
  /** The parent's role credentials, which a parent hands its enclave. */
  readonly credentials: {
    readonly accessKeyId: string;
    readonly secretAccessKey: string;
    readonly sessionToken?: string | undefined;
  };
  /** The answer of `POST /contracts/{id}/data-keys` (its JSON text). */
  readonly wrappedDataKey: string;
  readonly python?: string;
  /** More environment for the process (tests: SSL_CERT_FILE for a TLS stand-in). */
  readonly env?: Readonly<Record<string, string>>;
}

/**
 * Runs the reference responder's key release (`attestation_responder.py decrypt`), the program a workload
 * runs inside its enclave: it makes its key pair, has the NSM attest its public key, calls KMS `Decrypt`
 * with `Recipient` and opens `CiphertextForRecipient`. Answers its exit code (0 released, 1 refused, 2 usage)
 * and its output: the data key (base64) on stdout, or why not on stderr.
 */
export async function releaseDataKey(
  input: KeyReleaseInput,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const python = input.python ?? (await pythonInterpreter());
  return new Promise((resolve, reject) => {
    const child = spawn(
      python,
      [
        ...['-I', '-S', RESPONDER_SCRIPT, 'decrypt', '--in', '-', '--region', input.region],
        ...['--kms', input.kms, '--nsm', `tcp:127.0.0.1:${input.nsmPort}`],
      ],
      {
        stdio: ['pipe', 'pipe', 'pipe'],
        env: {
          ...(process.env.PATH ? { PATH: process.env.PATH } : {}),
          ...input.env,
          AWS_ACCESS_KEY_ID: input.credentials.accessKeyId,
          AWS_SECRET_ACCESS_KEY: input.credentials.secretAccessKey,
          ...(input.credentials.sessionToken ? { AWS_SESSION_TOKEN: input.credentials.sessionToken } : {}),
        },
      },
    );
    child.stdin.end(input.wrappedDataKey);
    child.stdin.on('error', () => {}); // it may exit on a usage error before reading
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => err.push(chunk));
    child.on('error', reject);
    child.on('close', (code) =>
      resolve({
        code: code ?? 1,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
      }),
    );
  });
}

let interpreter: Promise<string> | undefined;

/**
 * The interpreter `python3` on the PATH runs, found once: a version manager's shim (pyenv, asdf) is a shell
 * script that costs a quarter of a second per start, which every simulated enclave would pay again.
 */
export function pythonInterpreter(): Promise<string> {
  interpreter ??= new Promise((resolve) => {
    execFile('python3', ['-c', 'import sys; print(sys.executable)'], (error, stdout) =>
      resolve(error || !stdout.trim() ? 'python3' : stdout.trim()),
    );
  });
  return interpreter;
}

function listeningPort(child: ChildProcess): Promise<number> {
  return new Promise((resolve, reject) => {
    let log = '';
    child.stderr!.on('data', (chunk: Buffer) => {
      log += chunk.toString('utf8');
      const bound = /listening on 127\.0\.0\.1:(\d+)/.exec(log);
      if (bound) resolve(Number(bound[1]));
    });
    child.once('exit', (code) => reject(new Error(`the responder exited (${code}): ${log.slice(-500)}`)));
    child.once('error', reject);
  });
}
