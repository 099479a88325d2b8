/**
 * The Nitro Enclaves CLI on the parent, behind one seam (`run`: a command, its arguments, its output), so
 * that the agent's handling of its answers and failures is tested without Nitro hardware.
 *
 * - `run-enclave` answers JSON (`EnclaveID`, `EnclaveCID`, ...) or fails with an `[ Exxx ]` error line;
 * - `describe-enclaves` answers a JSON array of the enclaves with their `State`;
 * - `terminate-enclave --all` ends whatever runs (a restarted agent starts the enclave afresh);
 * - the allocator is configured in `/etc/nitro_enclaves/allocator.yaml` and applied by restarting its
 *   service, which only root may do: the agent's unit runs that step alone as root (`configure-allocator`).
 */
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';

export interface CommandResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a command to its end (or its timeout, which kills it and answers code 124, as `timeout` does). */
export type RunCommand = (
  command: string,
  args: readonly string[],
  timeoutMs: number,
) => Promise<CommandResult>;

export const runCommand: RunCommand = (command, args, timeoutMs) =>
  new Promise((resolve) => {
    execFile(command, [...args], { timeout: timeoutMs, maxBuffer: 1 << 20 }, (error, stdout, stderr) => {
      const failure = error as (NodeJS.ErrnoException & { killed?: boolean; code?: number | string }) | null;
      const code = !failure
        ? 0
        : failure.killed
          ? 124
          : typeof failure.code === 'number'
            ? failure.code
            : 127;
      resolve({ code, stdout: String(stdout), stderr: String(stderr || failure?.message || '') });
    });
  });

export class NitroCliError extends Error {
  override readonly name = 'NitroCliError';
}

export interface EnclaveRun {
  readonly enclaveId: string;
  readonly cid: number;
}

/** The enclave's resources and where it is found (its CID; the responder listens on it). */
export interface EnclaveLaunch {
  readonly eifPath: string;
  readonly cpuCount: number;
  readonly memoryMiB: number;
  readonly cid: number;
}

export class NitroCli {
  constructor(
    private readonly run: RunCommand = runCommand,
    private readonly binary = 'nitro-cli',
  ) {}

  /** Terminates any enclave, then starts one from the EIF; within `timeoutMs`. */
  async runEnclave(launch: EnclaveLaunch, timeoutMs: number): Promise<EnclaveRun> {
    await this.run(this.binary, ['terminate-enclave', '--all'], 60_000);
    const result = await this.run(
      this.binary,
      [
        'run-enclave',
        '--eif-path',
        launch.eifPath,
        '--cpu-count',
        String(launch.cpuCount),
        '--memory',
        String(launch.memoryMiB),
        '--enclave-cid',
        String(launch.cid),
      ],
      timeoutMs,
    );
    if (result.code === 124)
      throw new NitroCliError(`nitro-cli run-enclave did not finish within ${timeoutMs} ms`);
    if (result.code !== 0) throw new NitroCliError(`nitro-cli run-enclave failed: ${errorLine(result)}`);
    let answer: { EnclaveID?: unknown; EnclaveCID?: unknown };
    try {
      answer = JSON.parse(result.stdout) as typeof answer;
    } catch {
      throw new NitroCliError('nitro-cli run-enclave answered no JSON');
    }
    if (typeof answer.EnclaveID !== 'string' || typeof answer.EnclaveCID !== 'number') {
      throw new NitroCliError('nitro-cli run-enclave answered no EnclaveID and EnclaveCID');
    }
    return { enclaveId: answer.EnclaveID, cid: answer.EnclaveCID };
  }

  /** Whether an enclave is RUNNING. */
  async running(): Promise<boolean> {
    const result = await this.run(this.binary, ['describe-enclaves'], 30_000);
    if (result.code !== 0)
      throw new NitroCliError(`nitro-cli describe-enclaves failed: ${errorLine(result)}`);
    try {
      const enclaves = JSON.parse(result.stdout) as { State?: unknown }[];
      return Array.isArray(enclaves) && enclaves.some((e) => e.State === 'RUNNING');
    } catch {
      throw new NitroCliError('nitro-cli describe-enclaves answered no JSON');
    }
  }
}

/** The line that says what went wrong (nitro-cli prints `[ Exx ] ...`), or the last one. */
function errorLine(result: CommandResult): string {
  const lines = `${result.stderr}\n${result.stdout}`
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  return (lines.find((l) => /^\[ ?E\d+ ?\]/.test(l)) ?? lines.at(-1) ?? `exit ${result.code}`).slice(0, 300);
}

/** Sizes the allocator and restarts it (root only): the first boot's and every resume's first step. */
export async function configureAllocator(
  resources: { cpuCount: number; memoryMiB: number },
  run: RunCommand = runCommand,
  file = '/etc/nitro_enclaves/allocator.yaml',
): Promise<void> {
  await writeFile(file, `---\nmemory_mib: ${resources.memoryMiB}\ncpu_count: ${resources.cpuCount}\n`, {
    mode: 0o644,
  });
  const result = await run('systemctl', ['restart', 'nitro-enclaves-allocator.service'], 120_000);
  if (result.code !== 0) throw new NitroCliError(`the allocator did not start: ${errorLine(result)}`);
}
