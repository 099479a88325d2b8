/**
 * `npm run bench:attestation`: the cost of verifying one Nitro attestation document, measured in one run on
 * one machine (the machines are shared and noisy: compare ratios, not absolutes):
 * - cold: `verifyAttestation(…, { useCache: false })`, the full check (4 chain links + the COSE signature);
 * - warm: the same document again with the chain cache on (the fast path);
 * - warm on fresh simulator documents from one enclave (chain shared, every document new), with the
 *   NSM's per-enclave leaf and with a fresh leaf per document;
 * - floor: one raw `crypto.verify('sha384', …)` of the document's P-384 COSE signature;
 * - peer: the same real document checked by `@evervault/attestation-bindings` (Rust). It validates against
 *   the system clock, so it runs in a child process under `faketime` (Debian's package) at the document's
 *   time. Without faketime, or when the peer cannot load, that comparison is skipped with one line saying why
 *   and how to get it, and its figure is `n/a`; every other figure is still measured.
 * The in-process paths run interleaved, round by round, so drift in machine load hits them alike; each
 * figure is the median over rounds of the mean per document within a round.
 * The last line is machine-readable: `warm/floor=<r> evervault/warm=<r> cold-ms=<ms> warm-ms=<ms>`.
 */
import 'reflect-metadata';
import { spawnSync } from 'node:child_process';
import { verify as cryptoVerify, webcrypto, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import * as x509 from '@peculiar/x509';
import { encodeCbor } from '../../infra/local/services/nitro-enclaves/nitro-cbor.ts';
import { NitroSimulator } from '../../infra/local/services/nitro-enclaves/nitro-simulator.ts';
import { buildPolicy, verifyAttestation } from '../../shared/attestation/index.ts';
import type { MeasurementSet } from '../../shared/attestation/types.ts';
import { median } from './statistics.ts';

const REPO = join(import.meta.dirname, '..', '..');
const FIXTURES = resolve(REPO, process.env.NITRO_FIXTURES_DIR ?? 'test/fixtures/nitro');
const DOCUMENT = 'prod-2022-10-13.b64';
/** A second real document whose user_data is a public key, so the peer can run its whole success path. */
const PEER_SUCCESS_DOCUMENT = 'debug-2023-09-18.b64';
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 20);
const COLD_BATCH = 10;
const WARM_BATCH = 50;
const FRESH_LEAF_BATCH = 10;
const PEER_BATCH = 10;

interface FixtureEntry {
  readonly timestamp_ms: number;
  readonly pcrs: Record<string, string>;
}

function readDocument(name: string): Uint8Array {
  return new Uint8Array(Buffer.from(readFileSync(join(FIXTURES, name), 'utf8').trim(), 'base64'));
}

/**
 * The COSE_Sign1 members of a document, read just far enough for the floor measurement (an untagged array of
 * bstr protected, map unprotected, bstr payload, bstr signature; definite lengths as the NSM writes them).
 */
function coseMembers(document: Uint8Array): {
  protectedHeader: Uint8Array;
  payload: Uint8Array;
  signature: Uint8Array;
} {
  let offset = 0;
  const head = (): { major: number; argument: number } => {
    const byte = document[offset++]!;
    const info = byte & 31;
    let argument = info;
    if (info >= 24) {
      argument = 0;
      for (let i = 0; i < 1 << (info - 24); i++) argument = argument * 256 + document[offset++]!;
    }
    return { major: byte >> 5, argument };
  };
  const bytes = (): Uint8Array => {
    const { major, argument } = head();
    if (major !== 2) throw new Error('expected a byte string');
    offset += argument;
    return document.subarray(offset - argument, offset);
  };
  if (head().argument !== 4) throw new Error('not a COSE_Sign1');
  const protectedHeader = bytes();
  if (head().major !== 5) throw new Error('expected the unprotected map');
  return { protectedHeader, payload: bytes(), signature: bytes() };
}

/** Mean ms per call of `run(i)` over `count` calls. */
function timeBatch(count: number, run: (i: number) => void): number {
  const start = performance.now();
  for (let i = 0; i < count; i++) run(i);
  return (performance.now() - start) / count;
}

function assertTrusted(result: ReturnType<typeof verifyAttestation>, what: string): void {
  if (!result.ok) {
    console.error(`${what} did not verify (${result.code}): ${result.message}`);
    process.exit(1);
  }
}

// --- the real document, its policy and its floor -------------------------------------------------------
const index = JSON.parse(readFileSync(join(FIXTURES, 'index.json'), 'utf8')) as Record<string, FixtureEntry>;
const entry = index[DOCUMENT];
if (entry === undefined) throw new Error(`${DOCUMENT} is not in ${FIXTURES}/index.json`);
const real = readDocument(DOCUMENT);
const realAt = new Date(entry.timestamp_ms);
const realPolicy = buildPolicy({
  measurements: [{ 0: entry.pcrs['0'], 1: entry.pcrs['1'], 2: entry.pcrs['2'] } as MeasurementSet],
});
const members = coseMembers(real);
const toBeSigned = encodeCbor(['Signature1', members.protectedHeader, new Uint8Array(0), members.payload]);
const realResult = verifyAttestation(real, realPolicy, { at: realAt, useCache: false });
assertTrusted(realResult, DOCUMENT);
if (!realResult.ok) process.exit(1);
const leafCertificate = realResult.claims.certificate;
const leafKey = new X509Certificate(leafCertificate).publicKey;
const signatureKey = { key: leafKey, dsaEncoding: 'ieee-p1363' } as const;
if (!cryptoVerify('sha384', toBeSigned, signatureKey, members.signature))
  throw new Error('floor check failed');

// --- simulator documents from one enclave ----------------------------------------------------------------
const simulatorNow = new Date();
const simulator = await NitroSimulator.create({ now: simulatorNow });
const image = { eif: 'contract-runner:bench' };
const instanceId = 'i-0123456789abcdef0';
const simulatorPolicy = buildPolicy({ measurements: [simulator.expectedPcrs({ instanceId, image })] });
const simulatorOptions = { at: simulatorNow, trustedRoots: [simulator.rootPem] };
const nonceOf = (i: number) => new Uint8Array(Buffer.from(i.toString(16).padStart(64, '0'), 'hex'));
const sharedLeafDocs: Uint8Array[] = [];
for (let i = 0; i < (ROUNDS + 1) * WARM_BATCH; i++) {
  sharedLeafDocs.push(await simulator.attest({ instanceId, image, nonce: nonceOf(i) }));
}
const freshLeafDocs: Uint8Array[] = [];
for (let i = 0; i < (ROUNDS + 1) * FRESH_LEAF_BATCH; i++) {
  freshLeafDocs.push(await simulator.attest({ instanceId, image, nonce: nonceOf(i), leaf: 'per-document' }));
}
assertTrusted(
  verifyAttestation(sharedLeafDocs[0]!, simulatorPolicy, simulatorOptions),
  'a simulator document',
);

// --- in-process measurements, interleaved -----------------------------------------------------------------
const cold: number[] = [];
const warm: number[] = [];
const floor: number[] = [];
const simWarm: number[] = [];
const simFreshLeaf: number[] = [];
let failures = 0;
const check = (result: ReturnType<typeof verifyAttestation>) => {
  if (!result.ok) failures++;
};
// Round 0 is the warm-up (JIT, cache fill) and is discarded.
for (let round = 0; round <= ROUNDS; round++) {
  const c = timeBatch(COLD_BATCH, () =>
    check(verifyAttestation(real, realPolicy, { at: realAt, useCache: false })),
  );
  const w = timeBatch(WARM_BATCH, () => check(verifyAttestation(real, realPolicy, { at: realAt })));
  const f = timeBatch(WARM_BATCH, () => {
    if (!cryptoVerify('sha384', toBeSigned, signatureKey, members.signature)) failures++;
  });
  const s = timeBatch(WARM_BATCH, (i) =>
    check(verifyAttestation(sharedLeafDocs[round * WARM_BATCH + i]!, simulatorPolicy, simulatorOptions)),
  );
  const l = timeBatch(FRESH_LEAF_BATCH, (i) =>
    check(verifyAttestation(freshLeafDocs[round * FRESH_LEAF_BATCH + i]!, simulatorPolicy, simulatorOptions)),
  );
  if (round === 0) continue;
  cold.push(c);
  warm.push(w);
  floor.push(f);
  simWarm.push(s);
  simFreshLeaf.push(l);
}
if (failures > 0) {
  console.error(`${failures} verifications failed during the benchmark`);
  process.exit(1);
}

// --- the peer, in a child process under faketime ----------------------------------------------------------
interface PeerFigures {
  readonly ok: boolean;
  readonly msPerDoc: number;
  readonly firstError: string;
}

/** Runs in the child: loads the native peer, warms up, then measures like the in-process paths. */
const PEER_CHILD = `
import { createRequire } from 'node:module';
const input = JSON.parse(process.env.EVERVAULT_BENCH);
const { attestEnclave } = createRequire(input.repo + '/package.json')('@evervault/attestation-bindings');
const document = Buffer.from(input.document, 'base64');
const cert = Buffer.from(input.cert, 'base64');
const pcrs = [input.pcrs];
const ok = attestEnclave(cert, pcrs, document);
const means = [];
for (let round = 0; round <= input.rounds; round++) {
  const start = performance.now();
  for (let i = 0; i < input.batch; i++) attestEnclave(cert, pcrs, document);
  if (round > 0) means.push((performance.now() - start) / input.batch);
}
means.sort((a, b) => a - b);
const mid = Math.floor(means.length / 2);
const msPerDoc = means.length % 2 ? means[mid] : (means[mid - 1] + means[mid]) / 2;
process.stdout.write(JSON.stringify({ ok, msPerDoc }) + '\\n');
`;

function faketimeAvailable(): boolean {
  return spawnSync('sh', ['-c', 'command -v faketime'], { encoding: 'utf8' }).status === 0;
}

/** The peer's verdict and cost for one document, with the clock faked to `at` (or the real clock). */
function runPeer(
  document: Uint8Array,
  cert: Uint8Array,
  pcrs: object,
  at: Date | null,
  rounds: number,
): PeerFigures {
  const input = {
    repo: REPO,
    document: Buffer.from(document).toString('base64'),
    cert: Buffer.from(cert).toString('base64'),
    pcrs,
    rounds,
    batch: PEER_BATCH,
  };
  const nodeArgs = ['--input-type=module', '-e', PEER_CHILD];
  // faketime takes a wall-clock date; TZ=UTC makes it mean the document's UTC time. The clock keeps running
  // from there, and the child measures with the monotonic clock.
  const [command, args] =
    at === null
      ? [process.execPath, nodeArgs]
      : ['faketime', [at.toISOString().slice(0, 19).replace('T', ' '), process.execPath, ...nodeArgs]];
  const child = spawnSync(command, args, {
    encoding: 'utf8',
    env: { ...process.env, TZ: 'UTC', EVERVAULT_BENCH: JSON.stringify(input) },
    maxBuffer: 64 * 1024 * 1024,
  });
  const stdout = child.stdout ?? '';
  const stderr = child.stderr ?? '';
  const line = stdout.trim().split('\n').at(-1) ?? '';
  if (child.error !== undefined || child.status !== 0 || !line.startsWith('{')) {
    const lines = stderr.split('\n').filter((text) => text.trim() !== '');
    const cause =
      child.error?.message ?? lines.find((text) => /\w*Error\b/.test(text)) ?? lines[0] ?? 'no output';
    throw new Error(`${command} exited ${child.status ?? child.signal}: ${cause.trim()}`);
  }
  const figures = JSON.parse(line) as { ok: boolean; msPerDoc: number };
  const firstError = stderr.split('\n').find((text) => text.trim() !== '') ?? '';
  return { ...figures, firstError };
}

/** A certificate carrying `spki` (the peer checks that the document's user_data holds its TLS key). */
async function certificateFor(spki: Uint8Array): Promise<Uint8Array> {
  const algorithm = { name: 'ECDSA', namedCurve: 'P-256' };
  const subjectKey = await webcrypto.subtle.importKey('spki', spki, algorithm, true, ['verify']);
  const issuerKeys = (await webcrypto.subtle.generateKey(algorithm, true, [
    'sign',
    'verify',
  ])) as webcrypto.CryptoKeyPair;
  const cert = await x509.X509CertificateGenerator.create({
    subject: 'CN=enclave.bench.local',
    issuer: 'CN=bench.local',
    notBefore: new Date('2020-01-01T00:00:00Z'),
    notAfter: new Date('2040-01-01T00:00:00Z'),
    publicKey: subjectKey,
    signingKey: issuerKeys.privateKey,
    signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
  });
  return new Uint8Array(cert.rawData);
}

const ms = (value: number) => value.toFixed(3);
const ratio = (value: number) => value.toFixed(2);
const coldMs = median(cold);
const warmMs = median(warm);
const floorMs = median(floor);

console.log(`attestation verification, ms per document (median of ${ROUNDS} rounds after a warm-up round)`);
console.log(`  document                          ${DOCUMENT} (${real.length} bytes, 4-certificate cabundle)`);
console.log(`  cold   (useCache: false)          ${ms(coldMs)}   (${ROUNDS * COLD_BATCH} documents)`);
console.log(`  warm   (same document, cached)    ${ms(warmMs)}   (${ROUNDS * WARM_BATCH} documents)`);
console.log(
  `  warm   (new simulator documents,  ${ms(median(simWarm))}   (${ROUNDS * WARM_BATCH} documents)`,
);
console.log('          one enclave, shared leaf)');
console.log(
  `  warm   (new simulator documents,  ${ms(median(simFreshLeaf))}   (${ROUNDS * FRESH_LEAF_BATCH} documents)`,
);
console.log('          fresh leaf per document)');
console.log(`  floor  (one crypto.verify P-384)  ${ms(floorMs)}   (${ROUNDS * WARM_BATCH} verifications)`);

/** The peer's figures; null when it cannot run here, after one line saying why and what to do. */
async function measurePeer(): Promise<number | null> {
  if (!faketimeAvailable()) {
    console.log(
      '  evervault: SKIPPED - `faketime` is not installed (Debian/Ubuntu: apt-get install faketime; macOS: ' +
        'brew install libfaketime); the peer checks certificates against the system clock, so it cannot ' +
        'verify a 2022 document without it',
    );
    return null;
  }
  try {
    return await measurePeerUnderFaketime(entry!, leafCertificate);
  } catch (error) {
    const reason = (error instanceof Error ? error.message : String(error)).split('\n').find((l) => l.trim());
    console.log(
      `  evervault: SKIPPED - the peer did not run (${reason}); it needs a working faketime and the native ` +
        'package of @evervault/attestation-bindings for this platform (npm ci installs it)',
    );
    return null;
  }
}

async function measurePeerUnderFaketime(entry: FixtureEntry, certificate: Uint8Array): Promise<number> {
  const pcrs = { pcr0: entry.pcrs['0'], pcr1: entry.pcrs['1'], pcr2: entry.pcrs['2'] };
  const at = new Date(entry.timestamp_ms + 60_000);
  // The prod document has no user_data, so the peer refuses it at its last step (its TLS-key binding),
  // after the chain and the COSE signature: the cost is the full cryptographic check.
  const peer = runPeer(real, certificate, pcrs, at, ROUNDS);
  console.log(
    `  evervault (Rust peer, same doc)   ${ms(peer.msPerDoc)}   (${ROUNDS * PEER_BATCH} documents)`,
  );
  console.log(`          under faketime ${at.toISOString()}; verdict ${peer.ok}: ${peer.firstError || '-'}`);
  const today = runPeer(real, certificate, pcrs, null, 0);
  console.log(`          without faketime (today): verdict ${today.ok}: ${today.firstError || '-'}`);
  const success = index[PEER_SUCCESS_DOCUMENT];
  if (success !== undefined) {
    const document = readDocument(PEER_SUCCESS_DOCUMENT);
    const parsed = verifyAttestation(
      document,
      buildPolicy({ measurements: [{ 4: success.pcrs['4'] }], allowDebug: true }),
      {
        at: new Date(success.timestamp_ms),
      },
    );
    if (parsed.ok && parsed.claims.userData !== null) {
      const cert = await certificateFor(parsed.claims.userData);
      const zero = '00'.repeat(48);
      const full = runPeer(
        document,
        cert,
        { pcr0: zero, pcr1: zero, pcr2: zero },
        new Date(success.timestamp_ms + 60_000),
        ROUNDS,
      );
      console.log(
        `  evervault (full success path)     ${ms(full.msPerDoc)}   (${ROUNDS * PEER_BATCH} documents)`,
      );
      console.log(
        `          ${PEER_SUCCESS_DOCUMENT} with a TLS key equal to its user_data; verdict ${full.ok}`,
      );
    }
  }
  return peer.msPerDoc;
}

const peerMs = await measurePeer();

console.log(
  `  ratios: warm/floor ${ratio(warmMs / floorMs)} (target <= 1.3), cold/warm ${ratio(coldMs / warmMs)}` +
    (peerMs === null ? '' : `, evervault/warm ${ratio(peerMs / warmMs)} (target >= 4)`),
);
console.log(
  `warm/floor=${ratio(warmMs / floorMs)} evervault/warm=${peerMs === null ? 'n/a' : ratio(peerMs / warmMs)} cold-ms=${ms(coldMs)} warm-ms=${ms(warmMs)}`,
);
