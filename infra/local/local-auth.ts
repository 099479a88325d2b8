import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { exportJWK, type JWTPayload, jwtVerify, SignJWT } from 'jose';

/**
 * The local stand-in for the Cognito user pool: an ES256 issuer whose key is kept in the local data folder,
 * so tokens minted by `npm run token` verify against a running `npm start`. The dev server checks tokens
 * as API Gateway's JWT authorizer does (signature, issuer, audience, expiry) and hands the claims on.
 */
export const LOCAL_ISSUER = 'urn:enclave-contracts:local-issuer';
export const LOCAL_AUDIENCE = 'enclave-contracts-api';

export class LocalIssuer {
  private constructor(
    private readonly privateKey: KeyObject,
    readonly publicKey: KeyObject,
  ) {}

  /** Loads the issuer key from `dir`, creating it on first use (PKCS#8 PEM, mode 0600). */
  static open(dir: string): LocalIssuer {
    const file = join(dir, 'local-issuer-key.pem');
    let privateKey: KeyObject;
    if (existsSync(file)) {
      privateKey = createPrivateKey(readFileSync(file, 'utf8'));
    } else {
      privateKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
      mkdirSync(dir, { recursive: true });
      writeFileSync(file, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
    }
    return new LocalIssuer(privateKey, createPublicKey(privateKey));
  }

  /** An in-memory issuer for tests. */
  static ephemeral(): LocalIssuer {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    return new LocalIssuer(privateKey, publicKey);
  }

  async mint(
    subject: string,
    options: { ttlSeconds?: number; extraClaims?: JWTPayload } = {},
  ): Promise<string> {
    return new SignJWT({ token_use: 'access', scope: 'api', ...options.extraClaims })
      .setProtectedHeader({ alg: 'ES256', kid: 'local-1', typ: 'JWT' })
      .setIssuer(LOCAL_ISSUER)
      .setAudience(LOCAL_AUDIENCE)
      .setSubject(subject)
      .setIssuedAt()
      .setExpirationTime(`${options.ttlSeconds ?? 12 * 3600}s`)
      .sign(this.privateKey);
  }

  /**
   * A token standing in for SigV4 with an enclave parent instance's role credentials (the local stack's
   * simulated agents use it on the `iam` routes); its subject is the instance session's ARN.
   */
  async mintInstance(sessionArn: string, ttlSeconds = 900): Promise<string> {
    return this.mint(sessionArn, { ttlSeconds, extraClaims: { token_use: 'instance', scope: 'instance' } });
  }

  /**
   * Verifies as the API Gateway JWT authorizer would; throws on any failure. A token that verified is
   * remembered until it expires (keyed by its exact text): in AWS the gateway does this work outside the
   * function, so the local stand-in should not charge the function's path with a signature check per call.
   */
  async verify(token: string): Promise<JWTPayload> {
    const now = Date.now();
    const known = this.verified.get(token);
    if (known && known.expiresAt > now) return known.payload;
    const { payload } = await jwtVerify(token, this.publicKey, {
      issuer: LOCAL_ISSUER,
      audience: LOCAL_AUDIENCE,
      algorithms: ['ES256'],
    });
    if (this.verified.size >= 10_000) this.verified.clear();
    this.verified.set(token, { payload, expiresAt: (payload.exp ?? 0) * 1000 });
    return payload;
  }

  private readonly verified = new Map<string, { payload: JWTPayload; expiresAt: number }>();

  async jwks(): Promise<{ keys: Record<string, unknown>[] }> {
    return { keys: [{ ...(await exportJWK(this.publicKey)), kid: 'local-1', alg: 'ES256', use: 'sig' }] };
  }
}
