import { storedJsonBytes } from './canonical-json.ts';
import { IdSchema } from './identifiers.ts';
import { InstantSchema } from './instants.ts';
import { ImagePcrHexSchema, PcrHexSchema } from './measurement-set.ts';
import { text } from './text.ts';
import * as z from './zod.ts';

/**
 * Enclaves: AWS Nitro Enclaves in which training runs under a contract. This module holds the record's shape
 * and the strict request schemas; lifecycle rules live in `enclave-lifecycle.ts`, the contract fit in
 * `enclave-compatibility.ts`, instance sizing in `instance-types.ts`. Pure: no I/O.
 */

/** Exactly the seed's statuses: clients and scripts match on these strings. */
export const ENCLAVE_STATUSES = ['Initializing', 'Running', 'Suspended', 'Failed', 'Terminated'] as const;
export type EnclaveStatus = (typeof ENCLAVE_STATUSES)[number];

/** Statuses no action leaves. */
export const FINAL_ENCLAVE_STATUSES: readonly EnclaveStatus[] = ['Failed', 'Terminated'];

/**
 * Faults the local stack can inject to drive each failure path of the provisioning workflow by hand: the
 * issue's four, plus `wrong-nonce` (the agent attests with a nonce other than the challenge's).
 */
export const SIMULATION_FAULTS = [
  'wrong-image',
  'debug-mode',
  'no-callback',
  'expired-document',
  'wrong-nonce',
] as const;
export type SimulationFault = (typeof SIMULATION_FAULTS)[number];

/**
 * Where a parent is on its way to the attestation document, as its heartbeats say
 * (`POST /enclaves/{id}/attestation/heartbeat`; logged for operators).
 */
export const AGENT_PHASES = ['booting', 'fetching-image', 'starting-enclave', 'attesting'] as const;
export type AgentPhase = (typeof AGENT_PHASES)[number];

/** Bounds of the enclave's own resources (the parent instance's share comes on top; see instance-types.ts). */
export const ENCLAVE_LIMITS = {
  minCpuCount: 2,
  maxCpuCount: 64,
  minMemoryMiB: 512,
  maxMemoryMiB: 262_144,
  minStorageGiB: 1,
  maxStorageGiB: 16_384,
  maxRulesPerDirection: 50,
  maxAllowedSigners: 10,
} as const;

// ---------------------------------------------------------------------------------------------------------
// Building blocks

/** An AWS region such as `eu-central-1` (the same form as a contract's `compliance.dataResidency`). */
export const AwsRegionSchema = z.lazy(() =>
  z
    .string()
    .check(z.maxLength(32), z.regex(/^[a-z]{2}(-gov)?-[a-z]+-\d$/, 'an AWS region such as eu-central-1')),
);

/**
 * A SHA-384 PCR value as `nitro-cli describe-eif` prints it: 96 hex digits. Either case is accepted and the
 * value is kept lower-case, so equal measurements compare equal. `z.toLowerCase()` (an in-place overwrite,
 * not a transform) keeps the schema representable in the OpenAPI document.
 */
/** PCR values are the same concept everywhere: one schema (96 hex digits, kept lower-case). */
export const Sha384HexSchema = PcrHexSchema;

const PortSchema = z.lazy(() => z.int().check(z.minimum(1), z.maximum(65_535)));

/** One port, or an inclusive range `{ from, to }`. */
export const PortSpecSchema = z.lazy(() =>
  z.union([
    PortSchema,
    z
      .strictObject({ from: PortSchema, to: PortSchema })
      .check(z.refine((r) => r.from <= r.to, { message: 'from must not exceed to', path: ['to'] })),
  ]),
);
export type PortSpec = z.infer<typeof PortSpecSchema>;

/** An IPv4 or IPv6 CIDR block, e.g. `10.0.0.0/16` or `2001:db8::/56`. */
export const CidrSchema = z.lazy(() =>
  z.union([z.cidrv4(), z.cidrv6()], {
    error: 'an IPv4 or IPv6 CIDR block such as 10.0.0.0/16',
  }),
);

/**
 * A fully qualified host name for the egress allowlist (what the parent's vsock proxy lets the enclave
 * reach). No wildcards: an allowlist entry names exactly one service. Kept lower-case (DNS is not
 * case-sensitive), at least two labels, each label 1–63 letters/digits/hyphens, at most 253 characters.
 */
export const AllowlistHostSchema = z.lazy(() =>
  z
    .string()
    .check(
      z.maxLength(253),
      z.regex(
        /^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/,
        'a fully qualified host name such as kms.eu-central-1.amazonaws.com (no wildcards)',
      ),
      z.toLowerCase(),
    ),
);

const ruleBase = () => ({
  protocol: z.enum(['tcp', 'udp']),
  port: PortSpecSchema,
  description: z.optional(text({ max: 200 })),
});

/**
 * An ingress rule: who may reach the parent instance. Sources are CIDR blocks only, because a security group
 * cannot filter inbound traffic by host name.
 */
export const IngressRuleSchema = z.lazy(() => z.strictObject({ ...ruleBase(), cidr: CidrSchema }));
export type IngressRule = z.infer<typeof IngressRuleSchema>;

/**
 * An egress rule: where the enclave may connect, either a CIDR block (a security-group rule) or a host name
 * (a vsock-proxy allowlist entry). Exactly one of `cidr` and `host`.
 */
export const EgressRuleSchema = z.lazy(() =>
  z
    .strictObject({ ...ruleBase(), cidr: z.optional(CidrSchema), host: z.optional(AllowlistHostSchema) })
    .check(
      z.superRefine((rule, ctx) => {
        if ((rule.cidr === undefined) === (rule.host === undefined)) {
          ctx.addIssue({
            code: 'custom',
            path: ['cidr'],
            message: 'exactly one of cidr and host is required',
          });
        }
      }),
    ),
);
export type EgressRule = z.infer<typeof EgressRuleSchema>;

// ---------------------------------------------------------------------------------------------------------
// The configuration

export const EnclaveResourcesSchema = z.lazy(() =>
  z.strictObject({
    /**
     * vCPUs given to the enclave. Even, because the Nitro Enclaves allocator hands out whole cores (two
     * hyper-threads each) so that no core is shared with the parent (a side-channel boundary).
     */
    cpuCount: z.int().check(
      z.minimum(ENCLAVE_LIMITS.minCpuCount),
      z.maximum(ENCLAVE_LIMITS.maxCpuCount),
      z.refine((n) => n % 2 === 0, 'must be even: enclaves take whole cores (2 vCPUs each)'),
    ),
    /** Enclave memory in MiB; it must also hold the image (EIF) the enclave boots from. */
    memoryMiB: z.int().check(z.minimum(ENCLAVE_LIMITS.minMemoryMiB), z.maximum(ENCLAVE_LIMITS.maxMemoryMiB)),
    /** The parent instance's encrypted EBS volume (the enclave itself has no disk). */
    storageGiB: z
      .int()
      .check(z.minimum(ENCLAVE_LIMITS.minStorageGiB), z.maximum(ENCLAVE_LIMITS.maxStorageGiB)),
  }),
);
export type EnclaveResources = z.infer<typeof EnclaveResourcesSchema>;

export const NetworkPoliciesSchema = z.lazy(() =>
  z.strictObject({
    ingress: z.array(IngressRuleSchema).check(z.maxLength(ENCLAVE_LIMITS.maxRulesPerDirection)),
    egress: z.array(EgressRuleSchema).check(z.maxLength(ENCLAVE_LIMITS.maxRulesPerDirection)),
    encryptionRequired: z.boolean(),
    minTlsVersion: z.enum(['1.2', '1.3']),
  }),
);
export type NetworkPolicies = z.infer<typeof NetworkPoliciesSchema>;

export const SecurityPoliciesSchema = z.lazy(() =>
  z.strictObject({
    secureBoot: z.boolean(),
    measuredBoot: z.boolean(),
    /** PCR8 values (SHA-384 of the EIF signing certificate) whose images may run; empty = unsigned allowed. */
    allowedSigners: z.array(Sha384HexSchema).check(
      z.maxLength(ENCLAVE_LIMITS.maxAllowedSigners),
      z.refine((s) => new Set(s).size === s.length, 'allowedSigners must be unique'),
    ),
    /**
     * Debug mode exposes the enclave's console and zeroes PCR0/1/2 in its attestation: refused outside the
     * local stack (enforced by the compatibility check, which knows where it runs).
     */
    debugMode: z.boolean(),
  }),
);
export type SecurityPolicies = z.infer<typeof SecurityPoliciesSchema>;

export const ObservabilitySchema = z.lazy(() =>
  z.strictObject({
    /** The parent agent reports runtime metrics (`POST /enclaves/{id}/metrics`). */
    metricsEnabled: z.boolean(),
    /** The enclave's logs are forwarded over vsock to the parent and on to the log service. */
    logForwarding: z.boolean(),
  }),
);
export type Observability = z.infer<typeof ObservabilitySchema>;

/** The image to run, identified by its measurements as `nitro-cli describe-eif` prints them. */
/** EC2's limit on a tag value: the image URL reaches the parent as an instance tag. */
const MAX_IMAGE_URL_LENGTH = 256;

/**
 * Where the parent fetches this enclave's EIF, and its SHA-256 (pinned: a replaced file is refused before
 * it runs; the attestation then proves it is the approved image). A plain HTTPS URL on a host name, no
 * credentials, no IP literal, and only characters that need no quoting; reachable from the parents'
 * subnets without credentials. Without it, parents fetch the deployment's default EIF.
 */
export const EnclaveImageSourceSchema = z.lazy(() =>
  z.strictObject({
    url: z.string().check(
      z.maxLength(MAX_IMAGE_URL_LENGTH),
      z.regex(
        // The last label starts with a letter: no IPv4 literal in any notation (dotted, hex, octal) passes.
        /^https:\/\/([A-Za-z0-9-]+\.)+[A-Za-z][A-Za-z0-9-]*(:443)?\/[A-Za-z0-9._~/%+=&?-]*$/,
        'an https URL on a host name (no credentials, no IP address, port 443), with a path',
      ),
    ),
    sha256: z.string().check(z.regex(/^[0-9a-f]{64}$/, '64 lowercase hex digits (sha256sum of the EIF)')),
  }),
);
export type EnclaveImageSource = z.infer<typeof EnclaveImageSourceSchema>;

export const EnclaveImageSchema = z.lazy(() =>
  z.strictObject({
    // Not all zeros (what a debug-mode enclave reports): the same rule as a measurement set's.
    pcr0: ImagePcrHexSchema,
    pcr1: ImagePcrHexSchema,
    pcr2: ImagePcrHexSchema,
    /** The signing certificate's measurement, printed by describe-eif for signed images. */
    pcr8: z.optional(Sha384HexSchema),
    name: z.optional(text({ min: 1, max: 200 })),
    version: z.optional(text({ min: 1, max: 64 })),
    source: z.optional(EnclaveImageSourceSchema),
  }),
);
export type EnclaveImage = z.infer<typeof EnclaveImageSchema>;

/**
 * The most an enclave's configuration may take, measured as its database row carries it
 * (`storedJsonBytes`): an enclave is read as one row, which the RDS Data API refuses over 64 KB; the rest of
 * the row (attestation with up to 32 PCRs, metrics, name, ids) stays under 8 KB.
 */
export const MAX_ENCLAVE_CONFIGURATION_BYTES = 32 * 1024;

/** What an enclave runs and how it is fenced; strictly validated, every list and string bounded. */
export const EnclaveConfigurationSchema = z.lazy(() =>
  z
    .strictObject({
      resources: EnclaveResourcesSchema,
      networkPolicies: NetworkPoliciesSchema,
      securityPolicies: SecurityPoliciesSchema,
      observability: ObservabilitySchema,
      image: EnclaveImageSchema,
    })
    .check(
      z.superRefine((config, ctx) => {
        const bytes = storedJsonBytes(config);
        if (bytes > MAX_ENCLAVE_CONFIGURATION_BYTES) {
          ctx.addIssue({
            code: 'custom',
            path: [],
            message: `the configuration takes ${bytes} bytes stored; at most ${MAX_ENCLAVE_CONFIGURATION_BYTES}`,
          });
        }
        const { pcr8 } = config.image;
        const signers = config.securityPolicies.allowedSigners;
        if (pcr8 !== undefined && signers.length > 0 && !signers.includes(pcr8)) {
          ctx.addIssue({
            code: 'custom',
            path: ['image', 'pcr8'],
            message:
              'the image is signed by a certificate that securityPolicies.allowedSigners does not list',
          });
        }
      }),
    ),
);
export type EnclaveConfiguration = z.infer<typeof EnclaveConfigurationSchema>;

// ---------------------------------------------------------------------------------------------------------
// Requests

/** A human name; also an EC2 tag value, hence one line of plain text. */
export const EnclaveNameSchema = z.lazy(() => text({ min: 1, max: 128 }));

/** `POST /enclaves` as the deployed API accepts it: strict, so a `simulation` field is refused. */
const createEnclaveShape = () => ({
  name: EnclaveNameSchema,
  contractId: IdSchema,
  region: AwsRegionSchema,
  configuration: EnclaveConfigurationSchema,
});
export const CreateEnclaveSchema = z.lazy(() => z.strictObject(createEnclaveShape()));
export type CreateEnclave = z.infer<typeof CreateEnclaveSchema>;

/** The local stack's fault injection (never accepted by the deployed API). */
export const SimulationSchema = z.lazy(() => z.strictObject({ fault: z.enum(SIMULATION_FAULTS) }));
export type Simulation = z.infer<typeof SimulationSchema>;

/** `POST /enclaves` in the local stack only: the create body plus an optional `simulation`. */
export const LocalCreateEnclaveSchema = z.lazy(() =>
  z.strictObject({
    ...createEnclaveShape(),
    simulation: z.optional(SimulationSchema).register(z.globalRegistry, {
      description:
        'Local stack only: the fault the simulated parent agent plays. Refused (400) by the deployed API.',
    }),
  }),
);
export type LocalCreateEnclave = z.infer<typeof LocalCreateEnclaveSchema>;

/** `PUT /enclaves/{id}`: a complete new configuration, optionally with a new name. */
export const UpdateEnclaveSchema = z.lazy(() =>
  z.strictObject({
    name: z.optional(EnclaveNameSchema),
    configuration: EnclaveConfigurationSchema,
  }),
);
export type UpdateEnclave = z.infer<typeof UpdateEnclaveSchema>;

// ---------------------------------------------------------------------------------------------------------
// Stored state

/**
 * The outcome of the last attestation check: the trusted claims when verified, the failure code when
 * refused (claims of a refused document are not trusted, so none are kept), or `voided` when the enclave
 * was suspended: a suspended enclave's attestation vouches for nothing any more (it must attest again,
 * through the provisioning workflow, before it may run), but the record of why it stopped is kept.
 */
export const EnclaveAttestationSchema = z.lazy(() =>
  z.discriminatedUnion('verdict', [
    z.strictObject({
      verdict: z.literal('verified'),
      verifiedAt: InstantSchema,
      moduleId: z.string().check(z.maxLength(255)),
      /** The document's own timestamp (the NSM clock), ISO-8601. */
      documentTimestamp: InstantSchema,
      /** PCR index (as a string key) → lower-case hex, e.g. `{ "0": "…", "4": "…" }`. */
      pcrs: z.record(z.string().check(z.regex(/^\d{1,2}$/)), z.string().check(z.regex(/^[0-9a-f]{96}$/))),
      /** The approved measurement set the document matched. */
      measurementSetId: z.nullable(IdSchema),
    }),
    z.strictObject({
      verdict: z.literal('refused'),
      verifiedAt: InstantSchema,
      /** The attestation library's failure code, e.g. `pcr_mismatch`. */
      code: z.string().check(z.maxLength(64)),
      message: z.string().check(z.maxLength(1000)),
    }),
    z.strictObject({
      verdict: z.literal('voided'),
      voidedAt: InstantSchema,
      /** Why the attestation stopped vouching, e.g. the suspension's reason. */
      reason: z.string().check(z.maxLength(1000)),
    }),
  ]),
);
export type EnclaveAttestation = z.infer<typeof EnclaveAttestationSchema>;

/** Runtime metrics the parent agent reports (`POST /enclaves/{id}/metrics`); the latest is kept. */
/** The fields of {@link EnclaveMetricsSchema}, for the schemas that extend it. */
export const enclaveMetricsShape = () => ({
  reportedAt: InstantSchema,
  cpuUtilizationPercent: z.number().check(z.minimum(0), z.maximum(100)),
  memoryUsedMiB: z.int().check(z.minimum(0), z.maximum(ENCLAVE_LIMITS.maxMemoryMiB)),
  storageUsedGiB: z.optional(z.number().check(z.minimum(0), z.maximum(ENCLAVE_LIMITS.maxStorageGiB))),
  networkInBytes: z.optional(z.int().check(z.minimum(0), z.maximum(Number.MAX_SAFE_INTEGER))),
  networkOutBytes: z.optional(z.int().check(z.minimum(0), z.maximum(Number.MAX_SAFE_INTEGER))),
  uptimeSeconds: z.optional(z.int().check(z.minimum(0), z.maximum(Number.MAX_SAFE_INTEGER))),
});
export const EnclaveMetricsSchema = z.lazy(() => z.strictObject(enclaveMetricsShape()));
export type EnclaveMetrics = z.infer<typeof EnclaveMetricsSchema>;

/** An enclave as stored and returned by the API. */
export interface EnclaveData {
  readonly id: string;
  readonly name: string;
  /** The contract's provider (the data owner): enclaves are listed under it as in the seed. */
  readonly providerId: string;
  readonly contractId: string;
  readonly status: EnclaveStatus;
  /** The last attestation verdict (`voided` after a suspension), or null before the first one. */
  readonly attestation: EnclaveAttestation | null;
  readonly configuration: EnclaveConfiguration;
  /**
   * The latest runtime metrics sample, or null until the agent reports. Metrics are high-frequency and not
   * state changes: a report stores the sample in `enclave_metrics` and overwrites this column in place,
   * without a version bump, an audit record or an event (so it never invalidates an ETag). The history is
   * `GET /enclaves/{id}/metrics`.
   */
  readonly metrics: EnclaveMetrics | null;
  /** The AWS region the parent instance runs in. */
  readonly region: string;
  /** Row version: changes with every write; the ETag. */
  readonly version: number;
  /** The parent EC2 instance, once launched. */
  readonly instanceId: string | null;
  /** The provisioning workflow execution in flight (or last run), or null before the first. */
  readonly executionArn: string | null;
  /** Why the enclave is in its status (e.g. the failure reason), or null. */
  readonly statusReason: string | null;
  readonly createdAt: string;
  readonly updatedAt: string;
}

/**
 * A new enclave as `POST /enclaves` stores it: `Initializing`, version 1, no parent, attestation, metrics,
 * execution or reason yet.
 */
export function newEnclave(
  fields: Pick<EnclaveData, 'id' | 'name' | 'providerId' | 'contractId' | 'configuration' | 'region'>,
  at: string,
): EnclaveData {
  return {
    ...fields,
    status: 'Initializing',
    attestation: null,
    metrics: null,
    version: 1,
    instanceId: null,
    executionArn: null,
    statusReason: null,
    createdAt: at,
    updatedAt: at,
  };
}

/**
 * The provisioning workflow execution's name: what a party or an operator needs to find the execution (the
 * Step Functions console searches by name). The ARN also carries the account id and the state machine's
 * name, which parties have no use for, so the API never shows it.
 */
export function provisioningIdOf(executionArn: string | null): string | null {
  return executionArn === null ? null : (executionArn.split(':').at(-1) ?? null);
}

/** An enclave as the API shows it: the stored record with the provisioning reference for the ARN. */
export type EnclaveView = Omit<EnclaveData, 'executionArn'> & { readonly provisioningId: string | null };

export function enclaveView(e: EnclaveData): EnclaveView {
  const { executionArn, ...rest } = e;
  return { ...rest, provisioningId: provisioningIdOf(executionArn) };
}

/**
 * An enclave as lists show it: no configuration but its image's identity, no metrics, and only the verdict
 * of its attestation. A page of 100 stays far below the Data API's 1 MiB response whatever the enclaves
 * hold; `GET /enclaves/{id}` returns the whole record.
 */
export interface EnclaveSummary {
  readonly id: string;
  readonly name: string;
  readonly providerId: string;
  readonly contractId: string;
  readonly status: EnclaveStatus;
  readonly region: string;
  readonly image: Omit<EnclaveImage, 'source'>;
  readonly attestationVerdict: EnclaveAttestation['verdict'] | null;
  readonly version: number;
  readonly instanceId: string | null;
  readonly provisioningId: string | null;
  readonly statusReason: string | null;
  readonly createdAt: string;
  readonly updatedAt: string;
}

/** True for the statuses no action leaves. */
export function isFinalEnclaveStatus(status: EnclaveStatus): boolean {
  return FINAL_ENCLAVE_STATUSES.includes(status);
}
