/**
 * An in-memory stand-in for the part of EC2 the provisioning workflow uses: RunInstances, StartInstances,
 * StopInstances, TerminateInstances and DescribeInstances, with the request and response shapes that Step
 * Functions' `aws-sdk:ec2:*` integrations pass (PascalCase, as in `@aws-sdk/client-ec2`). The local stack
 * maps the state machine's EC2 tasks to it (see {@link Ec2Simulator.localTaskHandlers}).
 *
 * Instances move through EC2's states on timers (pending → running, stopping → stopped, shutting-down →
 * terminated); when one reaches `running`, the `onBoot` hook plays its user data: in the local stack, the
 * parent agent's real code (see infra/local/local-parents.ts). Terminated instances stay listed, as in EC2, so tests can check that nothing is left running.
 *
 * It deliberately launches Nitro Enclaves parents only: a request without `EnclaveOptions.Enabled` or for a
 * type outside the platform's catalog is refused, so a workflow bug shows up locally instead of in AWS.
 */

import { createHash, randomUUID } from 'node:crypto';
import { INSTANCE_TYPES } from '../../../../shared/domain/instance-types.ts';
import type { InstanceStateName } from '../../../../shared/workflow/workflow-ports.ts';
import type { AuthorizationCheck } from '../iam/iam-authorizer.ts';

/** EC2's instance state names (one definition, in the workflow ports). */
export type { InstanceStateName };

/** EC2's state codes (the low byte of `State.Code`). */
export const INSTANCE_STATE_CODES: Readonly<Record<InstanceStateName, number>> = {
  pending: 0,
  running: 16,
  'shutting-down': 32,
  terminated: 48,
  stopping: 64,
  stopped: 80,
};

export interface InstanceState {
  readonly Code: number;
  readonly Name: InstanceStateName;
}

export interface Tag {
  readonly Key: string;
  readonly Value: string;
}

export interface TagSpecification {
  /** Only `instance` tags land on the instance; volume/network-interface tags are accepted and dropped. */
  readonly ResourceType?: string;
  readonly Tags?: readonly Tag[];
}

export interface LaunchTemplateSpecification {
  readonly LaunchTemplateId?: string;
  readonly LaunchTemplateName?: string;
  readonly Version?: string;
}

/**
 * An instance's metadata service settings (`InstanceMetadataOptionsRequest`). Absent from a request and
 * its template, EC2 applies its defaults (tokens optional, hop limit 1, endpoint on, tags off).
 */
export interface MetadataOptions {
  readonly HttpTokens?: 'optional' | 'required';
  readonly HttpPutResponseHopLimit?: number;
  readonly HttpEndpoint?: 'enabled' | 'disabled';
  readonly InstanceMetadataTags?: 'enabled' | 'disabled';
}

/** The launch-template fields the simulator merges under a RunInstances request (the request wins). */
export interface LaunchTemplateData {
  readonly ImageId?: string;
  readonly InstanceType?: string;
  readonly EnclaveOptions?: { readonly Enabled?: boolean };
  readonly MetadataOptions?: MetadataOptions;
  readonly TagSpecifications?: readonly TagSpecification[];
  /** The subnet and security groups of the template's network interface (what RunInstances also touches). */
  readonly SubnetId?: string;
  readonly SecurityGroupIds?: readonly string[];
  /** The instance profile the instances get; RunInstances passes its role to EC2 (`iam:PassRole`). */
  readonly IamInstanceProfile?: { readonly Arn: string };
}

/** A network interface of a `RunInstances` request (`InstanceNetworkInterfaceSpecification`). */
export interface NetworkInterfaceSpecification {
  readonly DeviceIndex?: number;
  readonly SubnetId?: string;
  readonly Groups?: readonly string[];
  readonly AssociatePublicIpAddress?: boolean;
  readonly DeleteOnTermination?: boolean;
}

/** `RunInstances` input (the fields the simulator reads; others are accepted and ignored). */
export interface RunInstancesInput {
  /** The subnet, without network interfaces; with neither, EC2 picks a default subnet. */
  readonly SubnetId?: string;
  readonly SecurityGroupIds?: readonly string[];
  /**
   * The network interfaces (the simulator takes one, device 0). Given, they replace the template's, and the
   * request may name no instance-level subnet or security groups. Where `ec2:Subnet`,
   * `ec2:AvailabilityZone` and `ec2:AssociatePublicIpAddress` of the launch come from.
   */
  readonly NetworkInterfaces?: readonly NetworkInterfaceSpecification[];
  readonly ImageId?: string;
  readonly InstanceType?: string;
  readonly MinCount: number;
  readonly MaxCount: number;
  readonly LaunchTemplate?: LaunchTemplateSpecification;
  readonly EnclaveOptions?: { readonly Enabled?: boolean };
  readonly HibernationOptions?: { readonly Configured?: boolean };
  /**
   * The metadata service settings; each field given here wins over the template's. What the IAM condition
   * key `ec2:MetadataHttpTokens` of the call is derived from (the request's own, not the template's).
   */
  readonly MetadataOptions?: MetadataOptions;
  readonly TagSpecifications?: readonly TagSpecification[];
  /** Base64, as EC2 takes it; kept so a test can check what the workflow rendered. */
  readonly UserData?: string;
  /**
   * Idempotency token (at most 64 ASCII characters): the same token with the same parameters answers the
   * original reservation instead of launching again; with other parameters it is
   * `IdempotentParameterMismatch`.
   */
  readonly ClientToken?: string;
}

/** An instance as `RunInstances`/`DescribeInstances` return it. */
export interface Ec2Instance {
  readonly InstanceId: string;
  readonly ImageId: string;
  readonly InstanceType: string;
  readonly State: InstanceState;
  readonly Tags: readonly Tag[];
  /**
   * ISO-8601. The SDK returns a `Date`; here it is the string a Step Functions state sees, since a `Date`
   * does not survive the JSON that flows between states.
   */
  readonly LaunchTime: string;
  readonly EnclaveOptions: { readonly Enabled: boolean };
  readonly MetadataOptions: Required<MetadataOptions>;
  readonly StateTransitionReason: string;
  readonly SubnetId: string;
  readonly Placement: { readonly AvailabilityZone: string };
}

export interface RunInstancesOutput {
  readonly ReservationId: string;
  readonly OwnerId: string;
  readonly Instances: readonly Ec2Instance[];
}

export interface InstanceIdsInput {
  readonly InstanceIds: readonly string[];
}

export interface InstanceStateChange {
  readonly InstanceId: string;
  readonly CurrentState: InstanceState;
  readonly PreviousState: InstanceState;
}

export interface TerminateInstancesOutput {
  readonly TerminatingInstances: readonly InstanceStateChange[];
}
export interface StopInstancesOutput {
  readonly StoppingInstances: readonly InstanceStateChange[];
}
export interface StartInstancesOutput {
  readonly StartingInstances: readonly InstanceStateChange[];
}

export interface Filter {
  /** `tag:<key>`, `tag-key`, `instance-state-name`, `instance-id` or `instance-type`. */
  readonly Name: string;
  /** Any of them matches; `*` and `?` are wildcards, as in EC2. */
  readonly Values: readonly string[];
}

export interface DescribeInstancesInput {
  readonly InstanceIds?: readonly string[];
  readonly Filters?: readonly Filter[];
}

export interface DescribeInstancesOutput {
  readonly Reservations: readonly { ReservationId: string; OwnerId: string; Instances: Ec2Instance[] }[];
}

/** One row of {@link Ec2Simulator.inventory}: easy to assert on ("no instance left running"). */
export interface InventoryEntry {
  readonly instanceId: string;
  readonly instanceType: string;
  readonly state: InstanceStateName;
  readonly tags: Readonly<Record<string, string>>;
  readonly launchTime: string;
  /** How many times the instance reached `running` (a resume boots it again). */
  readonly boots: number;
  readonly subnetId: string;
  readonly availabilityZone: string;
}

/** The EC2 operations the simulator serves. */
export type Ec2Operation =
  | 'RunInstances'
  | 'StartInstances'
  | 'StopInstances'
  | 'TerminateInstances'
  | 'DescribeInstances'
  | 'CreateTags';

/** Errors a test can inject with {@link Ec2Simulator.failNext}. */
export type Ec2FaultName =
  | 'InsufficientInstanceCapacity'
  | 'InstanceLimitExceeded'
  | 'RequestLimitExceeded'
  | 'InternalError'
  | 'Unavailable'
  | 'Unsupported'
  | 'UnauthorizedOperation';

/** Server-side (5xx) EC2 codes; everything else is the caller's fault (4xx), as EC2 classifies them. */
const SERVER_FAULTS: ReadonlySet<string> = new Set([
  'InsufficientInstanceCapacity',
  'InternalError',
  'Unavailable',
  'RequestLimitExceeded',
]);

/**
 * An EC2 error shaped like the SDK's `EC2ServiceException`: `name` is the EC2 error code (what a
 * `Retry`/`Catch` or a `catch (e) { if (e.name === …) }` matches), with `$fault` and `$metadata`.
 */
export class Ec2Error extends Error {
  /** The EC2 error code (same as `name`), as the SDK also exposes it. */
  readonly Code: string;
  readonly $fault: 'client' | 'server';
  readonly $metadata: { readonly httpStatusCode: number; readonly requestId: string };

  constructor(code: string, message: string, requestId = '00000000-0000-4000-8000-000000000000') {
    super(message);
    this.name = code;
    this.Code = code;
    this.$fault = SERVER_FAULTS.has(code) ? 'server' : 'client';
    this.$metadata = {
      httpStatusCode:
        code === 'RequestLimitExceeded' || code === 'Unavailable'
          ? 503
          : this.$fault === 'server'
            ? 500
            : code === 'UnauthorizedOperation'
              ? 403
              : 400,
      requestId,
    };
  }
}

/** What `onBoot` gets besides the instance: aborted as soon as the instance leaves `running`. */
export interface BootContext {
  readonly signal: AbortSignal;
}

/** The hook run each time an instance reaches `running` (its user data, in effect). */
export type BootHook = (instance: Ec2Instance, context: BootContext) => Promise<void>;

export interface Ec2SimulatorOptions {
  /** pending → running (ms); default 5. */
  readonly bootDelayMs?: number;
  /** stopping → stopped (ms); default 5. */
  readonly stopDelayMs?: number;
  /** shutting-down → terminated (ms); default 5. */
  readonly terminateDelayMs?: number;
  /** Run when an instance reaches `running` (first boot and every start). */
  readonly onBoot?: BootHook;
  /**
   * Run when CreateTags changes the tags of a `running` instance: software on the instance that watches its
   * tags through the instance metadata service (the parent agent re-attests on a new nonce).
   */
  readonly onTagsChanged?: BootHook;
  /**
   * Told of every state change as EventBridge delivers EC2's "EC2 Instance State-change Notification"
   * (default bus): the envelope and `detail: { "instance-id", state }`.
   */
  readonly onStateChange?: (event: InstanceStateChangeEvent) => void;
  /** Told about a boot hook that failed (default: kept in {@link Ec2Simulator.bootErrors}). */
  readonly onBootError?: (instance: Ec2Instance, error: unknown) => void;
  /** Launch templates by id or name (what the CDK stack would have created). */
  readonly launchTemplates?: Readonly<Record<string, LaunchTemplateData>>;
  /** Seed of the instance/reservation ids: the same seed gives the same ids in the same order. */
  readonly seed?: string;
  /** The clock for `LaunchTime` (default: the system clock). */
  readonly now?: () => Date;
  /** `OwnerId` of the reservations (default 000000000000). */
  readonly accountId?: string;
  /** The region in the ARNs of {@link Ec2Simulator.authorizationChecks} (default eu-central-1). */
  readonly region?: string;
  /** The role each instance profile holds, by the profile's ARN (what `iam:PassRole` is checked on). */
  readonly instanceProfileRoles?: Readonly<Record<string, string>>;
  /**
   * The subnets a launch may name, each with its Availability Zone (what the stack's VPC has). A launch that
   * names none goes to the default subnet, `subnet-0default` in the region's zone `a`.
   */
  readonly subnets?: Readonly<Record<string, string>>;
}

/** EC2's state-change event as EventBridge delivers it (the fields EC2 documents for it). */
export interface InstanceStateChangeEvent {
  readonly version: '0';
  readonly id: string;
  readonly 'detail-type': 'EC2 Instance State-change Notification';
  readonly source: 'aws.ec2';
  readonly account: string;
  readonly time: string;
  readonly region: string;
  readonly resources: readonly string[];
  readonly detail: { readonly 'instance-id': string; readonly state: InstanceStateName };
}

/** Where a launch goes: its subnet and zone, its security groups, and whether it asked for a public IP. */
interface LaunchPlacement {
  readonly subnetId: string;
  readonly availabilityZone: string;
  readonly securityGroupIds: readonly string[];
  readonly associatePublicIpAddress: boolean | undefined;
}

interface Fault {
  readonly name: Ec2FaultName;
  remaining: number;
  readonly operation: Ec2Operation;
  readonly instanceType: string | undefined;
  readonly availabilityZone: string | undefined;
}

interface InstanceRecord {
  readonly instanceId: string;
  readonly reservationId: string;
  readonly imageId: string;
  readonly instanceType: string;
  readonly tags: Tag[];
  readonly launchTime: string;
  readonly userData: string | undefined;
  readonly metadataOptions: Required<MetadataOptions>;
  readonly placement: LaunchPlacement;
  state: InstanceStateName;
  reason: string;
  boots: number;
  timer: NodeJS.Timeout | undefined;
  /** Aborted when the instance leaves `running`, so a boot hook stops before posting for a dead instance. */
  running: AbortController | undefined;
}

const SUPPORTED_TYPES: ReadonlySet<string> = new Set(INSTANCE_TYPES.map((type) => type.name));
const INSTANCE_ID = /^i-[0-9a-f]{8}([0-9a-f]{9})?$/;
const FILTERS = ['instance-state-name', 'instance-id', 'instance-type', 'tag-key'];
/** EC2's per-request cap on launched instances is account-specific; a small one keeps tests honest. */
const MAX_INSTANCES_PER_REQUEST = 20;
/** Where a launch that names no subnet goes (the default VPC's subnet in zone `a`). */
const DEFAULT_SUBNET = 'subnet-0default';

/**
 * The in-memory EC2. Methods are named after the EC2 actions and take/return their shapes.
 * @example
 * const ec2 = new Ec2Simulator({ onBoot: async (instance, { signal }) => startAgent(instance, signal) });
 * const { Instances } = await ec2.runInstances({ InstanceType: 'c6i.xlarge', ImageId: 'ami-0123', MinCount: 1,
 *   MaxCount: 1, EnclaveOptions: { Enabled: true }, TagSpecifications: [{ ResourceType: 'instance', Tags }] });
 * await ec2.waitForState(Instances[0].InstanceId, 'running');
 */
export class Ec2Simulator {
  private readonly bootDelayMs: number;
  private readonly stopDelayMs: number;
  private readonly terminateDelayMs: number;
  private readonly onBoot: BootHook | undefined;
  private readonly onTagsChanged: BootHook | undefined;
  private readonly onBootError: (instance: Ec2Instance, error: unknown) => void;
  private readonly onStateChange: ((event: InstanceStateChangeEvent) => void) | undefined;
  private readonly launchTemplates: Readonly<Record<string, LaunchTemplateData>>;
  private readonly seed: string;
  private readonly now: () => Date;
  private readonly accountId: string;
  private readonly region: string;
  private readonly instanceProfileRoles: Readonly<Record<string, string>>;
  private readonly subnets: Readonly<Record<string, string>>;
  private readonly instances = new Map<string, InstanceRecord>();
  private readonly faults: Fault[] = [];
  private readonly hooks = new Set<Promise<void>>();
  private readonly listeners = new Set<() => void>();
  private readonly errors: { instanceId: string; error: unknown }[] = [];
  /** Successful RunInstances by ClientToken: the request's fingerprint and the reservation it made. */
  private readonly clientTokens = new Map<string, { fingerprint: string; reservationId: string }>();
  private sequence = 0;

  constructor(options: Ec2SimulatorOptions = {}) {
    this.bootDelayMs = options.bootDelayMs ?? 5;
    this.stopDelayMs = options.stopDelayMs ?? 5;
    this.terminateDelayMs = options.terminateDelayMs ?? 5;
    this.onBoot = options.onBoot;
    this.onTagsChanged = options.onTagsChanged;
    this.onBootError =
      options.onBootError ??
      ((instance, error) => this.errors.push({ instanceId: instance.InstanceId, error }));
    this.launchTemplates = options.launchTemplates ?? {};
    this.seed = options.seed ?? 'ec2-simulator';
    this.now = options.now ?? (() => new Date());
    this.accountId = options.accountId ?? '000000000000';
    this.region = options.region ?? 'eu-central-1';
    this.instanceProfileRoles = options.instanceProfileRoles ?? {};
    this.subnets = options.subnets ?? {};
    this.onStateChange = options.onStateChange;
  }

  /**
   * Makes the next `count` calls of an operation (default RunInstances) fail with `errorName`, e.g.
   * `InsufficientInstanceCapacity` for one type so the workflow's fallback to the next candidate is tested.
   * Faults are checked after the request is validated, as EC2 does, and are consumed oldest first.
   * @param options.instanceType only calls for this type fail (RunInstances, or StartInstances of an
   *   instance of this type); other calls pass and leave the fault armed.
   * @param options.availabilityZone only launches into (or starts of instances in) this zone fail.
   */
  failNext(
    errorName: Ec2FaultName,
    count = 1,
    options: {
      readonly instanceType?: string;
      readonly operation?: Ec2Operation;
      readonly availabilityZone?: string;
    } = {},
  ): void {
    if (!Number.isInteger(count) || count < 1) throw new RangeError('count must be a positive integer');
    this.faults.push({
      name: errorName,
      remaining: count,
      operation: options.operation ?? 'RunInstances',
      instanceType: options.instanceType,
      availabilityZone: options.availabilityZone,
    });
  }

  /**
   * EC2 `RunInstances`: MaxCount instances in `pending`, each booting after the boot delay. With a
   * `ClientToken` it is idempotent as in EC2: a repeat of a successful request (same token, same
   * parameters) launches nothing and answers the original reservation as it is now; the same token with
   * other parameters is refused with `IdempotentParameterMismatch`. A failed request records no token.
   */
  async runInstances(input: RunInstancesInput): Promise<RunInstancesOutput> {
    const request = asObject(input, 'RunInstances');
    const { ClientToken: clientToken, ...parameters } = request;
    const fingerprint = canonicalJson(parameters);
    if (clientToken !== undefined) {
      if (typeof clientToken !== 'string' || !/^[\x20-\x7e]{1,64}$/.test(clientToken)) {
        throw new Ec2Error('InvalidParameterValue', 'ClientToken must be 1 to 64 ASCII characters.');
      }
      const original = this.clientTokens.get(clientToken);
      if (original !== undefined) {
        if (original.fingerprint !== fingerprint) {
          throw new Ec2Error(
            'IdempotentParameterMismatch',
            `The client token ${clientToken} was already used with different request parameters.`,
          );
        }
        return this.reservation(original.reservationId);
      }
    }
    const template = this.launchTemplate(request.LaunchTemplate);
    const imageId = request.ImageId ?? template?.ImageId;
    const instanceType = request.InstanceType ?? template?.InstanceType;
    const enclave = request.EnclaveOptions ?? template?.EnclaveOptions;
    const { MinCount: min, MaxCount: max } = request;
    if (!Number.isInteger(min) || !Number.isInteger(max) || min < 1 || max < min) {
      throw new Ec2Error(
        'InvalidParameterValue',
        'MinCount and MaxCount must be integers with 1 ≤ MinCount ≤ MaxCount.',
      );
    }
    if (max > MAX_INSTANCES_PER_REQUEST) {
      throw new Ec2Error(
        'InstanceLimitExceeded',
        `You have requested more instances (${max}) than your current instance limit of ${MAX_INSTANCES_PER_REQUEST} allows.`,
      );
    }
    if (typeof imageId !== 'string' || imageId === '') {
      throw new Ec2Error(
        'MissingParameter',
        'The request must contain the parameter ImageId (or a launch template that sets it).',
      );
    }
    if (typeof instanceType !== 'string' || instanceType === '') {
      throw new Ec2Error(
        'MissingParameter',
        'The request must contain the parameter InstanceType (or a launch template that sets it).',
      );
    }
    if (enclave?.Enabled !== true) {
      // A parent launched without enclave support boots fine in AWS and only fails when the agent starts the
      // enclave: refusing here surfaces that workflow bug at the launch.
      throw new Ec2Error(
        'InvalidParameterCombination',
        'This simulator launches Nitro Enclaves parents only: EnclaveOptions.Enabled must be true.',
      );
    }
    if (request.HibernationOptions?.Configured === true) {
      throw new Ec2Error(
        'InvalidParameterCombination',
        'Nitro Enclaves and hibernation cannot be enabled on the same instance.',
      );
    }
    if (!SUPPORTED_TYPES.has(instanceType)) {
      throw new Ec2Error(
        'Unsupported',
        `The requested configuration is currently not supported: instance type ${instanceType} cannot parent a Nitro enclave.`,
      );
    }
    const metadataOptions = metadataOptionsOf(template?.MetadataOptions, request.MetadataOptions);
    const tags = instanceTags([...(template?.TagSpecifications ?? []), ...(request.TagSpecifications ?? [])]);
    const placement = this.placement(request, template);
    this.injectFault('RunInstances', instanceType, placement.availabilityZone);

    const reservationId = `r-${this.hex('r')}`;
    const launchTime = this.now().toISOString();
    const launched: InstanceRecord[] = [];
    for (let i = 0; i < max; i++) {
      const record: InstanceRecord = {
        instanceId: `i-${this.hex('i')}`,
        reservationId,
        imageId,
        instanceType,
        tags: tags.map((tag) => ({ ...tag })),
        launchTime,
        userData: request.UserData,
        metadataOptions,
        placement,
        state: 'pending',
        reason: '',
        boots: 0,
        timer: undefined,
        running: undefined,
      };
      this.instances.set(record.instanceId, record);
      this.announce(record);
      launched.push(record);
      this.schedule(record, this.bootDelayMs, 'running');
    }
    if (clientToken !== undefined) this.clientTokens.set(clientToken, { fingerprint, reservationId });
    this.notify();
    return {
      ReservationId: reservationId,
      OwnerId: this.accountId,
      Instances: launched.map((r) => this.view(r)),
    };
  }

  /** A reservation's instances as they are now (what a repeated idempotent RunInstances answers). */
  private reservation(reservationId: string): RunInstancesOutput {
    const instances = [...this.instances.values()].filter((r) => r.reservationId === reservationId);
    return {
      ReservationId: reservationId,
      OwnerId: this.accountId,
      Instances: instances.map((r) => this.view(r)),
    };
  }

  /** EC2 `TerminateInstances`: idempotent; an already terminated instance answers terminated → terminated. */
  async terminateInstances(input: InstanceIdsInput): Promise<TerminateInstancesOutput> {
    const records = this.records(input, 'TerminateInstances');
    this.injectFault('TerminateInstances', undefined, undefined);
    const changes = records.map((record) => {
      const previous = record.state;
      if (previous !== 'terminated' && previous !== 'shutting-down') {
        this.enter(record, 'shutting-down', 'User initiated');
        this.schedule(record, this.terminateDelayMs, 'terminated');
      }
      return change(record, previous);
    });
    this.notify();
    return { TerminatingInstances: changes };
  }

  /** EC2 `StopInstances`: running → stopping → stopped; stopped stays stopped; others are refused. */
  async stopInstances(input: InstanceIdsInput): Promise<StopInstancesOutput> {
    const records = this.records(input, 'StopInstances');
    for (const record of records) {
      if (!['running', 'stopping', 'stopped'].includes(record.state)) {
        throw incorrectState(record, 'stopped');
      }
    }
    this.injectFault('StopInstances', undefined, undefined);
    const changes = records.map((record) => {
      const previous = record.state;
      if (previous === 'running') {
        this.enter(record, 'stopping', 'User initiated');
        this.schedule(record, this.stopDelayMs, 'stopped');
      }
      return change(record, previous);
    });
    this.notify();
    return { StoppingInstances: changes };
  }

  /** EC2 `StartInstances`: stopped → pending → running (booting again); pending/running are no-ops. */
  async startInstances(input: InstanceIdsInput): Promise<StartInstancesOutput> {
    const records = this.records(input, 'StartInstances');
    for (const record of records) {
      if (!['stopped', 'pending', 'running'].includes(record.state)) throw incorrectState(record, 'started');
    }
    for (const record of records) {
      if (record.state === 'stopped')
        this.injectFault('StartInstances', record.instanceType, record.placement.availabilityZone);
    }
    const changes = records.map((record) => {
      const previous = record.state;
      if (previous === 'stopped') {
        this.enter(record, 'pending', '');
        this.schedule(record, this.bootDelayMs, 'running');
      }
      return change(record, previous);
    });
    this.notify();
    return { StartingInstances: changes };
  }

  /**
   * EC2 `CreateTags` on instances (`Resources` are instance ids here): adds or overwrites the tags. The
   * workflow tags a stopped parent with a fresh attestation nonce before restarting it.
   */
  async createTags(input: { Resources?: string[]; Tags?: Tag[] }): Promise<Record<string, never>> {
    const request = asObject(input, 'CreateTags');
    const records = this.records({ InstanceIds: request.Resources ?? [] }, 'CreateTags');
    const added = instanceTags([{ ResourceType: 'instance', Tags: request.Tags ?? [] }]);
    for (const record of records) {
      for (const tag of added) {
        const existing = record.tags.findIndex((t) => t.Key === tag.Key);
        if (existing >= 0) record.tags.splice(existing, 1, tag);
        else record.tags.push(tag);
      }
      if (record.tags.length > 50)
        throw new Ec2Error('TagLimitExceeded', 'An instance can have at most 50 tags.');
    }
    for (const record of records) {
      if (record.state === 'running' && record.running && this.onTagsChanged) {
        this.play(record, this.onTagsChanged, record.running);
      }
    }
    this.notify();
    return {};
  }

  /** EC2 `DescribeInstances`: by ids and/or filters (AND across filters, OR across a filter's values). */
  async describeInstances(input: DescribeInstancesInput = {}): Promise<DescribeInstancesOutput> {
    const request = asObject(input, 'DescribeInstances');
    const candidates =
      request.InstanceIds === undefined || request.InstanceIds.length === 0
        ? [...this.instances.values()]
        : this.records({ InstanceIds: request.InstanceIds }, 'DescribeInstances');
    const filters = (request.Filters ?? []).map(compileFilter);
    this.injectFault('DescribeInstances', undefined, undefined);
    const reservations = new Map<string, Ec2Instance[]>();
    for (const record of candidates) {
      if (!filters.every((matches) => matches(record))) continue;
      const list = reservations.get(record.reservationId) ?? [];
      list.push(this.view(record));
      reservations.set(record.reservationId, list);
    }
    return {
      Reservations: [...reservations].map(([ReservationId, Instances]) => ({
        ReservationId,
        OwnerId: this.accountId,
        Instances,
      })),
    };
  }

  /** Every instance ever launched, terminated ones included, in launch order. */
  inventory(): InventoryEntry[] {
    return [...this.instances.values()].map((record) => ({
      instanceId: record.instanceId,
      instanceType: record.instanceType,
      state: record.state,
      tags: Object.fromEntries(record.tags.map((tag) => [tag.Key, tag.Value])),
      launchTime: record.launchTime,
      boots: record.boots,
      subnetId: record.placement.subnetId,
      availabilityZone: record.placement.availabilityZone,
    }));
  }

  /** An instance's tags as they are now (what IMDS serves the instance), or undefined for no such instance. */
  tagsOf(instanceId: string): Readonly<Record<string, string>> | undefined {
    const record = this.instances.get(instanceId);
    return record && Object.fromEntries(record.tags.map((tag) => [tag.Key, tag.Value]));
  }

  /** The base64 user data an instance was launched with (EC2 only shows it via DescribeInstanceAttribute). */
  userData(instanceId: string): string | undefined {
    return this.instances.get(instanceId)?.userData;
  }

  /** Boot hooks that failed and had no `onBootError` to go to. */
  get bootErrors(): readonly { readonly instanceId: string; readonly error: unknown }[] {
    return [...this.errors];
  }

  /**
   * Resolves when the instance is in `state` (at once if it already is).
   * @throws Error after `timeoutMs` (default 5000), or at once for an unknown instance.
   */
  waitForState(instanceId: string, state: InstanceStateName, timeoutMs = 5_000): Promise<void> {
    const record = this.instances.get(instanceId);
    if (record === undefined) return Promise.reject(new Error(`unknown instance ${instanceId}`));
    return new Promise<void>((resolve, reject) => {
      const check = () => {
        if (record.state !== state) return;
        this.listeners.delete(check);
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        this.listeners.delete(check);
        reject(
          new Error(`${instanceId} did not reach ${state} within ${timeoutMs} ms (it is ${record.state})`),
        );
      }, timeoutMs);
      this.listeners.add(check);
      check();
    });
  }

  /** Resolves when no state transition is scheduled and no boot hook is running. */
  async settled(): Promise<void> {
    for (;;) {
      const timers = [...this.instances.values()].some((record) => record.timer !== undefined);
      if (!timers && this.hooks.size === 0) return;
      if (this.hooks.size > 0) await Promise.allSettled([...this.hooks]);
      else await new Promise((resolve) => setTimeout(resolve, 1));
    }
  }

  /** Cancels pending transitions and aborts running boot hooks (instances keep their current state). */
  close(): void {
    for (const record of this.instances.values()) {
      clearTimeout(record.timer);
      record.timer = undefined;
      record.running?.abort();
    }
  }

  /**
   * Handlers for aws-local-stepfunctions' `taskResourceLocalHandlers`, keyed by the resource ARNs the CDK
   * renders for `CallAwsService` (`arn:aws:states:::aws-sdk:ec2:<action>`). Errors are thrown as
   * {@link Ec2Error}, whose `name` is the EC2 error code.
   */
  localTaskHandlers(): Record<string, (input: never) => Promise<unknown>> {
    const arn = (action: string) => `arn:aws:states:::aws-sdk:ec2:${action}`;
    return {
      [arn('runInstances')]: (input: RunInstancesInput) => this.runInstances(input),
      [arn('terminateInstances')]: (input: InstanceIdsInput) => this.terminateInstances(input),
      [arn('stopInstances')]: (input: InstanceIdsInput) => this.stopInstances(input),
      [arn('startInstances')]: (input: InstanceIdsInput) => this.startInstances(input),
      [arn('describeInstances')]: (input: DescribeInstancesInput) => this.describeInstances(input),
      [arn('createTags')]: (input: { Resources?: string[]; Tags?: Tag[] }) => this.createTags(input),
    };
  }

  /**
   * The IAM checks EC2 makes for a call, with the condition keys it derives for each resource (the IAM
   * stand-in evaluates them: infra/local/services/iam/iam-authorizer.ts). Sources: the Service Authorization Reference
   * for Amazon EC2 (the resources each action touches and the keys each takes); "Grant permission to tag
   * resources during creation" in the EC2 user guide (tags in a create call need `ec2:CreateTags` with
   * `ec2:CreateAction`); "Launch template support" (`ec2:LaunchTemplate` on every resource of a launch from a
   * template); and for `ec2:MetadataHttpTokens`, the request's own `MetadataOptions` only, never the
   * template's (aws/karpenter-provider-aws issue 9018 and PR 9256: CloudTrail shows the denial of a launch
   * that relied on its template). An unknown launch template or instance fails as EC2 fails it, before any check.
   */
  authorizationChecks(operation: Ec2Operation, input: unknown): AuthorizationCheck[] {
    const arn = (type: string, id: string) => `arn:aws:ec2:${this.region}:${this.accountId}:${type}/${id}`;
    const tagKeys = (tags: readonly Tag[]): Record<string, string | string[]> => ({
      ...Object.fromEntries(tags.map((t) => [`aws:RequestTag/${t.Key}`, t.Value])),
      ...(tags.length > 0 ? { 'aws:TagKeys': tags.map((t) => t.Key) } : {}),
    });
    const resourceTags = (record: InstanceRecord) =>
      Object.fromEntries(record.tags.map((t) => [`aws:ResourceTag/${t.Key}`, t.Value]));
    switch (operation) {
      case 'RunInstances': {
        const request = asObject(input as RunInstancesInput, operation);
        const spec = request.LaunchTemplate;
        const template = this.launchTemplate(spec);
        const templateId = spec?.LaunchTemplateId ?? spec?.LaunchTemplateName;
        const fromTemplate: Record<string, string> = templateId
          ? { 'ec2:LaunchTemplate': arn('launch-template', templateId) }
          : {};
        const tagsOf = (type: string) =>
          (request.TagSpecifications ?? [])
            .filter((t) => t.ResourceType === type)
            .flatMap((t) => t.Tags ?? []);
        const tokens = request.MetadataOptions?.HttpTokens;
        const imageId = request.ImageId ?? template?.ImageId;
        const placement = this.placement(request, template);
        const zone = { 'ec2:AvailabilityZone': placement.availabilityZone };
        const publicIp = placement.associatePublicIpAddress;
        const checks: AuthorizationCheck[] = [
          {
            action: 'ec2:RunInstances',
            resource: arn('instance', '*'),
            context: {
              ...fromTemplate,
              ...zone,
              ...tagKeys(tagsOf('instance')),
              ...(tokens === undefined ? {} : { 'ec2:MetadataHttpTokens': tokens }),
            },
          },
          {
            action: 'ec2:RunInstances',
            resource: arn('volume', '*'),
            context: { ...fromTemplate, ...tagKeys(tagsOf('volume')) },
          },
          {
            action: 'ec2:RunInstances',
            resource: arn('network-interface', '*'),
            context: {
              ...fromTemplate,
              ...zone,
              'ec2:Subnet': arn('subnet', placement.subnetId),
              // Only when the request says (IAM's key is the request's own AssociatePublicIpAddress).
              ...(publicIp === undefined ? {} : { 'ec2:AssociatePublicIpAddress': String(publicIp) }),
            },
          },
          ...(templateId
            ? [
                {
                  action: 'ec2:RunInstances',
                  resource: arn('launch-template', templateId),
                  context: fromTemplate,
                },
              ]
            : []),
          {
            action: 'ec2:RunInstances',
            resource: arn('subnet', placement.subnetId),
            context: { ...fromTemplate, ...zone },
          },
          ...placement.securityGroupIds.map((group) => ({
            action: 'ec2:RunInstances',
            resource: arn('security-group', group),
            context: fromTemplate,
          })),
          ...(imageId
            ? [
                {
                  action: 'ec2:RunInstances',
                  resource: `arn:aws:ec2:${this.region}::image/${imageId}`,
                  context: fromTemplate,
                },
              ]
            : []),
        ];
        // Tags on create: ec2:CreateTags on each tagged resource type, within this RunInstances.
        for (const type of ['instance', 'volume']) {
          const tags = tagsOf(type);
          if (tags.length === 0) continue;
          checks.push({
            action: 'ec2:CreateTags',
            resource: arn(type, '*'),
            context: { 'ec2:CreateAction': 'RunInstances', ...tagKeys(tags) },
          });
        }
        const profile = template?.IamInstanceProfile?.Arn;
        const role = profile === undefined ? undefined : this.instanceProfileRoles[profile];
        if (role !== undefined) {
          checks.push({
            action: 'iam:PassRole',
            resource: role,
            context: { 'iam:PassedToService': 'ec2.amazonaws.com' },
          });
        }
        return checks;
      }
      case 'CreateTags': {
        const request = asObject(input as { Resources?: string[]; Tags?: Tag[] }, operation);
        const records = this.records({ InstanceIds: request.Resources ?? [] }, operation);
        return records.map((record) => ({
          action: 'ec2:CreateTags',
          resource: arn('instance', record.instanceId),
          context: { ...resourceTags(record), ...tagKeys(request.Tags ?? []) },
        }));
      }
      case 'StartInstances':
      case 'StopInstances':
      case 'TerminateInstances':
        return this.records(input as InstanceIdsInput, operation).map((record) => ({
          action: `ec2:${operation}`,
          resource: arn('instance', record.instanceId),
          context: resourceTags(record),
        }));
      case 'DescribeInstances':
        // No resource-level permissions: Resource "*".
        return [{ action: 'ec2:DescribeInstances', resource: '*' }];
    }
  }

  private launchTemplate(spec: LaunchTemplateSpecification | undefined): LaunchTemplateData | undefined {
    if (spec === undefined) return undefined;
    const key = spec.LaunchTemplateId ?? spec.LaunchTemplateName;
    if (key === undefined) {
      throw new Ec2Error('MissingParameter', 'LaunchTemplate needs LaunchTemplateId or LaunchTemplateName.');
    }
    const template = this.launchTemplates[key];
    if (template === undefined) {
      throw spec.LaunchTemplateId !== undefined
        ? new Ec2Error(
            'InvalidLaunchTemplateId.NotFound',
            `The specified launch template, with template ID ${key}, does not exist.`,
          )
        : new Ec2Error(
            'InvalidLaunchTemplateName.NotFoundException',
            `The specified launch template, with template name ${key}, does not exist.`,
          );
    }
    return template;
  }

  private records(input: InstanceIdsInput, operation: Ec2Operation): InstanceRecord[] {
    const ids: unknown = asObject(input, operation).InstanceIds;
    if (!Array.isArray(ids) || ids.length === 0) {
      throw new Ec2Error('MissingParameter', 'The request must contain the parameter InstanceIds.');
    }
    const malformed = ids.filter((id) => typeof id !== 'string' || !INSTANCE_ID.test(id));
    if (malformed.length > 0) {
      throw new Ec2Error('InvalidInstanceID.Malformed', `Invalid id: "${String(malformed[0])}"`);
    }
    // EC2 fails the whole request when any id is unknown, naming all of them.
    const missing = ids.filter((id: string) => !this.instances.has(id));
    if (missing.length > 0) {
      throw new Ec2Error(
        'InvalidInstanceID.NotFound',
        `The instance IDs '${missing.join(', ')}' do not exist`,
      );
    }
    return [...new Set(ids as string[])].map((id) => this.instances.get(id)!);
  }

  private injectFault(
    operation: Ec2Operation,
    instanceType: string | undefined,
    availabilityZone: string | undefined,
  ): void {
    const index = this.faults.findIndex(
      (fault) =>
        fault.operation === operation &&
        (fault.instanceType === undefined || fault.instanceType === instanceType) &&
        (fault.availabilityZone === undefined || fault.availabilityZone === availabilityZone),
    );
    if (index < 0) return;
    const fault = this.faults[index]!;
    fault.remaining -= 1;
    if (fault.remaining === 0) this.faults.splice(index, 1);
    const zone = availabilityZone ?? `${this.region}a`;
    const otherZones = [...new Set([...Object.values(this.subnets), `${this.region}b`])].filter(
      (z) => z !== zone,
    );
    throw new Ec2Error(fault.name, faultMessage(fault.name, { instanceType, operation, zone, otherZones }));
  }

  /**
   * Where a launch goes, as EC2 resolves it: the request's network interface (device 0) if it has one, which
   * replaces the template's and excludes an instance-level subnet or security groups; else the request's
   * subnet and groups; else the template's; else the default subnet. An unknown subnet is refused.
   */
  private placement(request: RunInstancesInput, template: LaunchTemplateData | undefined): LaunchPlacement {
    const interfaces = request.NetworkInterfaces;
    if (interfaces !== undefined && interfaces.length > 0) {
      if (request.SubnetId !== undefined) {
        throw new Ec2Error(
          'InvalidParameterCombination',
          'Network interfaces and an instance-level subnet ID may not be specified on the same request',
        );
      }
      if (request.SecurityGroupIds !== undefined) {
        throw new Ec2Error(
          'InvalidParameterCombination',
          'Network interfaces and an instance-level security groups may not be specified on the same request',
        );
      }
      if (interfaces.length > 1 || (interfaces[0]!.DeviceIndex ?? 0) !== 0) {
        throw new Ec2Error(
          'InvalidParameterValue',
          'This simulator launches with one network interface, device index 0.',
        );
      }
    }
    const nic = interfaces?.[0];
    const subnetId = nic?.SubnetId ?? request.SubnetId ?? template?.SubnetId ?? DEFAULT_SUBNET;
    const availabilityZone = subnetId === DEFAULT_SUBNET ? `${this.region}a` : this.subnets[subnetId];
    if (availabilityZone === undefined) {
      throw new Ec2Error('InvalidSubnetID.NotFound', `The subnet ID '${subnetId}' does not exist`);
    }
    return {
      subnetId,
      availabilityZone,
      securityGroupIds: nic?.Groups ?? request.SecurityGroupIds ?? template?.SecurityGroupIds ?? [],
      associatePublicIpAddress: nic?.AssociatePublicIpAddress,
    };
  }

  private schedule(record: InstanceRecord, delayMs: number, target: InstanceStateName): void {
    clearTimeout(record.timer);
    record.timer = setTimeout(() => {
      record.timer = undefined;
      // stopped/terminated keep the reason given when the stop/terminate began, as EC2 shows it.
      this.enter(record, target, target === 'terminated' || target === 'stopped' ? undefined : '');
      this.notify();
    }, delayMs);
  }

  private enter(record: InstanceRecord, state: InstanceStateName, reason: string | undefined): void {
    clearTimeout(record.timer);
    record.timer = undefined;
    if (record.state === 'running' && state !== 'running') {
      record.running?.abort();
      record.running = undefined;
    }
    const changed = record.state !== state;
    record.state = state;
    if (changed) this.announce(record);
    if (reason !== undefined) {
      record.reason =
        reason === '' ? '' : `${reason} (${this.now().toISOString().replace('T', ' ').slice(0, 19)} GMT)`;
    }
    if (state === 'running') this.boot(record);
  }

  /** EC2's state-change event for the record's new state (EventBridge's envelope, second-precision time). */
  private announce(record: InstanceRecord): void {
    if (this.onStateChange === undefined) return;
    this.onStateChange({
      version: '0',
      id: randomUUID(),
      'detail-type': 'EC2 Instance State-change Notification',
      source: 'aws.ec2',
      account: this.accountId,
      time: `${this.now().toISOString().slice(0, 19)}Z`,
      region: this.region,
      resources: [`arn:aws:ec2:${this.region}:${this.accountId}:instance/${record.instanceId}`],
      detail: { 'instance-id': record.instanceId, state: record.state },
    });
  }

  private boot(record: InstanceRecord): void {
    record.boots += 1;
    const controller = new AbortController();
    record.running = controller;
    if (this.onBoot !== undefined) this.play(record, this.onBoot, controller);
  }

  /** Runs `hook` for `record` in the background, aborted when the instance leaves `running`. */
  private play(record: InstanceRecord, hook: BootHook, controller: AbortController): void {
    const instance = this.view(record);
    // Fire and forget, like an instance's user data; tracked so `settled()` can wait for it.
    const run: Promise<void> = (async () => {
      try {
        await hook(instance, { signal: controller.signal });
      } catch (error) {
        this.onBootError(instance, error);
      }
    })().finally(() => {
      this.hooks.delete(run);
      this.notify();
    });
    this.hooks.add(run);
  }

  private notify(): void {
    for (const listener of [...this.listeners]) listener();
  }

  /** 17 hex digits, deterministic per seed: ids are stable across runs, so logs and fixtures compare. */
  private hex(kind: string): string {
    this.sequence += 1;
    const digest = createHash('sha256').update(`${this.seed}|${kind}|${this.sequence}`).digest('hex');
    return `0${digest.slice(0, 16)}`;
  }

  private view(record: InstanceRecord): Ec2Instance {
    return {
      InstanceId: record.instanceId,
      ImageId: record.imageId,
      InstanceType: record.instanceType,
      State: stateOf(record.state),
      Tags: record.tags.map((tag) => ({ ...tag })),
      LaunchTime: record.launchTime,
      EnclaveOptions: { Enabled: true },
      MetadataOptions: { ...record.metadataOptions },
      StateTransitionReason: record.reason,
      SubnetId: record.placement.subnetId,
      Placement: { AvailabilityZone: record.placement.availabilityZone },
    };
  }
}

/** EC2's defaults for what neither the request nor its template sets. */
const METADATA_DEFAULTS: Required<MetadataOptions> = {
  HttpTokens: 'optional',
  HttpPutResponseHopLimit: 1,
  HttpEndpoint: 'enabled',
  InstanceMetadataTags: 'disabled',
};

/** The instance's metadata options: the request's fields over the template's over EC2's defaults, checked. */
function metadataOptionsOf(
  template: MetadataOptions | undefined,
  request: MetadataOptions | undefined,
): Required<MetadataOptions> {
  if (request !== undefined) asObject(request, 'MetadataOptions');
  const options = { ...METADATA_DEFAULTS, ...template, ...request };
  const oneOf = (field: keyof MetadataOptions, values: readonly unknown[]) => {
    if (!values.includes(options[field])) {
      throw new Ec2Error(
        'InvalidParameterValue',
        `Value (${String(options[field])}) for parameter MetadataOptions.${field} is invalid. Valid values: ${values.join(', ')}.`,
      );
    }
  };
  oneOf('HttpTokens', ['optional', 'required']);
  oneOf('HttpEndpoint', ['enabled', 'disabled']);
  oneOf('InstanceMetadataTags', ['enabled', 'disabled']);
  const hops = options.HttpPutResponseHopLimit;
  if (!Number.isInteger(hops) || hops < 1 || hops > 64) {
    throw new Ec2Error(
      'InvalidParameterValue',
      `Value (${String(hops)}) for parameter MetadataOptions.HttpPutResponseHopLimit is invalid. Valid values: 1 to 64.`,
    );
  }
  return options;
}

function stateOf(name: InstanceStateName): InstanceState {
  return { Code: INSTANCE_STATE_CODES[name], Name: name };
}

function change(record: InstanceRecord, previous: InstanceStateName): InstanceStateChange {
  return {
    InstanceId: record.instanceId,
    CurrentState: stateOf(record.state),
    PreviousState: stateOf(previous),
  };
}

function incorrectState(record: InstanceRecord, wanted: string): Ec2Error {
  return new Ec2Error(
    'IncorrectInstanceState',
    `The instance '${record.instanceId}' is not in a state from which it can be ${wanted}.`,
  );
}

/** EC2's own wording for each injectable fault (EC2 API reference, error codes), what a caller matches. */
function faultMessage(
  name: Ec2FaultName,
  call: {
    readonly instanceType: string | undefined;
    readonly operation: Ec2Operation;
    readonly zone: string;
    readonly otherZones: readonly string[];
  },
): string {
  const { operation, zone } = call;
  const type = call.instanceType ?? 'm5.xlarge';
  switch (name) {
    case 'InsufficientInstanceCapacity':
      return `We currently do not have sufficient ${type} capacity in the Availability Zone you requested (${zone}). Our system will be working on provisioning additional capacity. You can currently get ${type} capacity by not specifying an Availability Zone in your request or choosing ${call.otherZones.join(', ')}.`;
    case 'RequestLimitExceeded':
      return `Request limit exceeded. Account 000000000000 has been throttled on ec2:${operation} because it exceeded its request rate limit.`;
    case 'InternalError':
      return 'An internal error has occurred.';
    case 'Unavailable':
      return "The server is overloaded and can't handle the request.";
    case 'UnauthorizedOperation':
      return 'You are not authorized to perform this operation.';
    case 'InstanceLimitExceeded':
      return `You have requested more instances (1) than your current instance limit of 0 allows for the specified instance type. Please visit http://aws.amazon.com/contact-us/ec2-request to request an adjustment to this limit.`;
    case 'Unsupported':
      return `Your requested instance type (${type}) is not supported in your requested Availability Zone (${zone}). Please retry your request by not specifying an Availability Zone or choosing ${call.otherZones.join(', ')}.`;
  }
}

/** JSON with object keys sorted: two requests with the same parameters in another order compare equal. */
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (typeof value === 'object' && value !== null) {
    const entries = Object.entries(value)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/** Untyped JSON from a state machine reaches here: refuse non-objects as EC2 would, not with a TypeError. */
function asObject<T>(input: T, operation: string): T {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw new Ec2Error('InvalidParameterValue', `${operation} takes an object of parameters.`);
  }
  return input;
}

function instanceTags(specifications: readonly TagSpecification[]): Tag[] {
  const tags = new Map<string, string>();
  for (const specification of specifications) {
    if (specification.ResourceType !== undefined && specification.ResourceType !== 'instance') continue;
    for (const tag of specification.Tags ?? []) {
      if (typeof tag?.Key !== 'string' || tag.Key === '' || tag.Key.length > 128) {
        throw new Ec2Error('InvalidParameterValue', 'Tag keys must be 1 to 128 characters.');
      }
      if (typeof tag.Value !== 'string' || tag.Value.length > 256) {
        throw new Ec2Error(
          'InvalidParameterValue',
          `The value of tag ${tag.Key} must be at most 256 characters.`,
        );
      }
      if (tag.Key.toLowerCase().startsWith('aws:')) {
        throw new Ec2Error(
          'InvalidParameterValue',
          'Tag keys starting with "aws:" are reserved for AWS use.',
        );
      }
      tags.set(tag.Key, tag.Value);
    }
  }
  if (tags.size > 50) throw new Ec2Error('TagLimitExceeded', 'An instance can have at most 50 tags.');
  return [...tags].map(([Key, Value]) => ({ Key, Value }));
}

function compileFilter(filter: Filter): (record: InstanceRecord) => boolean {
  if (typeof filter?.Name !== 'string' || !Array.isArray(filter.Values)) {
    throw new Ec2Error('InvalidParameterValue', 'A filter needs a Name and a list of Values.');
  }
  const patterns = filter.Values.map(globToRegExp);
  const any = (value: string) => patterns.some((pattern) => pattern.test(value));
  if (filter.Name.startsWith('tag:')) {
    const key = filter.Name.slice(4);
    return (record) => record.tags.some((tag) => tag.Key === key && any(tag.Value));
  }
  switch (filter.Name) {
    case 'instance-state-name':
      return (record) => any(record.state);
    case 'instance-id':
      return (record) => any(record.instanceId);
    case 'instance-type':
      return (record) => any(record.instanceType);
    case 'tag-key':
      return (record) => record.tags.some((tag) => any(tag.Key));
    default:
      throw new Ec2Error(
        'InvalidParameterValue',
        `The filter '${filter.Name}' is invalid (the simulator knows tag:<key>, ${FILTERS.join(', ')}).`,
      );
  }
}

function globToRegExp(value: string): RegExp {
  const escaped = String(value).replace(/[.+^${}()|[\]\\]/g, '\\$&');
  return new RegExp(`^${escaped.replace(/\*/g, '.*').replace(/\?/g, '.')}$`, 's');
}
