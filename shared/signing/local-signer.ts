import {
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  randomUUID,
  sign,
} from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { calculateJwkThumbprint, type JWK } from 'jose';
import type { PlatformKey, PlatformKeyManager, PlatformSigned, Signer } from './signer.ts';

/** Options of {@link LocalSigner.create}. */
export interface LocalSignerOptions {
  /**
   * Where the key ring is kept (JSON: the alias's key and every key as PKCS#8 PEM, mode 0600), so that
   * countersignatures stay verifiable and the alias stays where a rotation left it across restarts.
   * @default in memory only
   */
  readonly keyFile?: string;
  /** The first key's id, as KMS would name it. @default a key ARN in region `local` */
  readonly initialKeyId?: string;
}

interface LocalKey extends PlatformKey {
  readonly privateKey: KeyObject;
}

interface KeyRingFile {
  readonly alias: string;
  readonly keys: readonly { readonly keyId: string; readonly pkcs8: string }[];
}

/**
 * The local stack's platform keys: P-256 keys on node:crypto behind one alias, as KMS keeps them: signing
 * uses the key the alias names, a rotation creates a key and moves the alias, and the old keys stay (their
 * signatures stay verifiable). Never used in AWS (the KMS signer is).
 */
export class LocalSigner implements Signer, PlatformKeyManager {
  private constructor(
    private readonly keys: Map<string, LocalKey>,
    private alias: string,
    private readonly keyFile: string | undefined,
    private readonly keyIdPrefix: string,
  ) {}

  static async create(options: LocalSignerOptions = {}): Promise<LocalSigner> {
    const initialKeyId = options.initialKeyId ?? `arn:aws:kms:local:000000000000:key/${randomUUID()}`;
    const prefix = initialKeyId.slice(0, initialKeyId.lastIndexOf('/') + 1);
    const keys = new Map<string, LocalKey>();
    if (options.keyFile && existsSync(options.keyFile)) {
      const ring = JSON.parse(readFileSync(options.keyFile, 'utf8')) as KeyRingFile;
      for (const { keyId, pkcs8 } of ring.keys)
        keys.set(keyId, await localKey(keyId, createPrivateKey(pkcs8)));
      if (!keys.has(ring.alias)) throw new Error(`${options.keyFile}: the alias names no key of the ring`);
      return new LocalSigner(keys, ring.alias, options.keyFile, prefix);
    }
    const signer = new LocalSigner(keys, initialKeyId, options.keyFile, prefix);
    await signer.add(initialKeyId);
    signer.save();
    return signer;
  }

  /** The key the alias names now (what KMS would sign with). */
  get currentKeyId(): string {
    return this.alias;
  }

  async sign(message: Uint8Array): Promise<PlatformSigned> {
    const key = this.keys.get(this.alias)!;
    // ECDSA P-256 over SHA-256(message): the same signature KMS makes over that digest (MessageType DIGEST).
    const signature = sign('sha256', message, { key: key.privateKey, dsaEncoding: 'ieee-p1363' });
    return {
      kid: key.jwk.kid,
      alg: 'ES256',
      signature: signature.toString('base64url'),
      key: { keyId: key.keyId, jwk: key.jwk },
    };
  }

  async createSigningKey(): Promise<PlatformKey> {
    const key = await this.add(`${this.keyIdPrefix}${randomUUID()}`);
    this.save();
    return { keyId: key.keyId, jwk: key.jwk };
  }

  async moveAlias(keyId: string): Promise<void> {
    // KMS: NotFoundException for a key it does not hold.
    if (!this.keys.has(keyId)) {
      throw Object.assign(new Error(`Key '${keyId}' does not exist`), { name: 'NotFoundException' });
    }
    this.alias = keyId;
    this.save();
  }

  private async add(keyId: string): Promise<LocalKey> {
    const key = await localKey(keyId, generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey);
    this.keys.set(keyId, key);
    return key;
  }

  private save(): void {
    if (!this.keyFile) return;
    const ring: KeyRingFile = {
      alias: this.alias,
      keys: [...this.keys.values()].map((k) => ({
        keyId: k.keyId,
        pkcs8: k.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
      })),
    };
    mkdirSync(dirname(this.keyFile), { recursive: true });
    writeFileSync(this.keyFile, JSON.stringify(ring), { mode: 0o600 });
  }
}

async function localKey(keyId: string, privateKey: KeyObject): Promise<LocalKey> {
  const publicJwk = createPublicKey(privateKey).export({ format: 'jwk' }) as Record<string, unknown>;
  const kid = await calculateJwkThumbprint(publicJwk as JWK);
  return { keyId, privateKey, jwk: { ...publicJwk, kid, alg: 'ES256', use: 'sig' } };
}
