/**
 * `npm run --silent enclave -- decrypt --enclave <id> --in <wrapped-data-key-file>`: plays the workload in a
 * Running enclave of the local stack (`npm start`) asking KMS for a data key, the path a workload follows to
 * read its datasets (README, "Contract keys"):
 *
 * 1. make an RSA-2048 key pair inside the enclave (its private key never leaves);
 * 2. ask the enclave's NSM for an attestation document carrying the public key;
 * 3. call KMS `Decrypt` with the wrapped data key, the contract's encryption context and `Recipient` (the
 *    document, RSAES_OAEP_SHA_256), signed with the parent's role credentials, through the parent (its
 *    vsock-proxy, in AWS);
 * 4. open `CiphertextForRecipient` (CMS) with the private key.
 *
 * The file is the answer of `POST /contracts/{id}/data-keys` (JSON with `ciphertextBlob` and
 * `encryptionContext`). Prints the plaintext data key (base64) and exits 0 when KMS releases it; prints KMS's
 * refusal (or why the enclave could not ask) and exits 1; exits 2 on a usage error. Reads the running
 * stack's console from `LOCAL_DATA_DIR` (default `.local`).
 */
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join, resolve } from 'node:path';
import { openForRecipient } from '../../shared/keys/recipient-envelope.ts';
import { AwsJsonError, SignedJsonClient } from '../../shared/runtime/signed-json-client.ts';
import { plainCbor } from '../parent-agent/attestation-protocol.ts';
import { Imds } from '../parent-agent/imds.ts';
import { CONSOLE_FILE, type EnclaveConsole } from './local-console.ts';

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

/** The wrapped data key and its context, from `POST /contracts/{id}/data-keys`'s answer. */
function readWrapped(file: string): { blob: string; context: Record<string, string> } {
  let parsed: { ciphertextBlob?: unknown; encryptionContext?: unknown };
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8')) as typeof parsed;
  } catch (error) {
    throw new UsageError(
      `${file} is not the JSON answer of POST /contracts/{id}/data-keys (${(error as Error).message})`,
    );
  }
  const context = parsed.encryptionContext as Record<string, unknown> | undefined;
  if (typeof parsed.ciphertextBlob !== 'string' || typeof context?.contractId !== 'string') {
    throw new UsageError(`${file} has no ciphertextBlob and encryptionContext.contractId`);
  }
  return { blob: parsed.ciphertextBlob, context: { contractId: context.contractId } };
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

/** The NSM's `Attestation` answer for `publicKey` (a length-prefixed CBOR request, as /dev/nsm takes it). */
function attest(nsmPort: number, publicKey: Uint8Array): Promise<Uint8Array> {
  const request = plainCbor.encoder.encode({
    Attestation: { user_data: null, nonce: null, public_key: Buffer.from(publicKey) },
  });
  const header = Buffer.alloc(4);
  header.writeUInt32BE(request.length);
  return new Promise((resolvePromise, reject) => {
    const socket = connect(nsmPort, '127.0.0.1', () => socket.write(Buffer.concat([header, request])));
    const chunks: Buffer[] = [];
    socket.on('data', (chunk) => chunks.push(chunk));
    socket.on('error', () => reject(new Refusal('the enclave has no NSM any more (it stopped)')));
    socket.on('end', () => {
      const answer = Buffer.concat(chunks);
      const reply = plainCbor.decoder.decode(answer.subarray(4, 4 + answer.readUInt32BE(0))) as {
        Attestation?: { document?: Uint8Array };
        Error?: string;
      };
      if (!reply.Attestation?.document)
        reject(new Refusal(`the NSM refused: ${reply.Error ?? 'no document'}`));
      else resolvePromise(new Uint8Array(reply.Attestation.document));
    });
  });
}

async function decrypt(enclaveId: string, file: string): Promise<string> {
  const wrapped = readWrapped(file);
  const console = await consoleOf(enclaveId);
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 }) as {
    privateKey: KeyObject;
    publicKey: KeyObject;
  };
  const document = await attest(
    console.nsmPort,
    new Uint8Array(publicKey.export({ type: 'spki', format: 'der' })),
  );
  const credentials = await new Imds({ endpoint: console.imdsUrl }).credentials();
  const kms = new SignedJsonClient({
    service: 'kms',
    region: console.region,
    endpoint: console.kmsUrl,
    maxAttempts: 1,
    credentials: async () => credentials,
  });
  try {
    const answer = (await kms.call('Decrypt', {
      CiphertextBlob: wrapped.blob,
      EncryptionContext: wrapped.context,
      Recipient: {
        KeyEncryptionAlgorithm: 'RSAES_OAEP_SHA_256',
        AttestationDocument: Buffer.from(document).toString('base64'),
      },
    })) as { CiphertextForRecipient?: string };
    return openForRecipient(Buffer.from(answer.CiphertextForRecipient ?? '', 'base64'), privateKey).toString(
      'base64',
    );
  } catch (error) {
    if (error instanceof AwsJsonError) throw new Refusal(`KMS refused: ${error.message}`);
    throw error;
  }
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
