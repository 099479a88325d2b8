/**
 * The platform signer as deployed (KmsSigner over SignedJsonClient, no KMS client in any bundle): what
 * reaches KMS (AWS JSON 1.1, `TrentService.<Operation>`, signed for `kms`, the signature checked as the
 * service checks it, blobs in base64) and how its answers are read. The endpoint plays KMS with a real
 * P-256 key: it signs the digest it is sent, DER-encoded, so the test proves the adapter's digest, encoding
 * conversion and key id end to end.
 */
import { createHash, createPublicKey, generateKeyPairSync, type JsonWebKey, sign, verify } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { SignedJsonClient } from '../../shared/runtime/signed-json-client.ts';
import { KmsSigner } from '../../shared/signing/kms-signer.ts';
import { type SigV4Endpoint, startSigV4Endpoint, TEST_CREDENTIALS } from '../support/sigv4-endpoint.ts';

const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const spki = publicKey.export({ format: 'der', type: 'spki' });
/** The messages whose digests the test expects KMS to be asked to sign. */
const known: Buffer[] = [];

/**
 * KMS's answers: GetPublicKey the SPKI in base64; Sign an ECDSA signature over the 32-byte digest it was
 * sent, DER. node:crypto cannot sign a bare digest, so it signs the known message whose SHA-256 that
 * digest is (and answers nothing otherwise, which the signer must refuse).
 */
function answerLikeKms(target: string | undefined, body: Record<string, unknown>): unknown {
  if (target === 'TrentService.GetPublicKey') {
    return { KeyId: body.KeyId, PublicKey: spki.toString('base64'), KeySpec: 'ECC_NIST_P256' };
  }
  const digest = Buffer.from(String(body.Message), 'base64');
  const message = known.find((m) => createHash('sha256').update(m).digest().equals(digest));
  if (!message) return { KeyId: body.KeyId };
  return {
    KeyId: body.KeyId,
    Signature: sign('sha256', message, { key: privateKey, dsaEncoding: 'der' }).toString('base64'),
    SigningAlgorithm: 'ECDSA_SHA_256',
  };
}

let kms: SigV4Endpoint;
const signer = (keyId = 'arn:aws:kms:eu-central-1:111122223333:key/platform') => {
  const client = new SignedJsonClient({
    service: 'kms',
    region: 'eu-central-1',
    endpoint: kms.url,
    credentials: async () => TEST_CREDENTIALS,
  });
  return new KmsSigner({ keyId, call: (operation, input) => client.call(operation, input) });
};

beforeAll(async () => {
  kms = await startSigV4Endpoint({ service: 'kms', answer: answerLikeKms });
});
afterAll(() => kms?.close());
beforeEach(() => {
  kms.reset();
  known.length = 0;
});

describe('KmsSigner, signed by hand', () => {
  it('signs the SHA-256 digest and returns a JWS ES256 signature the published key verifies', async () => {
    const message = Buffer.from('{"contractId":"x"}');
    known.push(message);
    const platform = signer();
    const signed = await platform.sign(message);
    const [jwk] = await platform.publicKeys();
    expect(signed).toMatchObject({ kid: jwk!.kid, alg: 'ES256' });
    expect(jwk).toMatchObject({ kty: 'EC', crv: 'P-256', alg: 'ES256', use: 'sig' });
    const jose = Buffer.from(signed.signature, 'base64url');
    expect(jose).toHaveLength(64);
    const key = createPublicKey({ key: jwk as JsonWebKey, format: 'jwk' });
    expect(verify('sha256', message, { key, dsaEncoding: 'ieee-p1363' }, jose)).toBe(true);
    const call = kms.seen.find((r) => r.target === 'TrentService.Sign')!;
    expect(call).toEqual({
      target: 'TrentService.Sign',
      contentType: 'application/x-amz-json-1.1',
      body: {
        KeyId: 'arn:aws:kms:eu-central-1:111122223333:key/platform',
        Message: createHash('sha256').update(message).digest('base64'),
        MessageType: 'DIGEST',
        SigningAlgorithm: 'ECDSA_SHA_256',
      },
      signatureValid: true,
    });
    expect(kms.seen.every((r) => r.signatureValid)).toBe(true);
  });

  it('names the key by the JWK thumbprint (RFC 7638) of the public key KMS holds', async () => {
    const [jwk] = await signer().publicKeys();
    const own = publicKey.export({ format: 'jwk' });
    const thumbprint = createHash('sha256')
      .update(JSON.stringify({ crv: own.crv, kty: own.kty, x: own.x, y: own.y }))
      .digest('base64url');
    expect(jwk).toMatchObject({ x: own.x, y: own.y, kid: thumbprint });
  });

  it('refuses an answer without a signature', async () => {
    await expect(signer().sign(Buffer.from('unknown to KMS'))).rejects.toThrow('KMS returned no signature');
  });

  it('fetches the public key once per container and asks again after a failure', async () => {
    kms.fail({ status: 400, type: 'KMSInvalidStateException' });
    const platform = signer();
    await expect(platform.publicKeys()).rejects.toMatchObject({
      name: 'SignerError',
      message: 'KMS GetPublicKey failed: KMSInvalidStateException',
      transient: false,
    });
    known.push(Buffer.from('m'));
    await platform.publicKeys();
    await platform.publicKeys();
    await platform.sign(Buffer.from('m'));
    expect(kms.seen.filter((r) => r.target === 'TrentService.GetPublicKey')).toHaveLength(2);
  });

  it('tries a throttled Sign again and does not repeat a refused one', async () => {
    known.push(Buffer.from('m'));
    const platform = signer();
    await platform.publicKeys();
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
    await expect(signer().publicKeys()).rejects.toMatchObject({
      name: 'SignerError',
      message: `KMS GetPublicKey failed: ${type}`,
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
    await expect(platform.publicKeys()).rejects.toMatchObject({ name: 'SignerError', transient: true });
  });
});
