import { defaultProvider } from '@aws-sdk/credential-provider-node';
import { Sha256 } from '@smithy/core/checksum';
import { HttpRequest } from '@smithy/core/protocols';
import { streamCollector } from '@smithy/core/serde';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { SignatureV4 } from '@smithy/signature-v4';
import type { AwsCredentialIdentityProvider } from '@smithy/types';
import type { DoorbellRing } from './doorbell.ts';
import { DOORBELL_TABLE, ringRequest } from './dynamodb-doorbell.ts';

/**
 * The doorbell's ring as the request functions make it: the one DynamoDB call they need (`UpdateItem ADD
 * rings 1`, the request {@link DynamoDbDoorbell} sends, from the same `ringRequest`), signed with Signature
 * Version 4 and sent with the SDK's own signer, hash, HTTP handler and credential chain, which every bundle
 * already holds for its RDS Data client. Not the DynamoDB client: its module alone (every DynamoDB error
 * class, the operation schemas, the endpoint rules and endpoint discovery, 43 KB minified) added about 8 ms
 * to every route's cold start, measured interleaved (`npm run bench:cold-start`: the routes' median went from
 * 1.36 to 1.52 times the floor). The scheduled jobs, which read the doorbell, keep the SDK client.
 *
 * DynamoDB's JSON 1.0 protocol (`X-Amz-Target: DynamoDB_20120810.UpdateItem`) at the regional endpoint, or
 * at `AWS_ENDPOINT_URL_DYNAMODB` / `AWS_ENDPOINT_URL` as the SDK reads them. Errors come back as DynamoDB
 * sends them (`__type`), named as the SDK names them; throttling, 5xx and network failures are tried again
 * (three attempts, with the SDK's full-jitter backoff), anything else is not. A ring that still fails throws,
 * and `ringingDatabase` logs it and moves on.
 */
export interface SignedDoorbellRingOptions {
  readonly tableName: string;
  /** @default `AWS_REGION` (Lambda sets it) */
  readonly region?: string | undefined;
  /** @default `AWS_ENDPOINT_URL_DYNAMODB`, `AWS_ENDPOINT_URL`, else `https://dynamodb.<region>.amazonaws.com` */
  readonly endpoint?: string;
  /** @default the SDK's default chain (in the bundles, Lambda's: infra/bundling/aws-credentials.ts) */
  readonly credentials?: AwsCredentialIdentityProvider;
  /** Before each request (the local stack's IAM check, as DynamoDB authorises the call first). */
  readonly beforeSend?: (operation: 'UpdateItem', input: Record<string, unknown>) => Promise<void>;
  /** @default 3 */
  readonly maxAttempts?: number;
}

/** What DynamoDB answers for throttling: tried again, as the SDK's standard retry does. */
const THROTTLING = new Set([
  'ThrottlingException',
  'ProvisionedThroughputExceededException',
  'RequestLimitExceeded',
  'LimitExceededException',
]);

const TARGET = 'DynamoDB_20120810.UpdateItem';

/** A DynamoDB error as the SDK would name it. */
export class DoorbellRingError extends Error {
  constructor(
    override readonly name: string,
    message: string,
    readonly statusCode: number | undefined,
    readonly retryable: boolean,
  ) {
    super(message);
  }
}

export class SignedDoorbellRing implements DoorbellRing {
  private readonly url: URL;
  private readonly signer: SignatureV4;
  private readonly handler = new NodeHttpHandler({ connectionTimeout: 1000, requestTimeout: 2000 });
  private readonly maxAttempts: number;

  constructor(private readonly options: SignedDoorbellRingOptions) {
    if (!options.tableName) throw new TypeError('SignedDoorbellRing needs a tableName');
    const region = options.region ?? process.env.AWS_REGION;
    if (!region) throw new TypeError('SignedDoorbellRing needs a region (AWS_REGION)');
    this.url = new URL(
      options.endpoint ??
        process.env.AWS_ENDPOINT_URL_DYNAMODB ??
        process.env.AWS_ENDPOINT_URL ??
        `https://dynamodb.${region}.amazonaws.com`,
    );
    this.signer = new SignatureV4({
      service: 'dynamodb',
      region,
      credentials: options.credentials ?? defaultProvider(),
      sha256: Sha256,
    });
    this.maxAttempts = options.maxAttempts ?? 3;
  }

  async ring(): Promise<void> {
    const input = ringRequest(this.options.tableName);
    await this.options.beforeSend?.('UpdateItem', input);
    const body = JSON.stringify(input);
    for (let attempt = 1; ; attempt++) {
      try {
        await this.send(body);
        return;
      } catch (error) {
        const retryable = !(error instanceof DoorbellRingError) || error.retryable;
        if (!retryable || attempt >= this.maxAttempts) throw error;
        // The SDK's standard backoff: full jitter over 100 ms × 2^(attempt - 1).
        await new Promise((resolve) => setTimeout(resolve, Math.random() * 100 * 2 ** (attempt - 1)));
      }
    }
  }

  private async send(body: string): Promise<void> {
    const request = new HttpRequest({
      method: 'POST',
      protocol: this.url.protocol,
      hostname: this.url.hostname,
      ...(this.url.port ? { port: Number(this.url.port) } : {}),
      path: this.url.pathname || '/',
      headers: {
        host: this.url.host,
        'content-type': 'application/x-amz-json-1.0',
        'x-amz-target': TARGET,
        'content-length': String(Buffer.byteLength(body)),
      },
      body,
    });
    const signed = await this.signer.sign(request);
    const { response } = await this.handler.handle(signed as HttpRequest);
    const text = Buffer.from(await streamCollector(response.body)).toString('utf8');
    if (response.statusCode === 200) return;
    let type = 'UnknownError';
    let message = text.slice(0, 200);
    try {
      const parsed = JSON.parse(text) as { __type?: string; message?: string; Message?: string };
      // `com.amazonaws.dynamodb.v20120810#ResourceNotFoundException` → `ResourceNotFoundException`
      type = parsed.__type?.split('#').pop() ?? type;
      message = parsed.message ?? parsed.Message ?? message;
    } catch {
      // not JSON (a proxy's page): the status says enough
    }
    throw new DoorbellRingError(
      type,
      `DynamoDB ${TARGET} on ${DOORBELL_TABLE.itemKey}: ${response.statusCode} ${type}: ${message}`,
      response.statusCode,
      response.statusCode >= 500 || THROTTLING.has(type),
    );
  }
}
