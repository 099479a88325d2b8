/**
 * `npm run --silent enclave -- decrypt --enclave <id> --in <wrapped-data-key-file>`: runs, for a Running
 * enclave of the local stack (`npm start`), the program its workload runs to read its datasets: the reference
 * responder's key release (`infra/enclave-responder/attestation_responder.py decrypt`, README "Contract
 * keys"), with the enclave's NSM in place of /dev/nsm and the local KMS in place of the parent's vsock-proxy:
 *
 * 1. it makes an RSA-2048 key pair inside the enclave (its private key never leaves);
 * 2. it asks the enclave's NSM for an attestation document carrying the public key;
 * 3. it calls KMS `Decrypt` with the wrapped data key, the contract's encryption context and `Recipient` (the
 *    document, RSAES_OAEP_SHA_256), signed with the parent's role credentials, which the parent hands in;
 * 4. it opens `CiphertextForRecipient` (CMS) with the private key.
 *
 * The file is the answer of `POST /contracts/{id}/data-keys` (JSON with `ciphertextBlob` and
 * `encryptionContext`). Prints the plaintext data key (base64) and exits 0 when KMS releases it; prints KMS's
 * refusal (or why the enclave could not ask) and exits 1; exits 2 on a usage error. Reads the running
 * stack's console from `LOCAL_DATA_DIR` (default `.local`).
 */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Imds } from '../parent-agent/imds.ts';
import { CONSOLE_FILE, type EnclaveConsole } from './local-console.ts';
import { releaseDataKey } from './services/nitro-enclaves/nitro-cli-simulator.ts';

const USAGE =
  'usage: npm run --silent enclave -- decrypt --enclave <enclave id> --in <wrapped-data-key file>';

class Refusal extends Error {}
class UsageError extends Error {}

function parseArgs(argv: readonly string[]): { enclave: string; file: string } {
  const [command, ...rest] = argv;
  if (command !== 'decrypt') throw new UsageError(`unknown command ${command ?? '(none)'}`);
  const flags = new Map<string, string>();
  for (let i = 0; i < rest.length; i += 2) {
    const name = rest[i]!;
    const value = rest[i + 1];
    if (!['--enclave', '--in'].includes(name) || value === undefined)
      throw new UsageError(`unexpected ${name}`);
    flags.set(name, value);
  }
  const enclave = flags.get('--enclave');
  const file = flags.get('--in');
  if (!enclave || !/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(enclave)) {
    throw new UsageError('--enclave must be an enclave id (a UUID)');
  }
  if (!file) throw new UsageError('--in names the wrapped data key file');
  return { enclave, file };
}

/** The answer of `POST /contracts/{id}/data-keys` in `file`, its shape checked. */
function readWrapped(file: string): string {
  let text: string;
  let parsed: { ciphertextBlob?: unknown; encryptionContext?: unknown };
  try {
    text = readFileSync(file, 'utf8');
    parsed = JSON.parse(text) as typeof parsed;
  } catch (error) {
    throw new UsageError(
      `${file} is not the JSON answer of POST /contracts/{id}/data-keys (${(error as Error).message})`,
    );
  }
  const context = parsed.encryptionContext as Record<string, unknown> | undefined;
  if (typeof parsed.ciphertextBlob !== 'string' || typeof context?.contractId !== 'string') {
    throw new UsageError(`${file} has no ciphertextBlob and encryptionContext.contractId`);
  }
  return text;
}

async function consoleOf(enclaveId: string): Promise<EnclaveConsole> {
  const dataDir = resolve(process.env.LOCAL_DATA_DIR ?? '.local');
  let url: string;
  try {
    ({ url } = JSON.parse(readFileSync(join(dataDir, CONSOLE_FILE), 'utf8')) as { url: string });
  } catch {
    throw new Refusal(`no local stack runs with its data in ${dataDir} (start it with npm start)`);
  }
  const res = await fetch(`${url}/enclaves/${enclaveId}`).catch(() => {
    throw new Refusal(`the local stack of ${dataDir} does not answer (start it with npm start)`);
  });
  const body = (await res.json()) as EnclaveConsole & { message?: string };
  if (res.status !== 200) throw new Refusal(`the enclave cannot ask KMS: ${body.message}`);
  return body;
}

/** The data key the reference responder releases in the enclave (its stdout), or its refusal. */
async function decrypt(enclaveId: string, file: string): Promise<string> {
  const wrappedDataKey = readWrapped(file);
  const console = await consoleOf(enclaveId);
  const credentials = await new Imds({ endpoint: console.imdsUrl }).credentials();
  const released = await releaseDataKey({
    nsmPort: console.nsmPort,
    kms: console.kmsUrl,
    region: console.region,
    credentials,
    wrappedDataKey,
  });
  if (released.code === 2) throw new UsageError(released.stderr.trim());
  if (released.code !== 0) throw new Refusal(released.stderr.trim());
  return released.stdout.trim();
}

try {
  const { enclave, file } = parseArgs(process.argv.slice(2));
  process.stdout.write(`${await decrypt(enclave, file)}\n`);
  process.exitCode = 0;
} catch (error) {
  if (error instanceof UsageError) {
    process.stderr.write(`${error.message}\n${USAGE}\n`);
    process.exitCode = 2;
  } else if (error instanceof Refusal) {
    process.stderr.write(`${error.message}\n`);
    process.exitCode = 1;
  } else {
    process.stderr.write(`${(error as Error).message}\n`);
    process.exitCode = 1;
  }
}
