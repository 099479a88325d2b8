import { App, Tags, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { DEFAULT_ROTATION_POLICY } from '../shared/identities/credential-rotation.ts';
import { ContractsStack } from './contracts-stack.ts';
import { enclaveArtifactsFromContext } from './deployment-context.ts';

/**
 * The CDK app. The environment is explicit so `cdk synth` works offline, without an AWS account:
 * deploy with `-c account=123456789012 -c region=eu-central-1`.
 *
 * cdk-nag's AwsSolutions pack runs as a validation plugin at synth: any finding that is not acknowledged
 * (with a reason, next to the construct that causes it) fails the synth.
 */
const app = new App();
// The CLI's account and region (from its credentials and profile) unless named; an offline synth has neither.
const account = String(
  app.node.tryGetContext('account') ?? process.env.CDK_DEFAULT_ACCOUNT ?? '000000000000',
);
const region = String(app.node.tryGetContext('region') ?? process.env.CDK_DEFAULT_REGION ?? 'eu-central-1');
/** `-c stage=staging`: a second deployment in the same account and region (its own stack and names). */
const stage = String(app.node.tryGetContext('stage') ?? 'main');
/** e.g. `-c availabilityZones=us-west-1b,us-west-1c` where `<region>a`/`<region>b` do not both exist. */
const availabilityZones = app.node.tryGetContext('availabilityZones') as string | undefined;

/** `-c alarmEmail=ops@example.com`: told of every alarm. `-c pageEndpoint=<email or https URL>`: paged. */
const alarmEmail = app.node.tryGetContext('alarmEmail') as string | undefined;
const pageEndpoint = app.node.tryGetContext('pageEndpoint') as string | undefined;

/** `-c firstAdminEmail=you@example.com`: the deployment creates this admin (Cognito user and identity). */
const firstAdminEmail = app.node.tryGetContext('firstAdminEmail') as string | undefined;

/** `-c webauthnRpId=contracts.example.com -c webauthnOrigins=https://contracts.example.com`: passkeys. */
const webauthnRpId = app.node.tryGetContext('webauthnRpId') as string | undefined;
const webauthnOrigins = app.node.tryGetContext('webauthnOrigins') as string | undefined;

/**
 * `-c credentialMaxAgeDays=180 -c platformKeyMaxAgeDays=365`: when the daily rotation report counts
 * credentials due (a year each by default).
 */
const credentialMaxAgeDays = app.node.tryGetContext('credentialMaxAgeDays') as string | number | undefined;
const platformKeyMaxAgeDays = app.node.tryGetContext('platformKeyMaxAgeDays') as string | number | undefined;

/** The parents' default EIF and agent: required to deploy (see deployment-context.ts). */
const enclaveArtifacts = enclaveArtifactsFromContext((key) => app.node.tryGetContext(key));

new ContractsStack(app, stage === 'main' ? 'EnclaveContracts' : `EnclaveContracts-${stage}`, {
  env: { account, region },
  stage,
  ...(enclaveArtifacts ? { enclaveArtifacts } : {}),
  availabilityZones: availabilityZones?.split(','),
  ...(alarmEmail ? { alarmEmail } : {}),
  ...(pageEndpoint ? { pageEndpoint } : {}),
  ...(firstAdminEmail ? { firstAdminEmail } : {}),
  ...(webauthnRpId
    ? { webauthn: { rpId: webauthnRpId, origins: (webauthnOrigins ?? '').split(',').filter(Boolean) } }
    : {}),
  ...(credentialMaxAgeDays !== undefined || platformKeyMaxAgeDays !== undefined
    ? {
        credentialRotation: {
          maxAgeDays: Number(credentialMaxAgeDays ?? DEFAULT_ROTATION_POLICY.maxAgeDays),
          platformKeyMaxAgeDays: Number(
            platformKeyMaxAgeDays ?? DEFAULT_ROTATION_POLICY.platformKeyMaxAgeDays,
          ),
        },
      }
    : {}),
  description: 'Enclave contracts: digital contracts between training-data providers and consumers',
});
Tags.of(app).add('project', 'enclave-contracts');

Validations.of(app).addPlugins(new AwsSolutionsChecks(app, { verbose: true }));
