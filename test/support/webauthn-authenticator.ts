import { createHash, generateKeyPairSync, type KeyObject, randomBytes, sign } from 'node:crypto';
import { Encoder } from 'cbor-x';

/**
 * A software WebAuthn authenticator for the server-side tests: it holds real key pairs, builds real
 * authenticator data, clientDataJSON and attestation objects (CBOR, COSE keys), and signs them, exactly
 * as a browser and a platform authenticator would hand them to the relying party (`toJSON()` shapes). It is
 * the client, not the verifier: every check is the server's. Options let a test make it misbehave (no user
 * verification, another origin or relying party, a counter that goes back, a key of another algorithm).
 */

const cbor = new Encoder({ mapsAsObjects: false, useRecords: false, tagUint8Array: false });

export type AuthenticatorAlgorithm = 'ES256' | 'EdDSA' | 'RS256';

export interface Ceremony {
  readonly origin?: string;
  readonly rpId?: string;
  /** User verification (UV flag): true unless a test turns it off. */
  readonly uv?: boolean;
  readonly up?: boolean;
  readonly type?: string;
  readonly crossOrigin?: boolean;
  /** The counter to report (default: one more than the last). */
  readonly signCount?: number;
}

const b64u = (b: Uint8Array) => Buffer.from(b).toString('base64url');
const sha256 = (b: Uint8Array | string) => createHash('sha256').update(b).digest();

export class SoftwareAuthenticator {
  readonly credentialId: Buffer;
  readonly alg: AuthenticatorAlgorithm;
  private readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
  counter: number;

  constructor(
    readonly defaults: { origin: string; rpId: string },
    options: { alg?: AuthenticatorAlgorithm; counter?: number; credentialId?: Buffer } = {},
  ) {
    this.alg = options.alg ?? 'ES256';
    const pair =
      this.alg === 'ES256'
        ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
        : this.alg === 'EdDSA'
          ? generateKeyPairSync('ed25519')
          : generateKeyPairSync('rsa', { modulusLength: 2048 });
    this.privateKey = pair.privateKey;
    this.publicKey = pair.publicKey;
    this.credentialId = options.credentialId ?? randomBytes(32);
    this.counter = options.counter ?? 0;
  }

  /** The COSE_Key (RFC 9053) of the credential's public key. */
  coseKey(): Buffer {
    const jwk = this.publicKey.export({ format: 'jwk' });
    const d = (s: string | undefined) => Buffer.from(s!, 'base64url');
    const map =
      this.alg === 'ES256'
        ? new Map<number, unknown>([
            [1, 2],
            [3, -7],
            [-1, 1],
            [-2, d(jwk.x)],
            [-3, d(jwk.y)],
          ])
        : this.alg === 'EdDSA'
          ? new Map<number, unknown>([
              [1, 1],
              [3, -8],
              [-1, 6],
              [-2, d(jwk.x)],
            ])
          : new Map<number, unknown>([
              [1, 3],
              [3, -257],
              [-1, d(jwk.n)],
              [-2, d(jwk.e)],
            ]);
    return Buffer.from(cbor.encode(map));
  }

  private authenticatorData(c: Ceremony, attested?: Buffer): Buffer {
    const flags =
      ((c.up ?? true) ? 0x01 : 0) | ((c.uv ?? true) ? 0x04 : 0) | 0x08 | 0x10 | (attested ? 0x40 : 0);
    const count = Buffer.alloc(4);
    count.writeUInt32BE(c.signCount ?? this.counter);
    return Buffer.concat([
      sha256(c.rpId ?? this.defaults.rpId),
      Buffer.from([flags]),
      count,
      attested ?? Buffer.alloc(0),
    ]);
  }

  private clientData(c: Ceremony, type: string, challenge: string): Buffer {
    return Buffer.from(
      JSON.stringify({
        type: c.type ?? type,
        challenge,
        origin: c.origin ?? this.defaults.origin,
        crossOrigin: c.crossOrigin ?? false,
      }),
    );
  }

  private signWith(data: Buffer): Buffer {
    return this.alg === 'EdDSA'
      ? sign(null, data, this.privateKey)
      : sign(
          'sha256',
          data,
          this.alg === 'ES256' ? { key: this.privateKey, dsaEncoding: 'der' } : this.privateKey,
        );
  }

  /**
   * `navigator.credentials.create()` answering `challenge`: the attestation object with the `none` format
   * (or packed self-attestation), as `PublicKeyCredential.toJSON()` gives it.
   */
  register(
    challenge: string,
    c: Ceremony & { fmt?: 'none' | 'packed' | 'packed-x5c' | 'tpm'; cose?: Buffer } = {},
  ) {
    const idLength = Buffer.alloc(2);
    idLength.writeUInt16BE(this.credentialId.length);
    const attested = Buffer.concat([Buffer.alloc(16), idLength, this.credentialId, c.cose ?? this.coseKey()]);
    const authData = this.authenticatorData({ signCount: 0, ...c }, attested);
    const clientDataJSON = this.clientData(c, 'webauthn.create', challenge);
    const fmt = c.fmt ?? 'none';
    const signature = () => this.signWith(Buffer.concat([authData, sha256(clientDataJSON)]));
    const algId = { ES256: -7, EdDSA: -8, RS256: -257 }[this.alg];
    const attStmt =
      fmt === 'none'
        ? new Map()
        : fmt === 'packed'
          ? new Map<string, unknown>([
              ['alg', algId],
              ['sig', signature()],
            ])
          : fmt === 'packed-x5c'
            ? new Map<string, unknown>([
                ['alg', algId],
                ['sig', signature()],
                ['x5c', [Buffer.alloc(64, 1)]],
              ])
            : new Map<string, unknown>([
                ['ver', '2.0'],
                ['alg', algId],
                ['sig', signature()],
              ]);
    const attestationObject = cbor.encode(
      new Map<string, unknown>([
        ['fmt', fmt === 'packed-x5c' ? 'packed' : fmt],
        ['attStmt', attStmt],
        ['authData', authData],
      ]),
    );
    return {
      id: b64u(this.credentialId),
      rawId: b64u(this.credentialId),
      type: 'public-key' as const,
      response: {
        clientDataJSON: b64u(clientDataJSON),
        attestationObject: b64u(attestationObject),
        transports: ['internal'],
      },
      clientExtensionResults: {},
      authenticatorAttachment: 'platform' as const,
    };
  }

  /** `navigator.credentials.get()` answering `challenge` (the counter moves on unless `signCount` says). */
  assert(challenge: string, c: Ceremony & { userHandle?: string } = {}) {
    if (c.signCount === undefined) this.counter += 1;
    const authData = this.authenticatorData(c);
    const clientDataJSON = this.clientData(c, 'webauthn.get', challenge);
    const signature = this.signWith(Buffer.concat([authData, sha256(clientDataJSON)]));
    return {
      id: b64u(this.credentialId),
      rawId: b64u(this.credentialId),
      type: 'public-key' as const,
      response: {
        clientDataJSON: b64u(clientDataJSON),
        authenticatorData: b64u(authData),
        signature: b64u(signature),
        ...(c.userHandle ? { userHandle: c.userHandle } : {}),
      },
      clientExtensionResults: {},
      authenticatorAttachment: 'platform' as const,
    };
  }
}
