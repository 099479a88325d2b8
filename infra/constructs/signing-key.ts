import { RemovalPolicy } from 'aws-cdk-lib';
import type * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import { Construct } from 'constructs';

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
 * never leaves KMS. Asymmetric keys do not rotate automatically: rotating means a new key, the alias moved to
 * it, and the old public key kept in the published JWKS so earlier countersignatures still verify. The key is
 * retained on stack deletion for the same reason.
 *
 * Access is split on purpose: {@link grantSign} for the one function that countersigns, and
 * {@link grantPublicKey} for the functions that publish or verify with the public key (verification is
 * local: Sign and Verify share a 300 req/s quota).
 */
export class SigningKey extends Construct {
  readonly key: kms.Key;
  readonly alias: kms.Alias;

  constructor(scope: Construct, id: string, props: SigningKeyProps = {}) {
    super(scope, id);
    this.key = new kms.Key(this, 'Key', {
      description: 'Platform countersignature key of enclave contracts (ECDSA P-256, digest signing)',
      keySpec: kms.KeySpec.ECC_NIST_P256,
      keyUsage: kms.KeyUsage.SIGN_VERIFY,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    this.alias = this.key.addAlias(props.aliasName ?? 'alias/enclave-contracts/platform-signing');
  }

  /**
   * The runtime configuration of a function that signs or reads the public key (`SIGNER`,
   * `SIGNING_KEY_ID`); the key ARN rather than the alias, because the IAM grants name the key.
   */
  get environment(): Readonly<Record<string, string>> {
    return { SIGNER: 'kms', SIGNING_KEY_ID: this.key.keyArn };
  }

  /** `kms:Sign` on this key only. */
  grantSign(grantee: iam.IGrantable): iam.Grant {
    return this.key.grant(grantee, 'kms:Sign');
  }

  /** `kms:GetPublicKey` on this key only. */
  grantPublicKey(grantee: iam.IGrantable): iam.Grant {
    return this.key.grant(grantee, 'kms:GetPublicKey');
  }
}
