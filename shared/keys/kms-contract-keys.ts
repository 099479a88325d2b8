import { SignedJsonClient } from '../runtime/signed-json-client.ts';
import { describeServiceFailure } from '../workflow/aws-service-failure.ts';
import { CONTRACT_CONTEXT_KEY } from './contract-key-policy.ts';
import {
  CONTRACT_ID_TAG_KEY,
  CONTRACT_KEY_TAG_KEY,
  ContractKeyError,
  type ContractKeyManager,
  KEY_DELETION_WINDOW_DAYS,
} from './contract-key-port.ts';

type KmsCall = (operation: string, input: object) => Promise<unknown>;
const KMS_THROTTLING: ReadonlySet<string> = new Set(['ThrottlingException']);

/**
 * {@link ContractKeyManager} over KMS (AWS JSON 1.1 through {@link SignedJsonClient}), the same in AWS and
 * locally (where the endpoint is the KMS stand-in).
 */
export class KmsContractKeys implements ContractKeyManager {
  private readonly send: KmsCall;

  constructor(
    private readonly options: {
      /** The deployment's value of {@link CONTRACT_KEY_TAG_KEY}. */
      readonly tag: string;
      readonly call?: KmsCall;
    },
  ) {
    if (options.call) {
      this.send = options.call;
    } else {
      const client = new SignedJsonClient({ service: 'kms' });
      this.send = (operation, input) => client.call(operation, input);
    }
  }

  private async call(operation: string, input: object): Promise<Record<string, unknown>> {
    try {
      return ((await this.send(operation, input)) ?? {}) as Record<string, unknown>;
    } catch (error) {
      const { code, transient } = describeServiceFailure(error, KMS_THROTTLING);
      throw Object.assign(
        new ContractKeyError(`KMS ${operation} failed: ${code}`, { cause: error, transient }),
        {
          code,
        },
      );
    }
  }

  private async aliasTarget(alias: string): Promise<string | undefined> {
    try {
      const answer = await this.call('DescribeKey', { KeyId: alias });
      return (answer.KeyMetadata as { Arn?: string } | undefined)?.Arn;
    } catch (error) {
      if ((error as { code?: string }).code === 'NotFoundException') return undefined;
      throw error;
    }
  }

  async createKey(input: { contractId: string; alias: string; policy: string }): Promise<string> {
    const existing = await this.aliasTarget(input.alias);
    if (existing) return existing;
    const created = await this.call('CreateKey', {
      Description: `Data key of contract ${input.contractId}`,
      KeySpec: 'SYMMETRIC_DEFAULT',
      KeyUsage: 'ENCRYPT_DECRYPT',
      Policy: input.policy,
      Tags: [
        { TagKey: CONTRACT_KEY_TAG_KEY, TagValue: this.options.tag },
        { TagKey: CONTRACT_ID_TAG_KEY, TagValue: input.contractId },
      ],
    });
    const arn = (created.KeyMetadata as { Arn?: unknown } | undefined)?.Arn;
    if (typeof arn !== 'string') throw new ContractKeyError('KMS CreateKey answered no key ARN');
    try {
      await this.call('CreateAlias', { AliasName: input.alias, TargetKeyId: arn });
      return arn;
    } catch (error) {
      if ((error as { code?: string }).code !== 'AlreadyExistsException') throw error;
      // Another sync named a key first: keep that one, and let this one go (its policy admits nobody).
      await this.scheduleDeletion(arn, KEY_DELETION_WINDOW_DAYS);
      const winner = await this.aliasTarget(input.alias);
      if (!winner)
        throw new ContractKeyError(`alias ${input.alias} exists and names no key`, { transient: true });
      return winner;
    }
  }

  async putPolicy(keyArn: string, policy: string): Promise<void> {
    await this.call('PutKeyPolicy', { KeyId: keyArn, PolicyName: 'default', Policy: policy });
  }

  async setEnabled(keyArn: string, enabled: boolean): Promise<void> {
    await this.call(enabled ? 'EnableKey' : 'DisableKey', { KeyId: keyArn });
  }

  async scheduleDeletion(keyArn: string, days: number): Promise<Date> {
    const answer = await this.call('ScheduleKeyDeletion', { KeyId: keyArn, PendingWindowInDays: days });
    const date = answer.DeletionDate;
    if (typeof date !== 'number') throw new ContractKeyError('KMS ScheduleKeyDeletion answered no date');
    return new Date(date * 1000);
  }

  async wrapDataKey(keyArn: string, contractId: string): Promise<{ keyArn: string; ciphertextBlob: string }> {
    const answer = await this.call('GenerateDataKeyWithoutPlaintext', {
      KeyId: keyArn,
      KeySpec: 'AES_256',
      EncryptionContext: { [CONTRACT_CONTEXT_KEY]: contractId },
    });
    if (typeof answer.CiphertextBlob !== 'string' || answer.CiphertextBlob.length === 0) {
      throw new ContractKeyError('KMS GenerateDataKeyWithoutPlaintext answered no ciphertext');
    }
    return {
      keyArn: typeof answer.KeyId === 'string' ? answer.KeyId : keyArn,
      ciphertextBlob: answer.CiphertextBlob,
    };
  }
}
