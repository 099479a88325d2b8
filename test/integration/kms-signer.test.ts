/**
 * The platform keys as deployed (KmsSigner and KmsKeyManager over SignedJsonClient, no KMS client in any
 * bundle): what reaches KMS (AWS JSON 1.1, `TrentService.<Operation>`, signed for `kms`, the signature
 * checked as the service checks it, blobs in base64) and how its answers are read. The endpoint plays KMS
 * with real P-256 keys behind an alias: it signs the digest it is sent with the key the alias names,
 * DER-encoded, answers which key signed (`KeyId`, as KMS does), creates keys and moves the alias, so the
 * tests prove the adapters' digest, encoding conversion, key naming and rotation end to end.
 */
import {
  createHash,
  createPublicKey,
  generateKeyPairSync,
  type JsonWebKey,
  type KeyObject,
  randomUUID,
  sign,
  verify,
} from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { SignedJsonClient } from '../../shared/runtime/signed-json-client.ts';
import { KmsKeyManager, KmsSigner } from '../../shared/signing/kms-signer.ts';
import { type SigV4Endpoint, startSigV4Endpoint, TEST_CREDENTIALS } from '../support/sigv4-endpoint.ts';

const ALIAS = 'alias/enclave-contracts/main/platform-signing';
const ARN_PREFIX = 'arn:aws:kms:eu-central-1:111122223333:key/';
const FIRST = `${ARN_PREFIX}platform`;

/** KMS's keys (ARN → private key) and where the alias points. */
const keys = new Map<string, KeyObject>();
let aliasTarget = FIRST;
/** The messages whose digests the test expects KMS to be asked to sign. */
const known: Buffer[] = [];

const resolve = (keyId: unknown) => (keyId === ALIAS ? aliasTarget : String(keyId));
const spkiOf = (arn: string) =>
  createPublicKey(keys.get(arn)!).export({ format: 'der', type: 'spki' }).toString('base64');

/**
 * KMS's answers. Sign: an ECDSA signature over the 32-byte digest it was sent, DER, by the key the alias
 * names, with that key's ARN. node:crypto cannot sign a bare digest, so it signs the known message whose
 * SHA-256 that digest is (and answers no signature otherwise, which the signer must refuse).
 */
function answerLikeKms(target: string | undefined, body: Record<string, unknown>): unknown {
  switch (target) {
    case 'TrentService.GetPublicKey': {
      const arn = resolve(body.KeyId);
      return { KeyId: arn, PublicKey: spkiOf(arn), KeySpec: 'ECC_NIST_P256' };
    }
    case 'TrentService.CreateKey': {
      const arn = `${ARN_PREFIX}${randomUUID()}`;
      keys.set(arn, generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey);
      return { KeyMetadata: { Arn: arn, KeyId: arn.slice(ARN_PREFIX.length), KeySpec: body.KeySpec } };
    }
    case 'TrentService.UpdateAlias':
      aliasTarget = String(body.TargetKeyId);
      return {};
    default: {
      const arn = resolve(body.KeyId);
      const digest = Buffer.from(String(body.Message), 'base64');
      const message = known.find((m) => createHash('sha256').update(m).digest().equals(digest));
      if (!message) return { KeyId: arn };
      return {
        KeyId: arn,
        Signature: sign('sha256', message, { key: keys.get(arn)!, dsaEncoding: 'der' }).toString('base64'),
        SigningAlgorithm: 'ECDSA_SHA_256',
      };
    }
  }
}

let kms: SigV4Endpoint;
const client = () =>
  new SignedJsonClient({
    service: 'kms',
    region: 'eu-central-1',
    endpoint: kms.url,
    credentials: async () => TEST_CREDENTIALS,
  });
const signer = (keyId = ALIAS) => {
  const c = client();
  return new KmsSigner({ keyId, call: (operation, input) => c.call(operation, input) });
};
const manager = () => {
  const c = client();
  return new KmsKeyManager({
    alias: ALIAS,
    tag: { key: 'enclave-contracts:platform-key', value: 'EnclaveContracts' },
    call: (operation, input) => c.call(operation, input),
  });
};

beforeAll(async () => {
  kms = await startSigV4Endpoint({ service: 'kms', answer: answerLikeKms });
});
afterAll(() => kms?.close());
beforeEach(() => {
  kms.reset();
  known.length = 0;
  keys.clear();
  keys.set(FIRST, generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey);
  aliasTarget = FIRST;
});

const verifies = (jwk: Record<string, unknown>, message: Buffer, signature: string) =>
  verify(
    'sha256',
    message,
    { key: createPublicKey({ key: jwk as JsonWebKey, format: 'jwk' }), dsaEncoding: 'ieee-p1363' },
    Buffer.from(signature, 'base64url'),
  );

describe('KmsSigner, signed by hand', () => {
  it('signs the SHA-256 digest through the alias and returns a JWS ES256 signature the key it names verifies', async () => {
    const message = Buffer.from('{"contractId":"x"}');
    known.push(message);
    const signed = await signer().sign(message);
    expect(signed).toMatchObject({ kid: signed.key.jwk.kid, alg: 'ES256', key: { keyId: FIRST } });
    expect(signed.key.jwk).toMatchObject({ kty: 'EC', crv: 'P-256', alg: 'ES256', use: 'sig' });
    expect(Buffer.from(signed.signature, 'base64url')).toHaveLength(64);
    expect(verifies(signed.key.jwk, message, signed.signature)).toBe(true);
    const call = kms.seen.find((r) => r.target === 'TrentService.Sign')!;
    expect(call).toEqual({
      target: 'TrentService.Sign',
      contentType: 'application/x-amz-json-1.1',
      body: {
        KeyId: ALIAS,
        Message: createHash('sha256').update(message).digest('base64'),
        MessageType: 'DIGEST',
        SigningAlgorithm: 'ECDSA_SHA_256',
      },
      signatureValid: true,
    });
    expect(kms.seen.every((r) => r.signatureValid)).toBe(true);
  });

  it('names the key by the JWK thumbprint (RFC 7638) of the public key KMS holds', async () => {
    known.push(Buffer.from('m'));
    const { key, kid } = await signer().sign(Buffer.from('m'));
    const own = createPublicKey(keys.get(FIRST)!).export({ format: 'jwk' });
    const thumbprint = createHash('sha256')
      .update(JSON.stringify({ crv: own.crv, kty: own.kty, x: own.x, y: own.y }))
      .digest('base64url');
    expect(key.jwk).toMatchObject({ x: own.x, y: own.y, kid: thumbprint });
    expect(kid).toBe(thumbprint);
  });

  it('refuses an answer without a signature, and one that names no key', async () => {
    await expect(signer().sign(Buffer.from('unknown to KMS'))).rejects.toThrow('KMS returned no signature');
  });

  it('after the alias moved, a warm signer signs with the new key and names it, not the key it saw first', async () => {
    known.push(Buffer.from('before'), Buffer.from('after'));
    const platform = signer();
    const before = await platform.sign(Buffer.from('before'));
    const rotation = manager();
    const created = await rotation.createSigningKey();
    await rotation.moveAlias(created.keyId);
    const after = await platform.sign(Buffer.from('after'));
    expect(after.key.keyId).toBe(created.keyId);
    expect(after.kid).toBe(created.jwk.kid);
    expect(after.kid).not.toBe(before.kid);
    expect(verifies(after.key.jwk, Buffer.from('after'), after.signature)).toBe(true);
    expect(verifies(before.key.jwk, Buffer.from('after'), after.signature)).toBe(false);
    // The new key's public half is read once, then kept for the alias.
    kms.reset();
    await platform.sign(Buffer.from('after'));
    expect(kms.seen.map((r) => r.target)).toEqual(['TrentService.Sign']);
  });

  it('fetches the public key once per container and asks again after a failure', async () => {
    known.push(Buffer.from('m'));
    const platform = signer();
    kms.fail({ status: 400, type: 'KMSInvalidStateException' });
    await expect(platform.sign(Buffer.from('m'))).rejects.toMatchObject({
      name: 'SignerError',
      transient: false,
    });
    await platform.sign(Buffer.from('m'));
    await platform.sign(Buffer.from('m'));
    expect(kms.seen.filter((r) => r.target === 'TrentService.GetPublicKey')).toHaveLength(2);
  });

  it('tries a throttled Sign again and does not repeat a refused one', async () => {
    known.push(Buffer.from('m'));
    const platform = signer();
    await platform.sign(Buffer.from('m'));
    kms.reset();
    kms.fail({ status: 400, type: 'ThrottlingException' });
    await expect(platform.sign(Buffer.from('m'))).resolves.toMatchObject({ alg: 'ES256' });
    expect(kms.seen.map((r) => r.target)).toEqual(['TrentService.Sign', 'TrentService.Sign']);
    kms.reset();
    kms.fail({ status: 400, type: 'DisabledException' });
    await expect(platform.sign(Buffer.from('m'))).rejects.toMatchObject({
      name: 'SignerError',
      message: 'KMS Sign failed: DisabledException',
      transient: false,
      cause: { name: 'DisabledException' },
    });
    expect(kms.seen).toHaveLength(1);
  });

  it.each([
    ['still throttled after three attempts', 400, 'ThrottlingException'],
    ['failing on its side', 500, 'KMSInternalException'],
    ['timing out on a dependency', 503, 'DependencyTimeoutException'],
  ])('marks KMS %s transient (a 503 to the caller)', async (_, status, type) => {
    kms.fail({ status, type }, { status, type }, { status, type });
    await expect(manager().moveAlias(FIRST)).rejects.toMatchObject({
      name: 'SignerError',
      message: `KMS UpdateAlias failed: ${type}`,
      transient: true,
    });
    expect(kms.seen).toHaveLength(3);
  });

  it('marks a KMS that never answers transient', async () => {
    const unreachable = new SignedJsonClient({
      service: 'kms',
      region: 'eu-central-1',
      endpoint: 'http://127.0.0.1:1',
      credentials: async () => TEST_CREDENTIALS,
      maxAttempts: 1,
    });
    const platform = new KmsSigner({
      keyId: 'k',
      call: (operation, input) => unreachable.call(operation, input),
    });
    await expect(platform.sign(Buffer.from('m'))).rejects.toMatchObject({
      name: 'SignerError',
      transient: true,
    });
  });
});

describe('KmsKeyManager, the rotation', () => {
  it('creates a P-256 signing key with the deployment tag and answers its ARN and public key', async () => {
    const created = await manager().createSigningKey();
    expect(created.keyId).toMatch(new RegExp(`^${ARN_PREFIX}`));
    const create = kms.seen.find((r) => r.target === 'TrentService.CreateKey')!;
    expect(create.body).toEqual({
      KeySpec: 'ECC_NIST_P256',
      KeyUsage: 'SIGN_VERIFY',
      Description: expect.stringContaining('ECDSA P-256'),
      Tags: [{ TagKey: 'enclave-contracts:platform-key', TagValue: 'EnclaveContracts' }],
    });
    const own = createPublicKey(keys.get(created.keyId)!).export({ format: 'jwk' });
    expect(created.jwk).toMatchObject({ x: own.x, y: own.y, alg: 'ES256', use: 'sig' });
    expect(kms.seen.find((r) => r.target === 'TrentService.GetPublicKey')!.body).toEqual({
      KeyId: created.keyId,
    });
  });

  it('moves the alias with UpdateAlias', async () => {
    await manager().moveAlias(`${ARN_PREFIX}next`);
    expect(kms.seen.map((r) => [r.target, r.body])).toEqual([
      ['TrentService.UpdateAlias', { AliasName: ALIAS, TargetKeyId: `${ARN_PREFIX}next` }],
    ]);
    expect(aliasTarget).toBe(`${ARN_PREFIX}next`);
  });

  it('refuses a CreateKey answer without a key ARN', async () => {
    const platform = new KmsKeyManager({
      alias: ALIAS,
      tag: { key: 'k', value: 'v' },
      call: async () => ({ KeyMetadata: {} }),
    });
    await expect(platform.createSigningKey()).rejects.toThrow('KMS returned no key ARN');
  });
});
