import { createHash, createPublicKey } from 'node:crypto';
import { GetPublicKeyCommand, KMSClient, SignCommand } from '@aws-sdk/client-kms';
import { calculateJwkThumbprint, type JWK } from 'jose';
import type { PlatformSignature, Signer } from './signer.ts';

/**
 * The platform key in AWS KMS (asymmetric ECC_NIST_P256, SIGN_VERIFY). Signs the SHA-256 digest
 * (`MessageType: DIGEST`), converts KMS's DER signature to JWS r‖s, and fetches the public key once per
 * container (Sign/Verify share a 300 req/s quota, so verification is always local).
 */
export class KmsSigner implements Signer {
  private readonly client: KMSClient;
  private publicJwk: Promise<Record<string, unknown>> | undefined;

  constructor(private readonly options: { keyId: string; client?: KMSClient }) {
    this.client = options.client ?? new KMSClient({});
  }

  async sign(message: Uint8Array): Promise<PlatformSignature> {
    const [jwk, result] = await Promise.all([
      this.jwk(),
      this.client.send(
        new SignCommand({
          KeyId: this.options.keyId,
          Message: createHash('sha256').update(message).digest(),
          MessageType: 'DIGEST',
          SigningAlgorithm: 'ECDSA_SHA_256',
        }),
      ),
    ]);
    if (!result.Signature) throw new Error('KMS returned no signature');
    return {
      kid: String(jwk.kid),
      alg: 'ES256',
      signature: derToJose(result.Signature, 32).toString('base64url'),
    };
  }

  async publicKeys(): Promise<Record<string, unknown>[]> {
    return [await this.jwk()];
  }

  private jwk(): Promise<Record<string, unknown>> {
    this.publicJwk ??= (async () => {
      const { PublicKey } = await this.client.send(new GetPublicKeyCommand({ KeyId: this.options.keyId }));
      if (!PublicKey) throw new Error('KMS returned no public key');
      const jwk = createPublicKey({ key: Buffer.from(PublicKey), format: 'der', type: 'spki' }).export({
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
