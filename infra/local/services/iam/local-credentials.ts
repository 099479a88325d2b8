import { randomBytes, randomInt } from 'node:crypto';
import type { SigV4Principal } from '../apigateway/sigv4-verifier.ts';

/**
 * The local stand-in for STS's temporary credentials: what EC2 hands an instance profile's role session
 * (through IMDS) and what a SigV4-verifying stand-in (the local gateway's IAM authorizer, S3) looks the
 * signer up in. As AWS's are, each set is an access key id (`ASIA…`, 20 characters), a secret key and a
 * session token that must travel with every request, valid until its expiration; an expired or unknown key
 * is "The security token included in the request is invalid.".
 */
export interface TemporaryCredentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken: string;
  readonly expiration: Date;
}

/** EC2 rotates instance-profile credentials well before they expire; AWS issues them for about 6 hours. */
export const INSTANCE_CREDENTIALS_TTL_MS = 6 * 3600_000;

const KEY_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

export class LocalCredentials {
  private readonly issued = new Map<string, TemporaryCredentials & { readonly callerArn: string }>();

  constructor(private readonly now: () => number = Date.now) {}

  /** New temporary credentials of the role session `callerArn` (`arn:aws:sts::…:assumed-role/<role>/<session>`). */
  issue(callerArn: string, ttlMs = INSTANCE_CREDENTIALS_TTL_MS): TemporaryCredentials {
    let accessKeyId = 'ASIA';
    for (let i = 0; i < 16; i++) accessKeyId += KEY_ALPHABET[randomInt(KEY_ALPHABET.length)];
    const credentials = {
      accessKeyId,
      secretAccessKey: randomBytes(30).toString('base64'),
      sessionToken: randomBytes(96).toString('base64'),
      expiration: new Date(this.now() + ttlMs),
    };
    this.issued.set(accessKeyId, { ...credentials, callerArn });
    return credentials;
  }

  /** Ends a session's credentials at once (an instance terminated: its role session is gone). */
  revoke(accessKeyId: string): void {
    this.issued.delete(accessKeyId);
  }

  /** Whom a current access key belongs to (undefined: unknown, revoked or expired). */
  readonly lookup = (accessKeyId: string): SigV4Principal | undefined => {
    const found = this.issued.get(accessKeyId);
    if (!found) return undefined;
    if (this.now() >= found.expiration.getTime()) {
      this.issued.delete(accessKeyId);
      return undefined;
    }
    return {
      secretAccessKey: found.secretAccessKey,
      sessionToken: found.sessionToken,
      callerArn: found.callerArn,
    };
  };
}
