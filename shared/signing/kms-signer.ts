import { createHash, createPublicKey } from 'node:crypto';
import { calculateJwkThumbprint, type JWK } from 'jose';
import { SignedJsonClient } from '../runtime/signed-json-client.ts';
import { describeServiceFailure } from '../workflow/aws-service-failure.ts';
import { type PlatformSignature, type Signer, SignerError } from './signer.ts';

/** KMS's throttling code (a client fault, worth retrying); its own faults are 5xx. */
const KMS_THROTTLING: ReadonlySet<string> = new Set(['ThrottlingException']);

/**
 * A KMS call (AWS JSON 1.1, blobs as base64): the operation and its input, answered with KMS's JSON answer
 * or failed as the SDK v3 fails (an error named by KMS's code, with `$fault` and `$metadata`).
 */
export type KmsCall = (operation: 'Sign' | 'GetPublicKey', input: Record<string, string>) => Promise<unknown>;

/** Options of {@link KmsSigner}. */
export interface KmsSignerOptions {
  /** The key's ARN (what the function's IAM grant names), or an alias. */
  readonly keyId: string;
  /**
   * How the calls reach KMS. @default a {@link SignedJsonClient} for `kms` in the function's region: the two
   * calls the signing routes make, without the KMS client's module (27 KB minified) in their bundles.
   */
  readonly call?: KmsCall;
}

/**
 * The platform key in AWS KMS (asymmetric ECC_NIST_P256, SIGN_VERIFY). Signs the SHA-256 digest
 * (`MessageType: DIGEST`), converts KMS's DER signature to JWS r‖s, and fetches the public key once per
 * container (Sign/Verify share a 300 req/s quota, so verification is always local).
 *
 * A failed call throws {@link SignerError}: `transient` (a 503 to the caller) when KMS throttled or failed
 * on its side after the client's retries, or never answered; a refusal (a disabled key, a denied call) is not.
 *
 * IAM: `kms:Sign` (the routes that countersign) and `kms:GetPublicKey` on the platform key.
 */
export class KmsSigner implements Signer {
  private readonly send: KmsCall;
  private publicJwk: Promise<Record<string, unknown>> | undefined;

  constructor(private readonly options: KmsSignerOptions) {
    if (options.call) {
      this.send = options.call;
    } else {
      const client = new SignedJsonClient({ service: 'kms' });
      this.send = (operation, input) => client.call(operation, input);
    }
  }

  private async call(operation: 'Sign' | 'GetPublicKey', input: Record<string, string>): Promise<unknown> {
    try {
      return await this.send(operation, input);
    } catch (error) {
      const { code, transient } = describeServiceFailure(error, KMS_THROTTLING);
      throw new SignerError(`KMS ${operation} failed: ${code}`, { cause: error, transient });
    }
  }

  async sign(message: Uint8Array): Promise<PlatformSignature> {
    const [jwk, result] = await Promise.all([
      this.jwk(),
      this.call('Sign', {
        KeyId: this.options.keyId,
        Message: createHash('sha256').update(message).digest('base64'),
        MessageType: 'DIGEST',
        SigningAlgorithm: 'ECDSA_SHA_256',
      }),
    ]);
    const signature = blob(result, 'Signature');
    if (!signature) throw new Error('KMS returned no signature');
    return {
      kid: String(jwk.kid),
      alg: 'ES256',
      signature: derToJose(signature, 32).toString('base64url'),
    };
  }

  async publicKeys(): Promise<Record<string, unknown>[]> {
    return [await this.jwk()];
  }

  private jwk(): Promise<Record<string, unknown>> {
    this.publicJwk ??= (async () => {
      const publicKey = blob(await this.call('GetPublicKey', { KeyId: this.options.keyId }), 'PublicKey');
      if (!publicKey) throw new Error('KMS returned no public key');
      const jwk = createPublicKey({ key: publicKey, format: 'der', type: 'spki' }).export({
        format: 'jwk',
      }) as Record<string, unknown>;
      const kid = await calculateJwkThumbprint(jwk as JWK);
      return { ...jwk, kid, alg: 'ES256', use: 'sig' };
    })().catch((error) => {
      this.publicJwk = undefined;
      throw error;
    });
    return this.publicJwk;
  }
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
