import { defaultProvider } from '@aws-sdk/credential-provider-node';
import { Sha256 } from '@smithy/core/checksum';
import { HttpRequest } from '@smithy/core/protocols';
import { streamCollector } from '@smithy/core/serde';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { SignatureV4 } from '@smithy/signature-v4';
import type { AwsCredentialIdentityProvider } from '@smithy/types';

/**
 * One AWS JSON call (`X-Amz-Target: <prefix>.<Operation>`; protocol 1.0 for DynamoDB and Step Functions,
 * 1.1 for KMS), signed with Signature Version 4 and sent with the SDK's own signer, hash, HTTP handler and
 * credential chain, which every bundle already holds for its RDS Data client: for the few calls a request
 * function makes to DynamoDB, Step Functions or KMS, whose SDK clients (every error class, every
 * operation's schema, the endpoint rules) cost a cold start 3-9 ms each, measured interleaved by
 * `npm run bench:cold-start`. The scheduled jobs and workflow steps keep the DynamoDB and EC2 SDK clients.
 * Blobs travel as base64 strings, as the protocol writes them.
 *
 * Endpoint: `options.endpoint`, else `AWS_ENDPOINT_URL_<SERVICE>` or `AWS_ENDPOINT_URL` (the SDK's variables),
 * else the regional one. A failed call throws {@link AwsJsonError}, shaped as an SDK v3 error (`name` the
 * service's code, `$fault`, `$metadata.httpStatusCode`), so the adapters read both alike
 * (`describeServiceFailure`). Throttling, 5xx and network failures are tried again, up to `maxAttempts`
 * (the SDK's standard retry: three attempts, full-jitter backoff); a refusal is not.
 */
export interface SignedJsonClientOptions {
  /** The signing name and endpoint prefix: `dynamodb`, `states`, `kms`. */
  readonly service: keyof typeof SERVICES;
  /** @default `AWS_REGION` (Lambda sets it) */
  readonly region?: string | undefined;
  readonly endpoint?: string;
  /** @default the SDK's default chain (in the bundles, Lambda's: infra/bundling/aws-credentials.ts) */
  readonly credentials?: AwsCredentialIdentityProvider;
  /** @default 3 */
  readonly maxAttempts?: number;
  /** Before each call (the local stack's IAM check: the service authorises the call before anything else). */
  readonly beforeSend?: (operation: string, input: object) => Promise<void>;
}

/** The services' `X-Amz-Target` prefixes, protocol versions, and the SDK's endpoint variables. */
const SERVICES = {
  dynamodb: {
    target: 'DynamoDB_20120810',
    contentType: 'application/x-amz-json-1.0',
    endpointVariable: 'AWS_ENDPOINT_URL_DYNAMODB',
  },
  states: {
    target: 'AWSStepFunctions',
    contentType: 'application/x-amz-json-1.0',
    endpointVariable: 'AWS_ENDPOINT_URL_SFN',
  },
  kms: {
    target: 'TrentService',
    contentType: 'application/x-amz-json-1.1',
    endpointVariable: 'AWS_ENDPOINT_URL_KMS',
  },
} as const;

/** The codes the services raise as 4xx that mean "slow down", tried again as the SDK does. */
const THROTTLING = new Set([
  'ThrottlingException',
  'Throttling',
  'TooManyRequestsException',
  'ProvisionedThroughputExceededException',
  'RequestLimitExceeded',
]);

/** A service's refusal or failure, shaped as the SDK v3 shapes it. */
export class AwsJsonError extends Error {
  readonly $fault: 'client' | 'server';
  readonly $metadata: { readonly httpStatusCode: number };

  constructor(
    override readonly name: string,
    message: string,
    httpStatusCode: number,
    /** The refusal's other fields, set on the error as the SDK sets them (a ConditionalCheckFailed's `Item`). */
    details: Record<string, unknown> = {},
  ) {
    super(message);
    for (const [key, value] of Object.entries(details)) {
      if (!(key in this)) Object.defineProperty(this, key, { value, enumerable: true });
    }
    this.$fault = httpStatusCode >= 500 ? 'server' : 'client';
    this.$metadata = { httpStatusCode };
  }

  /** Worth another attempt: throttling or a server fault. */
  get retryable(): boolean {
    return this.$fault === 'server' || THROTTLING.has(this.name);
  }
}

export class SignedJsonClient {
  private readonly handler = new NodeHttpHandler({ connectionTimeout: 1000, requestTimeout: 5000 });
  private readonly target: string;
  private readonly contentType: string;
  /** Resolved at the first call, as the SDK resolves its region: building a client never fails. */
  private resolved?: { readonly url: URL; readonly signer: SignatureV4 };

  constructor(private readonly options: SignedJsonClientOptions) {
    this.target = SERVICES[options.service].target;
    this.contentType = SERVICES[options.service].contentType;
  }

  private resolve(): { url: URL; signer: SignatureV4 } {
    if (this.resolved) return this.resolved;
    const { service } = this.options;
    const region = this.options.region ?? process.env.AWS_REGION;
    if (!region) throw new TypeError(`a ${service} call needs a region (AWS_REGION)`);
    this.resolved = {
      url: new URL(
        this.options.endpoint ??
          process.env[SERVICES[service].endpointVariable] ??
          process.env.AWS_ENDPOINT_URL ??
          `https://${service}.${region}.amazonaws.com`,
      ),
      signer: new SignatureV4({
        service,
        region,
        credentials: this.options.credentials ?? defaultProvider(),
        sha256: Sha256,
      }),
    };
    return this.resolved;
  }

  /** Calls `operation` with `input`; answers the service's JSON answer. */
  async call(operation: string, input: object): Promise<unknown> {
    await this.options.beforeSend?.(operation, input);
    const body = JSON.stringify(input);
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.send(operation, body);
      } catch (error) {
        // A network failure never reached an answer: as transient as a 5xx.
        const retryable = !(error instanceof AwsJsonError) || error.retryable;
        if (!retryable || attempt >= (this.options.maxAttempts ?? 3)) throw error;
        await new Promise((resolve) => setTimeout(resolve, Math.random() * 100 * 2 ** (attempt - 1)));
      }
    }
  }

  private async send(operation: string, body: string): Promise<unknown> {
    const { url, signer } = this.resolve();
    const request = new HttpRequest({
      method: 'POST',
      protocol: url.protocol,
      hostname: url.hostname,
      ...(url.port ? { port: Number(url.port) } : {}),
      path: url.pathname || '/',
      headers: {
        host: url.host,
        'content-type': this.contentType,
        'x-amz-target': `${this.target}.${operation}`,
        'content-length': String(Buffer.byteLength(body)),
      },
      body,
    });
    const signed = await signer.sign(request);
    const { response } = await this.handler.handle(signed as HttpRequest);
    const text = Buffer.from(await streamCollector(response.body)).toString('utf8');
    let parsed:
      | ({ __type?: string; message?: string; Message?: string } & Record<string, unknown>)
      | undefined;
    try {
      parsed = text ? (JSON.parse(text) as typeof parsed) : {};
    } catch {
      parsed = undefined; // not JSON (a proxy's page): the status says enough
    }
    if (response.statusCode === 200) return parsed ?? {};
    // `com.amazonaws.dynamodb.v20120810#ResourceNotFoundException` → `ResourceNotFoundException`
    const code =
      parsed?.__type?.split('#').pop() ||
      (response.statusCode >= 500 ? 'InternalServerError' : 'UnknownError');
    const message = parsed?.message ?? parsed?.Message ?? text.slice(0, 200);
    const { __type: _type, message: _message, Message: _Message, ...details } = parsed ?? {};
    throw new AwsJsonError(
      code,
      `${this.target}.${operation}: ${code}: ${message}`,
      response.statusCode,
      details,
    );
  }
}
