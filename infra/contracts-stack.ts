import { Annotations, CfnOutput, type CfnResource, Stack, type StackProps, Token } from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import type { RouteDefinition } from '../shared/http/routes.ts';
import type { RotationPolicy } from '../shared/identities/credential-rotation.ts';
import { ContractsApi } from './constructs/api.ts';
import { AuditCheckpoints } from './constructs/audit-checkpoints.ts';
import { ContractKeys } from './constructs/contract-keys.ts';
import { CredentialKey } from './constructs/credential-key.ts';
import { CredentialRotationReport } from './constructs/credential-rotation-report.ts';
import { Database } from './constructs/database.ts';
import { Doorbell } from './constructs/doorbell.ts';
import type { EnclaveArtifacts } from './constructs/enclave-parents.ts';
import { EnclaveWorkflow } from './constructs/enclave-workflow.ts';
import { EventBus } from './constructs/event-bus.ts';
import { FirstAdmin } from './constructs/first-admin.ts';
import { Network } from './constructs/network.ts';
import { Observability } from './constructs/observability.ts';
import { SigningKey } from './constructs/signing-key.ts';

/** Props of {@link ContractsStack}. */
export interface ContractsStackProps extends StackProps {
  /**
   * The API routes. Always the full route table in a deployment; a subset only for tests.
   * @default ROUTES (shared/http/routes.ts)
   */
  readonly routes?: readonly RouteDefinition[];
  /**
   * The Availability Zones the stack uses. Named rather than looked up, so that synth needs no AWS account
   * (a lookup calls EC2). Set them where `<region>a` and `<region>b` do not both exist.
   * @default `<region>a` and `<region>b`
   */
  readonly availabilityZones?: readonly string[];
  /**
   * The deployment's stage (`prod`, `staging`, a developer's name): the fixed physical names (the database
   * cluster and its log group, the signing key's alias) carry it, so two stages fit in one account and region.
   * @default 'main'
   */
  readonly stage?: string;
  /** Who is told when an alarm fires, and who is paged (see `ObservabilityProps`). @default nobody yet */
  readonly alarmEmail?: string;
  readonly pageEndpoint?: string;
  /**
   * The enclave image (EIF) and the parent agent the parents fetch at boot: deployment parameters.
   * @default placeholders: parents fail at boot, and provisioning compensates, until they are set
   */
  readonly enclaveArtifacts?: EnclaveArtifacts;
  /**
   * The first admin's email: the deployment creates its Cognito user (Cognito emails a temporary password)
   * and its identity with the `admin` role, audited. Without it, nobody can call the API until an operator
   * creates one the same way.
   * @default no first admin
   */
  readonly firstAdminEmail?: string;
  /**
   * The WebAuthn relying party of passkeys (biometric signatures): its id (the domain the signing page is
   * served from, e.g. `contracts.example.com`) and the exact origins allowed to run the ceremonies.
   * @default none: passkeys cannot be registered nor biometric signatures made until it is set
   */
  readonly webauthn?: { readonly rpId: string; readonly origins: readonly string[] };
  /**
   * How many days credentials may be used before the daily rotation report counts them due (identities'
   * signing keys, passkeys and TOTP factors; the platform key). From `-c credentialMaxAgeDays=<n>
   * -c platformKeyMaxAgeDays=<n>`. @default a year each
   */
  readonly credentialRotation?: RotationPolicy;
}

/**
 * The whole backend in one stack: network and database, the platform signing key, the domain event bus with
 * its scheduled jobs, the job that signs audit checkpoints, and the HTTP API. Construct ids are part of the
 * deployed contract (they name the CloudFormation logical ids): renaming one replaces its resources.
 */
export class ContractsStack extends Stack {
  readonly observability: Observability;
  readonly network: Network;
  readonly database: Database;
  readonly signingKey: SigningKey;
  /** Seals the identities' TOTP seeds (envelope encryption). */
  readonly credentialKey: CredentialKey;
  readonly contractKeys: ContractKeys;
  readonly doorbell: Doorbell;
  readonly events: EventBus;
  readonly auditCheckpoints: AuditCheckpoints;
  readonly credentialRotation: CredentialRotationReport;
  readonly enclaveWorkflow: EnclaveWorkflow;
  readonly api: ContractsApi;
  readonly firstAdmin: FirstAdmin | undefined;
  private readonly zones: readonly string[];

  constructor(scope: Construct, id: string, props: ContractsStackProps = {}) {
    super(scope, id, props);
    if (!props.availabilityZones && Token.isUnresolved(this.region)) {
      throw new Error('ContractsStack needs an explicit region or explicit availabilityZones');
    }
    this.zones = props.availabilityZones ?? [`${this.region}a`, `${this.region}b`];
    if (!props.enclaveArtifacts) {
      Annotations.of(this).addWarningV2(
        'enclave-contracts:placeholder-artifacts',
        'No default enclave image: the parents fetch a placeholder and fail. This template is for inspection and tests only; deploy with -c eifUrl/eifSha256.',
      );
    }
    this.observability = new Observability(this, 'Observability', {
      ...(props.alarmEmail ? { alarmEmail: props.alarmEmail } : {}),
      ...(props.pageEndpoint ? { pageEndpoint: props.pageEndpoint } : {}),
    });
    const logs = this.observability.logSettings;

    this.network = new Network(this, 'Network', { logs });
    const stage = props.stage ?? 'main';
    if (!/^[a-z][a-z0-9-]{0,19}$/.test(stage)) {
      throw new Error(
        `stage must be 1-20 lowercase letters, digits or hyphens, starting with a letter (got ${JSON.stringify(stage)})`,
      );
    }
    this.database = new Database(this, 'Database', {
      clusterIdentifier: `enclave-contracts-${stage}`,
      vpc: this.network.vpc,
      vpcSubnets: this.network.isolatedSubnets,
      secretsManagerEndpoint: this.network.secretsManagerEndpoint,
      logs,
    });
    this.signingKey = new SigningKey(this, 'SigningKey', {
      aliasName: `alias/enclave-contracts/${stage}/platform-signing`,
    });

    this.credentialKey = new CredentialKey(this, 'CredentialKey');

    // Every function gets the same runtime configuration (shared/runtime/config.ts parses all of it at cold
    // start); what a function may do is decided by its grants alone.
    this.doorbell = new Doorbell(this, 'Doorbell');
    if (props.webauthn) checkRelyingParty(props.webauthn);
    else {
      Annotations.of(this).addWarningV2(
        'enclave-contracts:no-webauthn',
        'No WebAuthn relying party: passkeys and biometric signatures are refused. Deploy with -c webauthnRpId=<domain> -c webauthnOrigins=https://<domain>.',
      );
    }
    const environment = {
      ...this.database.environment,
      ...this.signingKey.environment,
      ...this.doorbell.environment,
      ...(props.webauthn
        ? { WEBAUTHN_RP_ID: props.webauthn.rpId, WEBAUTHN_ORIGINS: props.webauthn.origins.join(',') }
        : {}),
    };
    this.events = new EventBus(this, 'Events', {
      database: this.database,
      doorbell: this.doorbell,
      logs,
      environment,
    });
    this.auditCheckpoints = new AuditCheckpoints(this, 'AuditCheckpoints', {
      database: this.database,
      doorbell: this.doorbell,
      signingKey: this.signingKey,
      logs,
      environment,
    });
    this.credentialRotation = new CredentialRotationReport(this, 'CredentialRotation', {
      database: this.database,
      logs,
      environment,
      ...(props.credentialRotation ? { policy: props.credentialRotation } : {}),
    });
    this.enclaveWorkflow = new EnclaveWorkflow(this, 'EnclaveWorkflow', {
      database: this.database,
      bus: this.events.bus,
      vpc: this.network.vpc,
      parentSubnets: this.network.parentSubnets,
      artifacts: props.enclaveArtifacts,
      observability: this.observability,
      logs,
      environment,
    });
    this.contractKeys = new ContractKeys(this, 'ContractKeys', {
      database: this.database,
      bus: this.events.bus,
      parentRole: this.enclaveWorkflow.parentRole,
      logs,
      environment,
      stage,
    });
    this.api = new ContractsApi(this, 'Api', {
      database: this.database,
      signingKey: this.signingKey,
      credentialKey: this.credentialKey,
      contractKeys: this.contractKeys,
      logs,
      environment,
      routes: props.routes,
      workflow: this.enclaveWorkflow,
    });
    this.enclaveWorkflow.parents.useApi(this.api.url);
    const dataKeyRole = this.api.functions.get('createDataKey')?.function.role;
    if (dataKeyRole) this.contractKeys.useDataKeyRole(dataKeyRole);
    this.firstAdmin = props.firstAdminEmail
      ? new FirstAdmin(this, 'FirstAdmin', {
          email: props.firstAdminEmail,
          userPool: this.api.userPool,
          database: this.database,
          logs,
        })
      : undefined;
    if (this.firstAdmin) {
      // It signs in as the master user: the master's first rotation waits for it.
      for (const schedule of this.database.rotationSchedules) {
        schedule.addDependency(this.firstAdmin.resource.node.defaultChild as CfnResource);
      }
    }

    // New code goes live only after the schema it expects: every function waits for the migrations.
    const functions = [
      ...this.api.functions.values(),
      this.events.outboxPublisher.function,
      this.events.contractExpirer.function,
      this.auditCheckpoints.job.function,
      this.credentialRotation.job.function,
      ...Object.values(this.enclaveWorkflow.steps),
      this.enclaveWorkflow.enforcement,
      this.contractKeys.sync,
    ];
    for (const fn of functions) fn.function.node.addDependency(this.database.migrations);
    // Every function built with the doorbell (all that may write the database) rings it after its writes.
    for (const fn of functions) if (fn.adapters.includes('doorbell')) this.doorbell.grantRing(fn);

    this.addAlarms();
    new CfnOutput(this, 'ApiUrl', { value: this.api.url });
    new CfnOutput(this, 'UserPoolId', { value: this.api.userPool.userPoolId });
    new CfnOutput(this, 'UserPoolClientId', { value: this.api.userPoolClient.userPoolClientId });
    new CfnOutput(this, 'SigningKeyAlias', { value: this.signingKey.alias.aliasName });
    new CfnOutput(this, 'EventBusName', { value: this.events.bus.eventBusName });
    new CfnOutput(this, 'ProvisioningStateMachineArn', {
      value: this.enclaveWorkflow.stateMachine.stateMachineArn,
    });
    new CfnOutput(this, 'AlarmTopicArn', { value: this.observability.alarmTopic.topicArn });
    new CfnOutput(this, 'PageTopicArn', { value: this.observability.pageTopic.topicArn });
  }

  override get availabilityZones(): string[] {
    return [...this.zones];
  }

  private addAlarms(): void {
    const period = Observability.ALARM_PERIOD;
    this.observability.alarmOn(
      'Api5xx',
      this.api.httpApi.metricServerError({ period, statistic: 'Sum' }),
      'The API answered 5xx: a function failed or timed out (see the access logs and X-Ray traces).',
      5,
    );
    const workflow = this.enclaveWorkflow;
    this.observability.alarmOn(
      'ProvisioningFailed',
      workflow.stateMachine.metricFailed({ period, statistic: 'Sum' }),
      `Enclave provisioning executions failed (compensated: the enclave is Failed; see the executions of ${workflow.stateMachine.node.path}).`,
    );
    this.observability.alarmOn(
      'ProvisioningCompensationFailed',
      workflow.metricCompensationFailed({ period }),
      'A provisioning execution could not compensate: an operator must terminate the instances tagged with the enclave id and mark the enclave Failed.',
      1,
      'page',
    );
    const deadLetters = [
      [
        'ProvisioningStartFailed',
        workflow.startDeadLetterQueue,
        'EventBridge could not start provisioning for an EnclaveCreated/EnclaveResumed event (the enclave stays Initializing).',
      ],
      [
        'EnclaveEnforcementFailed',
        workflow.enforcementDeadLetterQueue,
        'Stopping or terminating the parents of a suspended, terminated or expired enclave failed after its retries.',
      ],
      [
        'PublishOutboxFailed',
        this.events.outboxPublisher.deadLetterQueue,
        'A scheduled outbox publication failed after its retries.',
      ],
      [
        'ExpireContractsFailed',
        this.events.contractExpirer.deadLetterQueue,
        'A scheduled contract expiry failed after its retries.',
      ],
      [
        'AuditCheckpointsFailed',
        this.auditCheckpoints.job.deadLetterQueue,
        'A scheduled audit checkpoint failed after its retries (audit heads stay unanchored until a run succeeds).',
      ],
      [
        'CredentialRotationReportFailed',
        this.credentialRotation.job.deadLetterQueue,
        'The daily credential rotation report failed (no metric or event that day).',
      ],
      [
        'ContractKeySyncFailed',
        this.contractKeys.deadLetterQueue,
        "A contract key could not be brought to its contract's state after its retries: its policy may still admit an enclave that stopped, or its key stay enabled after a suspension (see the key's GET /contracts/{id}/key and the function's logs).",
      ],
      [
        'EventBusDeadLetters',
        this.events.deadLetterQueue,
        'The event bus could not encrypt or decrypt events.',
      ],
    ] as const;
    for (const [id, queue, description] of deadLetters) {
      this.observability.alarmOn(
        id,
        queue.metricApproximateNumberOfMessagesVisible({ period, statistic: 'Maximum' }),
        `${description} The messages wait in ${queue.node.path}.`,
      );
    }
    this.observability.alarmOn(
      'PlatformKeyDueForRotation',
      this.credentialRotation.metricDue('platform-key'),
      `The platform's countersigning key is older than ${this.credentialRotation.policy.platformKeyMaxAgeDays} days: an admin rotates it (POST /api/v1/platform/keys/rotations).`,
    );
  }
}

/**
 * A relying party WebAuthn can use (§5.1.4.1, §13.4.9): a domain name (no scheme, port or IP address) and
 * https origins on it or its subdomains; a mistake here would refuse every passkey after the deployment.
 */
export function checkRelyingParty(rp: { readonly rpId: string; readonly origins: readonly string[] }): void {
  // A domain name; not an IP address (all-digit last label), which WebAuthn refuses as an id.
  if (
    !/^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/.test(
      rp.rpId,
    ) ||
    /^[0-9]+$/.test(rp.rpId.split('.').at(-1)!)
  ) {
    throw new Error(`webauthnRpId must be a lower-case domain name (got ${JSON.stringify(rp.rpId)})`);
  }
  if (rp.origins.length === 0) throw new Error('webauthnOrigins must name at least one https origin');
  for (const origin of rp.origins) {
    const url = URL.canParse(origin) ? new URL(origin) : undefined;
    const host = url?.hostname ?? '';
    if (
      url?.protocol !== 'https:' ||
      url.origin !== origin ||
      (host !== rp.rpId && !host.endsWith(`.${rp.rpId}`))
    ) {
      throw new Error(`webauthnOrigins: ${origin} is not an https origin on ${rp.rpId} or its subdomains`);
    }
  }
}
