import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject, sign } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { calculateJwkThumbprint, type JWK } from 'jose';
import type { PlatformSignature, Signer } from './signer.ts';

/**
 * The local stack's platform key: a P-256 key on node:crypto, optionally persisted (PKCS#8 PEM, mode 0600)
 * so countersignatures stay verifiable across restarts. Never used in AWS (the KMS signer is).
 */
export class LocalSigner implements Signer {
  private constructor(
    private readonly privateKey: KeyObject,
    private readonly jwk: Record<string, unknown>,
    private readonly kid: string,
  ) {}

  static async create(options: { keyFile?: string } = {}): Promise<LocalSigner> {
    let privateKey: KeyObject;
    if (options.keyFile && existsSync(options.keyFile)) {
      privateKey = createPrivateKey(readFileSync(options.keyFile, 'utf8'));
    } else {
      privateKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
      if (options.keyFile) {
        mkdirSync(dirname(options.keyFile), { recursive: true });
        writeFileSync(options.keyFile, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
      }
    }
    const publicJwk = createPublicKey(privateKey).export({ format: 'jwk' }) as Record<string, unknown>;
    const kid = await calculateJwkThumbprint(publicJwk as JWK);
    return new LocalSigner(privateKey, { ...publicJwk, kid, alg: 'ES256', use: 'sig' }, kid);
  }

  async sign(message: Uint8Array): Promise<PlatformSignature> {
    // ECDSA P-256 over SHA-256(message): the same signature KMS makes over that digest (MessageType DIGEST).
    const signature = sign('sha256', message, { key: this.privateKey, dsaEncoding: 'ieee-p1363' });
    return { kid: this.kid, alg: 'ES256', signature: signature.toString('base64url') };
  }

  async publicKeys(): Promise<Record<string, unknown>[]> {
    return [this.jwk];
  }
}
