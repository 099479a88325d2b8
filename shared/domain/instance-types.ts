import type { EnclaveResources } from './enclave.ts';
import { UnprocessableError } from './errors.ts';

/**
 * Which EC2 instance type should parent an enclave? The enclave's CPUs and memory are carved out of the
 * parent instance by the Nitro Enclaves allocator, so the parent must hold the enclave plus its own share.
 *
 * Rules (from the Nitro Enclaves user guide and the allocator's behaviour):
 * - Only Nitro-based types with at least 4 vCPUs can run an enclave: `xlarge` and up, never `large`.
 *   Bare-metal sizes are left out: they are sold by the host, which the platform does not need.
 * - The enclave takes whole cores (even vCPU counts) and the parent keeps at least one core (2 vCPUs):
 *   the allocator never gives away the core of CPU 0, and the parent runs the agent and the vsock proxy.
 * - The parent keeps `1 GiB + 10 %` of the instance's memory: about 1 GiB for the OS, the agent and the
 *   proxy, and a margin that grows with the instance because the allocator reserves the enclave's memory as
 *   huge pages, which fail on a fragmented, nearly-full machine.
 * - The enclave's CPUs and memory come from one NUMA node. Two-socket sizes therefore offer at most half the
 *   machine to one enclave (e.g. m5.24xlarge: 48 vCPUs, not 94).
 * - Storage is the parent's EBS volume, independent of the instance type, so it plays no part here.
 */

/** Families, cheapest on-demand price per vCPU first, the newer generation first at equal price. */
export const INSTANCE_FAMILIES = ['c6i', 'c5', 'c7i', 'm6i', 'm5', 'm7i', 'r6i', 'r5'] as const;
export type InstanceFamily = (typeof INSTANCE_FAMILIES)[number];

export interface InstanceType {
  /** The EC2 API name, e.g. `m5.xlarge`. */
  readonly name: string;
  readonly family: InstanceFamily;
  readonly vcpus: number;
  readonly memoryGiB: number;
  /**
   * NUMA nodes (sockets). Derived from the processor's threads per socket: 48 for the Xeon Platinum of the
   * 5 series, 64 for the Ice Lake 6i, 96 for the Sapphire Rapids 7i.
   */
  readonly numaNodes: 1 | 2;
}

/** [size, vcpus, memory GiB] per family, as `aws ec2 describe-instance-types` reports them. */
const SIZES: Readonly<Record<InstanceFamily, readonly (readonly [string, number, number])[]>> = {
  m5: [
    ['xlarge', 4, 16],
    ['2xlarge', 8, 32],
    ['4xlarge', 16, 64],
    ['8xlarge', 32, 128],
    ['12xlarge', 48, 192],
    ['16xlarge', 64, 256],
    ['24xlarge', 96, 384],
  ],
  c5: [
    ['xlarge', 4, 8],
    ['2xlarge', 8, 16],
    ['4xlarge', 16, 32],
    ['9xlarge', 36, 72],
    ['12xlarge', 48, 96],
    ['18xlarge', 72, 144],
    ['24xlarge', 96, 192],
  ],
  r5: [
    ['xlarge', 4, 32],
    ['2xlarge', 8, 64],
    ['4xlarge', 16, 128],
    ['8xlarge', 32, 256],
    ['12xlarge', 48, 384],
    ['16xlarge', 64, 512],
    ['24xlarge', 96, 768],
  ],
  m6i: [
    ['xlarge', 4, 16],
    ['2xlarge', 8, 32],
    ['4xlarge', 16, 64],
    ['8xlarge', 32, 128],
    ['12xlarge', 48, 192],
    ['16xlarge', 64, 256],
    ['24xlarge', 96, 384],
    ['32xlarge', 128, 512],
  ],
  c6i: [
    ['xlarge', 4, 8],
    ['2xlarge', 8, 16],
    ['4xlarge', 16, 32],
    ['8xlarge', 32, 64],
    ['12xlarge', 48, 96],
    ['16xlarge', 64, 128],
    ['24xlarge', 96, 192],
    ['32xlarge', 128, 256],
  ],
  r6i: [
    ['xlarge', 4, 32],
    ['2xlarge', 8, 64],
    ['4xlarge', 16, 128],
    ['8xlarge', 32, 256],
    ['12xlarge', 48, 384],
    ['16xlarge', 64, 512],
    ['24xlarge', 96, 768],
    ['32xlarge', 128, 1024],
  ],
  m7i: [
    ['xlarge', 4, 16],
    ['2xlarge', 8, 32],
    ['4xlarge', 16, 64],
    ['8xlarge', 32, 128],
    ['12xlarge', 48, 192],
    ['16xlarge', 64, 256],
    ['24xlarge', 96, 384],
    ['48xlarge', 192, 768],
  ],
  c7i: [
    ['xlarge', 4, 8],
    ['2xlarge', 8, 16],
    ['4xlarge', 16, 32],
    ['8xlarge', 32, 64],
    ['12xlarge', 48, 96],
    ['16xlarge', 64, 128],
    ['24xlarge', 96, 192],
    ['48xlarge', 192, 384],
  ],
};

const THREADS_PER_SOCKET: Readonly<Record<InstanceFamily, number>> = {
  m5: 48,
  c5: 48,
  r5: 48,
  m6i: 64,
  c6i: 64,
  r6i: 64,
  m7i: 96,
  c7i: 96,
};

/** The catalog of Nitro-Enclaves-capable parent types, ordered smallest first (the choice order). */
export const INSTANCE_TYPES: readonly InstanceType[] = INSTANCE_FAMILIES.flatMap((family) =>
  SIZES[family].map(
    ([size, vcpus, memoryGiB]): InstanceType => ({
      name: `${family}.${size}`,
      family,
      vcpus,
      memoryGiB,
      numaNodes: vcpus > THREADS_PER_SOCKET[family] ? 2 : 1,
    }),
  ),
).sort(
  (a, b) =>
    a.vcpus - b.vcpus ||
    a.memoryGiB - b.memoryGiB ||
    INSTANCE_FAMILIES.indexOf(a.family) - INSTANCE_FAMILIES.indexOf(b.family),
);

/** What the parent instance keeps for itself (see the module comment for why). */
export const PARENT_RESERVE = {
  vcpus: 2,
  baseMemoryMiB: 1024,
  memoryFraction: 0.1,
} as const;

/** Smallest parent the Nitro Enclaves service accepts. */
export const MIN_PARENT_VCPUS = 4;

/** The memory (MiB) the parent keeps on `type`: 1 GiB plus 10 % of the instance's memory, rounded up. */
export function parentReserveMiB(type: Pick<InstanceType, 'memoryGiB'>): number {
  return PARENT_RESERVE.baseMemoryMiB + Math.ceil(type.memoryGiB * 1024 * PARENT_RESERVE.memoryFraction);
}

/** The largest enclave `type` can host: after the parent's share, and within one NUMA node. */
export function enclaveCapacity(type: InstanceType): { cpuCount: number; memoryMiB: number } {
  if (type.vcpus < MIN_PARENT_VCPUS) return { cpuCount: 0, memoryMiB: 0 };
  const memoryMiB = type.memoryGiB * 1024;
  const cpus = Math.min(type.vcpus - PARENT_RESERVE.vcpus, type.vcpus / type.numaNodes);
  return {
    // whole cores only
    cpuCount: cpus - (cpus % 2),
    memoryMiB: Math.min(memoryMiB - parentReserveMiB(type), Math.floor(memoryMiB / type.numaNodes)),
  };
}

/** True when an enclave of `resources` fits on a parent of `type` with the parent's share kept. */
export function fitsInstanceType(
  resources: Pick<EnclaveResources, 'cpuCount' | 'memoryMiB'>,
  type: InstanceType,
): boolean {
  const capacity = enclaveCapacity(type);
  return resources.cpuCount <= capacity.cpuCount && resources.memoryMiB <= capacity.memoryMiB;
}

export interface ChooseInstanceTypesOptions {
  /** Only these families (e.g. the ones the account has quota for); default all. */
  readonly families?: readonly InstanceFamily[];
  /** Types to skip, e.g. those that just answered `InsufficientInstanceCapacity`. */
  readonly exclude?: readonly string[];
}

/**
 * The parent instance types that fit an enclave, smallest first (by vCPUs, then memory, then family price
 * order). The first is the choice; the rest are the fallbacks the workflow tries in order when EC2 answers
 * `InsufficientInstanceCapacity`.
 * @throws UnprocessableError (`no-instance-type-fits`) when no candidate fits.
 * @example
 * chooseInstanceTypes({ cpuCount: 2, memoryMiB: 4096 }) // ['c6i.xlarge', 'c5.xlarge', 'c7i.xlarge', 'm6i.xlarge', …]
 */
export function chooseInstanceTypes(
  resources: Pick<EnclaveResources, 'cpuCount' | 'memoryMiB'>,
  options: ChooseInstanceTypesOptions = {},
): string[] {
  const families = new Set<string>(options.families ?? INSTANCE_FAMILIES);
  const excluded = new Set(options.exclude ?? []);
  const candidates = INSTANCE_TYPES.filter((t) => families.has(t.family) && !excluded.has(t.name));
  const fitting = candidates.filter((t) => fitsInstanceType(resources, t)).map((t) => t.name);
  if (fitting.length === 0) {
    const message =
      `no ${candidates.length === INSTANCE_TYPES.length ? '' : 'allowed '}Nitro Enclaves parent fits ` +
      `${resources.cpuCount} vCPUs and ${resources.memoryMiB} MiB plus the parent's own share ` +
      `(${PARENT_RESERVE.vcpus} vCPUs, 1 GiB + 10 % of its memory; one NUMA node per enclave)`;
    throw new UnprocessableError(
      'no-instance-type-fits',
      'No instance type fits the enclave',
      `Cannot size the enclave: ${message}.`,
      [{ field: 'configuration.resources', message }],
    );
  }
  return fitting;
}
