import { RemovalPolicy, Stack, Tags } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import { Construct } from 'constructs';
import { PLATFORM_KEY_TAG_KEY } from '../../shared/signing/signer.ts';
import { acknowledgeWildcards } from './enclave-parents.ts';

const TAGGED_KEYS_REASON =
  "The platform keys a rotation creates have ARNs no template knows: any key of the account and region, narrowed by the condition aws:ResourceTag/enclave-contracts:platform-key = this stack's name.";

/** Props of {@link SigningKey}. */
export interface SigningKeyProps {
  /**
   * The alias operators see; the alias, not the key, is what moves when the key is replaced.
   * @default 'alias/enclave-contracts/platform-signing'
   */
  readonly aliasName?: string;
}

/**
 * The platform's countersigning key: an asymmetric KMS key (ECC_NIST_P256, SIGN_VERIFY) whose private half
 * never leaves KMS, reached through its alias. Asymmetric keys do not rotate automatically: an admin's
 * `POST /platform/keys/rotations` creates a new key (tagged like this one), publishes it, moves the alias
 * and keeps the old public key in the published key set (shared/signing/platform-key-registry.ts), so
 * earlier countersignatures still verify. This first key is retained on stack deletion for the same reason;
 * the keys rotations create are not the stack's (they outlive it too).
 *
 * Access is by the deployment's tag (`enclave-contracts:platform-key` = the stack's name), since the keys a
 * rotation creates have ARNs no template knows: {@link grantSign} for the functions that countersign,
 * {@link grantRotate} for the one that rotates.
 */
export class SigningKey extends Construct {
  readonly key: kms.Key;
  readonly alias: kms.Alias;
  /** The value of the deployment's platform-key tag. */
  readonly tagValue: string;
  /** The alias's name (`alias/...`), a literal: what the functions sign through. */
  readonly aliasName: string;
  /** The alias's ARN, a literal but for the partition, region and account. */
  readonly aliasArn: string;

  constructor(scope: Construct, id: string, props: SigningKeyProps = {}) {
    super(scope, id);
    this.tagValue = Stack.of(this).stackName;
    this.key = new kms.Key(this, 'Key', {
      description: 'Platform countersignature key of enclave contracts (ECDSA P-256, digest signing)',
      keySpec: kms.KeySpec.ECC_NIST_P256,
      keyUsage: kms.KeyUsage.SIGN_VERIFY,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    Tags.of(this.key).add(PLATFORM_KEY_TAG_KEY, this.tagValue);
    this.aliasName = props.aliasName ?? 'alias/enclave-contracts/platform-signing';
    this.alias = this.key.addAlias(this.aliasName);
    this.aliasArn = Stack.of(this).formatArn({ service: 'kms', resource: this.aliasName });
  }

  /**
   * The runtime configuration of every function: the signer signs through the alias (`SIGNING_KEY_ID`),
   * and the rotation tags the keys it creates (`PLATFORM_KEY_TAG`).
   */
  get environment(): Readonly<Record<string, string>> {
    return { SIGNER: 'kms', SIGNING_KEY_ID: this.aliasName, PLATFORM_KEY_TAG: this.tagValue };
  }

  /** Every KMS key of this account and region (narrowed by the tag conditions). */
  private get anyKey(): string {
    const stack = Stack.of(this);
    return stack.formatArn({ service: 'kms', resource: 'key', resourceName: '*' });
  }

  private get tagged(): Record<string, Record<string, string>> {
    return { StringEquals: { [`aws:ResourceTag/${PLATFORM_KEY_TAG_KEY}`]: this.tagValue } };
  }

  /**
   * `kms:Sign` and `kms:GetPublicKey` (the public key of the key that signed) on this deployment's platform
   * keys, whichever the alias names.
   */
  grantSign(grantee: iam.IGrantable): iam.Grant {
    acknowledgeWildcards(grantee, [this.anyKey], TAGGED_KEYS_REASON);
    return iam.Grant.addToPrincipal({
      grantee,
      actions: ['kms:Sign', 'kms:GetPublicKey'],
      resourceArns: [this.anyKey],
      conditions: this.tagged,
    });
  }

  /**
   * A rotation: `kms:CreateKey` of an ECC_NIST_P256 signing key carrying the deployment's tag and no other
   * (`kms:TagResource` too, which CreateKey with tags needs), `kms:GetPublicKey` of the tagged keys, and
   * `kms:UpdateAlias` on the alias and the tagged keys (KMS authorises it on the alias, the key it leaves
   * and the key it names). Nothing else: no key policy, no deletion, no other alias.
   */
  grantRotate(grantee: iam.IGrantable): void {
    acknowledgeWildcards(grantee, [this.anyKey], TAGGED_KEYS_REASON);
    acknowledgeWildcards(
      grantee,
      ['*'],
      "kms:CreateKey names no resource (Resource must be *): the conditions allow only an ECC_NIST_P256 SIGN_VERIFY key carrying this deployment's platform-key tag and no other tag.",
    );
    const requestTag = {
      StringEquals: {
        [`aws:RequestTag/${PLATFORM_KEY_TAG_KEY}`]: this.tagValue,
        'kms:KeySpec': 'ECC_NIST_P256',
        'kms:KeyUsage': 'SIGN_VERIFY',
      },
      'ForAllValues:StringEquals': { 'aws:TagKeys': [PLATFORM_KEY_TAG_KEY] },
    };
    iam.Grant.addToPrincipal({
      grantee,
      actions: ['kms:CreateKey'],
      resourceArns: ['*'],
      conditions: requestTag,
    });
    iam.Grant.addToPrincipal({
      grantee,
      actions: ['kms:TagResource'],
      resourceArns: [this.anyKey],
      conditions: {
        StringEquals: { [`aws:RequestTag/${PLATFORM_KEY_TAG_KEY}`]: this.tagValue },
        'ForAllValues:StringEquals': { 'aws:TagKeys': [PLATFORM_KEY_TAG_KEY] },
      },
    });
    iam.Grant.addToPrincipal({
      grantee,
      actions: ['kms:GetPublicKey', 'kms:UpdateAlias'],
      resourceArns: [this.anyKey],
      conditions: this.tagged,
    });
    iam.Grant.addToPrincipal({
      grantee,
      actions: ['kms:UpdateAlias'],
      resourceArns: [this.aliasArn],
    });
  }
}
