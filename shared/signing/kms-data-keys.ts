import { SignedJsonClient } from '../runtime/signed-json-client.ts';
import { describeServiceFailure } from '../workflow/aws-service-failure.ts';
import { type DataKeys, type EncryptionContext, SealerError } from './secret-sealer.ts';

/** KMS's throttling code (a client fault, worth retrying); its own faults are 5xx. */
const KMS_THROTTLING: ReadonlySet<string> = new Set(['ThrottlingException']);

/** A KMS call (AWS JSON 1.1, blobs as base64), failed as the SDK v3 fails. */
export type KmsDataKeyCall = (operation: 'GenerateDataKey' | 'Decrypt', input: object) => Promise<unknown>;

/** Options of {@link KmsDataKeys}. */
export interface KmsDataKeysOptions {
  /** The wrapping key's ARN (what the function's IAM grant names). */
  readonly keyId: string;
  /** @default a {@link SignedJsonClient} for `kms` in the function's region */
  readonly call?: KmsDataKeyCall;
}

/**
 * Data keys from AWS KMS under a customer-managed symmetric key: `GenerateDataKey` (AES_256) for a seal,
 * `Decrypt` naming the key (a ciphertext under any other key is refused by KMS, not trusted) for an open,
 * both with the encryption context, which KMS binds to the wrapped key and logs in CloudTrail.
 *
 * A failed call throws {@link SealerError}, `transient` (a 503) when KMS throttled, failed on its side or
 * never answered; `InvalidCiphertextException` (another context, another key, a changed blob) is not.
 *
 * IAM: `kms:GenerateDataKey` (enrolment) and `kms:Decrypt` (verification), each on this key only.
 */
export class KmsDataKeys implements DataKeys {
  private readonly send: KmsDataKeyCall;

  constructor(private readonly options: KmsDataKeysOptions) {
    if (options.call) {
      this.send = options.call;
    } else {
      const client = new SignedJsonClient({ service: 'kms' });
      this.send = (operation, input) => client.call(operation, input);
    }
  }

  private async call(
    operation: 'GenerateDataKey' | 'Decrypt',
    input: object,
  ): Promise<Record<string, unknown>> {
    try {
      return ((await this.send(operation, input)) ?? {}) as Record<string, unknown>;
    } catch (error) {
      const { code, transient } = describeServiceFailure(error, KMS_THROTTLING);
      throw new SealerError(`KMS ${operation} failed: ${code}`, { cause: error, transient });
    }
  }

  async generate(context: EncryptionContext) {
    const answer = await this.call('GenerateDataKey', {
      KeyId: this.options.keyId,
      KeySpec: 'AES_256',
      EncryptionContext: context,
    });
    const plaintext = blob(answer, 'Plaintext');
    const wrapped = blob(answer, 'CiphertextBlob');
    if (plaintext?.length !== 32 || !wrapped) throw new SealerError('KMS returned no 256-bit data key');
    return {
      keyId: typeof answer.KeyId === 'string' ? answer.KeyId : this.options.keyId,
      plaintext,
      wrapped,
    };
  }

  async unwrap(wrapped: Uint8Array, context: EncryptionContext, keyId: string): Promise<Uint8Array> {
    const answer = await this.call('Decrypt', {
      // The key the secret names (its ARN, as GenerateDataKey answered): KMS refuses a blob of another key.
      KeyId: keyId,
      CiphertextBlob: Buffer.from(wrapped).toString('base64'),
      EncryptionContext: context,
    });
    const plaintext = blob(answer, 'Plaintext');
    if (plaintext?.length !== 32) throw new SealerError('KMS returned no 256-bit data key');
    return plaintext;
  }
}

function blob(answer: Record<string, unknown>, field: string): Buffer | undefined {
  const value = answer[field];
  return typeof value === 'string' && value.length > 0 ? Buffer.from(value, 'base64') : undefined;
}
