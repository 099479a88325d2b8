import { ArnFormat, Lazy, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import { Construct, type IConstruct } from 'constructs';
import { INSTANCE_TAGS } from '../../shared/workflow/workflow-ports.ts';

/**
 * Where a parent instance fetches what it runs. Deployment parameters: the enclave image (EIF) is built
 * and measured by the provider's release pipeline, the parent agent by this project's; neither is part of
 * the stack. Each URL must be reachable over HTTPS from the parents' subnets without credentials (the
 * parent role may call the API's `iam` routes and nothing else), e.g. an S3 presigned URL or an artifact
 * host; the SHA-256 pins what is fetched, so a replaced file is refused rather than run.
 */
export interface EnclaveArtifacts {
  readonly imageUrl: string;
  readonly imageSha256: string;
  readonly agentUrl: string;
  readonly agentSha256: string;
}

/** Placeholders that make a parent fail at boot (and the workflow compensate) until real ones are set. */
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
   * The subnets parents launch into. The launch template names the first one: a launch template holds one
   * network interface with one subnet, and that interface is what guarantees no public address.
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
 *   readable from metadata (the agent reads the attestation nonce tag), Nitro Enclaves are enabled, the
 *   root volume is gp3 encrypted with a CMK, and the network interface gets no public address.
 * - The user data installs the Nitro Enclaves CLI, sizes the allocator from the instance, fetches and pins
 *   the EIF and the agent ({@link EnclaveArtifacts}), and starts both.
 */
export class EnclaveParents extends Construct {
  readonly role: iam.Role;
  readonly securityGroup: ec2.SecurityGroup;
  readonly launchTemplate: ec2.LaunchTemplate;
  readonly volumeKey: kms.IKey;
  /** The subnet of the launch template's network interface. */
  readonly subnetId: string;
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
      securityGroup: this.securityGroup,
      associatePublicIpAddress: false,
      nitroEnclaveEnabled: true,
      requireImdsv2: true,
      httpTokens: ec2.LaunchTemplateHttpTokens.REQUIRED,
      httpEndpoint: true,
      httpPutResponseHopLimit: 1,
      instanceMetadataTags: true,
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
    // The one network interface of the template names the subnet (RunInstances may not add a subnet to a
    // template that has an interface, and the interface is what pins `AssociatePublicIpAddress: false`).
    const [subnet] = props.vpc.selectSubnets(props.vpcSubnets).subnetIds;
    if (!subnet) throw new Error('EnclaveParents needs at least one subnet');
    this.subnetId = subnet;
    (this.launchTemplate.node.defaultChild as ec2.CfnLaunchTemplate).addPropertyOverride(
      'LaunchTemplateData.NetworkInterfaces.0.SubnetId',
      subnet,
    );
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
    const created = [...tagged, this.ec2Arn('network-interface', '*')];
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
        // anything on the parent read the role's credentials and the nonce tag without a session token.
        StringEquals: { 'ec2:MetadataHttpTokens': 'required' },
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
    const launch = iam.Grant.addToPrincipal({
      grantee,
      actions: ['ec2:RunInstances'],
      resourceArns: [
        this.ec2Arn('network-interface', '*'),
        this.ec2Arn('subnet', this.subnetId),
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

/**
 * The parent's boot script (Amazon Linux 2023). It reads its enclave from its own tags through IMDSv2,
 * sizes the Nitro Enclaves allocator from the instance (all but two vCPUs, three quarters of the memory,
 * unless the instance carries `enclave-contracts:enclave-cpu-count` / `enclave-contracts:enclave-memory-mib`),
 * fetches the EIF and the agent and checks their SHA-256, then starts the enclave and the agent. Any failure
 * stops the script; the workflow's attestation wait then times out and compensates (terminates the parent).
 */
export function parentUserData(artifacts: EnclaveArtifacts, apiUrl: string): ec2.UserData {
  const userData = ec2.UserData.forLinux();
  userData.addCommands(
    'set -euo pipefail',
    'dnf install -y aws-nitro-enclaves-cli aws-nitro-enclaves-cli-devel jq',
    'IMDS=http://169.254.169.254/latest',
    'TOKEN=$(curl -sfX PUT "$IMDS/api/token" -H "X-aws-ec2-metadata-token-ttl-seconds: 300")',
    'tag() { curl -sf -H "X-aws-ec2-metadata-token: $TOKEN" "$IMDS/meta-data/tags/instance/$1" || true; }',
    `ENCLAVE_ID=$(tag ${INSTANCE_TAGS.enclaveId})`,
    'test -n "$ENCLAVE_ID"',
    'CPUS=$(tag enclave-contracts:enclave-cpu-count); [ -n "$CPUS" ] || CPUS=$(( $(nproc) - 2 ))',
    `MEM=$(tag enclave-contracts:enclave-memory-mib); [ -n "$MEM" ] || MEM=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) * 3 / 4 / 1024 ))`,
    'printf -- "---\\nmemory_mib: %s\\ncpu_count: %s\\n" "$MEM" "$CPUS" > /etc/nitro_enclaves/allocator.yaml',
    'systemctl enable --now nitro-enclaves-allocator.service',
    'install -d -m 0750 /opt/enclave-contracts',
    `curl -sf --proto =https -o /opt/enclave-contracts/enclave.eif '${artifacts.imageUrl}'`,
    `echo '${artifacts.imageSha256}  /opt/enclave-contracts/enclave.eif' | sha256sum -c -`,
    `curl -sf --proto =https -o /opt/enclave-contracts/parent-agent '${artifacts.agentUrl}'`,
    `echo '${artifacts.agentSha256}  /opt/enclave-contracts/parent-agent' | sha256sum -c -`,
    'chmod 0755 /opt/enclave-contracts/parent-agent',
    'nitro-cli run-enclave --eif-path /opt/enclave-contracts/enclave.eif --cpu-count "$CPUS" --memory "$MEM" --enclave-cid 16',
    // The agent reads the nonce tag, asks the enclave's NSM for a document and posts it to the API (SigV4
    // with the instance role); it keeps running to relay the enclave's traffic.
    `API_URL='${apiUrl}' ENCLAVE_ID="$ENCLAVE_ID" ENCLAVE_CID=16 nohup /opt/enclave-contracts/parent-agent >>/var/log/parent-agent.log 2>&1 &`,
  );
  return userData;
}
