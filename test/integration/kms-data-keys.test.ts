/**
 * The credential key's data keys as deployed (KmsDataKeys over SignedJsonClient, no KMS client in any
 * bundle): what reaches KMS (`TrentService.GenerateDataKey` and `TrentService.Decrypt`, AWS JSON 1.1, signed
 * for `kms`, the signature checked as the service checks it, blobs in base64, the encryption context as a
 * map) and how its answers and refusals are read. The endpoint plays KMS with a real wrapping key that binds
 * the context, as KMS does, so a seal and an open go end to end through the envelope.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { SignedJsonClient } from '../../shared/runtime/signed-json-client.ts';
import { KmsDataKeys } from '../../shared/signing/kms-data-keys.ts';
import { EnvelopeSealer, LocalDataKeys } from '../../shared/signing/secret-sealer.ts';
import { type SigV4Endpoint, startSigV4Endpoint, TEST_CREDENTIALS } from '../support/sigv4-endpoint.ts';

const KEY_ARN = 'arn:aws:kms:eu-central-1:111122223333:key/credential';
/** KMS's own wrapping, context-bound (AES-GCM with the context as additional data). */
const inKms = LocalDataKeys.create({ keyId: KEY_ARN });

async function answerLikeKms(target: string | undefined, body: Record<string, unknown>): Promise<unknown> {
  const context = body.EncryptionContext as Record<string, string>;
  if (target === 'TrentService.GenerateDataKey') {
    const key = await inKms.generate(context);
    return {
      KeyId: KEY_ARN,
      Plaintext: Buffer.from(key.plaintext).toString('base64'),
      CiphertextBlob: Buffer.from(key.wrapped).toString('base64'),
    };
  }
  const plaintext = await inKms.unwrap(Buffer.from(String(body.CiphertextBlob), 'base64'), context, KEY_ARN);
  return { KeyId: KEY_ARN, Plaintext: Buffer.from(plaintext).toString('base64') };
}

let kms: SigV4Endpoint;
/** What the endpoint answers next (its `answer` is synchronous: the promise's value is kept ready). */
let nextAnswer: unknown;
const client = () =>
  new SignedJsonClient({
    service: 'kms',
    region: 'eu-central-1',
    endpoint: kms.url,
    credentials: async () => TEST_CREDENTIALS,
  });
const sealer = () => {
  const c = client();
  return new EnvelopeSealer(
    new KmsDataKeys({
      keyId: KEY_ARN,
      call: async (operation, input) => {
        nextAnswer = await answerLikeKms(`TrentService.${operation}`, JSON.parse(JSON.stringify(input)));
        return c.call(operation, input);
      },
    }),
  );
};
const context = { purpose: 'totp-seed', identityId: 'i-1', credentialId: 'c-1' };

beforeAll(async () => {
  kms = await startSigV4Endpoint({ service: 'kms', answer: () => nextAnswer });
});
afterAll(() => kms?.close());
beforeEach(() => kms.reset());

describe('KmsDataKeys, signed by hand', () => {
  it('seals with GenerateDataKey (AES_256, the context) and opens with Decrypt naming the key', async () => {
    const secret = Buffer.from('seed bytes');
    const s = sealer();
    const sealed = await s.seal(secret, context);
    expect(sealed.keyId).toBe(KEY_ARN);
    expect(Buffer.from(await s.open(sealed, context)).equals(secret)).toBe(true);
    expect(kms.seen).toEqual([
      {
        target: 'TrentService.GenerateDataKey',
        contentType: 'application/x-amz-json-1.1',
        body: { KeyId: KEY_ARN, KeySpec: 'AES_256', EncryptionContext: context },
        signatureValid: true,
      },
      {
        target: 'TrentService.Decrypt',
        contentType: 'application/x-amz-json-1.1',
        body: { KeyId: KEY_ARN, CiphertextBlob: sealed.wrappedKey, EncryptionContext: context },
        signatureValid: true,
      },
    ]);
  });

  it('passes on a refusal as not transient (InvalidCiphertextException: another context or key)', async () => {
    const s = sealer();
    const sealed = await s.seal(Buffer.from('x'), context);
    kms.fail({ status: 400, type: 'InvalidCiphertextException' });
    await expect(s.open(sealed, context)).rejects.toMatchObject({
      name: 'SealerError',
      message: 'KMS Decrypt failed: InvalidCiphertextException',
      transient: false,
    });
    kms.fail({ status: 400, type: 'AccessDeniedException' });
    await expect(s.seal(Buffer.from('x'), context)).rejects.toMatchObject({
      message: 'KMS GenerateDataKey failed: AccessDeniedException',
      transient: false,
    });
  });

  it.each([
    ['still throttled after three attempts', 400, 'ThrottlingException'],
    ['failing on its side', 500, 'KMSInternalException'],
  ])('marks KMS %s transient (a 503 to the caller)', async (_, status, type) => {
    kms.fail({ status, type }, { status, type }, { status, type });
    await expect(sealer().seal(Buffer.from('x'), context)).rejects.toMatchObject({
      name: 'SealerError',
      transient: true,
    });
  });

  it('refuses an answer without a 256-bit data key', async () => {
    const c = client();
    const keys = new KmsDataKeys({
      keyId: KEY_ARN,
      call: async (operation, input) => {
        nextAnswer = {
          KeyId: KEY_ARN,
          Plaintext: Buffer.alloc(16).toString('base64'),
          CiphertextBlob: 'AA==',
        };
        return c.call(operation, input);
      },
    });
    await expect(keys.generate(context)).rejects.toThrow('KMS returned no 256-bit data key');
    await expect(keys.unwrap(Buffer.from('x'), context, KEY_ARN)).rejects.toThrow(
      'KMS returned no 256-bit data key',
    );
  });
});
