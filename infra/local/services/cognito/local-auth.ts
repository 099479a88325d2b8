import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { errors, exportJWK, type JWTPayload, jwtVerify, SignJWT } from 'jose';

/**
 * The local stand-in for the Cognito user pool: an ES256 issuer whose key is kept in the local data folder,
 * so tokens minted by `npm run token` verify against a running `npm start`. The dev server checks tokens
 * as API Gateway's JWT authorizer does (signature, issuer, audience, times) and hands the claims on.
 *
 * Facts and sources: API Gateway's JWT authorizer
 * (https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-jwt-authorizer.html) checks the
 * signature with the issuer's key, `iss`, `aud` (or `client_id`), and the times: `exp` "must be after the
 * current time in UTC", `nbf` and `iat` "must be before the current time in UTC"; a failed check refuses
 * the request (401). A token without `exp` is refused: it could never expire.
 */
export const LOCAL_ISSUER = 'urn:enclave-contracts:local-issuer';
export const LOCAL_AUDIENCE = 'enclave-contracts-api';

/**
 * How far `iat` and `nbf` may lie in the future. AWS documents no leeway; RFC 7519 §4.1.4-4.1.5 allow
 * "some small leeway, usually no more than a few minutes" for clock skew. Here the issuer and the gateway
 * share one clock (or NTP-synchronised ones), so 30 s covers a token minted on another machine without
 * letting a token dated in the future through. `exp` gets none: a token is never used past its expiry.
 */
export const CLOCK_SKEW_SECONDS = 30;

/**
 * A request the local JWT authorizer refuses for a reason jose does not check itself; the message says why
 * in words fit for the log (it never quotes the token).
 */
export class TokenRejectedError extends Error {
  override readonly name = 'TokenRejectedError';
}

/**
 * Why a token was refused, for the log line of a 401: a fixed sentence per kind of failure (jose's error
 * class and the claim it names), never text from the token or from the error's message.
 */
export function refusalReason(error: unknown): string {
  if (error instanceof TokenRejectedError) return error.message;
  if (error instanceof errors.JWTExpired) return 'token expired ("exp" is past)';
  if (error instanceof errors.JWTClaimValidationFailed) {
    const claim = ['exp', 'nbf', 'iat', 'iss', 'aud', 'sub'].includes(error.claim) ? error.claim : 'a claim';
    if (error.reason === 'missing') return `token without "${claim}"`;
    if (claim === 'nbf') return 'token not valid yet ("nbf" is in the future)';
    if (claim === 'iss') return 'token from another issuer ("iss")';
    if (claim === 'aud') return 'token for another audience ("aud")';
    return `token with an invalid "${claim}"`;
  }
  if (error instanceof errors.JWSSignatureVerificationFailed)
    return 'bad signature (not the local issuer key)';
  if (error instanceof errors.JOSEAlgNotAllowed) return 'signature algorithm not allowed (ES256 only)';
  if (error instanceof errors.JWSInvalid || error instanceof errors.JWTInvalid) return 'malformed token';
  if (error instanceof errors.JOSEError) return `token refused (${error.code})`;
  return 'token could not be verified';
}

/** The data folder has no issuer key: `npm start` has not run with it. */
export class IssuerKeyMissingError extends Error {
  override readonly name = 'IssuerKeyMissingError';
  constructor(
    readonly dir: string,
    readonly file: string,
  ) {
    super(`no local issuer key in ${dir} (looked for ${file})`);
  }
}

function issuerKeyFile(dir: string): string {
  return join(dir, 'local-issuer-key.pem');
}

export class LocalIssuer {
  private constructor(
    private readonly privateKey: KeyObject,
    readonly publicKey: KeyObject,
  ) {}

  /** Loads the issuer key from `dir`, creating it on first use (PKCS#8 PEM, mode 0600): what `npm start` does. */
  static open(dir: string): LocalIssuer {
    const file = issuerKeyFile(dir);
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

  /**
   * Loads the issuer key `npm start` keeps in `dir`, never creating one: a token signed with a key of its
   * own would be refused by the running server with nothing to say why (what `npm run token` needs).
   *
   * @throws IssuerKeyMissingError when `dir` holds no issuer key.
   */
  static load(dir: string): LocalIssuer {
    const file = issuerKeyFile(dir);
    if (!existsSync(file)) throw new IssuerKeyMissingError(dir, file);
    const privateKey = createPrivateKey(readFileSync(file, 'utf8'));
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
   * Signs exactly `claims` with the issuer's key, nothing added: tests mint with it the tokens the
   * authorizer must refuse (no `exp`, `iat` or `nbf` in the future).
   */
  async signClaims(claims: JWTPayload): Promise<string> {
    return new SignJWT(claims)
      .setProtectedHeader({ alg: 'ES256', kid: 'local-1', typ: 'JWT' })
      .sign(this.privateKey);
  }

  /**
   * Verifies as the API Gateway JWT authorizer would; throws on any failure. A token that verified is
   * remembered until it expires (keyed by its exact text): in AWS the gateway does this work outside the
   * function, so the local stand-in should not charge the function's path with a signature check per call.
   */
  async verify(token: string): Promise<JWTPayload> {
    const now = Date.now();
    const known = this.verified.get(token);
    if (known) {
      // Only `exp` can change a verified token's answer (`iat` and `nbf` were already in the past).
      if (known.expiresAt > now) return known.payload;
      this.verified.delete(token);
    }
    const { payload } = await jwtVerify(token, this.publicKey, {
      issuer: LOCAL_ISSUER,
      audience: LOCAL_AUDIENCE,
      algorithms: ['ES256'],
      // jose checks that exp, iat and nbf are numbers, refuses nbf beyond the leeway and exp within it.
      requiredClaims: ['exp'],
      clockTolerance: CLOCK_SKEW_SECONDS,
      currentDate: new Date(now),
    });
    const seconds = Math.floor(now / 1000);
    const exp = payload.exp!;
    if (exp <= seconds) throw new TokenRejectedError('token expired ("exp" is not after the current time)');
    if (payload.iat !== undefined && payload.iat > seconds + CLOCK_SKEW_SECONDS) {
      throw new TokenRejectedError('token issued in the future ("iat")');
    }
    if (this.verified.size >= 10_000) this.verified.clear();
    this.verified.set(token, { payload, expiresAt: exp * 1000 });
    return payload;
  }

  private readonly verified = new Map<string, { payload: JWTPayload; expiresAt: number }>();

  async jwks(): Promise<{ keys: Record<string, unknown>[] }> {
    return { keys: [{ ...(await exportJWK(this.publicKey)), kid: 'local-1', alg: 'ES256', use: 'sig' }] };
  }
}
