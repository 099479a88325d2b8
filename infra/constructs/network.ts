import { CfnResource, Stack } from 'aws-cdk-lib';
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
 * The private network of the database: isolated subnets only (no internet gateway, no NAT), because
 * nothing in it needs to leave the VPC. The functions reach Aurora through the RDS Data API (HTTPS, IAM)
 * and therefore run outside the VPC; the only things inside are the Aurora cluster and the Secrets Manager
 * rotation function, which reaches Secrets Manager through an interface endpoint.
 *
 * All traffic is recorded by VPC flow logs; the default security group is stripped of its rules.
 */
export class Network extends Construct {
  readonly vpc: ec2.Vpc;
  /** The subnets of the database and of the functions that must reach it directly (secret rotation). */
  readonly isolatedSubnets: ec2.SubnetSelection = { subnetType: ec2.SubnetType.PRIVATE_ISOLATED };
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
      natGateways: 0,
      subnetConfiguration: [{ name: 'Isolated', subnetType: ec2.SubnetType.PRIVATE_ISOLATED, cidrMask: 24 }],
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
