import { RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import { Construct } from 'constructs';
import { DOORBELL_TABLE } from '../../shared/events/dynamodb-doorbell.ts';

/**
 * The doorbell (shared/events/doorbell.ts): one DynamoDB item that every function writing the database rings
 * after a commit that leaves the scheduled jobs work, and that those jobs read instead of querying Aurora,
 * so an idle deployment leaves the cluster without connections and Aurora Serverless v2 auto-pauses.
 *
 * The table holds that one item (a counter and the jobs' marks: numbers and timestamps), encrypted with a
 * customer-managed key like the stack's other tables; every grant names the item's key
 * (`dynamodb:LeadingKeys`) and the key is usable through DynamoDB only.
 */
export class Doorbell extends Construct {
  readonly key: kms.Key;
  readonly table: dynamodb.TableV2;

  constructor(scope: Construct, id: string) {
    super(scope, id);
    this.key = new kms.Key(this, 'TableKey', {
      description: 'Encrypts the doorbell table (the write counter the scheduled jobs watch)',
      enableKeyRotation: true,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    this.table = new dynamodb.TableV2(this, 'Table', {
      partitionKey: { name: DOORBELL_TABLE.partitionKey, type: dynamodb.AttributeType.STRING },
      billing: dynamodb.Billing.onDemand(),
      encryption: dynamodb.TableEncryptionV2.customerManagedKey(this.key),
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      // A counter and marks: lost, the jobs run once each (as after a deployment) and carry on.
      removalPolicy: RemovalPolicy.DESTROY,
    });
  }

  /** The runtime configuration of every function (`DOORBELL_TABLE_NAME`): an identifier, not a permission. */
  get environment(): Readonly<Record<string, string>> {
    return { DOORBELL_TABLE_NAME: this.table.tableName };
  }

  /** What a writer needs to ring: `UpdateItem` on the doorbell item (and its key, to encrypt). */
  grantRing(grantee: iam.IGrantable): iam.Grant {
    return this.grantItem(
      grantee,
      ['dynamodb:UpdateItem'],
      ['kms:Decrypt', 'kms:Encrypt', 'kms:GenerateDataKey'],
    );
  }

  /**
   * What a scheduled job needs to watch it: a consistent `GetItem` of the doorbell item and `UpdateItem` to
   * record its own marks.
   */
  grantWatch(grantee: iam.IGrantable): iam.Grant {
    return this.grantItem(
      grantee,
      ['dynamodb:GetItem', 'dynamodb:UpdateItem'],
      ['kms:Decrypt', 'kms:Encrypt', 'kms:GenerateDataKey'],
    );
  }

  private grantItem(grantee: iam.IGrantable, actions: string[], keyActions: string[]): iam.Grant {
    const grant = iam.Grant.addToPrincipal({
      grantee,
      actions,
      resourceArns: [this.table.tableArn],
      conditions: { 'ForAllValues:StringEquals': { 'dynamodb:LeadingKeys': [DOORBELL_TABLE.itemKey] } },
    });
    iam.Grant.addToPrincipal({
      grantee,
      actions: keyActions,
      resourceArns: [this.key.keyArn],
      conditions: { StringEquals: { 'kms:ViaService': `dynamodb.${Stack.of(this).region}.amazonaws.com` } },
    });
    return grant;
  }
}
