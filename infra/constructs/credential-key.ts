import { RemovalPolicy } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import { Construct } from 'constructs';
import { TOTP_SEED_PURPOSE } from '../../shared/identities/second-factor.ts';

/**
 * The key that wraps the data keys sealing the identities' TOTP seeds (envelope encryption,
 * shared/signing/secret-sealer.ts): a customer-managed symmetric KMS key, rotated yearly by KMS (old
 * versions keep decrypting), retained when the stack goes (a seed sealed under a deleted key is lost).
 *
 * Access is split and narrowed to TOTP seeds by the encryption context: {@link grantSeal}
 * (`kms:GenerateDataKey`, enrolment) and {@link grantOpen} (`kms:Decrypt`, confirmation and MFA signing),
 * each only with `purpose=totp-seed` in the context; nobody may encrypt or decrypt anything else with it.
 */
export class CredentialKey extends Construct {
  readonly key: kms.Key;

  constructor(scope: Construct, id: string) {
    super(scope, id);
    this.key = new kms.Key(this, 'Key', {
      description: 'Wraps the data keys that seal the identities TOTP seeds (enclave contracts)',
      enableKeyRotation: true,
      removalPolicy: RemovalPolicy.RETAIN,
    });
  }

  /** `CREDENTIAL_KEY_ID`: the key's ARN, which the grants name. */
  get environment(): Readonly<Record<string, string>> {
    return { CREDENTIAL_KEY_ID: this.key.keyArn };
  }

  /** `kms:GenerateDataKey` on this key, for TOTP seeds only. */
  grantSeal(grantee: iam.IGrantable): iam.Grant {
    return this.grant(grantee, 'kms:GenerateDataKey');
  }

  /** `kms:Decrypt` on this key, for TOTP seeds only. */
  grantOpen(grantee: iam.IGrantable): iam.Grant {
    return this.grant(grantee, 'kms:Decrypt');
  }

  private grant(grantee: iam.IGrantable, action: string): iam.Grant {
    return iam.Grant.addToPrincipal({
      grantee,
      actions: [action],
      resourceArns: [this.key.keyArn],
      conditions: { StringEquals: { 'kms:EncryptionContext:purpose': TOTP_SEED_PURPOSE } },
    });
  }
}
