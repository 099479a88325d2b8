import { createHash, createPublicKey, generateKeyPairSync, type JsonWebKey, sign, verify } from 'node:crypto';
import { GetPublicKeyCommand, KMSClient, SignCommand } from '@aws-sdk/client-kms';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it } from 'vitest';
import { KmsSigner } from '../../shared/signing/kms-signer.ts';

/**
 * The KMS adapter's contract with KMS, checked on the calls it makes: the mock stands in for the service
 * only, and answers with a real ECDSA key's DER signature, so the test proves the adapter's digest,
 * encoding conversion and key id end to end.
 */
const kms = mockClient(KMSClient);
afterEach(() => kms.reset());

const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const spki = publicKey.export({ format: 'der', type: 'spki' });

/**
 * Answers as KMS does: ECDSA over the 32-byte digest it was sent, DER-encoded. node:crypto cannot sign a
 * bare digest, so the fake signs the message whose SHA-256 that digest must be (and fails otherwise).
 */
function answerLikeKms(messages: Buffer[]) {
  kms.on(GetPublicKeyCommand).resolves({ PublicKey: new Uint8Array(spki), KeySpec: 'ECC_NIST_P256' });
  kms.on(SignCommand).callsFake((input: { Message: Uint8Array }) => {
    const message = messages.find((m) =>
      createHash('sha256').update(m).digest().equals(Buffer.from(input.Message)),
    );
    if (!message) throw new Error('KMS was not sent the SHA-256 digest of a known message');
    return { Signature: new Uint8Array(sign('sha256', message, { key: privateKey, dsaEncoding: 'der' })) };
  });
}

describe('KmsSigner', () => {
  it('signs the SHA-256 digest and returns a JWS ES256 signature the published key verifies', async () => {
    const message = Buffer.from('{"contractId":"x"}');
    answerLikeKms([message]);
    const signer = new KmsSigner({
      keyId: 'alias/platform',
      client: new KMSClient({ region: 'eu-central-1' }),
    });
    const signed = await signer.sign(message);
    const [jwk] = await signer.publicKeys();
    expect(signed.kid).toBe(jwk!.kid);
    const key = createPublicKey({ key: jwk as JsonWebKey, format: 'jwk' });
    const jose = Buffer.from(signed.signature, 'base64url');
    expect(jose).toHaveLength(64);
    expect(verify('sha256', message, { key, dsaEncoding: 'ieee-p1363' }, jose)).toBe(true);
    const call = kms.commandCalls(SignCommand)[0]!.args[0].input;
    expect(call).toMatchObject({
      KeyId: 'alias/platform',
      MessageType: 'DIGEST',
      SigningAlgorithm: 'ECDSA_SHA_256',
    });
  });

  it('fetches the public key once per container and retries it after a failure', async () => {
    kms.on(GetPublicKeyCommand).rejectsOnce(new Error('throttled'));
    const signer = new KmsSigner({ keyId: 'k', client: new KMSClient({ region: 'eu-central-1' }) });
    await expect(signer.publicKeys()).rejects.toThrow('throttled');
    answerLikeKms([Buffer.from('m')]);
    await signer.publicKeys();
    await signer.publicKeys();
    await signer.sign(Buffer.from('m'));
    expect(kms.commandCalls(GetPublicKeyCommand)).toHaveLength(2);
  });
});
