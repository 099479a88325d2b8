/**
 * The reference responder's key release (infra/enclave-responder/attestation_responder.py `decrypt`), the
 * program a workload runs inside its enclave to read its datasets. Its cryptography is the Python standard
 * library's integers and hashes, so each piece is held against an independent implementation here:
 * AES-256 against FIPS 197's vector and Node's (OpenSSL's) AES-CBC; its RSA key pairs against Node's key
 * import and OAEP; its CMS reader against the KMS stand-in's `CiphertextForRecipient` (itself interoperable
 * with `openssl cms`), and against the platform's own reader on every mutation of an envelope; its SigV4
 * against the AWS SDK's signer. Then the whole step against the local KMS with a contract key policy and
 * the Nitro simulator's NSM: released to an approved Running enclave, refused (exit 1, with KMS's error
 * type) to one on another parent, in debug mode, for another contract; over TLS with the hostname checked.
 */
import { execFileSync, spawn } from 'node:child_process';
import {
  createCipheriv,
  createPublicKey,
  constants as cryptoConstants,
  generateKeyPairSync,
  type KeyObject,
  publicEncrypt,
  randomBytes,
} from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { connect as connectTcp, createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createServer as createTlsServer } from 'node:tls';
import { Sha256 } from '@smithy/core/checksum';
import { HttpRequest } from '@smithy/core/protocols';
import { SignatureV4 } from '@smithy/signature-v4';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalCredentials } from '../../infra/local/services/iam/local-credentials.ts';
import type { KmsSimulator } from '../../infra/local/services/kms/kms-simulator.ts';
import {
  type KeyReleaseInput,
  pythonInterpreter,
  RESPONDER_SCRIPT,
  releaseDataKey,
} from '../../infra/local/services/nitro-enclaves/nitro-cli-simulator.ts';
import {
  type AttestRequest,
  imageMeasurements,
  NitroSimulator,
} from '../../infra/local/services/nitro-enclaves/nitro-simulator.ts';
import {
  type NsmEndpoint,
  startNsmEndpoint,
} from '../../infra/local/services/nitro-enclaves/nsm-endpoint.ts';
import { renderContractKeyPolicy } from '../../shared/keys/contract-key-policy.ts';
import {
  EnvelopeError,
  openForRecipient,
  sealForRecipient,
  subjectKeyIdentifier,
} from '../../shared/keys/recipient-envelope.ts';
import {
  attestedDecrypt,
  KMS_ACCOUNT,
  KMS_REGION,
  kmsClientAs,
  roleArn,
  sessionArn,
  startSuiteKms,
} from '../support/local-kms.ts';

const dir = mkdtempSync(join(tmpdir(), 'enclave-key-release-'));

// ------------------------------------------------------------------------------ the Python pieces, one by one

/**
 * Runs `calls` (each `[function, ...arguments]`, bytes as {hex}) in one Python process with the responder
 * imported; answers each call's result: {ok} (bytes as hex), or {error: <class name>, message}. Anything
 * but the responder's own errors is a crash and fails the test.
 */
async function python(calls: unknown[][]): Promise<{ ok?: unknown; error?: string; message?: string }[]> {
  const driver = `
import datetime, json, sys
sys.path.insert(0, ${JSON.stringify(dirname(RESPONDER_SCRIPT))})
import attestation_responder as r
def decode(value):
    if isinstance(value, dict) and set(value) == {"hex"}: return bytes.fromhex(value["hex"])
    if isinstance(value, dict) and set(value) == {"key"}: return r.RsaKeyPair(*(int(x, 16) for x in value["key"]))
    if isinstance(value, dict) and set(value) == {"time"}:
        return datetime.datetime.fromisoformat(value["time"].replace("Z", "+00:00"))
    if isinstance(value, list): return [decode(v) for v in value]
    return value
def encode(value):
    if isinstance(value, (bytes, bytearray)): return value.hex()
    if isinstance(value, int) and not isinstance(value, bool): return format(value, "x")
    if isinstance(value, r.RsaKeyPair):
        return {"n": encode(value.n), "e": encode(value.e), "d": encode(value.d), "p": encode(value.p),
                "q": encode(value.q), "spki": encode(value.public_key_der()), "ski": encode(value.subject_key_identifier())}
    if isinstance(value, dict): return {k: encode(v) for k, v in value.items()}
    return value
out = []
for call in json.load(sys.stdin):
    target = r
    for part in call[0].split("."): target = getattr(target, part)
    try:
        out.append({"ok": encode(target(*decode(call[1:])))})
    except r.KeyReleaseError as error:
        out.append({"error": type(error).__name__, "message": str(error)})
print(json.dumps(out))
`;
  const interpreter = await pythonInterpreter();
  return new Promise((resolve, reject) => {
    const child = spawn(interpreter, ['-I', '-S', '-c', driver], { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => err.push(chunk));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) reject(new Error(`python crashed: ${Buffer.concat(err).toString()}`));
      else resolve(JSON.parse(Buffer.concat(out).toString()));
    });
    child.stdin.end(JSON.stringify(calls));
  });
}
const hex = (bytes: Uint8Array) => ({ hex: Buffer.from(bytes).toString('hex') });

/** A Node key pair in the responder's form (n, e, d, p, q as hex). */
function pythonKey(privateKey: KeyObject): { key: string[] } {
  const jwk = privateKey.export({ format: 'jwk' });
  const big = (b64url?: string) => Buffer.from(b64url!, 'base64url').toString('hex');
  return { key: [big(jwk.n), big(jwk.e), big(jwk.d), big(jwk.p), big(jwk.q)] };
}

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('AES-256-CBC (FIPS 197, decryption only)', () => {
  it("gives FIPS 197's AES-256 vector (appendix C.3) and Node's CBC plaintexts back, padding removed", async () => {
    const key = Buffer.from('000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f', 'hex');
    // One block in CBC with a zero IV is the block cipher itself; the vector's plaintext then is no valid
    // padding, so encrypt it followed by a full block of padding.
    const vector = Buffer.from('00112233445566778899aabbccddeeff', 'hex');
    const cases = [{ key, iv: Buffer.alloc(16), plaintext: vector }];
    for (const size of [0, 1, 15, 16, 17, 32, 100, 4096]) {
      cases.push({ key: randomBytes(32), iv: randomBytes(16), plaintext: randomBytes(size) });
    }
    const ciphertexts = cases.map(({ key: k, iv, plaintext }) => {
      const cipher = createCipheriv('aes-256-cbc', k, iv);
      return Buffer.concat([cipher.update(plaintext), cipher.final()]);
    });
    expect(ciphertexts[0]!.subarray(0, 16).toString('hex')).toBe('8ea2b7ca516745bfeafc49904b496089');
    const answers = await python(
      cases.map(({ key: k, iv }, i) => ['aes256_cbc_decrypt', hex(k), hex(iv), hex(ciphertexts[i]!)]),
    );
    expect(answers.map((a) => a.ok)).toEqual(cases.map((c) => c.plaintext.toString('hex')));
  });

  it('refuses wrong sizes and padding with EnvelopeError', async () => {
    const key = randomBytes(32);
    const iv = randomBytes(16);
    const cipher = createCipheriv('aes-256-cbc', key, iv);
    cipher.setAutoPadding(false);
    // A last byte of 0x00 and one of 0x11 are no PKCS#7 padding; nor is 0x02 after a different byte.
    const raw = (last: Buffer) => Buffer.concat([cipher.update(last)]);
    const badZero = raw(Buffer.concat([randomBytes(15), Buffer.from([0])]));
    const badBig = raw(Buffer.concat([randomBytes(15), Buffer.from([0x11])]));
    const badRun = raw(Buffer.concat([randomBytes(14), Buffer.from([0x03, 0x02])]));
    const answers = await python([
      ['aes256_cbc_decrypt', hex(key), hex(iv), hex(badZero)],
      ['aes256_cbc_decrypt', hex(key), hex(iv), hex(badBig)],
      ['aes256_cbc_decrypt', hex(key), hex(badRun.subarray(0, 16)), hex(badRun)],
      ['aes256_cbc_decrypt', hex(key), hex(iv), hex(Buffer.alloc(0))],
      ['aes256_cbc_decrypt', hex(key), hex(iv), hex(randomBytes(17))],
      ['aes256_cbc_decrypt', hex(randomBytes(16)), hex(iv), hex(randomBytes(16))],
      ['aes256_cbc_decrypt', hex(key), hex(randomBytes(8)), hex(randomBytes(16))],
    ]);
    expect(answers.map((a) => a.error)).toEqual(Array(7).fill('EnvelopeError'));
    expect(answers[0]!.message).toBe('the content does not decrypt with the unwrapped key');
    expect(answers[3]!.message).toBe('the encrypted content is not a whole number of AES blocks');
    expect(answers[5]!.message).toBe('AES-256-CBC takes a 32-byte key and a 16-byte IV');
  });
});

describe('RSA key pairs and RSAES-OAEP-SHA-256', () => {
  let generated: { n: string; e: string; d: string; p: string; q: string; spki: string; ski: string };

  beforeAll(async () => {
    generated = (await python([['RsaKeyPair.generate']]))[0]!.ok as typeof generated;
  });

  it("makes 2048-bit keys with e = 65537 whose public key Node imports and whose SKI is the platform's", () => {
    const publicKey = createPublicKey({
      key: Buffer.from(generated.spki, 'hex'),
      format: 'der',
      type: 'spki',
    });
    expect(publicKey.asymmetricKeyDetails).toMatchObject({ modulusLength: 2048, publicExponent: 65537n });
    expect(subjectKeyIdentifier(publicKey).toString('hex')).toBe(generated.ski);
    const [n, p, q, d, e] = [generated.n, generated.p, generated.q, generated.d, generated.e].map((x) =>
      BigInt(`0x${x}`),
    );
    expect(p! * q!).toBe(n);
    expect(p).not.toBe(q);
    // d inverts e modulo lcm(p-1, q-1), and lies above 2^1024 (FIPS 186-4 B.3.1).
    const gcd = (a: bigint, b: bigint): bigint => (b === 0n ? a : gcd(b, a % b));
    const lambda = ((p! - 1n) * (q! - 1n)) / gcd(p! - 1n, q! - 1n);
    expect((d! * e!) % lambda).toBe(1n);
    expect(d!.toString(2).length).toBeGreaterThan(1024);
  });

  it("opens what Node's OAEP-SHA-256 wraps for its public key, and only that", async () => {
    const publicKey = createPublicKey({
      key: Buffer.from(generated.spki, 'hex'),
      format: 'der',
      type: 'spki',
    });
    const keyOf = { key: ['n', 'e', 'd', 'p', 'q'].map((f) => generated[f as 'n']) };
    const secrets = [randomBytes(32), randomBytes(1), Buffer.alloc(0), randomBytes(190)];
    const wrap = (secret: Buffer, oaepHash = 'sha256') =>
      publicEncrypt({ key: publicKey, padding: cryptoConstants.RSA_PKCS1_OAEP_PADDING, oaepHash }, secret);
    const flipped = wrap(secrets[0]!);
    flipped[100]! ^= 1;
    const answers = await python([
      ...secrets.map((s) => ['RsaKeyPair.decrypt_oaep_sha256', keyOf, hex(wrap(s))]),
      // SHA-1 OAEP, PKCS#1 v1.5, a changed ciphertext, a short one and one above the modulus: one error.
      ['RsaKeyPair.decrypt_oaep_sha256', keyOf, hex(wrap(secrets[0]!, 'sha1'))],
      [
        'RsaKeyPair.decrypt_oaep_sha256',
        keyOf,
        hex(publicEncrypt({ key: publicKey, padding: cryptoConstants.RSA_PKCS1_PADDING }, secrets[0]!)),
      ],
      ['RsaKeyPair.decrypt_oaep_sha256', keyOf, hex(flipped)],
      ['RsaKeyPair.decrypt_oaep_sha256', keyOf, hex(flipped.subarray(1))],
      ['RsaKeyPair.decrypt_oaep_sha256', keyOf, hex(Buffer.alloc(256, 0xff))],
    ]);
    expect(answers.slice(0, 4).map((a) => a.ok)).toEqual(secrets.map((s) => s.toString('hex')));
    for (const refused of answers.slice(4)) {
      expect(refused).toEqual({
        error: 'EnvelopeError',
        message: 'the content key does not unwrap with this private key',
      });
    }
  });
});

describe("CiphertextForRecipient: the KMS stand-in's envelopes, and the platform reader's verdicts", () => {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const key = pythonKey(privateKey);

  it('opens envelopes of every plaintext size KMS answers, for its key only', async () => {
    const plaintexts = [randomBytes(32), randomBytes(0), randomBytes(1), randomBytes(16), randomBytes(4096)];
    const other = pythonKey(generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey);
    const envelope = sealForRecipient(plaintexts[0]!, publicKey);
    const answers = await python([
      ...plaintexts.map((p) => ['open_for_recipient', hex(sealForRecipient(p, publicKey)), key]),
      ['open_for_recipient', hex(envelope), other],
      ['open_for_recipient', hex(Buffer.concat([envelope, Buffer.from([0])])), key],
      ['open_for_recipient', hex(Buffer.alloc(16_385, 0x30)), key],
    ]);
    expect(answers.slice(0, 5).map((a) => a.ok)).toEqual(plaintexts.map((p) => p.toString('hex')));
    expect(answers.slice(5).map((a) => a.message)).toEqual([
      'the envelope is for another key',
      'the envelope has bytes after its ContentInfo',
      'the envelope is larger than 16384 bytes',
    ]);
  });

  it('agrees with the platform reader on every truncation, bit flip and splice of an envelope', async () => {
    const envelope = sealForRecipient(randomBytes(32), publicKey);
    const mutants = fc.sample(
      fc.oneof(
        fc.integer({ min: 0, max: envelope.length - 1 }).map((n) => envelope.subarray(0, n)),
        fc
          .tuple(fc.integer({ min: 0, max: envelope.length - 1 }), fc.integer({ min: 0, max: 7 }))
          .map(([at, bit]) => {
            const copy = Buffer.from(envelope);
            copy[at]! ^= 1 << bit;
            return copy;
          }),
        fc
          .tuple(
            fc.integer({ min: 0, max: envelope.length - 1 }),
            fc.uint8Array({ minLength: 1, maxLength: 8 }),
          )
          .map(([at, bytes]) => Buffer.concat([envelope.subarray(0, at), bytes, envelope.subarray(at)])),
      ),
      { numRuns: 250, seed: 14 },
    );
    const answers = await python(mutants.map((m) => ['open_for_recipient', hex(m), key]));
    let opened = 0;
    mutants.forEach((mutant, i) => {
      let platform: string;
      try {
        platform = openForRecipient(mutant, privateKey).toString('hex');
      } catch (error) {
        if (!(error instanceof EnvelopeError)) throw error;
        platform = 'EnvelopeError';
      }
      const answer = answers[i]!;
      expect(answer.ok ?? answer.error).toBe(platform);
      if (answer.ok !== undefined) opened++;
    });
    // A flip in the IV or the encrypted content still opens (CBC has no integrity; KMS's envelope is
    // authenticated by TLS and by the key it is for): both readers give the same changed bytes.
    expect(opened).toBeGreaterThan(0);
    expect(opened).toBeLessThan(mutants.length / 2);
  });
});

describe('SigV4', () => {
  it("signs as the AWS SDK's signer does (the same Authorization for the same request and instant)", async () => {
    const credentials = { accessKeyId: 'ASIAEXAMPLE', secretAccessKey: 'c2VjcmV0', sessionToken: 'token/+=' };
    const body = JSON.stringify({ CiphertextBlob: 'AQID', EncryptionContext: { contractId: 'c' } });
    const when = new Date('2026-12-06T05:30:00Z');
    const signer = new SignatureV4({
      service: 'kms',
      region: KMS_REGION,
      credentials,
      sha256: Sha256,
      applyChecksum: false,
    });
    const sdk = await signer.sign(
      new HttpRequest({
        method: 'POST',
        protocol: 'https:',
        hostname: `kms.${KMS_REGION}.amazonaws.com`,
        path: '/',
        headers: {
          host: `kms.${KMS_REGION}.amazonaws.com`,
          'content-type': 'application/x-amz-json-1.1',
          'x-amz-target': 'TrentService.Decrypt',
        },
        body,
      }),
      { signingDate: when },
    );
    const [answer] = await python([
      [
        'sigv4_headers',
        'POST',
        `kms.${KMS_REGION}.amazonaws.com`,
        '/',
        { hex: Buffer.from(body).toString('hex') },
        KMS_REGION,
        'kms',
        credentials,
        { 'Content-Type': 'application/x-amz-json-1.1', 'X-Amz-Target': 'TrentService.Decrypt' },
        { time: when.toISOString() },
      ],
    ]);
    const headers = answer!.ok as Record<string, string>;
    expect(headers.authorization).toBe((sdk as HttpRequest).headers.authorization);
    expect(headers['x-amz-security-token']).toBe(credentials.sessionToken);
  });
});

// ------------------------------------------------------------------------------------ the whole step

const CONTRACT = '33333333-3333-4333-8333-333333333333';
const IMAGE = { eif: 'contract-runner:4.0.0' };
const RUNNING = 'i-0aaaaaaaaaaaaaaa1';
const STOPPED = 'i-0bbbbbbbbbbbbbbb2';
const SET_ID = 'aaaaaaaa-0000-4000-8000-00000000000a';
const PARENTS = 'Parents';

describe('the key release, against the local KMS and NSM', () => {
  const credentials = new LocalCredentials();
  let nitro: NitroSimulator;
  let kms: KmsSimulator;
  let nsm: NsmEndpoint;
  /** What the NSM attests as, for the next requests. */
  let enclave: Omit<AttestRequest, 'publicKey' | 'nonce' | 'userData'> = {
    instanceId: RUNNING,
    image: IMAGE,
  };
  let wrapped: string;
  let expected: Buffer;

  const parentCredentials = (instanceId: string) => credentials.issue(sessionArn(PARENTS, instanceId));
  const release = (options: Partial<KeyReleaseInput> & { instanceId?: string } = {}) =>
    releaseDataKey({
      nsmPort: nsm.port,
      kms: kms.url,
      region: KMS_REGION,
      credentials: parentCredentials(options.instanceId ?? RUNNING),
      wrappedDataKey: JSON.stringify({
        keyArn: `arn:aws:kms:${KMS_REGION}:${KMS_ACCOUNT}:alias/contracts/${CONTRACT}`,
        keySpec: 'AES_256',
        encryptionContext: { contractId: CONTRACT },
        ciphertextBlob: wrapped,
      }),
      ...options,
    });

  beforeAll(async () => {
    nitro = await NitroSimulator.create();
    kms = await startSuiteKms({
      credentials,
      nitro,
      identity: {
        Admin: { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'kms:*', Resource: '*' }] },
      },
    });
    nsm = await startNsmEndpoint((input) => nitro.attest({ ...enclave, ...input }));
    const measured = imageMeasurements(IMAGE);
    const admin = kmsClientAs(kms, credentials, 'Admin');
    const { KeyMetadata } = (await admin.call('CreateKey', {
      Policy: renderContractKeyPolicy({
        contractId: CONTRACT,
        principals: {
          partition: 'aws',
          accountId: KMS_ACCOUNT,
          administratorRoleArn: roleArn('Admin'),
          dataKeyRoleArn: roleArn('Admin'),
          parentRoleArn: roleArn(PARENTS),
        },
        measurementSets: [
          {
            id: SET_ID,
            pcr0: measured.pcr0,
            pcr1: measured.pcr1,
            pcr2: measured.pcr2,
            pcr8: null,
            additionalPcrs: {},
          },
        ],
        runningEnclaves: [
          { id: 'e0000000-0000-4000-8000-00000000000a', instanceId: RUNNING, measurementSetId: SET_ID },
        ],
      }).text,
    })) as { KeyMetadata: { KeyId: string } };
    await admin.call('CreateAlias', {
      AliasName: `alias/contracts/${CONTRACT}`,
      TargetKeyId: KeyMetadata.KeyId,
    });
    ({ CiphertextBlob: wrapped } = (await admin.call('GenerateDataKeyWithoutPlaintext', {
      KeyId: KeyMetadata.KeyId,
      KeySpec: 'AES_256',
      EncryptionContext: { contractId: CONTRACT },
    })) as { CiphertextBlob: string });
    // The platform's TypeScript enclave path gets the key the responder must get.
    const direct = await attestedDecrypt(
      kmsClientAs(kms, credentials, PARENTS, RUNNING),
      nitro,
      { instanceId: RUNNING, image: IMAGE },
      wrapped,
      CONTRACT,
    );
    expected = direct.key!;
  });
  afterAll(async () => {
    await nsm?.close();
    await kms?.close();
  });

  it('releases the data key to a Running enclave of the approved image, its public key attested', async () => {
    enclave = { instanceId: RUNNING, image: IMAGE };
    nsm.requests.length = 0;
    const answer = await release();
    expect(answer).toMatchObject({ code: 0, stderr: '' });
    expect(Buffer.from(answer.stdout.trim(), 'base64')).toEqual(expected);
    expect(expected).toHaveLength(32);
    // It asked the NSM once, for a document carrying a fresh RSA public key, with no nonce.
    expect(nsm.requests).toHaveLength(1);
    const attested = createPublicKey({
      key: Buffer.from(nsm.requests[0]!.publicKey!),
      format: 'der',
      type: 'spki',
    });
    expect(attested.asymmetricKeyDetails?.modulusLength).toBe(2048);
  });

  it('is refused, exit 1 with KMS error type, on another parent, in debug mode, as another image', async () => {
    for (const [who, credentialsOf] of [
      [{ instanceId: STOPPED, image: IMAGE }, STOPPED],
      [{ instanceId: RUNNING, image: IMAGE, debug: true }, RUNNING],
      [{ instanceId: RUNNING, image: { eif: 'contract-runner:6.6.6' } }, RUNNING],
    ] as const) {
      enclave = who;
      const answer = await release({ instanceId: credentialsOf });
      expect(answer.code).toBe(1);
      expect(answer.stdout).toBe('');
      expect(answer.stderr).toMatch(/^attestation-responder: KMS refused: AccessDeniedException/);
    }
    enclave = { instanceId: RUNNING, image: IMAGE };
  });

  it('is refused for another contract, and with credentials KMS does not know', async () => {
    const otherContext = await release({
      wrappedDataKey: JSON.stringify({
        encryptionContext: { contractId: 'another' },
        ciphertextBlob: wrapped,
      }),
    });
    expect(otherContext.code).toBe(1);
    expect(otherContext.stderr).toMatch(/KMS refused: (AccessDeniedException|InvalidCiphertextException)/);
    const forged = await release({
      credentials: { accessKeyId: 'ASIAFORGED', secretAccessKey: 'x', sessionToken: 'y' },
    });
    expect(forged.code).toBe(1);
    expect(forged.stderr).toMatch(/KMS refused: \w+/);
  });

  it('says why it could not ask: no NSM, no KMS (exit 1); usage errors (exit 2), with nothing on stdout', async () => {
    const closed = await new Promise<number>((resolve) => {
      const server: Server = createServer();
      server.listen(0, '127.0.0.1', () => {
        const { port } = server.address() as { port: number };
        server.close(() => resolve(port));
      });
    });
    const noNsm = await release({ nsmPort: closed });
    expect(noNsm).toMatchObject({ code: 1, stdout: '' });
    expect(noNsm.stderr).toMatch(/the NSM could not be reached/);
    const noKms = await release({ kms: `http://127.0.0.1:${closed}` });
    expect(noKms).toMatchObject({ code: 1, stdout: '' });
    expect(noKms.stderr).toMatch(/KMS could not be reached at 127\.0\.0\.1:\d+/);
    for (const [input, message] of [
      [{ wrappedDataKey: 'not json' }, /is not the answer of POST \/contracts\/\{id\}\/data-keys/],
      [{ wrappedDataKey: JSON.stringify({ ciphertextBlob: wrapped }) }, /no encryptionContext\.contractId/],
      [{ kms: 'ftp://kms' }, /--kms takes vsock:CID:PORT, https:\/\/HOST\[:PORT\] or http:\/\/HOST:PORT/],
      [
        { credentials: { accessKeyId: '', secretAccessKey: '' } },
        /AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY/,
      ],
    ] as const) {
      const answer = await release(input as Partial<KeyReleaseInput>);
      expect(answer).toMatchObject({ code: 2, stdout: '' });
      expect(answer.stderr).toMatch(message);
    }
  });

  it('refuses an answer KMS does not give: a plaintext, no JSON, too large, an envelope not in base64', async () => {
    // A stand-in answering the key release's call with each wrong answer in turn (fault injection: the
    // release must not use what a compromised or misconfigured endpoint sends).
    const answers: [number, string][] = [
      [200, JSON.stringify({ KeyId: 'k', Plaintext: randomBytes(32).toString('base64') })],
      [502, '<html>Bad Gateway</html>'],
      [200, JSON.stringify({ CiphertextForRecipient: 'A'.repeat(70_000) })],
      [200, JSON.stringify({ CiphertextForRecipient: 'not base64!' })],
      [200, JSON.stringify({})],
    ];
    const server = createHttpServer((request, response) => {
      request.resume();
      const [status, body] = answers.shift()!;
      response.writeHead(status, { 'content-type': 'application/x-amz-json-1.1' });
      response.end(body);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const kmsUrl = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    try {
      const messages: string[] = [];
      for (let i = 0; i < 5; i++) {
        const answer = await release({ kms: kmsUrl });
        expect(answer).toMatchObject({ code: 1, stdout: '' });
        messages.push(answer.stderr.replace(/^attestation-responder: /, '').trim());
      }
      expect(messages).toEqual([
        "KMS answered in plaintext, not for this enclave's key",
        'KMS answered HTTP 502 without a JSON object',
        'KMS answered more than 65536 bytes',
        'CiphertextForRecipient is not base64',
        'the envelope ends inside an element header',
      ]);
    } finally {
      server.close();
    }
  });

  it('reaches KMS over TLS, checking the certificate and the name it asked for, as through the vsock-proxy', async () => {
    const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
    const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
    openssl(
      'req',
      '-x509',
      ...ec,
      '-keyout',
      'ca.key',
      '-out',
      'ca.pem',
      '-subj',
      '/CN=Test KMS CA',
      '-days',
      '1',
    );
    /** A TLS terminator in front of the KMS stand-in, its certificate for `name`, issued by the test CA. */
    const terminator = async (name: string) => {
      writeFileSync(join(dir, `${name}.ext`), `subjectAltName=DNS:${name}\nbasicConstraints=CA:FALSE\n`);
      openssl('req', ...ec, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`);
      openssl(
        ...['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial'],
        ...['-out', `${name}.pem`, '-days', '1', '-extfile', `${name}.ext`],
      );
      const kmsPort = Number(new URL(kms.url).port);
      const server = createTlsServer(
        { key: readFileSync(join(dir, `${name}.key`)), cert: readFileSync(join(dir, `${name}.pem`)) },
        (socket) => {
          const upstream = connectTcp(kmsPort, '127.0.0.1');
          socket.pipe(upstream).pipe(socket);
          socket.on('error', () => upstream.destroy());
          upstream.on('error', () => socket.destroy());
        },
      );
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      return { server, port: (server.address() as { port: number }).port };
    };
    const right = await terminator('localhost');
    const wrong = await terminator('kms.elsewhere.example');
    try {
      const trusted = { SSL_CERT_FILE: join(dir, 'ca.pem') };
      const released = await release({ kms: `https://localhost:${right.port}`, env: trusted });
      expect(released).toMatchObject({ code: 0, stderr: '' });
      expect(Buffer.from(released.stdout.trim(), 'base64')).toEqual(expected);
      // A certificate for another name, or from a CA the image does not trust: nothing is sent.
      const misnamed = await release({ kms: `https://localhost:${wrong.port}`, env: trusted });
      expect(misnamed).toMatchObject({ code: 1, stdout: '' });
      expect(misnamed.stderr).toMatch(
        /KMS could not be reached at localhost:\d+: .*(CERTIFICATE_VERIFY_FAILED|match)/,
      );
      const untrusted = await release({ kms: `https://localhost:${right.port}` });
      expect(untrusted).toMatchObject({ code: 1, stdout: '' });
      expect(untrusted.stderr).toMatch(/CERTIFICATE_VERIFY_FAILED/);
    } finally {
      right.server.close();
      wrong.server.close();
    }
  });
});
