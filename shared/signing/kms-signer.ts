import { createHash, createPublicKey } from 'node:crypto';
import { calculateJwkThumbprint, type JWK } from 'jose';
import { SignedJsonClient } from '../runtime/signed-json-client.ts';
import { describeServiceFailure } from '../workflow/aws-service-failure.ts';
import {
  type PlatformKey,
  type PlatformKeyManager,
  type PlatformSigned,
  type Signer,
  SignerError,
} from './signer.ts';

/** KMS's throttling code (a client fault, worth retrying); its own faults are 5xx. */
const KMS_THROTTLING: ReadonlySet<string> = new Set(['ThrottlingException']);

/** The KMS operations the platform key's adapters make. */
export type KmsOperation = 'Sign' | 'GetPublicKey' | 'CreateKey' | 'UpdateAlias';

/**
 * A KMS call (AWS JSON 1.1, blobs as base64): the operation and its input, answered with KMS's JSON answer
 * or failed as the SDK v3 fails (an error named by KMS's code, with `$fault` and `$metadata`).
 */
export type KmsCall = (operation: KmsOperation, input: Record<string, unknown>) => Promise<unknown>;

/** How the adapters reach KMS: `call`, or a {@link SignedJsonClient} for `kms` in the function's region. */
function kmsCall(
  call: KmsCall | undefined,
): (operation: KmsOperation, input: Record<string, unknown>) => Promise<unknown> {
  let send = call;
  if (!send) {
    const client = new SignedJsonClient({ service: 'kms' });
    send = (operation, input) => client.call(operation, input);
  }
  const reach = send;
  return async (operation, input) => {
    try {
      return await reach(operation, input);
    } catch (error) {
      const { code, transient } = describeServiceFailure(error, KMS_THROTTLING);
      throw new SignerError(`KMS ${operation} failed: ${code}`, { cause: error, transient });
    }
  };
}

/** The public key of the KMS key `keyId` names (an ARN, a key id or an alias), with the key's ARN. */
async function publicKeyOf(
  call: (operation: KmsOperation, input: Record<string, unknown>) => Promise<unknown>,
  keyId: string,
): Promise<PlatformKey> {
  const answer = await call('GetPublicKey', { KeyId: keyId });
  const publicKey = blob(answer, 'PublicKey');
  if (!publicKey) throw new Error('KMS returned no public key');
  const jwk = createPublicKey({ key: publicKey, format: 'der', type: 'spki' }).export({
    format: 'jwk',
  }) as Record<string, unknown>;
  if (jwk.kty !== 'EC' || jwk.crv !== 'P-256') throw new Error('the platform key is not a P-256 key');
  const kid = await calculateJwkThumbprint(jwk as JWK);
  return { keyId: text(answer, 'KeyId') ?? keyId, jwk: { ...jwk, kid, alg: 'ES256', use: 'sig' } };
}

/** Options of {@link KmsSigner}. */
export interface KmsSignerOptions {
  /** The signing alias (`alias/...`), which a rotation moves; a key ARN pins one key. */
  readonly keyId: string;
  /**
   * How the calls reach KMS. @default a {@link SignedJsonClient} for `kms` in the function's region: the
   * calls the signing routes make, without the KMS client's module (27 KB minified) in their bundles.
   */
  readonly call?: KmsCall;
}

/**
 * The platform key in AWS KMS (asymmetric ECC_NIST_P256, SIGN_VERIFY), reached through its alias. Signs the
 * SHA-256 digest (`MessageType: DIGEST`), converts KMS's DER signature to JWS r‖s, and names the key that
 * signed from KMS's answer (`KeyId`): after a rotation moved the alias, a warm container signs with the new
 * key and says so, rather than labelling the signature with the key it saw first. Each key's public half is
 * fetched once per container (Sign/Verify share a 300 req/s quota, so verification is always local), the
 * alias's in parallel with the first signature.
 *
 * A failed call throws {@link SignerError}: `transient` (a 503 to the caller) when KMS throttled or failed
 * on its side after the client's retries, or never answered; a refusal (a disabled key, a denied call) is not.
 *
 * IAM: `kms:Sign` and `kms:GetPublicKey` on the platform keys (the deployment's tagged keys, since the
 * alias moves from one to the next).
 */
export class KmsSigner implements Signer {
  private readonly call: ReturnType<typeof kmsCall>;
  private readonly keys = new Map<string, Promise<PlatformKey>>();

  constructor(private readonly options: KmsSignerOptions) {
    this.call = kmsCall(options.call);
  }

  async sign(message: Uint8Array): Promise<PlatformSigned> {
    const [named, result] = await Promise.all([
      this.keyOf(this.options.keyId),
      this.call('Sign', {
        KeyId: this.options.keyId,
        Message: createHash('sha256').update(message).digest('base64'),
        MessageType: 'DIGEST',
        SigningAlgorithm: 'ECDSA_SHA_256',
      }),
    ]);
    const signature = blob(result, 'Signature');
    if (!signature) throw new Error('KMS returned no signature');
    const signedBy = text(result, 'KeyId');
    if (!signedBy) throw new Error('KMS named no key for its signature');
    let key = named;
    if (signedBy !== named.keyId) {
      // The alias moved since this container read it: the signing key is the one KMS names.
      const moved = this.keyOf(signedBy);
      this.keys.set(this.options.keyId, moved);
      key = await moved;
    }
    return { kid: key.jwk.kid, alg: 'ES256', signature: derToJose(signature, 32).toString('base64url'), key };
  }

  private keyOf(keyId: string): Promise<PlatformKey> {
    let key = this.keys.get(keyId);
    if (!key) {
      key = publicKeyOf(this.call, keyId).catch((error) => {
        this.keys.delete(keyId);
        throw error;
      });
      this.keys.set(keyId, key);
    }
    return key;
  }
}

/** Options of {@link KmsKeyManager}. */
export interface KmsKeyManagerOptions {
  /** The signing alias a rotation moves (`alias/...`). */
  readonly alias: string;
  /**
   * The tag every platform key of this deployment carries (what the signing functions' IAM grants name,
   * since a key ARN is not known before the key exists).
   */
  readonly tag: { readonly key: string; readonly value: string };
  readonly call?: KmsCall;
}

/**
 * Rotation of the platform key in KMS: `CreateKey` (ECC_NIST_P256, SIGN_VERIFY, the deployment's tag, the
 * default key policy, which leaves access to the account's IAM policies) and `UpdateAlias`.
 *
 * IAM: `kms:CreateKey` and `kms:TagResource` with the tag as `aws:RequestTag`, `kms:GetPublicKey` on the
 * tagged keys, `kms:UpdateAlias` on the alias and on the tagged keys (the one it leaves and the one it names).
 */
export class KmsKeyManager implements PlatformKeyManager {
  private readonly call: ReturnType<typeof kmsCall>;

  constructor(private readonly options: KmsKeyManagerOptions) {
    this.call = kmsCall(options.call);
  }

  async createSigningKey(): Promise<PlatformKey> {
    const created = await this.call('CreateKey', {
      KeySpec: 'ECC_NIST_P256',
      KeyUsage: 'SIGN_VERIFY',
      Description: 'Platform countersignature key of enclave contracts (ECDSA P-256, digest signing)',
      Tags: [{ TagKey: this.options.tag.key, TagValue: this.options.tag.value }],
    });
    const arn = text((created as { KeyMetadata?: unknown } | null)?.KeyMetadata, 'Arn');
    if (!arn) throw new Error('KMS returned no key ARN');
    return publicKeyOf(this.call, arn);
  }

  async moveAlias(keyId: string): Promise<void> {
    await this.call('UpdateAlias', { AliasName: this.options.alias, TargetKeyId: keyId });
  }
}

/** A string field of a KMS answer, or undefined. */
function text(answer: unknown, field: string): string | undefined {
  const value = (answer as Record<string, unknown> | null | undefined)?.[field];
  return typeof value === 'string' && value.length > 0 ? value : undefined;
}

/** A blob field of a KMS answer (base64 in AWS JSON), or undefined when the answer has none. */
function blob(answer: unknown, field: string): Buffer | undefined {
  const value = (answer as Record<string, unknown> | null)?.[field];
  return typeof value === 'string' && value.length > 0 ? Buffer.from(value, 'base64') : undefined;
}

/** DER `SEQUENCE { INTEGER r, INTEGER s }` → fixed-width r‖s. */
export function derToJose(der: Uint8Array, size: number): Buffer {
  const buf = Buffer.from(der);
  let offset = 0;
  const expect = (tag: number) => {
    if (buf[offset++] !== tag) throw new Error('malformed DER ECDSA signature');
  };
  const length = () => {
    let len = buf[offset++]!;
    if (len & 0x80) {
      const n = len & 0x7f;
      len = 0;
      for (let i = 0; i < n; i++) len = (len << 8) | buf[offset++]!;
    }
    return len;
  };
  expect(0x30);
  length();
  const integer = () => {
    expect(0x02);
    const len = length();
    let value = buf.subarray(offset, offset + len);
    offset += len;
    while (value.length > size && value[0] === 0) value = value.subarray(1);
    if (value.length > size) throw new Error('malformed DER ECDSA signature');
    return Buffer.concat([Buffer.alloc(size - value.length), value]);
  };
  const r = integer();
  const s = integer();
  return Buffer.concat([r, s]);
}
