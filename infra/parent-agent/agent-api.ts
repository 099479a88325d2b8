/**
 * The API routes a parent calls (`auth: iam`), signed with Signature Version 4 for `execute-api` with the
 * instance profile's credentials: API Gateway's IAM authorizer verifies the signature and names the caller
 * `assumed-role/<parent role>/<instance id>`, so the instance is identified by AWS, not by anything it writes.
 *
 * What is retried and what is not: a transport failure, a 5xx, a 429 and the wait not open yet (409
 * `attestation-wait-not-open`: the instance can boot before WaitForAttestation records its token) are tried
 * again with backoff until `deadline`; any other answer is final. A refused document is never sent again
 * (the agent reports it and stops): a second copy would be refused the same way.
 */
import { Sha256 } from '@smithy/core/checksum';
import { HttpRequest } from '@smithy/core/protocols';
import { SignatureV4 } from '@smithy/signature-v4';
import type { AgentPhase } from '../../shared/domain/enclave.ts';
import type { InstanceCredentials } from './imds.ts';

/** The API's answer to a call that reached it. */
export interface ApiAnswer {
  readonly status: number;
  /** The problem's `type` (problem+json) when the API refused. */
  readonly problemType?: string;
  readonly detail?: string;
}

/** The API refused (4xx other than the retried ones), or kept failing until the deadline. */
export class ApiCallError extends Error {
  override readonly name = 'ApiCallError';
  constructor(
    message: string,
    readonly answer: ApiAnswer | undefined,
  ) {
    super(message);
  }

  /** The API answered and said no: sending the same again would not help. */
  get refused(): boolean {
    return this.answer !== undefined && this.answer.status >= 400 && this.answer.status < 500;
  }
}

export interface AgentApiOptions {
  /** The API's base URL, `https://<api>/api/v1` (user data writes it into the parent's configuration). */
  readonly apiUrl: string;
  readonly enclaveId: string;
  readonly region: string;
  readonly credentials: () => Promise<InstanceCredentials>;
  /** One call's limit (ms). @default 10000 */
  readonly timeoutMs?: number;
  /** Waits between attempts (tests shorten it). @default setTimeout */
  readonly sleep?: (ms: number) => Promise<void>;
}

export class AgentApi {
  private readonly base: URL;
  private readonly timeoutMs: number;
  private readonly sleep: (ms: number) => Promise<void>;

  constructor(private readonly options: AgentApiOptions) {
    this.base = new URL(options.apiUrl.endsWith('/') ? options.apiUrl : `${options.apiUrl}/`);
    if (this.base.protocol !== 'https:' && !['127.0.0.1', 'localhost'].includes(this.base.hostname)) {
      throw new TypeError('the API is reached over HTTPS only');
    }
    this.timeoutMs = options.timeoutMs ?? 10_000;
    this.sleep = options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
  }

  /** One heartbeat: best effort, a single attempt (the next one, or the document, may still arrive). */
  heartbeat(phase: AgentPhase): Promise<ApiAnswer> {
    return this.post('attestation/heartbeat', { phase });
  }

  /** Submits the document, retried as the module says until `deadline` (epoch ms). */
  submitAttestation(document: Uint8Array, deadline: number): Promise<ApiAnswer> {
    return this.withRetries(
      () => this.post('attestation', { document: Buffer.from(document).toString('base64') }),
      deadline,
    );
  }

  /** Reports one metrics sample (the route's body), retried until `deadline`. */
  reportMetrics(sample: Record<string, unknown>, deadline: number): Promise<ApiAnswer> {
    return this.withRetries(() => this.post('metrics', sample), deadline);
  }

  private async withRetries(call: () => Promise<ApiAnswer>, deadline: number): Promise<ApiAnswer> {
    let last: ApiAnswer | Error | undefined;
    for (let attempt = 1; ; attempt++) {
      let answer: ApiAnswer | undefined;
      try {
        answer = await call();
      } catch (error) {
        last = error as Error;
      }
      if (answer) {
        if (answer.status < 300) return answer;
        last = answer;
        const notYet = answer.status === 409 && answer.problemType?.endsWith('/attestation-wait-not-open');
        if (!notYet && answer.status !== 429 && answer.status < 500) {
          throw new ApiCallError(`the API refused (${describe(answer)})`, answer);
        }
      }
      const wait = Math.min(250 * 2 ** (attempt - 1), 10_000) * (0.5 + Math.random() / 2);
      if (Date.now() + wait >= deadline) {
        const what = last instanceof Error ? last.message : describe(last!);
        throw new ApiCallError(
          `no success before the deadline after ${attempt} attempts (last: ${what})`,
          last instanceof Error ? undefined : last,
        );
      }
      await this.sleep(wait);
    }
  }

  private async post(route: string, body: object): Promise<ApiAnswer> {
    const url = new URL(`enclaves/${encodeURIComponent(this.options.enclaveId)}/${route}`, this.base);
    const payload = JSON.stringify(body);
    const headers = await signApiRequest(
      { method: 'POST', url, headers: { 'content-type': 'application/json' }, body: payload },
      await this.options.credentials(),
      this.options.region,
    );
    const response = await fetch(url, {
      method: 'POST',
      headers,
      body: payload,
      signal: AbortSignal.timeout(this.timeoutMs),
    });
    const text = await response.text();
    if (response.ok) return { status: response.status };
    let problem: { type?: unknown; detail?: unknown } = {};
    try {
      problem = JSON.parse(text) as typeof problem;
    } catch {
      // not problem+json (a gateway's own page): the status says enough
    }
    return {
      status: response.status,
      ...(typeof problem.type === 'string' ? { problemType: problem.type } : {}),
      ...(typeof problem.detail === 'string' ? { detail: problem.detail.slice(0, 300) } : {}),
    };
  }
}

/**
 * The headers to send `request` with, signed with SigV4 for `execute-api` (the host header is left to fetch,
 * which sets the same value from the URL).
 */
export async function signApiRequest(
  request: {
    readonly method: string;
    readonly url: URL;
    readonly headers?: Readonly<Record<string, string>>;
    readonly body?: string | Uint8Array;
  },
  credentials: InstanceCredentials,
  region: string,
): Promise<Record<string, string>> {
  const { url } = request;
  const signer = new SignatureV4({
    service: 'execute-api',
    region,
    credentials: {
      accessKeyId: credentials.accessKeyId,
      secretAccessKey: credentials.secretAccessKey,
      sessionToken: credentials.sessionToken,
    },
    sha256: Sha256,
  });
  const signed = await signer.sign(
    new HttpRequest({
      method: request.method,
      protocol: url.protocol,
      hostname: url.hostname,
      ...(url.port ? { port: Number(url.port) } : {}),
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      headers: { ...request.headers, host: url.host },
      ...(request.body === undefined ? {} : { body: request.body }),
    }),
  );
  const headers = { ...signed.headers };
  delete headers.host;
  return headers;
}

function describe(answer: ApiAnswer): string {
  return [String(answer.status), answer.problemType, answer.detail].filter(Boolean).join(' ');
}
