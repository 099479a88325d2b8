import { Duration, Stack } from 'aws-cdk-lib';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { EVENT_SOURCE } from '../../shared/events/event-bus.ts';
import {
  CONTRACT_ID_TAG_KEY,
  CONTRACT_KEY_DETAIL_TYPES,
  CONTRACT_KEY_TAG_KEY,
} from '../../shared/keys/contract-keys.ts';
import { adaptersOf } from '../../shared/runtime/adapters.ts';
import { AppFunction } from './app-function.ts';
import type { Database } from './database.ts';
import { deadLetterQueue } from './dead-letter-queue.ts';
import { acknowledgeWildcards } from './enclave-parents.ts';
import type { LogSettings } from './observability.ts';

/** Props of {@link ContractKeys}. */
export interface ContractKeysProps {
  readonly database: Database;
  readonly bus: events.IEventBus;
  /** The enclave parents' role: the contract keys' policies admit its sessions, with an attestation. */
  readonly parentRole: iam.IRole;
  readonly logs: LogSettings;
  /** The runtime configuration every function gets. */
  readonly environment: Readonly<Record<string, string>>;
  /** The deployment stage, in the keys' alias names. */
  readonly stage: string;
}

export const CONTRACT_KEYS_HANDLER = 'functions/events/sync-contract-key.ts';

const TAGGED_KEYS_REASON =
  "The contracts' keys are created at run time, one per contract, so their ARNs are unknown at deploy: the grant names key/* of this account and region, conditioned on this deployment's contract-key tag.";

/**
 * The contracts' data keys (shared/keys/contract-keys.ts): one customer-managed symmetric KMS key per
 * contract, created when it becomes Active, whose key policy admits only the approved images of the
 * contract's Running enclaves on their own parents. The sync function brings each key to its contract's
 * state after every event that may change it (EventBridge rule on the domain bus, retried, dead-lettered).
 *
 * What holds which permission:
 * - the sync function: `kms:CreateKey` only of a symmetric encryption key carrying this deployment's tag
 *   (and no tag but it and the contract's), `kms:TagResource` likewise, `kms:CreateAlias` under this
 *   deployment's alias prefix on its tagged keys; everything else it does (PutKeyPolicy, Enable/Disable,
 *   ScheduleKeyDeletion, DescribeKey) the key policy grants it, key by key. It can neither decrypt nor wrap.
 * - the data-key route (`wrapDataKeys`): `kms:GenerateDataKeyWithoutPlaintext` on the tagged keys, which
 *   their policies allow only for their contract's encryption context;
 * - the parents' role: nothing in IAM. Only the key policies admit it, with a recipient attestation.
 */
export class ContractKeys extends Construct {
  /** The value of {@link CONTRACT_KEY_TAG_KEY} on this deployment's keys (the stack's name). */
  readonly tagValue: string;
  /** `alias/enclave-contracts/<stage>/contracts/`: each key's alias is this and its contract's id. */
  readonly aliasPrefix: string;
  readonly sync: AppFunction;
  readonly deadLetterQueue: sqs.Queue;

  constructor(scope: Construct, id: string, props: ContractKeysProps) {
    super(scope, id);
    const stack = Stack.of(this);
    this.tagValue = stack.stackName;
    this.aliasPrefix = `alias/enclave-contracts/${props.stage}/contracts/`;
    this.deadLetterQueue = deadLetterQueue(this, 'DeadLetters');
    this.sync = new AppFunction(this, 'SyncContractKey', {
      entry: CONTRACT_KEYS_HANDLER,
      description:
        "Brings a contract's KMS key to its contract's state: created when Active, its policy admitting the Running enclaves' approved images, disabled when suspended, scheduled for deletion when terminated",
      adapters: adaptersOf(['database', 'manageContractKeys']),
      logs: props.logs,
      environment: {
        ...props.environment,
        ...this.environment,
        CONTRACT_KEY_ALIAS_PREFIX: this.aliasPrefix,
        PARENT_ROLE_ARN: props.parentRole.roleArn,
      },
      timeout: Duration.minutes(1),
      deadLetterQueue: this.deadLetterQueue,
      retryAttempts: 2,
    });
    this.sync.function.addEnvironment('CONTRACT_KEY_ADMIN_ROLE_ARN', this.sync.role.roleArn);
    props.database.grantDataApiAccess(this.sync);
    this.grantManage(this.sync);
    new events.Rule(this, 'SyncRule', {
      description: "Syncs a contract's KMS key after an event that may change what its policy admits",
      eventBus: props.bus,
      eventPattern: { source: [EVENT_SOURCE], detailType: [...CONTRACT_KEY_DETAIL_TYPES] },
      targets: [
        new targets.LambdaFunction(this.sync.function, {
          deadLetterQueue: this.deadLetterQueue,
          retryAttempts: 10,
          maxEventAge: Duration.hours(2),
        }),
      ],
    });
  }

  /** The configuration of the functions that use the contract keys. */
  get environment(): Readonly<Record<string, string>> {
    return { CONTRACT_KEY_TAG: this.tagValue };
  }

  /** The role of the data-key route, whom the keys' policies let wrap data keys. */
  useDataKeyRole(role: iam.IRole): void {
    this.sync.function.addEnvironment('CONTRACT_KEY_DATA_ROLE_ARN', role.roleArn);
  }

  /** Every KMS key of this account and region (narrowed by the tag conditions). */
  private get anyKey(): string {
    return Stack.of(this).formatArn({ service: 'kms', resource: 'key', resourceName: '*' });
  }

  private get tagged(): Record<string, Record<string, string>> {
    return { StringEquals: { [`aws:ResourceTag/${CONTRACT_KEY_TAG_KEY}`]: this.tagValue } };
  }

  /** `kms:GenerateDataKeyWithoutPlaintext` on this deployment's contract keys (their policies decide the context). */
  grantWrap(grantee: iam.IGrantable): void {
    acknowledgeWildcards(grantee, [this.anyKey], TAGGED_KEYS_REASON);
    iam.Grant.addToPrincipal({
      grantee,
      actions: ['kms:GenerateDataKeyWithoutPlaintext'],
      resourceArns: [this.anyKey],
      conditions: this.tagged,
    });
  }

  private grantManage(grantee: iam.IGrantable): void {
    acknowledgeWildcards(grantee, [this.anyKey], TAGGED_KEYS_REASON);
    acknowledgeWildcards(
      grantee,
      ['*'],
      "kms:CreateKey names no resource (Resource must be *): the conditions allow only a symmetric encryption key carrying this deployment's contract-key tag and no tag but it and the contract's.",
    );
    const tagKeys = {
      'ForAllValues:StringEquals': { 'aws:TagKeys': [CONTRACT_KEY_TAG_KEY, CONTRACT_ID_TAG_KEY] },
    };
    iam.Grant.addToPrincipal({
      grantee,
      actions: ['kms:CreateKey'],
      resourceArns: ['*'],
      conditions: {
        StringEquals: {
          [`aws:RequestTag/${CONTRACT_KEY_TAG_KEY}`]: this.tagValue,
          'kms:KeySpec': 'SYMMETRIC_DEFAULT',
          'kms:KeyUsage': 'ENCRYPT_DECRYPT',
        },
        ...tagKeys,
      },
    });
    iam.Grant.addToPrincipal({
      grantee,
      actions: ['kms:TagResource'],
      resourceArns: [this.anyKey],
      conditions: { StringEquals: { [`aws:RequestTag/${CONTRACT_KEY_TAG_KEY}`]: this.tagValue }, ...tagKeys },
    });
    iam.Grant.addToPrincipal({
      grantee,
      actions: ['kms:CreateAlias'],
      resourceArns: [this.anyKey],
      conditions: this.tagged,
    });
    const aliases = Stack.of(this).formatArn({ service: 'kms', resource: `${this.aliasPrefix}*` });
    acknowledgeWildcards(
      grantee,
      [aliases],
      "One alias per contract, named by the contract's id under this deployment's prefix.",
    );
    iam.Grant.addToPrincipal({ grantee, actions: ['kms:CreateAlias'], resourceArns: [aliases] });
  }
}
