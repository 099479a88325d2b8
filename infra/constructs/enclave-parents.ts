import { ArnFormat, Lazy, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import { Construct, type IConstruct } from 'constructs';
import type { AgentPhase } from '../../shared/domain/enclave.ts';
import { INSTANCE_TAGS } from '../../shared/workflow/workflow-ports.ts';

/**
 * Where a parent instance fetches what it runs. Deployment parameters: the enclave image (EIF) is built
 * and measured by the provider's release pipeline, the parent agent by this project's; neither is part of
 * the stack. Each URL must be reachable over HTTPS from the parents' subnets without credentials (the
 * parent role may call the API's `iam` routes and nothing else), e.g. an S3 presigned URL or an artifact
 * host; the SHA-256 pins what is fetched, so a replaced file is refused rather than run.
 */
export interface EnclaveArtifacts {
  // The agent's contract with this stack: run with `API_URL` and `ENCLAVE_ID` (and `parent.env`), it reads
  // the nonce tag through IMDSv2, has the enclave attest and posts the document; `parent-agent heartbeat
  // <phase>` posts one heartbeat; while it works towards the document it heartbeats itself at least every
  // HEARTBEAT_INTERVAL_SECONDS. Every call is SigV4-signed with the instance profile's credentials.
  readonly imageUrl: string;
  readonly imageSha256: string;
  readonly agentUrl: string;
  readonly agentSha256: string;
}

/**
 * The parents' instance metadata settings, in EC2's API shape: IMDSv2 only (a session token for every read, so
 * nothing on the parent reaches the role's credentials or the nonce tag by a forwarded or unauthenticated
 * request), one hop (no container or enclave proxy reaches it), and the instance's tags readable (the agent
 * reads the attestation nonce there). The launch template sets them, and RunInstances sends them again:
 * IAM evaluates `ec2:MetadataHttpTokens` from the request's own `MetadataOptions`, not from the launch
 * template (aws/karpenter-provider-aws issue 9018 and PR 9256 show the CloudTrail denial of a launch that
 * relied on the template), and the launch permission requires it.
 */
export const PARENT_METADATA_OPTIONS = {
  HttpTokens: 'required',
  HttpPutResponseHopLimit: 1,
  HttpEndpoint: 'enabled',
  InstanceMetadataTags: 'enabled',
} as const;

/**
 * The network interface a launch into `subnetId` asks for, in RunInstances' shape: the parents' security
 * group and no public address (what the launch permission requires). `subnetId` may be a JSONPath of the
 * state. The launch template holds no interface, so that one template serves every zone.
 */
export function parentNetworkInterface(subnetId: string, securityGroupId: string): Record<string, unknown> {
  return {
    DeviceIndex: 0,
    SubnetId: subnetId,
    Groups: [securityGroupId],
    AssociatePublicIpAddress: false,
    DeleteOnTermination: true,
  };
}

/**
 * Placeholders that make a parent fail at boot (and the workflow compensate) until real ones are set. The
 * image is only the default: an enclave that declares `image.source` has its parent fetch that EIF instead.
 */
export const UNCONFIGURED_ARTIFACTS: EnclaveArtifacts = {
  imageUrl: 'https://artifacts.invalid/enclave.eif',
  imageSha256: '0'.repeat(64),
  agentUrl: 'https://artifacts.invalid/parent-agent',
  agentSha256: '0'.repeat(64),
};

/** Props of {@link EnclaveParents}. */
export interface EnclaveParentsProps {
  readonly vpc: ec2.IVpc;
  /**
   * The subnets parents launch into, in at least two Availability Zones: each launch names one in its own
   * network interface ({@link parentNetworkInterface}), and a launch that finds no capacity in one
   * zone tries the next.
   */
  readonly vpcSubnets: ec2.SubnetSelection;
  /** @default {@link UNCONFIGURED_ARTIFACTS} */
  readonly artifacts?: EnclaveArtifacts;
  /** Encrypts the parents' EBS volumes. @default a new CMK with yearly rotation */
  readonly volumeKey?: kms.IKey;
  /** Size of the root volume (the EIF is copied onto it). @default 30 GiB */
  readonly rootVolumeGiB?: number;
}

/**
 * The EC2 instances that host the enclaves ("parents"): their IAM role, security group and launch template.
 * Parents are launched and restarted by the provisioning state machine only, always through this launch
 * template, and every action on them is scoped by the enclave tag ({@link INSTANCE_TAGS}).
 *
 * - The role is allowed nothing by default; the API grants it `execute-api:Invoke` on its `iam` routes
 *   (the agent's attestation submission). No SSM, no S3, no managed policy.
 * - The security group has no ingress at all and egress on 443 only.
 * - IMDSv2 is required (hop limit 1, so no container or enclave proxy can reach it), instance tags are
 *   readable from metadata (the agent reads the attestation nonce tag), Nitro Enclaves are enabled, and the
 *   root volume is gp3 encrypted with a CMK.
 * - The network interface is the launch's, not the template's (the template holds none, so that one
 *   template serves every zone): the subnet, this security group and no public address, which the launch
 *   permission requires.
 * - The user data (first boot) installs the Nitro Enclaves CLI, sizes the allocator from the instance,
 *   fetches and pins the EIF and the agent ({@link EnclaveArtifacts}), and installs and enables systemd
 *   units ({@link PARENT_UNITS}) that start the enclave and the agent on every boot, so a resumed (stopped,
 *   then started) parent attests again; see {@link parentUserData}.
 */
export class EnclaveParents extends Construct {
  readonly role: iam.Role;
  readonly securityGroup: ec2.SecurityGroup;
  readonly launchTemplate: ec2.LaunchTemplate;
  readonly volumeKey: kms.IKey;
  /** The subnets parents launch into, one per Availability Zone, in the order launches try them. */
  readonly subnetIds: readonly string[];
  private apiUrl: string | undefined;

  constructor(scope: Construct, id: string, props: EnclaveParentsProps) {
    super(scope, id);
    this.volumeKey =
      props.volumeKey ??
      new kms.Key(this, 'VolumeKey', {
        description: 'Encrypts the EBS volumes of the enclave parent instances',
        enableKeyRotation: true,
        removalPolicy: RemovalPolicy.RETAIN,
      });
    this.role = new iam.Role(this, 'Role', {
      assumedBy: new iam.ServicePrincipal('ec2.amazonaws.com'),
      description: 'Enclave parent instances: may call the API routes whose auth is iam, nothing else',
    });
    this.securityGroup = new ec2.SecurityGroup(this, 'SecurityGroup', {
      vpc: props.vpc,
      description:
        'Enclave parents: no ingress; HTTPS out only (the API, the artifacts, package repositories)',
      allowAllOutbound: false,
    });
    this.securityGroup.addEgressRule(ec2.Peer.anyIpv4(), ec2.Port.tcp(443), 'HTTPS out');

    this.launchTemplate = new ec2.LaunchTemplate(this, 'LaunchTemplate', {
      machineImage: ec2.MachineImage.latestAmazonLinux2023({ cpuType: ec2.AmazonLinuxCpuType.X86_64 }),
      // Rendered at synth: the API's URL is only known once the API exists (see useApi).
      userData: ec2.UserData.custom(
        Lazy.string({
          produce: () => {
            if (this.apiUrl === undefined) throw new Error(`${this.node.path}: useApi() was not called`);
            return parentUserData(props.artifacts ?? UNCONFIGURED_ARTIFACTS, this.apiUrl).render();
          },
        }),
      ),
      role: this.role,
      nitroEnclaveEnabled: true,
      requireImdsv2: true,
      httpTokens: ec2.LaunchTemplateHttpTokens.REQUIRED,
      httpEndpoint: PARENT_METADATA_OPTIONS.HttpEndpoint === 'enabled',
      httpPutResponseHopLimit: PARENT_METADATA_OPTIONS.HttpPutResponseHopLimit,
      instanceMetadataTags: PARENT_METADATA_OPTIONS.InstanceMetadataTags === 'enabled',
      ebsOptimized: true,
      blockDevices: [
        {
          deviceName: '/dev/xvda',
          volume: ec2.BlockDeviceVolume.ebs(props.rootVolumeGiB ?? 30, {
            volumeType: ec2.EbsDeviceVolumeType.GP3,
            encrypted: true,
            kmsKey: this.volumeKey,
            deleteOnTermination: true,
          }),
        },
      ],
    });
    const selected = props.vpc.selectSubnets(props.vpcSubnets);
    if (new Set(selected.availabilityZones).size < 2) {
      throw new Error(
        'EnclaveParents needs subnets in at least two Availability Zones: a launch that finds no capacity in one zone tries the next',
      );
    }
    this.subnetIds = selected.subnetIds;
  }

  /** The API the parent agent submits attestations to (its base URL). Call once the API exists. */
  useApi(apiUrl: string): void {
    this.apiUrl = apiUrl;
  }

  /** The launch template's ARN (the `ec2:LaunchTemplate` condition of RunInstances). */
  get launchTemplateArn(): string {
    return Stack.of(this).formatArn({
      service: 'ec2',
      resource: 'launch-template',
      resourceName: this.launchTemplate.launchTemplateId,
    });
  }

  /**
   * Lets the grantee launch parents with this launch template and nothing else: `ec2:RunInstances` only when
   * the request uses the template, `ec2:CreateTags` only as part of that RunInstances, `iam:PassRole` of the
   * parent role to EC2 only, and the volume key through EC2 only (encrypting the new volumes).
   */
  grantLaunch(grantee: iam.IGrantable): iam.Grant {
    const stack = Stack.of(this);
    // Created by the call: their ids cannot be known before. The instance and its volume must be created
    // tagged with the enclave (every later permission on them, and every lookup, matches that tag).
    const tagged = ['instance', 'volume'].map((type) => this.ec2Arn(type, '*'));
    const networkInterface = this.ec2Arn('network-interface', '*');
    const created = [...tagged, networkInterface];
    const image = stack.formatArn({ service: 'ec2', account: '', resource: 'image', resourceName: '*' });
    const fromTemplate = { ArnEquals: { 'ec2:LaunchTemplate': this.launchTemplateArn } };
    const requestTagged = { Null: { [`aws:RequestTag/${INSTANCE_TAGS.enclaveId}`]: 'false' } };
    iam.Grant.addToPrincipal({
      grantee,
      actions: ['ec2:RunInstances'],
      resourceArns: [this.ec2Arn('instance', '*')],
      conditions: {
        ...fromTemplate,
        ...requestTagged,
        // Request parameters override the template's: without this, a launch could ask for IMDSv1 and let
        // anything on the parent read the role's credentials and the nonce tag without a session token. The
        // key comes from the request's MetadataOptions, which the launch must therefore send.
        StringEquals: { 'ec2:MetadataHttpTokens': PARENT_METADATA_OPTIONS.HttpTokens },
      },
    });
    // A statement of its own: ec2:MetadataHttpTokens is a key of the instance, absent for the volume (a
    // StringEquals on an absent key never matches, which would refuse every launch).
    iam.Grant.addToPrincipal({
      grantee,
      actions: ['ec2:RunInstances'],
      resourceArns: [this.ec2Arn('volume', '*')],
      conditions: { ...fromTemplate, ...requestTagged },
    });
    // The interface comes from the request (the template has none): never with a public address. IfExists,
    // because the key is derived from the request's AssociatePublicIpAddress, which the launch always sends
    // as false; the parents' subnets do not map public addresses either (Network), so without it none comes.
    iam.Grant.addToPrincipal({
      grantee,
      actions: ['ec2:RunInstances'],
      resourceArns: [networkInterface],
      conditions: { ...fromTemplate, BoolIfExists: { 'ec2:AssociatePublicIpAddress': 'false' } },
    });
    const launch = iam.Grant.addToPrincipal({
      grantee,
      actions: ['ec2:RunInstances'],
      resourceArns: [
        ...this.subnetIds.map((subnet) => this.ec2Arn('subnet', subnet)),
        this.ec2Arn('security-group', this.securityGroup.securityGroupId),
        this.launchTemplateArn,
        // The AMI is resolved from an SSM parameter at deployment; public AMIs belong to no account.
        image,
      ],
      conditions: fromTemplate,
    });
    acknowledgeWildcards(
      grantee,
      [...created, image],
      "ec2:RunInstances only with the enclave parents' launch template (condition ec2:LaunchTemplate), the instance and its volume only when tagged with an enclave id (aws:RequestTag); they and the network interface are created by the call (no id before), and the AMI comes from the template (an SSM-resolved public image).",
    );
    iam.Grant.addToPrincipal({
      grantee,
      actions: ['ec2:CreateTags'],
      resourceArns: [this.ec2Arn('instance', '*'), this.ec2Arn('volume', '*')],
      conditions: { StringEquals: { 'ec2:CreateAction': 'RunInstances' } },
    });
    acknowledgeWildcards(
      grantee,
      [this.ec2Arn('volume', '*')],
      'ec2:CreateTags only within RunInstances (condition ec2:CreateAction), on the instance and volume being created.',
    );
    iam.Grant.addToPrincipal({
      grantee,
      actions: ['iam:PassRole'],
      resourceArns: [this.role.roleArn],
      conditions: { StringEquals: { 'iam:PassedToService': 'ec2.amazonaws.com' } },
    });
    this.grantVolumeKey(grantee);
    return launch;
  }

  /**
   * Lets the grantee restart a stopped parent: `ec2:CreateTags` (the new attestation nonce) and
   * `ec2:StartInstances` only on instances carrying the enclave tag, and the volume key through EC2.
   */
  grantRestart(grantee: iam.IGrantable): iam.Grant {
    const restart = iam.Grant.addToPrincipal({
      grantee,
      actions: ['ec2:CreateTags', 'ec2:StartInstances'],
      resourceArns: [this.ec2Arn('instance', '*')],
      conditions: EnclaveParents.taggedInstanceCondition(),
    });
    acknowledgeWildcards(grantee, [this.ec2Arn('instance', '*')], TAGGED_INSTANCES_REASON);
    this.grantVolumeKey(grantee);
    return restart;
  }

  /**
   * Lets the grantee find parents (`ec2:DescribeInstances`, which supports no resource-level permission)
   * and stop and/or terminate instances carrying the enclave tag, no others.
   */
  grantControl(grantee: iam.IGrantable, actions: readonly ('stop' | 'terminate')[]): iam.Grant {
    iam.Grant.addToPrincipal({ grantee, actions: ['ec2:DescribeInstances'], resourceArns: ['*'] });
    const control = iam.Grant.addToPrincipal({
      grantee,
      actions: actions.map((a) => (a === 'stop' ? 'ec2:StopInstances' : 'ec2:TerminateInstances')),
      resourceArns: [this.ec2Arn('instance', '*')],
      conditions: EnclaveParents.taggedInstanceCondition(),
    });
    acknowledgeWildcards(
      grantee,
      ['*'],
      'ec2:DescribeInstances supports no resource-level permissions (Resource must be *); it is the only action on *.',
    );
    acknowledgeWildcards(grantee, [this.ec2Arn('instance', '*')], TAGGED_INSTANCES_REASON);
    return control;
  }

  /** IAM condition: the instance carries the enclave tag (whatever its value). */
  static taggedInstanceCondition(): Record<string, Record<string, string>> {
    return { Null: { [`aws:ResourceTag/${INSTANCE_TAGS.enclaveId}`]: 'false' } };
  }

  /** The EC2 ARN of a resource type in this stack's account and region. */
  ec2Arn(type: string, name: string): string {
    return Stack.of(this).formatArn({
      service: 'ec2',
      resource: type,
      resourceName: name,
      arnFormat: ArnFormat.SLASH_RESOURCE_NAME,
    });
  }

  /** What EC2 does with the volume key for the caller of RunInstances/StartInstances, through EC2 only. */
  private grantVolumeKey(grantee: iam.IGrantable): void {
    const viaEc2 = { 'kms:ViaService': `ec2.${Stack.of(this).region}.amazonaws.com` };
    iam.Grant.addToPrincipal({
      grantee,
      actions: [
        'kms:Decrypt',
        'kms:DescribeKey',
        'kms:GenerateDataKeyWithoutPlaintext',
        'kms:ReEncryptFrom',
        'kms:ReEncryptTo',
      ],
      resourceArns: [this.volumeKey.keyArn],
      conditions: { StringEquals: viaEc2 },
    });
    iam.Grant.addToPrincipal({
      grantee,
      actions: ['kms:CreateGrant'],
      resourceArns: [this.volumeKey.keyArn],
      conditions: { StringEquals: viaEc2, Bool: { 'kms:GrantIsForAWSResource': 'true' } },
    });
  }
}

const TAGGED_INSTANCES_REASON = `Instance actions only on instances carrying the ${INSTANCE_TAGS.enclaveId} tag (condition aws:ResourceTag Null false): the platform's enclave parents, whatever their id.`;

/**
 * Acknowledges cdk-nag's AwsSolutions-IAM5 findings for exactly these resources on the grantee's identity
 * (the ids cdk-nag renders: `<LogicalId>` for a Ref, `<LogicalId.Attr>` for a GetAtt).
 */
export function acknowledgeWildcards(
  grantee: iam.IGrantable,
  resources: readonly string[],
  reason: string,
): void {
  const principal = grantee.grantPrincipal as unknown as IConstruct;
  if (!Construct.isConstruct(principal)) return;
  const stack = Stack.of(principal);
  for (const resource of resources) {
    Validations.of(principal).acknowledge({
      id: `AwsSolutions-IAM5[Resource::${nagRendering(stack.resolve(resource))}]`,
      reason,
    });
  }
}

/** How cdk-nag writes a resolved value in a finding id. */
function nagRendering(value: unknown): string {
  if (typeof value === 'string') return value;
  const v = value as { Ref?: string; 'Fn::GetAtt'?: [string, string]; 'Fn::Join'?: [string, unknown[]] };
  if (v.Ref !== undefined) return `<${v.Ref}>`;
  if (v['Fn::GetAtt']) return `<${v['Fn::GetAtt'].join('.')}>`;
  if (v['Fn::Join']) return v['Fn::Join'][1].map(nagRendering).join(v['Fn::Join'][0]);
  return JSON.stringify(value);
}

/** Where the parent keeps what it runs, its configuration and its per-boot state. */
const PARENT_PATHS = {
  home: '/opt/enclave-contracts',
  image: '/opt/enclave-contracts/enclave.eif',
  agent: '/opt/enclave-contracts/parent-agent',
  startEnclave: '/opt/enclave-contracts/start-enclave.sh',
  watchNonce: '/opt/enclave-contracts/watch-nonce.sh',
  /** Written once (first boot): the API, the enclave's CID and its allocation. */
  config: '/etc/enclave-contracts/parent.env',
  /** tmpfs, so rewritten on every boot: the enclave id for the agent, the nonce last attested to. */
  run: '/run/enclave-contracts',
} as const;

/** The systemd units the user data installs and enables; they run on every boot, resumes included. */
export const PARENT_UNITS = {
  /** (Re)starts the enclave from the pinned EIF: a oneshot after the allocator and the network. */
  enclave: 'enclave-parent.service',
  /** The parent agent: attests when it starts, then relays the enclave's traffic. */
  agent: 'parent-agent.service',
  /** Polls the nonce tag and restarts the agent (which re-attests) when it changes. */
  nonceWatch: 'enclave-nonce-watch.service',
} as const;

/**
 * How often the parent's heartbeat goes out while it works towards the document (seconds): well inside
 * WaitForAttestation's heartbeat (`WORKFLOW_TIMING.attestationHeartbeatSeconds`), so a lost one or two do
 * not end the wait.
 */
export const HEARTBEAT_INTERVAL_SECONDS = 60;

/**
 * Bash: one heartbeat from the agent (`parent-agent heartbeat <phase>` posts
 * `POST /enclaves/{id}/attestation/heartbeat`, SigV4-signed as this instance, with `API_URL` and
 * `ENCLAVE_ID` from the environment), bounded in time; a failed one is logged and does not stop the boot
 * (the next one, or the document, may still arrive).
 */
function heartbeat(phase: AgentPhase): string {
  return `timeout ${HEARTBEAT_CALL_TIMEOUT_SECONDS} ${PARENT_PATHS.agent} heartbeat ${phase} || echo "enclave-contracts: heartbeat ${phase} failed" >&2`;
}

/** The longest one heartbeat call may take (seconds): a hanging API must not hold up the boot. */
const HEARTBEAT_CALL_TIMEOUT_SECONDS = 20;

/** How often the parent polls its nonce tag (seconds): a new execution's nonce is attested this soon. */
const NONCE_POLL_SECONDS = 10;

/** Bash: an IMDSv2 session token (hop limit 1: only the parent's own processes reach IMDS). */
const IMDS_TOKEN =
  'TOKEN=$(curl -sf --retry 5 --retry-connrefused -X PUT "$IMDS/api/token" -H "X-aws-ec2-metadata-token-ttl-seconds: 300")';
const IMDS_TAG =
  'tag() { curl -sf -H "X-aws-ec2-metadata-token: $TOKEN" "$IMDS/meta-data/tags/instance/$1" || true; }';

/** Bash: reads a tag that must exist (an empty value is fine); any error fails the command. */
function strictTag(key: string): string {
  return `curl -sf -H "X-aws-ec2-metadata-token: $TOKEN" "$IMDS/meta-data/tags/instance/${key}"`;
}

/** Bash: ends the heartbeat loop and a heartbeat it may have running (no late heartbeat after a failure). */
const STOP_HEARTBEATS = '{ pkill -P "$HEARTBEATS" || true; kill "$HEARTBEATS" || true; } 2>/dev/null';

/** Runs on every boot (enclave-parent.service): the enclave is not persistent, a stop/start loses it. */
function startEnclaveScript(): string[] {
  return [
    '#!/bin/bash',
    '# Every boot (enclave-parent.service): re-read the tags, (re)start the enclave from the pinned EIF.',
    'set -euo pipefail',
    'IMDS=http://169.254.169.254/latest',
    IMDS_TOKEN,
    IMDS_TAG,
    `ENCLAVE_ID=$(tag ${INSTANCE_TAGS.enclaveId})`,
    'test -n "$ENCLAVE_ID"',
    // A resume tags the new nonce before StartInstances: a parent without one has nothing to attest to.
    `NONCE=$(tag ${INSTANCE_TAGS.attestationNonce})`,
    'test -n "$NONCE"',
    `install -d -m 0700 ${PARENT_PATHS.run}`,
    `printf 'ENCLAVE_ID=%s\\n' "$ENCLAVE_ID" > ${PARENT_PATHS.run}/agent.env`,
    `printf '%s' "$NONCE" > ${PARENT_PATHS.run}/nonce`,
    'nitro-cli terminate-enclave --all >/dev/null 2>&1 || true',
    // Starting a large EIF takes a while: the workflow's wait hears from the parent before it does.
    `ENCLAVE_ID="$ENCLAVE_ID" ${heartbeat('starting-enclave')}`,
    `nitro-cli run-enclave --eif-path ${PARENT_PATHS.image} --cpu-count "$ENCLAVE_CPUS" --memory "$ENCLAVE_MEMORY_MIB" --enclave-cid "$ENCLAVE_CID"`,
  ];
}

/** Polls the nonce tag; a new one (a new execution tagged the running parent) restarts the agent. */
function watchNonceScript(): string[] {
  return [
    '#!/bin/bash',
    '# enclave-nonce-watch.service: a changed attestation nonce tag restarts the agent, which attests on start.',
    'set -uo pipefail',
    'IMDS=http://169.254.169.254/latest',
    `while sleep ${NONCE_POLL_SECONDS}; do`,
    '  TOKEN=$(curl -sf -X PUT "$IMDS/api/token" -H "X-aws-ec2-metadata-token-ttl-seconds: 60") || continue',
    `  NONCE=$(curl -sf -H "X-aws-ec2-metadata-token: $TOKEN" "$IMDS/meta-data/tags/instance/${INSTANCE_TAGS.attestationNonce}") || continue`,
    '  [ -n "$NONCE" ] || continue',
    `  [ "$NONCE" = "$(cat ${PARENT_PATHS.run}/nonce 2>/dev/null)" ] && continue`,
    `  printf '%s' "$NONCE" > ${PARENT_PATHS.run}/nonce`,
    `  systemctl restart ${PARENT_UNITS.agent}`,
    'done',
  ];
}

function units(): Record<string, string[]> {
  return {
    [PARENT_UNITS.enclave]: [
      '[Unit]',
      'Description=Enclave contracts: (re)start the Nitro enclave from the pinned EIF on every boot',
      'Requires=nitro-enclaves-allocator.service',
      'Wants=network-online.target',
      'After=nitro-enclaves-allocator.service network-online.target',
      '',
      '[Service]',
      'Type=oneshot',
      'RemainAfterExit=yes',
      `EnvironmentFile=${PARENT_PATHS.config}`,
      `ExecStart=${PARENT_PATHS.startEnclave}`,
      'ExecStop=/usr/bin/nitro-cli terminate-enclave --all',
      'TimeoutStartSec=600',
      '',
      '[Install]',
      'WantedBy=multi-user.target',
    ],
    [PARENT_UNITS.agent]: [
      '[Unit]',
      "Description=Enclave contracts: the parent agent (attests, then relays the enclave's traffic)",
      // Requires: a restarted enclave restarts the agent too (a new enclave needs a new attestation).
      `Requires=${PARENT_UNITS.enclave}`,
      `After=${PARENT_UNITS.enclave}`,
      '',
      '[Service]',
      `EnvironmentFile=${PARENT_PATHS.config}`,
      `EnvironmentFile=${PARENT_PATHS.run}/agent.env`,
      `ExecStart=${PARENT_PATHS.agent}`,
      'Restart=on-failure',
      'RestartSec=5',
      'StandardOutput=append:/var/log/parent-agent.log',
      'StandardError=append:/var/log/parent-agent.log',
      '',
      '[Install]',
      'WantedBy=multi-user.target',
    ],
    [PARENT_UNITS.nonceWatch]: [
      '[Unit]',
      'Description=Enclave contracts: re-attest when the attestation nonce tag changes',
      // Wants, not Requires: the watcher restarts the agent, which must not restart the watcher.
      `Wants=${PARENT_UNITS.agent}`,
      `After=${PARENT_UNITS.agent}`,
      '',
      '[Service]',
      `ExecStart=${PARENT_PATHS.watchNonce}`,
      'Restart=always',
      'RestartSec=5',
      '',
      '[Install]',
      'WantedBy=multi-user.target',
    ],
  };
}

/** Bash: writes `lines` to `path` verbatim (a quoted here-document: nothing in it is expanded). */
function writeFile(path: string, lines: readonly string[], mode: string): string[] {
  return [
    `cat > ${path} <<'ENCLAVE_CONTRACTS_EOF'`,
    ...lines,
    'ENCLAVE_CONTRACTS_EOF',
    `chmod ${mode} ${path}`,
  ];
}

/**
 * The parent's user data (Amazon Linux 2023), which cloud-init runs on the FIRST boot only. It installs the
 * Nitro Enclaves CLI, sizes the allocator from the instance (all but two vCPUs, three quarters of the memory,
 * unless the instance carries `enclave-contracts:enclave-cpu-count` / `enclave-contracts:enclave-memory-mib`, which RunInstances sets from the enclave's resources),
 * fetches the agent and then the EIF once and checks their SHA-256 (heartbeating the workflow's wait every
 * {@link HEARTBEAT_INTERVAL_SECONDS} s while the EIF downloads), and installs and enables the systemd units
 * ({@link PARENT_UNITS}) that run on EVERY boot — a resume (StopInstances, then StartInstances) boots the
 * parent again without user data, and neither the enclave nor the agent survives a stop:
 * - `enclave-parent.service` (after the allocator and the network) re-reads the enclave id and the nonce tag
 *   through IMDSv2 and (re)starts the enclave from the pinned EIF;
 * - `parent-agent.service` starts the agent, which reads the nonce tag, attests and keeps relaying;
 *   the agent heartbeats (`parent-agent heartbeat <phase>`, `POST /enclaves/{id}/attestation/heartbeat`)
 *   at least every {@link HEARTBEAT_INTERVAL_SECONDS} s until its document is accepted;
 * - `enclave-nonce-watch.service` polls the nonce tag and restarts the agent (a new attestation) when a new
 *   execution changes it.
 * Any failure stops the script or fails the unit; the workflow's attestation wait then times out and
 * compensates (terminates the parent).
 */
export function parentUserData(artifacts: EnclaveArtifacts, apiUrl: string): ec2.UserData {
  const userData = ec2.UserData.forLinux();
  userData.addCommands(
    'set -euo pipefail',
    'dnf install -y aws-nitro-enclaves-cli aws-nitro-enclaves-cli-devel jq',
    'IMDS=http://169.254.169.254/latest',
    IMDS_TOKEN,
    IMDS_TAG,
    `ENCLAVE_ID=$(tag ${INSTANCE_TAGS.enclaveId})`,
    'test -n "$ENCLAVE_ID"',
    // The enclave's own EIF when it declares one, else the deployment's default. RunInstances always sets
    // both tags (empty without a source), so they are read strictly: a metadata error stops the boot
    // instead of passing for "no source" and fetching the wrong image.
    `IMAGE_URL=$(${strictTag(INSTANCE_TAGS.imageUrl)})`,
    `IMAGE_SHA256=$(${strictTag(INSTANCE_TAGS.imageSha256)})`,
    `if [ -z "$IMAGE_URL" ]; then IMAGE_URL='${artifacts.imageUrl}'; IMAGE_SHA256='${artifacts.imageSha256}'; fi`,
    // Exactly one digest: sha256sum -c would otherwise read further lines from a crafted value.
    '[[ $IMAGE_SHA256 =~ ^[0-9a-f]{64}$ ]]',
    `CPUS=$(tag ${INSTANCE_TAGS.cpuCount}); [ -n "$CPUS" ] || CPUS=$(( $(nproc) - 2 ))`,
    `MEM=$(tag ${INSTANCE_TAGS.memoryMiB}); [ -n "$MEM" ] || MEM=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) * 3 / 4 / 1024 ))`,
    'printf -- "---\\nmemory_mib: %s\\ncpu_count: %s\\n" "$MEM" "$CPUS" > /etc/nitro_enclaves/allocator.yaml',
    // Once: what is fetched is pinned by its SHA-256 and kept on the (encrypted) root volume across stops.
    `install -d -m 0750 ${PARENT_PATHS.home}`,
    `curl -sf --proto =https -o ${PARENT_PATHS.agent} '${artifacts.agentUrl}'`,
    `echo '${artifacts.agentSha256}  ${PARENT_PATHS.agent}' | sha256sum --strict -c -`,
    `chmod 0755 ${PARENT_PATHS.agent}`,
    'install -d -m 0755 /etc/enclave-contracts',
    `printf 'API_URL=%s\\nENCLAVE_CID=16\\nENCLAVE_CPUS=%s\\nENCLAVE_MEMORY_MIB=%s\\n' '${apiUrl}' "$CPUS" "$MEM" > ${PARENT_PATHS.config}`,
    // The image can be large: heartbeats (signed by the agent as this instance) keep the workflow's wait
    // alive while it downloads, so only a parent that went silent misses WaitForAttestation's heartbeat.
    `export API_URL='${apiUrl}' ENCLAVE_ID`,
    `( while :; do ${heartbeat('fetching-image')}; sleep ${HEARTBEAT_INTERVAL_SECONDS}; done ) &`,
    'HEARTBEATS=$!',
    // A failed download ends the script (set -e): its heartbeats must end with it, or they would keep a
    // wait alive that nothing will complete.
    `trap '${STOP_HEARTBEATS}' EXIT`,
    // A download that stops moving fails (and so stops the heartbeats) instead of being kept alive.
    `curl -sf --proto =https --speed-limit 1024 --speed-time 60 -o ${PARENT_PATHS.image} "$IMAGE_URL"`,
    STOP_HEARTBEATS,
    `echo "$IMAGE_SHA256  ${PARENT_PATHS.image}" | sha256sum --strict -c -`,
    ...writeFile(PARENT_PATHS.startEnclave, startEnclaveScript(), '0755'),
    ...writeFile(PARENT_PATHS.watchNonce, watchNonceScript(), '0755'),
    ...Object.entries(units()).flatMap(([name, lines]) =>
      writeFile(`/etc/systemd/system/${name}`, lines, '0644'),
    ),
    'systemctl daemon-reload',
    // Enabled: started on this boot and every later one (multi-user.target), so a resumed parent attests.
    `systemctl enable --now nitro-enclaves-allocator.service ${Object.values(PARENT_UNITS).join(' ')}`,
  );
  return userData;
}
