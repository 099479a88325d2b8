import type { AwsCredentialIdentityProvider } from '@smithy/types';
import { SignedJsonClient, type SignedJsonClientOptions } from '../runtime/signed-json-client.ts';
import type { DoorbellRing } from './doorbell.ts';
import { ringRequest } from './dynamodb-doorbell.ts';

/**
 * The doorbell's ring as the request functions make it: the one DynamoDB call they need (`UpdateItem ADD
 * rings 1`, the request {@link DynamoDbDoorbell} sends, from the same `ringRequest`), through
 * {@link SignedJsonClient} rather than the DynamoDB client, whose module alone (every DynamoDB error class,
 * the operation schemas, the endpoint rules and endpoint discovery: 43 KB minified) added about 8 ms to every
 * route's cold start, measured interleaved (`npm run bench:cold-start`: the routes' median went from 1.36 to
 * 1.52 times the floor, and back to 1.40 with this). The scheduled jobs, which read the doorbell, keep the
 * client. A ring that still fails after its attempts throws; `ringingDatabase` logs it and moves on.
 */
export interface SignedDoorbellRingOptions {
  readonly tableName: string;
  /** @default `AWS_REGION` */
  readonly region?: string | undefined;
  readonly endpoint?: string;
  readonly credentials?: AwsCredentialIdentityProvider;
  /** Before each request (the local stack's IAM check, as DynamoDB authorises the call first). */
  readonly beforeSend?: SignedJsonClientOptions['beforeSend'];
}

export class SignedDoorbellRing implements DoorbellRing {
  private readonly client: SignedJsonClient;

  constructor(private readonly options: SignedDoorbellRingOptions) {
    if (!options.tableName) throw new TypeError('SignedDoorbellRing needs a tableName');
    this.client = new SignedJsonClient({
      service: 'dynamodb',
      region: options.region,
      ...(options.endpoint ? { endpoint: options.endpoint } : {}),
      ...(options.credentials ? { credentials: options.credentials } : {}),
      ...(options.beforeSend ? { beforeSend: options.beforeSend } : {}),
    });
  }

  async ring(): Promise<void> {
    await this.client.call('UpdateItem', ringRequest(this.options.tableName));
  }
}
