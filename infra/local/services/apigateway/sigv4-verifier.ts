/**
 * Signature Version 4 verification of an incoming request, as API Gateway's `AWS_IAM` authorizer performs it
 * before a route runs: the signature is recomputed from what arrived (method, path, query, the signed
 * headers, the body) with the caller's secret key, found by the access key id in the credential scope, and
 * must match. Refusals are 403s with API Gateway's messages:
 * - no `Authorization` header: `Missing Authentication Token`;
 * - an unknown access key, or a session token that is not the key's: `The security token included in the
 *   request is invalid.`;
 * - a request time more than 5 minutes from now: `Signature expired: ...` (API Gateway's window);
 * - a scope for another region or service, a `host` or `x-amz-date` left unsigned, a body whose hash is not
 *   the declared `x-amz-content-sha256` (an unsigned payload only for S3), or another signature:
 *   `The request signature we calculated does not match the signature you provided. ...`.
 * A verified request names its caller: the principal's ARN (for an instance profile, the
 * `assumed-role/<role>/<instance id>` session), which API Gateway hands the function as `iam.userArn`.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { Sha256 } from '@smithy/core/checksum';
import { HttpRequest } from '@smithy/core/protocols';
import { SignatureV4 } from '@smithy/signature-v4';

/** Whom an access key belongs to. */
export interface SigV4Principal {
  readonly secretAccessKey: string;
  /** The session token temporary credentials must carry (`x-amz-security-token`). */
  readonly sessionToken?: string;
  readonly callerArn: string;
}

export interface SigV4Request {
  readonly method: string;
  /** The request target as it arrived: path and query, still percent-encoded. */
  readonly url: string;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly body: string | Uint8Array;
}

export type SigV4Verdict =
  | { readonly ok: true; readonly callerArn: string }
  | { readonly ok: false; readonly status: 403; readonly message: string };

const MISMATCH =
  'The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method.';
const INVALID_TOKEN = 'The security token included in the request is invalid.';
/** API Gateway refuses a request whose time is more than 5 minutes away from its own. */
export const SIGV4_MAX_SKEW_MS = 5 * 60_000;

export async function verifySigV4(
  request: SigV4Request,
  options: {
    readonly service: string;
    readonly region: string;
    readonly lookup: (accessKeyId: string) => SigV4Principal | undefined;
    readonly now?: () => Date;
    /** S3 signs the path as it is; every other service escapes it once more. @default true */
    readonly uriEscapePath?: boolean;
    /** How far the request time may be from now (S3 allows 15 minutes). @default SIGV4_MAX_SKEW_MS */
    readonly maxSkewMs?: number;
  },
): Promise<SigV4Verdict> {
  const refuse = (message: string): SigV4Verdict => ({ ok: false, status: 403, message });
  const header = (name: string): string | undefined => {
    const value = request.headers[name];
    return Array.isArray(value) ? value.join(',') : value;
  };
  const authorization = header('authorization');
  if (!authorization) return refuse('Missing Authentication Token');
  const parsed =
    /^AWS4-HMAC-SHA256 Credential=([^/,\s]+)\/(\d{8})\/([a-z0-9-]+)\/([a-z0-9-]+)\/aws4_request,\s*SignedHeaders=([a-z0-9;-]+),\s*Signature=([0-9a-f]{64})$/.exec(
      authorization,
    );
  if (!parsed)
    return refuse(`Authorization header requires 'Credential', 'Signature' and 'SignedHeaders' parameters.`);
  const [, accessKeyId, scopeDate, region, service, signedList, signature] = parsed as unknown as string[];
  const principal = options.lookup(accessKeyId!);
  if (!principal) return refuse(INVALID_TOKEN);
  if (principal.sessionToken !== undefined && header('x-amz-security-token') !== principal.sessionToken) {
    return refuse(INVALID_TOKEN);
  }
  const amzDate = header('x-amz-date') ?? '';
  const at = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(amzDate);
  if (!at) return refuse(MISMATCH);
  const signingDate = new Date(`${at[1]}-${at[2]}-${at[3]}T${at[4]}:${at[5]}:${at[6]}Z`);
  const now = (options.now ?? (() => new Date()))();
  const maxSkewMs = options.maxSkewMs ?? SIGV4_MAX_SKEW_MS;
  if (Math.abs(now.getTime() - signingDate.getTime()) > maxSkewMs) {
    return refuse(
      `Signature expired: ${amzDate} is now earlier than the ${maxSkewMs / 60_000}-minute window around the server's time.`,
    );
  }
  const signedHeaders = signedList!.split(';');
  if (
    region !== options.region ||
    service !== options.service ||
    scopeDate !== amzDate.slice(0, 8) ||
    !signedHeaders.includes('host') ||
    !signedHeaders.includes('x-amz-date')
  ) {
    return refuse(MISMATCH);
  }
  // The payload is what arrived: a declared `x-amz-content-sha256` must be its hash (the signer's library
  // may add one, and the recomputation would otherwise trust it), and only S3 takes an unsigned payload.
  const declared = header('x-amz-content-sha256');
  if (declared !== undefined) {
    const unsigned = declared === 'UNSIGNED-PAYLOAD' && options.service === 's3';
    if (!unsigned && declared !== createHash('sha256').update(request.body).digest('hex'))
      return refuse(MISMATCH);
  }
  const [path, query = ''] = request.url.split('?', 2) as [string, string?];
  const headers = Object.fromEntries(signedHeaders.map((name) => [name, header(name) ?? '']));
  const signer = new SignatureV4({
    service: options.service,
    region: options.region,
    credentials: {
      accessKeyId: accessKeyId!,
      secretAccessKey: principal.secretAccessKey,
      ...(principal.sessionToken === undefined ? {} : { sessionToken: principal.sessionToken }),
    },
    sha256: Sha256,
    uriEscapePath: options.uriEscapePath ?? true,
    // Recompute over the signed headers alone: the signer's library would add an `x-amz-content-sha256` of its
    // own and sign it, refusing every client that does not send one (AWS does not require it but for S3).
    applyChecksum: false,
  });
  const recomputed = await signer.sign(
    new HttpRequest({
      method: request.method,
      protocol: 'https:',
      hostname: headers.host ?? '',
      path,
      query: queryOf(query),
      headers,
      body: request.body,
    }),
    { signingDate, signableHeaders: new Set(signedHeaders), unsignableHeaders: new Set() },
  );
  const expected = /Signature=([0-9a-f]{64})/.exec(String(recomputed.headers.authorization))?.[1] ?? '';
  const ok = expected.length === 64 && timingSafeEqual(Buffer.from(expected), Buffer.from(signature!));
  return ok ? { ok: true, callerArn: principal.callerArn } : refuse(MISMATCH);
}

function queryOf(query: string): Record<string, string | string[]> {
  // No prototype: a parameter named `constructor` or `toString` is a parameter like any other.
  const out: Record<string, string | string[]> = Object.create(null);
  for (const [key, value] of new URLSearchParams(query)) {
    const existing = out[key];
    out[key] = existing === undefined ? value : [...(Array.isArray(existing) ? existing : [existing]), value];
  }
  return out;
}
