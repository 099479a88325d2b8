import { CfnResource, Stack, Validations } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { Construct } from 'constructs';
import { EncryptedLogGroup, type LogSettings } from './observability.ts';

/** Props of {@link Network}. */
export interface NetworkProps {
  /** Where the VPC flow logs go and for how long. */
  readonly logs: LogSettings;
  /** @default '10.40.0.0/16' */
  readonly cidr?: string;
  /** Aurora needs subnets in at least two Availability Zones. @default 2 */
  readonly maxAzs?: number;
}

/**
 * The private network of the database and of the enclave parents:
 * - isolated subnets (no route out) for the Aurora cluster and the Secrets Manager rotation function, which
 *   reaches Secrets Manager through an interface endpoint. The functions reach Aurora through the RDS Data
 *   API (HTTPS, IAM) and therefore run outside the VPC;
 * - private subnets with egress through one NAT gateway for the enclave parent instances, which must reach
 *   the HTTP API (attestation, metrics; an HTTP API has no VPC endpoint), the package repositories and the
 *   artifact store. They get no public address; their security group allows HTTPS out and nothing in;
 * - small public subnets that only hold the NAT gateway (no instance gets a public address there either).
 *
 * All traffic is recorded by VPC flow logs; the default security group is stripped of its rules.
 */
export class Network extends Construct {
  readonly vpc: ec2.Vpc;
  /** The subnets of the database and of the functions that must reach it directly (secret rotation). */
  readonly isolatedSubnets: ec2.SubnetSelection = { subnetType: ec2.SubnetType.PRIVATE_ISOLATED };
  /** The subnets of the enclave parent instances: private, with egress through the NAT gateway. */
  readonly parentSubnets: ec2.SubnetSelection = { subnetGroupName: 'Parents' };
  /**
   * Secrets Manager, reachable from the isolated subnets. Closed by default: open it to a client with
   * `secretsManagerEndpoint.connections.allowDefaultPortFrom(client)`.
   */
  readonly secretsManagerEndpoint: ec2.InterfaceVpcEndpoint;

  constructor(scope: Construct, id: string, props: NetworkProps) {
    super(scope, id);
    this.vpc = new ec2.Vpc(this, 'Vpc', {
      ipAddresses: ec2.IpAddresses.cidr(props.cidr ?? '10.40.0.0/16'),
      maxAzs: props.maxAzs ?? 2,
      // One NAT gateway: the parents' egress is boot-time downloads and small API calls; a NAT per AZ
      // would double the fixed cost for availability the provisioning workflow's retries already cover.
      natGateways: 1,
      natGatewaySubnets: { subnetGroupName: 'Public' },
      // Isolated first, so its CIDR blocks stay those allocated before the parents' subnets existed.
      subnetConfiguration: [
        { name: 'Isolated', subnetType: ec2.SubnetType.PRIVATE_ISOLATED, cidrMask: 24 },
        { name: 'Parents', subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS, cidrMask: 22 },
        { name: 'Public', subnetType: ec2.SubnetType.PUBLIC, cidrMask: 28, mapPublicIpOnLaunch: false },
      ],
      restrictDefaultSecurityGroup: true,
      flowLogs: {
        All: {
          destination: ec2.FlowLogDestination.toCloudWatchLogs(
            new EncryptedLogGroup(this, 'FlowLogs', { settings: props.logs }),
          ),
          trafficType: ec2.FlowLogTrafficType.ALL,
        },
      },
    });
    // The subnets name the AZs CDK resolves for the stack's region at synth: a template is synthesized for
    // the account and region it deploys to (`-c account`, `-c region`), so the names are that region's.
    Validations.of(this.vpc).acknowledge({
      id: 'CloudFormation-Validate::W3010',
      reason:
        "The VPC's AZs are resolved for the stack's own region at synth; the template deploys only there.",
    });
    this.secretsManagerEndpoint = this.vpc.addInterfaceEndpoint('SecretsManager', {
      service: ec2.InterfaceVpcEndpointAwsService.SECRETS_MANAGER,
      subnets: this.isolatedSubnets,
      privateDnsEnabled: true,
      open: false,
    });

    // `restrictDefaultSecurityGroup` strips the default security group through a CDK-provided function; run
    // it on Graviton like every other function of the stack (its code is plain JavaScript).
    const provider = Stack.of(this).node.tryFindChild('Custom::VpcRestrictDefaultSGCustomResourceProvider');
    const handler = provider?.node.tryFindChild('Handler');
    if (handler instanceof CfnResource) handler.addPropertyOverride('Architectures', ['arm64']);
  }
}
