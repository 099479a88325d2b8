/**
 * Command-line front of the attestation verifier.
 *
 *   npm run attestation -- verify <file|-> --pcr N=hex [--pcr N=hex ...] [--at ISO-8601] [--nonce hex]
 *                          [--user-data hex] [--public-key hex] [--max-age-ms N] [--allow-debug]
 *                          [--root pem-file ...] [--json]
 *   npm run attestation -- inspect <file|-> [--json]
 *
 * The document may be raw CBOR or base64 (detected). Exit status: 0 only when the document is trusted and
 * the policy holds; 1 when verification fails; 2 on a usage error.
 *
 * Fail closed: `verify` requires at least one `--pcr`; there is deliberately no "any measurements" switch,
 * because a verdict of "trusted" for any enclave image is what the fail-closed policy exists to prevent. To
 * learn a document's PCRs, use `inspect` (which prints the decoded, UNVERIFIED contents and never says
 * "trusted"), or read them under a failed `verify`, which prints the same unverified contents.
 */
import { readFileSync, readSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { AttestationPayload } from './attestation-document.ts';
import { parseCertificate } from './chain-cache.ts';
import { MAX_POLICY_PCR_INDEX, MAX_USER_FIELD_BYTES, SHA384_PCR_BYTES } from './constants.ts';
import { AttestationPolicyError } from './errors.ts';
import { buildPolicy } from './policy.ts';
import type { AttestationClaims, MeasurementSet, Policy, PolicyInput } from './types.ts';
import { decodeUnverifiedAttestation, verifyAttestation } from './verify.ts';

/** Where the CLI writes and reads; injectable for tests. */
export interface CliIo {
  readonly out: (text: string) => void;
  readonly err: (text: string) => void;
  readonly readStdin: () => Uint8Array;
}

/** Input files larger than this are refused before being read (a document is about 5 KB). */
const MAX_INPUT_BYTES = 1024 * 1024;

const USAGE = `Usage:
  attestation verify <file|-> --pcr N=hex [--pcr N=hex ...] [--at ISO-8601] [--nonce hex]
                     [--user-data hex] [--public-key hex] [--max-age-ms N] [--allow-debug]
                     [--root pem-file ...] [--json]
  attestation inspect <file|-> [--json]

The document is raw CBOR or base64 (detected); "-" reads standard input.
verify: at least one --pcr is required (fail closed): --pcr pins a measurement, e.g. --pcr 0=<96 hex digits>.
  N is a PCR index from 0 to 31 (decimal, no leading zeros); a register the document does not carry
  (real documents carry 0 to 15) never matches. All --pcr flags form one acceptable measurement set.
  --root replaces the pinned AWS Nitro root.
inspect: prints the decoded document WITHOUT verifying it (use it to read the PCRs to pin).
Exit status: 0 trusted and policy satisfied, 1 verification failed, 2 usage error.
`;

class UsageError extends Error {
  override readonly name = 'UsageError';
}

interface VerifyArgs {
  readonly input: string;
  readonly json: boolean;
  readonly at: Date | undefined;
  readonly roots: string[];
  readonly policy: PolicyInput;
}

/**
 * Runs the CLI with `args` (what follows the program name) and returns the exit status.
 *
 * @example
 * process.exitCode = runAttestationCli(['verify', 'doc.b64', '--pcr', `0=${pcr0}`]);
 */
export function runAttestationCli(args: readonly string[], io: CliIo = processIo): number {
  try {
    const [command, ...rest] = args;
    if (command === undefined) throw new UsageError('no command given');
    if (command === '--help' || command === '-h' || command === 'help') {
      io.out(USAGE);
      return 0;
    }
    if (command === 'verify') return verifyCommand(parseVerifyArgs(rest), io);
    if (command === 'inspect') return inspectCommand(rest, io);
    throw new UsageError(`unknown command "${command}"`);
  } catch (error) {
    if (error instanceof UsageError) {
      io.err(`attestation: ${error.message}\n\n${USAGE}`);
      return 2;
    }
    throw error;
  }
}

function parseVerifyArgs(args: readonly string[]): VerifyArgs {
  let input: string | undefined;
  let json = false;
  let at: Date | undefined;
  let allowDebug = false;
  let maxAgeMs: number | undefined;
  let expectedNonce: Uint8Array | undefined;
  let expectedUserData: Uint8Array | undefined;
  let expectedPublicKey: Uint8Array | undefined;
  const roots: string[] = [];
  const pcrs: Record<number, string> = {};

  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const value = (): string => {
      const next = args[++i];
      if (next === undefined) throw new UsageError(`${arg} needs a value`);
      return next;
    };
    switch (arg) {
      case '--json':
        json = true;
        break;
      case '--allow-debug':
        allowDebug = true;
        break;
      case '--at': {
        const text = value();
        const ms = /^\d{4}-\d{2}-\d{2}(?:T[\d:.]+(?:Z|[+-]\d{2}:?\d{2})?)?$/.test(text)
          ? Date.parse(text)
          : Number.NaN;
        if (Number.isNaN(ms)) throw new UsageError(`--at "${text}" is not an ISO-8601 instant`);
        at = new Date(ms);
        break;
      }
      case '--pcr': {
        // No leading zeros: "01" would be a second spelling of PCR1. The range (0–31) is buildPolicy's.
        const match = /^(0|[1-9][0-9]?)=([0-9a-fA-F]+)$/.exec(value());
        if (match === null)
          throw new UsageError(
            '--pcr takes N=<96 hex chars>, N a PCR index in decimal without leading zeros, e.g. --pcr 0=f4d48b…',
          );
        const index = Number(match[1]);
        if (pcrs[index] !== undefined) throw new UsageError(`PCR${index} is pinned twice`);
        pcrs[index] = match[2]!;
        break;
      }
      case '--nonce':
        expectedNonce = hexArgument('--nonce', value());
        break;
      case '--user-data':
        expectedUserData = hexArgument('--user-data', value());
        break;
      case '--public-key':
        expectedPublicKey = hexArgument('--public-key', value());
        break;
      case '--max-age-ms': {
        const text = value();
        maxAgeMs = /^\d+$/.test(text) ? Number(text) : Number.NaN;
        if (!(maxAgeMs > 0)) throw new UsageError('--max-age-ms takes a positive integer');
        break;
      }
      case '--root':
        roots.push(readRoot(value()));
        break;
      default:
        if (arg.startsWith('--')) throw new UsageError(`unknown option ${arg}`);
        if (input !== undefined) throw new UsageError(`unexpected argument "${arg}"`);
        input = arg;
    }
  }
  if (input === undefined)
    throw new UsageError('verify needs a document: a file name, or - for standard input');
  if (Object.keys(pcrs).length === 0) {
    throw new UsageError(
      'verify needs at least one --pcr N=hex: a verdict without pinned measurements would trust any enclave (fail closed). Run "inspect" to read the PCRs of a document.',
    );
  }
  const measurement: MeasurementSet = pcrs;
  return {
    input,
    json,
    at,
    roots,
    policy: {
      measurements: [measurement],
      allowDebug,
      maxAgeMs,
      expectedNonce,
      expectedUserData,
      expectedPublicKey,
    },
  };
}

function hexArgument(flag: string, text: string): Uint8Array {
  if (!/^(?:[0-9a-fA-F]{2})*$/.test(text)) throw new UsageError(`${flag} takes an even number of hex digits`);
  return Buffer.from(text, 'hex');
}

function readRoot(file: string): string {
  let pem: string;
  try {
    pem = readFileSync(file, 'utf8');
  } catch {
    throw new UsageError(`cannot read the root certificate file "${file}"`);
  }
  // The verifier takes exactly one PEM certificate per root; say so here, about --root, rather than let it
  // refuse an "options.trustedRoots[0]" the user never typed.
  if (!/^-----BEGIN CERTIFICATE-----[A-Za-z0-9+/=\s]+-----END CERTIFICATE-----$/.test(pem.trim()))
    throw new UsageError(`--root "${file}" must hold exactly one PEM certificate`);
  return pem;
}

/** Reads the document, detecting base64 (only base64 characters and whitespace) versus raw CBOR. */
function readDocument(input: string, io: CliIo): Uint8Array | string {
  let bytes: Uint8Array;
  if (input === '-') {
    bytes = io.readStdin();
  } else {
    try {
      if (statSync(input).size > MAX_INPUT_BYTES)
        throw new UsageError(`"${input}" is larger than ${MAX_INPUT_BYTES} bytes`);
      bytes = readFileSync(input);
    } catch (error) {
      if (error instanceof UsageError) throw error;
      throw new UsageError(`cannot read "${input}"`);
    }
  }
  // A raw document starts with 0x84, 0x9f or 0xd2, none of which is a base64 character.
  const isBase64Text = bytes.length > 0 && bytes.every((b) => BASE64_OR_SPACE[b] === 1);
  return isBase64Text ? Buffer.from(bytes).toString('latin1') : bytes;
}

const BASE64_OR_SPACE = new Uint8Array(256);
for (const c of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/-_= \t\r\n') {
  BASE64_OR_SPACE[c.charCodeAt(0)] = 1;
}

/**
 * Builds the policy, saying what `buildPolicy` refuses in terms of the flags that were given: the library
 * names its options (`allowDebug`, `measurements[0][0]`, `expectedNonce`), the CLI's user typed flags.
 */
function policyOf(args: VerifyArgs): Policy {
  try {
    return buildPolicy(args.policy);
  } catch (error) {
    if (error instanceof AttestationPolicyError) throw new UsageError(flagMessage(error, args.policy));
    throw error;
  }
}

/** The flag an option of the policy comes from. */
const OPTION_FLAGS: Readonly<Record<string, string>> = {
  allowDebug: '--allow-debug',
  maxAgeMs: '--max-age-ms',
  expectedNonce: '--nonce',
  expectedUserData: '--user-data',
  expectedPublicKey: '--public-key',
};

function flagMessage(error: AttestationPolicyError, policy: PolicyInput): string {
  const pinned = /^measurements\[0\]\[(\d+)\]$/.exec(error.field);
  if (pinned) {
    const key = pinned[1]!;
    const index = Number(key);
    const value = policy.measurements[0]?.[index];
    if (!(index <= MAX_POLICY_PCR_INDEX))
      return `--pcr ${key}=…: ${key} is not a PCR index; N runs from 0 to ${MAX_POLICY_PCR_INDEX}`;
    if (typeof value !== 'string' || value.length !== SHA384_PCR_BYTES * 2)
      return `--pcr ${key}=<${SHA384_PCR_BYTES * 2} hex chars>: a PCR is ${SHA384_PCR_BYTES} bytes, ${SHA384_PCR_BYTES * 2} hex digits (this one has ${value?.length ?? 0})`;
    return `--pcr ${key}=${'0'.repeat(8)}…: PCR${key} is all zeros, which only a debug-mode enclave reports; add --allow-debug to accept one`;
  }
  const flag = OPTION_FLAGS[error.field];
  if (flag !== undefined && error.field.startsWith('expected'))
    return `${flag} is longer than the ${MAX_USER_FIELD_BYTES} bytes a document can hold`;
  if (flag !== undefined) return `${flag}: ${error.message}`;
  return `the flags do not make a valid policy: ${error.message}`;
}

/**
 * A refusal as the CLI's user reads it: the policy sentences that point at an option name the flag that
 * changes it.
 */
function refusalMessage(code: string, message: string): string {
  if (code === 'debug_mode') return `${message} Pass --allow-debug to accept a debug-mode enclave.`;
  if (code === 'stale') return `${message} (--max-age-ms sets that age.)`;
  return message;
}

function verifyCommand(args: VerifyArgs, io: CliIo): number {
  const policy = policyOf(args);
  const document = readDocument(args.input, io);
  const result = verifyAttestation(document, policy, {
    ...(args.at === undefined ? {} : { at: args.at }),
    ...(args.roots.length === 0 ? {} : { trustedRoots: args.roots }),
  });
  if (result.ok) {
    if (args.json) {
      io.out(
        `${JSON.stringify({ verdict: 'trusted', ok: true, matchedMeasurementSet: result.matchedMeasurementSet, claims: claimsJson(result.claims) }, null, 2)}\n`,
      );
    } else {
      io.out(
        `TRUSTED: the document verifies and satisfies the policy (measurement set ${result.matchedMeasurementSet}).\n`,
      );
      io.out(describeClaims(claimsJson(result.claims)));
    }
    return 0;
  }
  const decoded = decodeUnverifiedAttestation(document);
  const unverified = decoded.ok ? unverifiedJson(decoded.unverified) : null;
  if (args.json) {
    io.out(
      `${JSON.stringify({ verdict: 'rejected', ok: false, code: result.code, message: refusalMessage(result.code, result.message), unverified }, null, 2)}\n`,
    );
  } else {
    io.out(`REJECTED (${result.code}): ${refusalMessage(result.code, result.message)}\n`);
    if (unverified !== null) {
      io.out('Decoded contents, UNVERIFIED (nothing below is trusted):\n');
      io.out(describeClaims(unverified));
    }
  }
  return 1;
}

function inspectCommand(args: readonly string[], io: CliIo): number {
  const json = args.includes('--json');
  const inputs = args.filter((arg) => arg !== '--json');
  const unknown = inputs.find((arg) => arg.startsWith('--'));
  if (unknown !== undefined) throw new UsageError(`unknown option ${unknown}`);
  if (inputs.length !== 1)
    throw new UsageError('inspect needs exactly one document: a file name, or - for standard input');
  const decoded = decodeUnverifiedAttestation(readDocument(inputs[0]!, io));
  if (!decoded.ok) {
    if (json)
      io.out(`${JSON.stringify({ ok: false, code: decoded.code, message: decoded.message }, null, 2)}\n`);
    else io.out(`UNDECODABLE (${decoded.code}): ${decoded.message}\n`);
    return 1;
  }
  const unverified = unverifiedJson(decoded.unverified);
  if (json) io.out(`${JSON.stringify({ verdict: 'unverified', unverified }, null, 2)}\n`);
  else
    io.out(
      `UNVERIFIED: decoded only; neither the chain nor the signature was checked.\n${describeClaims(unverified)}`,
    );
  return 0;
}

/** The JSON shape of claims (also of unverified contents): hex for bytes, ISO for times. */
interface ClaimsJson {
  readonly moduleId: string;
  readonly digest: string;
  readonly timestamp: number;
  readonly timestampIso: string;
  readonly debugMode: boolean | null;
  readonly leafValidFrom: string | null;
  readonly leafValidTo: string | null;
  readonly pcrs: Record<string, string>;
  readonly publicKey: string | null;
  readonly userData: string | null;
  readonly nonce: string | null;
  readonly cabundleLength: number;
}

function claimsJson(claims: AttestationClaims): ClaimsJson {
  return {
    moduleId: claims.moduleId,
    digest: claims.digest,
    timestamp: claims.timestamp,
    timestampIso: new Date(claims.timestamp).toISOString(),
    debugMode: claims.debugMode,
    leafValidFrom: claims.leafValidFrom,
    leafValidTo: claims.leafValidTo,
    pcrs: Object.fromEntries(claims.pcrs),
    publicKey: hexOrNull(claims.publicKey),
    userData: hexOrNull(claims.userData),
    nonce: hexOrNull(claims.nonce),
    cabundleLength: claims.cabundle.length,
  };
}

function unverifiedJson(payload: AttestationPayload): ClaimsJson {
  let validity: { from: string; to: string } | null = null;
  try {
    const leaf = parseCertificate(payload.certificate);
    validity = { from: leaf.validFromIso, to: leaf.validToIso };
  } catch {
    // An unreadable leaf is shown as an unknown validity window.
  }
  const pcrs: Record<string, string> = {};
  for (const [index, value] of payload.pcrs) pcrs[index] = Buffer.from(value).toString('hex');
  return {
    moduleId: payload.moduleId,
    digest: payload.digest,
    timestamp: payload.timestamp,
    timestampIso: new Date(payload.timestamp).toISOString(),
    debugMode: null,
    leafValidFrom: validity?.from ?? null,
    leafValidTo: validity?.to ?? null,
    pcrs,
    publicKey: hexOrNull(payload.publicKey),
    userData: hexOrNull(payload.userData),
    nonce: hexOrNull(payload.nonce),
    cabundleLength: payload.cabundle.length,
  };
}

function hexOrNull(bytes: Uint8Array | null): string | null {
  return bytes === null ? null : Buffer.from(bytes).toString('hex');
}

function describeClaims(claims: ClaimsJson): string {
  const lines = [
    `  module_id    ${claims.moduleId}`,
    `  timestamp    ${claims.timestampIso} (${claims.timestamp} ms)`,
    `  digest       ${claims.digest}`,
    ...(claims.debugMode === null
      ? []
      : [`  debug_mode   ${claims.debugMode ? 'YES (PCR0/1/2 are zero)' : 'no'}`]),
    `  leaf valid   ${claims.leafValidFrom ?? '?'} to ${claims.leafValidTo ?? '?'}`,
    `  cabundle     ${claims.cabundleLength} certificate(s)`,
    '  pcrs',
    ...Object.entries(claims.pcrs).map(([index, hex]) => `    ${`PCR${index}`.padEnd(6)} ${hex}`),
    `  public_key   ${claims.publicKey ?? '(none)'}`,
    `  user_data    ${claims.userData ?? '(none)'}`,
    `  nonce        ${claims.nonce ?? '(none)'}`,
  ];
  return `${lines.join('\n')}\n`;
}

const processIo: CliIo = {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
  readStdin: readStdinBounded,
};

/** Reads standard input, refusing more than MAX_INPUT_BYTES without buffering it all. */
function readStdinBounded(): Uint8Array {
  const chunks: Buffer[] = [];
  let total = 0;
  const chunk = Buffer.alloc(64 * 1024);
  for (;;) {
    let read: number;
    try {
      read = readSync(0, chunk, 0, chunk.length, null);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EAGAIN') continue;
      if ((error as NodeJS.ErrnoException).code === 'EOF') break;
      throw error;
    }
    if (read === 0) break;
    total += read;
    if (total > MAX_INPUT_BYTES)
      throw new UsageError(`standard input is larger than ${MAX_INPUT_BYTES} bytes`);
    chunks.push(Buffer.from(chunk.subarray(0, read)));
  }
  return Buffer.concat(chunks);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  // A reader that stops early (`| head`) is not an error: keep the verdict's exit status, print nothing more.
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code !== 'EPIPE') throw error;
    });
  }
  process.exitCode = runAttestationCli(process.argv.slice(2));
}
