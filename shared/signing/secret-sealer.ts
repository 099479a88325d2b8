import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { canonicalJson } from '../domain/canonical-json.ts';

/**
 * Envelope encryption of the secrets the platform must read back (TOTP seeds): each secret is encrypted
 * with a fresh 256-bit data key (AES-256-GCM), and only the data key, wrapped by a key-management key, is
 * stored beside it. In AWS the wrapping key is a customer-managed KMS key (`GenerateDataKey`, `Decrypt`:
 * the plaintext data key never leaves the function's memory); in the local stack, a local key behind the
 * same port ({@link DataKeys}).
 *
 * The encryption context names what the secret belongs to (its identity and credential): KMS binds it to
 * the wrapped key (a `Decrypt` with another context fails, and CloudTrail records it), and the same context
 * is the AES-GCM additional data, so a sealed secret copied onto another row opens nowhere.
 */
export interface SealedSecret {
  /** The format: 1 = AES-256-GCM under a wrapped data key. */
  readonly v: 1;
  /** The wrapping key (KMS: its ARN as KMS names it in the answer). */
  readonly keyId: string;
  /** The data key, wrapped (KMS: the `CiphertextBlob`), base64. */
  readonly wrappedKey: string;
  /** base64: 12-byte IV, the ciphertext, the 16-byte tag. */
  readonly iv: string;
  readonly ciphertext: string;
  readonly tag: string;
}

/** What a secret belongs to; every member is checked again when it is opened. */
export type EncryptionContext = Readonly<Record<string, string>>;

/** The port both deployments implement: a fresh data key, and a wrapped one unwrapped. */
export interface DataKeys {
  generate(
    context: EncryptionContext,
  ): Promise<{ keyId: string; plaintext: Uint8Array; wrapped: Uint8Array }>;
  unwrap(wrapped: Uint8Array, context: EncryptionContext, keyId: string): Promise<Uint8Array>;
}

/** Seals and opens secrets; see {@link SealedSecret}. */
export interface SecretSealer {
  seal(plaintext: Uint8Array, context: EncryptionContext): Promise<SealedSecret>;
  open(sealed: SealedSecret, context: EncryptionContext): Promise<Uint8Array>;
}

/** The key service failed; `transient` when it may succeed later (a 503). */
export class SealerError extends Error {
  override readonly name = 'SealerError';
  readonly transient: boolean;

  constructor(message: string, options?: { cause?: unknown; transient?: boolean }) {
    super(message, options);
    this.transient = options?.transient ?? false;
  }
}

const IV_BYTES = 12;
const TAG_BYTES = 16;

/** AES-256-GCM with `aad`: IV, ciphertext and tag. */
export function aesGcmSeal(
  key: Uint8Array,
  plaintext: Uint8Array,
  aad: Uint8Array,
): { iv: Buffer; ciphertext: Buffer; tag: Buffer } {
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
  cipher.setAAD(aad);
  const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return { iv, ciphertext, tag: cipher.getAuthTag() };
}

/**
 * Opens what {@link aesGcmSeal} sealed.
 * @throws SealerError when anything (key, IV, ciphertext, tag or `aad`) differs from the seal's.
 */
export function aesGcmOpen(
  key: Uint8Array,
  sealed: { iv: Uint8Array; ciphertext: Uint8Array; tag: Uint8Array },
  aad: Uint8Array,
): Buffer {
  if (sealed.iv.length !== IV_BYTES || sealed.tag.length !== TAG_BYTES)
    throw new SealerError('the sealed secret is malformed (IV or tag length)');
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, sealed.iv, { authTagLength: TAG_BYTES });
    decipher.setAAD(aad);
    decipher.setAuthTag(sealed.tag);
    return Buffer.concat([decipher.update(sealed.ciphertext), decipher.final()]);
  } catch (error) {
    throw new SealerError('the sealed secret does not open with this key and context', { cause: error });
  }
}

/** The additional data of a context: its RFC 8785 JSON (member order cannot matter). */
function aadOf(context: EncryptionContext): Buffer {
  return Buffer.from(canonicalJson(context), 'utf8');
}

/** {@link SecretSealer} over any {@link DataKeys}: one data key per secret, dropped once used. */
export class EnvelopeSealer implements SecretSealer {
  constructor(private readonly keys: DataKeys) {}

  async seal(plaintext: Uint8Array, context: EncryptionContext): Promise<SealedSecret> {
    const dataKey = await this.keys.generate(context);
    try {
      const { iv, ciphertext, tag } = aesGcmSeal(dataKey.plaintext, plaintext, aadOf(context));
      return {
        v: 1,
        keyId: dataKey.keyId,
        wrappedKey: Buffer.from(dataKey.wrapped).toString('base64'),
        iv: iv.toString('base64'),
        ciphertext: ciphertext.toString('base64'),
        tag: tag.toString('base64'),
      };
    } finally {
      dataKey.plaintext.fill(0);
    }
  }

  async open(sealed: SealedSecret, context: EncryptionContext): Promise<Uint8Array> {
    if (sealed.v !== 1) throw new SealerError(`sealed secret format ${String(sealed.v)} is not known`);
    const key = await this.keys.unwrap(Buffer.from(sealed.wrappedKey, 'base64'), context, sealed.keyId);
    try {
      return aesGcmOpen(
        key,
        {
          iv: Buffer.from(sealed.iv, 'base64'),
          ciphertext: Buffer.from(sealed.ciphertext, 'base64'),
          tag: Buffer.from(sealed.tag, 'base64'),
        },
        aadOf(context),
      );
    } finally {
      key.fill(0);
    }
  }
}

/**
 * The local stack's wrapping key: AES-256-GCM under a local 256-bit key (optionally persisted, mode 0600,
 * so sealed secrets survive a restart), the context as additional data, as KMS binds it. Never used in AWS.
 */
export class LocalDataKeys implements DataKeys {
  constructor(
    private readonly masterKey: Uint8Array,
    readonly keyId: string,
  ) {
    if (masterKey.length !== 32) throw new TypeError('the local wrapping key must be 32 bytes');
  }

  /** A key of its own, or the one in `keyFile` (written there first when it does not exist). */
  static create(options: { keyId: string; keyFile?: string }): LocalDataKeys {
    let key: Buffer;
    if (options.keyFile && existsSync(options.keyFile)) {
      key = Buffer.from(readFileSync(options.keyFile, 'utf8').trim(), 'base64');
    } else {
      key = randomBytes(32);
      if (options.keyFile) {
        mkdirSync(dirname(options.keyFile), { recursive: true });
        writeFileSync(options.keyFile, key.toString('base64'), { mode: 0o600 });
      }
    }
    return new LocalDataKeys(key, options.keyId);
  }

  async generate(context: EncryptionContext) {
    const plaintext = randomBytes(32);
    const { iv, ciphertext, tag } = aesGcmSeal(this.masterKey, plaintext, aadOf(context));
    return { keyId: this.keyId, plaintext, wrapped: Buffer.concat([iv, tag, ciphertext]) };
  }

  async unwrap(wrapped: Uint8Array, context: EncryptionContext, keyId: string): Promise<Uint8Array> {
    if (keyId !== this.keyId)
      throw new SealerError(`the data key was wrapped by ${keyId}, not ${this.keyId}`);
    const bytes = Buffer.from(wrapped);
    return aesGcmOpen(
      this.masterKey,
      {
        iv: bytes.subarray(0, IV_BYTES),
        tag: bytes.subarray(IV_BYTES, IV_BYTES + TAG_BYTES),
        ciphertext: bytes.subarray(IV_BYTES + TAG_BYTES),
      },
      aadOf(context),
    );
  }
}
