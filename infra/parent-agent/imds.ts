/**
 * The parent agent's view of the instance metadata service, IMDSv2 only: every read carries a session token
 * (PUT /latest/api/token with a TTL), renewed before it expires and once more when IMDS answers 401 (the
 * token expired or IMDS restarted). The parents' launch template requires tokens and a hop limit of 1, so
 * nothing but the parent's own processes reaches it.
 *
 * Errors are {@link ImdsError}: a clear line for the log, `transient` when worth another try (no answer,
 * 5xx, throttling 429), never a hang (each call has a timeout).
 */
export const IMDS_ENDPOINT = 'http://169.254.169.254';

/** The instance profile's credentials, as IMDS hands them out (renewed by EC2 well before they expire). */
export interface InstanceCredentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken: string;
  readonly expiration: Date;
}

export class ImdsError extends Error {
  override readonly name = 'ImdsError';
  constructor(
    message: string,
    readonly transient: boolean,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export interface ImdsOptions {
  /** @default {@link IMDS_ENDPOINT} */
  readonly endpoint?: string;
  /** The session token's lifetime (seconds, 1..21600). @default 21600 */
  readonly tokenTtlSeconds?: number;
  /** One call's limit (ms). @default 2000 */
  readonly timeoutMs?: number;
  /** @default the wall clock */
  readonly now?: () => number;
}

export class Imds {
  private readonly endpoint: string;
  private readonly ttlSeconds: number;
  private readonly timeoutMs: number;
  private readonly now: () => number;
  private token: { value: Promise<string>; renewAt: number } | undefined;
  private pendingToken: Promise<string> | undefined;
  private credentialsCache: InstanceCredentials | undefined;

  constructor(options: ImdsOptions = {}) {
    this.endpoint = (options.endpoint ?? IMDS_ENDPOINT).replace(/\/$/, '');
    this.ttlSeconds = options.tokenTtlSeconds ?? 21_600;
    if (!Number.isInteger(this.ttlSeconds) || this.ttlSeconds < 1 || this.ttlSeconds > 21_600) {
      throw new RangeError('an IMDSv2 token lives 1..21600 seconds');
    }
    this.timeoutMs = options.timeoutMs ?? 2000;
    this.now = options.now ?? Date.now;
  }

  instanceId(): Promise<string> {
    return this.get('meta-data/instance-id');
  }

  region(): Promise<string> {
    return this.get('meta-data/placement/region');
  }

  /**
   * An instance tag (the launch template makes tags readable from metadata); `undefined` when the instance
   * has no such tag (IMDS answers 404), an empty string when the tag's value is empty.
   */
  async tag(key: string): Promise<string | undefined> {
    try {
      return await this.get(`meta-data/tags/instance/${encodeURIComponent(key)}`);
    } catch (error) {
      if (error instanceof ImdsError && /\b404\b/.test(error.message)) return undefined;
      throw error;
    }
  }

  /** The instance profile role's credentials, cached until five minutes before they expire. */
  async credentials(): Promise<InstanceCredentials> {
    const cached = this.credentialsCache;
    if (cached && cached.expiration.getTime() - this.now() > 5 * 60_000) return cached;
    const roles = (await this.get('meta-data/iam/security-credentials/')).split('\n').filter(Boolean);
    if (roles.length !== 1) throw new ImdsError('the instance has no instance profile role', false);
    const body = await this.get(`meta-data/iam/security-credentials/${roles[0]}`);
    let parsed: Record<string, unknown>;
    try {
      parsed = JSON.parse(body) as Record<string, unknown>;
    } catch {
      throw new ImdsError('the instance credentials are not JSON', true);
    }
    const { Code, AccessKeyId, SecretAccessKey, Token, Expiration } = parsed;
    const expiration = new Date(String(Expiration));
    if (
      Code !== 'Success' ||
      typeof AccessKeyId !== 'string' ||
      typeof SecretAccessKey !== 'string' ||
      typeof Token !== 'string' ||
      Number.isNaN(expiration.getTime())
    ) {
      throw new ImdsError(`the instance credentials are not usable (Code ${String(Code)})`, true);
    }
    this.credentialsCache = {
      accessKeyId: AccessKeyId,
      secretAccessKey: SecretAccessKey,
      sessionToken: Token,
      expiration,
    };
    return this.credentialsCache;
  }

  /** GET `/latest/<path>` with the session token; a 401 renews the token and asks once more. */
  private async get(path: string): Promise<string> {
    for (let attempt = 1; ; attempt++) {
      const token = await this.sessionToken();
      const response = await this.call('GET', path, { 'x-aws-ec2-metadata-token': token });
      if (response.status === 200) return response.text();
      if (response.status === 401 && attempt === 1) {
        this.token = undefined;
        continue;
      }
      throw this.failure(`GET /latest/${path}`, response.status);
    }
  }

  /** The current session token; concurrent reads share one PUT. */
  private sessionToken(): Promise<string> {
    if (this.token && this.now() < this.token.renewAt) return this.token.value;
    this.pendingToken ??= this.newToken().finally(() => {
      this.pendingToken = undefined;
    });
    return this.pendingToken;
  }

  private async newToken(): Promise<string> {
    const response = await this.call('PUT', 'api/token', {
      'x-aws-ec2-metadata-token-ttl-seconds': String(this.ttlSeconds),
    });
    if (response.status !== 200) throw this.failure('PUT /latest/api/token', response.status);
    const value = await response.text();
    if (!value) throw new ImdsError('IMDS answered an empty session token', true);
    // Renewed at 80 % of its life, so that no read carries a token about to expire.
    this.token = { value: Promise.resolve(value), renewAt: this.now() + this.ttlSeconds * 800 };
    return value;
  }

  private async call(
    method: 'GET' | 'PUT',
    path: string,
    headers: Record<string, string>,
  ): Promise<Response> {
    try {
      return await fetch(`${this.endpoint}/latest/${path}`, {
        method,
        headers,
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (error) {
      throw new ImdsError(
        `IMDS did not answer ${method} /latest/${path}: ${(error as Error).message}`,
        true,
        { cause: error },
      );
    }
  }

  private failure(what: string, status: number): ImdsError {
    return new ImdsError(`IMDS answered ${status} to ${what}`, status === 429 || status >= 500);
  }
}
