import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ArnFormat, Lazy, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as s3assets from 'aws-cdk-lib/aws-s3-assets';
import { Construct, type IConstruct } from 'constructs';
import { API_PREFIX } from '../../shared/http/routes.ts';
import { INSTANCE_TAGS } from '../../shared/workflow/workflow-ports.ts';
import { bundleParentAgent, PARENT_NODE_MAJOR } from '../parent-agent/bundle.ts';

/**
 * The deployment's default enclave image (EIF), for enclaves that declare no `image.source` of their own. A
 * deployment parameter: the EIF is built and measured by the provider's release pipeline, not by this stack.
 * `imageUrl` is an `s3://bucket/key` object (the parents' role may read that one object) or an `https://`
 * URL reachable without credentials; the SHA-256 pins what is fetched, so a replaced file is refused rather
 * than run. The parent agent itself is part of the stack (an S3 asset built from infra/parent-agent).
 */
export interface EnclaveArtifacts {
  readonly imageUrl: string;
  readonly imageSha256: string;
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
 * A placeholder default image that makes a parent fail to fetch it (and the workflow compensate) until a real
 * one is set. Only the default: an enclave that declares `image.source` has its parent fetch that EIF instead.
 */
export const UNCONFIGURED_ARTIFACTS: EnclaveArtifacts = {
  imageUrl: 'https://artifacts.invalid/enclave.eif',
  imageSha256: '0'.repeat(64),
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
 * - The role may `s3:GetObject` the agent's bundle (and the default EIF when it is an S3 object) and
 *   nothing else in S3; the API grants it `execute-api:Invoke` on its `iam` routes (the agent's heartbeats,
 *   attestation submission and metrics). No SSM, no managed policy.
 * - The security group has no ingress at all and egress on 443 only.
 * - IMDSv2 is required (hop limit 1, so no container or enclave proxy can reach it), instance tags are
 *   readable from metadata (the agent reads the attestation nonce tag), Nitro Enclaves are enabled, and the
 *   root volume is gp3 encrypted with a CMK.
 * - The network interface is the launch's, not the template's (the template holds none, so that one
 *   template serves every zone): the subnet, this security group and no public address, which the launch
 *   permission requires.
 * - The user data (first boot) installs the Nitro Enclaves CLI, socat and Node.js 22, fetches the agent's
 *   bundle with the role and checks its SHA-256, and installs one hardened systemd unit
 *   ({@link PARENT_AGENT_UNIT}) that sizes the allocator and runs the agent on every boot, which fetches
 *   the pinned EIF, starts the enclave and attests, so a resumed (stopped, then started) parent attests
 *   again; see {@link parentUserData}.
 */
export class EnclaveParents extends Construct {
  readonly role: iam.Role;
  readonly securityGroup: ec2.SecurityGroup;
  readonly launchTemplate: ec2.LaunchTemplate;
  readonly volumeKey: kms.IKey;
  /** The subnets parents launch into, one per Availability Zone, in the order launches try them. */
  readonly subnetIds: readonly string[];
  /** The parent agent's bundle (infra/parent-agent), an S3 asset, and its SHA-256 (pinned in the user data). */
  readonly agent: s3assets.Asset;
  readonly agentSha256: string;
  private apiUrl: string | undefined;

  constructor(scope: Construct, id: string, props: EnclaveParentsProps) {
    super(scope, id);
    const artifacts = props.artifacts ?? UNCONFIGURED_ARTIFACTS;
    const bundled = bundleParentAgent(mkdtempSync(join(tmpdir(), 'parent-agent-')));
    this.agent = new s3assets.Asset(this, 'Agent', { path: bundled.file });
    this.agentSha256 = bundled.sha256;
    this.volumeKey =
      props.volumeKey ??
      new kms.Key(this, 'VolumeKey', {
        description: 'Encrypts the EBS volumes of the enclave parent instances',
        enableKeyRotation: true,
        removalPolicy: RemovalPolicy.RETAIN,
      });
    this.role = new iam.Role(this, 'Role', {
      assumedBy: new iam.ServicePrincipal('ec2.amazonaws.com'),
      description:
        'Enclave parent instances: may read the agent (and the default image), call the API routes whose auth is iam, nothing else',
    });
    // Exactly the objects the parent fetches with its role: the agent's bundle, and the default image when it
    // is an S3 object (an https:// image is fetched without credentials).
    const readable = [`${this.agent.bucket.bucketArn}/${this.agent.s3ObjectKey}`];
    const image = /^s3:\/\/([^/]+)\/(.+)$/.exec(artifacts.imageUrl);
    if (image)
      readable.push(
        Stack.of(this).formatArn({
          service: 's3',
          region: '',
          account: '',
          resource: image[1]!,
          resourceName: image[2]!,
        }),
      );
    this.role.addToPolicy(new iam.PolicyStatement({ actions: ['s3:GetObject'], resources: readable }));
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
            return parentUserData({
              artifacts,
              apiUrl: this.apiUrl,
              agent: { url: this.agent.s3ObjectUrl, sha256: this.agentSha256 },
              region: Stack.of(this).region,
            }).render();
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

/** Where the parent keeps what it runs and its configuration. */
export const PARENT_PATHS = {
  /** The agent's bundle, read-only for the agent's user. */
  agent: '/opt/enclave-contracts/parent-agent.mjs',
  /** The agent's state: the pinned EIF (kept across stops on the encrypted root volume). */
  state: '/var/lib/enclave-contracts',
  image: '/var/lib/enclave-contracts/enclave.eif',
  /** Written once (first boot): the API, the default image, the enclave's CID. */
  config: '/etc/enclave-contracts/parent.env',
} as const;

/** The systemd unit the user data installs and enables: it runs on every boot, resumes included. */
export const PARENT_AGENT_UNIT = 'parent-agent.service';
/** The unprivileged user the agent runs as (in the `ne` group, which may start enclaves). */
export const PARENT_AGENT_USER = 'enclave-agent';
/** The Node.js the agent runs on: AL2023's namespaced executable, which another installed version does not move. */
export const PARENT_NODE = `/usr/bin/node-${PARENT_NODE_MAJOR}`;

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
 * The agent's unit: the allocator sized as root first (`configure-allocator`, the `+` prefix), then the agent
 * as {@link PARENT_AGENT_USER}, sandboxed: no privilege escalation, no capabilities, a read-only system but
 * for its state directory and what nitro-cli writes under /var and /run, no kernel tunables, modules or logs,
 * and only the socket families it uses (IP for IMDS and HTTPS, UNIX for nitro-cli, VSOCK for socat). A
 * failure restarts it (which starts the enclave afresh); exit status 3, a document the API refused, does not.
 */
function agentUnit(): string[] {
  return [
    '[Unit]',
    'Description=Enclave contracts: the parent agent (fetches the image, starts the enclave, attests, watches)',
    'Wants=network-online.target',
    'After=network-online.target nitro-enclaves-allocator.service',
    '',
    '[Service]',
    'Type=simple',
    `User=${PARENT_AGENT_USER}`,
    `Group=${PARENT_AGENT_USER}`,
    'SupplementaryGroups=ne',
    `EnvironmentFile=${PARENT_PATHS.config}`,
    `ExecStartPre=+${PARENT_NODE} ${PARENT_PATHS.agent} configure-allocator`,
    `ExecStart=${PARENT_NODE} ${PARENT_PATHS.agent} run`,
    'Restart=on-failure',
    'RestartSec=10',
    'RestartPreventExitStatus=3',
    'TimeoutStopSec=30',
    'NoNewPrivileges=yes',
    'CapabilityBoundingSet=',
    'AmbientCapabilities=',
    'ProtectSystem=full',
    'ProtectHome=yes',
    'PrivateTmp=yes',
    'ProtectKernelTunables=yes',
    'ProtectKernelModules=yes',
    'ProtectKernelLogs=yes',
    'ProtectControlGroups=yes',
    'ProtectClock=yes',
    'ProtectHostname=yes',
    'RestrictNamespaces=yes',
    'RestrictRealtime=yes',
    'RestrictSUIDSGID=yes',
    'LockPersonality=yes',
    'SystemCallArchitectures=native',
    'RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_VSOCK',
    'UMask=0027',
    '',
    '[Install]',
    'WantedBy=multi-user.target',
  ];
}

/** The Nitro Enclaves CLI's vsock-proxy unit: vsock port 8000 to the instance region's KMS, on every boot. */
export const VSOCK_PROXY_UNIT = 'nitro-enclaves-vsock-proxy.service';
/** Its allowlist (the CLI's default allows every region's KMS): replaced with this region's only. */
export const VSOCK_PROXY_CONFIG = '/etc/nitro_enclaves/vsock-proxy.yaml';
/** The vsock port the enclave reaches KMS through (on the parent, CID 3). */
export const KMS_VSOCK_PORT = 8000;

/** The vsock-proxy's allowlist: the regional KMS endpoint, nothing else. */
export function vsockProxyAllowlist(region: string): string[] {
  if (!/^[a-z]{2}(-[a-z]+)+-\d$/.test(region)) throw new Error(`not an AWS region: ${region}`);
  return ['allowlist:', `- {address: kms.${region}.amazonaws.com, port: 443}`];
}

/** What {@link parentUserData} renders. */
export interface ParentUserDataInput {
  readonly artifacts: EnclaveArtifacts;
  /** The API's endpoint (`https://<id>.execute-api.<region>.amazonaws.com`); the routes are under /api/v1. */
  readonly apiUrl: string;
  /** The agent's bundle (`s3://` URL of the asset) and its SHA-256. */
  readonly agent: { readonly url: string; readonly sha256: string };
  readonly region: string;
}

/**
 * The parent's user data (Amazon Linux 2023), which cloud-init runs on the FIRST boot only: it installs the
 * Nitro Enclaves CLI, socat (the agent's way to vsock) and AL2023's Node.js, creates the agent's user,
 * fetches the agent's bundle with the instance role (`aws s3 cp`; the role may read that object only) and
 * checks its SHA-256 before anything runs it, writes the agent's configuration, and installs and enables
 * {@link PARENT_AGENT_UNIT}, which runs on EVERY boot: a resume (StopInstances, then StartInstances) boots the
 * parent again without user data, and neither the enclave nor the agent survives a stop. The agent does the
 * rest (infra/parent-agent/agent.ts): the image, the enclave, the attestation, each phase heartbeated.
 * Any failure stops the script (set -e); the workflow's attestation wait then times out and compensates.
 */
export function parentUserData(input: ParentUserDataInput): ec2.UserData {
  const userData = ec2.UserData.forLinux();
  const config = [
    `API_URL=${input.apiUrl}${API_PREFIX}`,
    `DEFAULT_IMAGE_URL=${input.artifacts.imageUrl}`,
    `DEFAULT_IMAGE_SHA256=${input.artifacts.imageSha256}`,
    'ENCLAVE_CID=16',
    `IMAGE_PATH=${PARENT_PATHS.image}`,
  ];
  userData.addCommands(
    'set -euo pipefail',
    `dnf install -y aws-nitro-enclaves-cli aws-nitro-enclaves-cli-devel socat nodejs${PARENT_NODE_MAJOR} awscli-2`,
    `id ${PARENT_AGENT_USER} >/dev/null 2>&1 || useradd --system --user-group --no-create-home --shell /sbin/nologin --groups ne ${PARENT_AGENT_USER}`,
    'install -d -m 0755 /opt/enclave-contracts /etc/enclave-contracts',
    // Checked before anything runs it: a replaced object is refused, not run.
    `aws s3 cp --only-show-errors --region '${input.region}' '${input.agent.url}' ${PARENT_PATHS.agent}`,
    `echo '${input.agent.sha256}  ${PARENT_PATHS.agent}' | sha256sum --strict -c -`,
    `chmod 0644 ${PARENT_PATHS.agent}`,
    `install -d -m 0750 -o ${PARENT_AGENT_USER} -g ${PARENT_AGENT_USER} ${PARENT_PATHS.state}`,
    ...writeFile(PARENT_PATHS.config, config, '0644'),
    ...writeFile(`/etc/systemd/system/${PARENT_AGENT_UNIT}`, agentUnit(), '0644'),
    // The enclave's only way out, for its KMS calls (the contract key's data keys): the Nitro Enclaves CLI's
    // vsock-proxy on vsock port 8000, allowed to reach this region's KMS endpoint and nothing else.
    ...writeFile(VSOCK_PROXY_CONFIG, vsockProxyAllowlist(input.region), '0644'),
    'systemctl daemon-reload',
    // Enabled: started on this boot and every later one (multi-user.target), so a resumed parent attests.
    `systemctl enable --now nitro-enclaves-allocator.service ${VSOCK_PROXY_UNIT} ${PARENT_AGENT_UNIT}`,
  );
  return userData;
}
