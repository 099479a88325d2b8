import type { ContractStatus } from './contract.ts';
import { validityWindowAt } from './contract-lifecycle.ts';
import type { ContractTerms } from './contract-terms.ts';
import type { EnclaveConfiguration, PortSpec } from './enclave.ts';
import { type FieldIssue, UnprocessableError } from './errors.ts';

/**
 * Does an enclave satisfy its contract? The contract's terms speak in policy words (an encryption level,
 * network isolation, audit logging, data residency); this module maps each to concrete checks on the
 * enclave's configuration and region, and lists every one that fails, so a client fixes them in one round.
 *
 * | requirement code                    | when it applies                        | what must hold |
 * |-------------------------------------|----------------------------------------|----------------|
 * | `contract-not-active`               | always                                 | contract status is `Active` |
 * | `contract-outside-validity`         | always                                 | `now` ∈ [`validity.start`, `validity.end`) |
 * | `region-outside-data-residency`     | always                                 | region ∈ `compliance.dataResidency` |
 * | `region-not-served`                 | a deployment region is known           | region is the deployment's (parents launch there) |
 * | `encryption-not-required`           | every level (Standard and up)          | `networkPolicies.encryptionRequired` |
 * | `tls-below-1.3`                     | High, Military                         | `minTlsVersion` is `1.3` |
 * | `debug-mode-forbidden-by-encryption`| High, Military                         | `debugMode` false, even locally |
 * | `secure-boot-off`                   | High, Military                         | `secureBoot` |
 * | `measured-boot-off`                 | Military                               | `measuredBoot` |
 * | `unsigned-image-allowed`            | Military                               | `allowedSigners` non-empty |
 * | `egress-not-named-tls`              | Military                               | each egress rule: `host`, tcp, port 443 |
 * | `egress-not-isolated`               | `networkIsolation`                     | each egress rule: `host`, or a CIDR of /24 (IPv4) or /64 (IPv6) or narrower |
 * | `ingress-from-anywhere`             | `networkIsolation`                     | no ingress CIDR with prefix /0 |
 * | `metrics-off-with-audit-logging`    | `auditLogging`                         | `observability.metricsEnabled` |
 * | `log-forwarding-off-with-audit-logging` | `auditLogging`                     | `observability.logForwarding` |
 * | `debug-mode-outside-local-stack`    | not the local stack                    | `debugMode` false |
 *
 * TLS ≥ 1.2 (the Standard floor) needs no rule: the schema admits no lower version.
 *
 * The validity window is checked at `context.now` beside the status, not through it: the expiry sweep marks
 * an ended contract `Expired` only on its next run, and no enclave may be created, resumed or provisioned
 * under it in between.
 *
 * Rules are independent: a debug-mode enclave under a High contract outside the local stack fails both debug
 * rules, because each names a different reason a client must know about. Debug mode is therefore accepted
 * only in the local stack and only under a Standard contract.
 */

export const COMPATIBILITY_REQUIREMENTS = [
  'contract-not-active',
  'contract-outside-validity',
  'region-outside-data-residency',
  'region-not-served',
  'encryption-not-required',
  'tls-below-1.3',
  'debug-mode-forbidden-by-encryption',
  'secure-boot-off',
  'measured-boot-off',
  'unsigned-image-allowed',
  'egress-not-named-tls',
  'egress-not-isolated',
  'ingress-from-anywhere',
  'metrics-off-with-audit-logging',
  'log-forwarding-off-with-audit-logging',
  'debug-mode-outside-local-stack',
] as const;
/** A stable code naming one unmet requirement; clients may match on it. */
export type CompatibilityRequirement = (typeof COMPATIBILITY_REQUIREMENTS)[number];

/** One unmet requirement: a `FieldIssue` (so it renders in problem+json `errors`) plus its stable code. */
export interface UnmetRequirement extends FieldIssue {
  readonly requirement: CompatibilityRequirement;
}

/** The parts of a contract the check reads. */
export interface CompatibilityContract {
  readonly status: ContractStatus;
  readonly terms: {
    readonly security: Pick<
      ContractTerms['security'],
      'encryptionLevel' | 'networkIsolation' | 'auditLogging'
    >;
    readonly compliance: Pick<ContractTerms['compliance'], 'dataResidency'>;
    readonly validity: Pick<ContractTerms['validity'], 'start' | 'end'>;
  };
}

/** The parts of an enclave the check reads (a parsed create body or a stored enclave). */
export interface CompatibilityEnclave {
  readonly region: string;
  readonly configuration: EnclaveConfiguration;
}

export interface CompatibilityContext {
  /** The instant checked against the contract's validity window (the caller's clock: `deps.now()`). */
  readonly now: Date;
  /** True only in the local stack (the Nitro simulator), where debug-mode enclaves may be tried. */
  readonly localStack: boolean;
  /**
   * The region this deployment launches enclave parents in (the state machine's RunInstances runs there):
   * an enclave declaring another region would run outside the region its contract's data residency was
   * checked against. Undefined skips the rule (pure unit checks).
   */
  readonly deploymentRegion?: string | undefined;
}

/** The widest egress CIDR network isolation allows: a /24 is one subnet-sized service, not "the internet". */
export const ISOLATED_EGRESS_MIN_PREFIX = { ipv4: 24, ipv6: 64 } as const;

const LEVEL_RANK = { Standard: 0, High: 1, Military: 2 } as const;

/** Prefix length and family of a CIDR block the schema has already validated. */
function cidrPrefix(cidr: string): { family: 'ipv4' | 'ipv6'; prefix: number } {
  const slash = cidr.lastIndexOf('/');
  return { family: cidr.includes(':') ? 'ipv6' : 'ipv4', prefix: Number(cidr.slice(slash + 1)) };
}

/** True when the rule opens exactly `port` (written as a number or as a one-port range). */
function isOnlyPort(spec: PortSpec, port: number): boolean {
  return typeof spec === 'number' ? spec === port : spec.from === port && spec.to === port;
}

const NET = 'configuration.networkPolicies';
const SEC = 'configuration.securityPolicies';
const OBS = 'configuration.observability';

/**
 * Lists every requirement of `contract` that `enclave` does not meet; empty means compatible. Deterministic:
 * the order is the table's (see the module comment), then rule index.
 * @example
 * const unmet = checkCompatibility(contract, { region, configuration }, { localStack: false, now: deps.now() });
 * if (unmet.length) throw incompatibleError(unmet);
 */
export function checkCompatibility(
  contract: CompatibilityContract,
  enclave: CompatibilityEnclave,
  context: CompatibilityContext,
): UnmetRequirement[] {
  const unmet: UnmetRequirement[] = [];
  const add = (requirement: CompatibilityRequirement, field: string, message: string) =>
    unmet.push({ requirement, field, message });
  const { security, compliance } = contract.terms;
  const { networkPolicies: net, securityPolicies: sec, observability: obs } = enclave.configuration;
  const rank = LEVEL_RANK[security.encryptionLevel];
  const level = security.encryptionLevel;

  if (contract.status !== 'Active') {
    add('contract-not-active', 'contractId', `the contract is ${contract.status}; it must be Active`);
  }
  const window = validityWindowAt(contract.terms.validity, context.now);
  if (window.reason) {
    add(
      'contract-outside-validity',
      'contractId',
      window.position === 'ended'
        ? `${window.reason}; no enclave may run under it any more`
        : `${window.reason}; no enclave may run under it before`,
    );
  }
  if (!compliance.dataResidency.includes(enclave.region)) {
    add(
      'region-outside-data-residency',
      'region',
      `${enclave.region} is outside the contract's data residency (${compliance.dataResidency.join(', ')})`,
    );
  }

  if (context.deploymentRegion !== undefined && enclave.region !== context.deploymentRegion) {
    add(
      'region-not-served',
      'region',
      `this deployment runs enclaves in ${context.deploymentRegion} only, not ${enclave.region}`,
    );
  }

  // Encryption level: each level includes the requirements of the ones below it.
  if (!net.encryptionRequired) {
    add(
      'encryption-not-required',
      `${NET}.encryptionRequired`,
      `${level} encryption requires encrypted traffic`,
    );
  }
  if (rank >= LEVEL_RANK.High) {
    if (net.minTlsVersion !== '1.3') {
      add('tls-below-1.3', `${NET}.minTlsVersion`, `${level} encryption requires TLS 1.3 at least`);
    }
    if (sec.debugMode) {
      add(
        'debug-mode-forbidden-by-encryption',
        `${SEC}.debugMode`,
        `${level} encryption forbids debug mode (it exposes the enclave's console), even locally`,
      );
    }
    if (!sec.secureBoot)
      add('secure-boot-off', `${SEC}.secureBoot`, `${level} encryption requires secure boot`);
  }
  if (rank >= LEVEL_RANK.Military) {
    if (!sec.measuredBoot) {
      add('measured-boot-off', `${SEC}.measuredBoot`, 'Military encryption requires measured boot');
    }
    if (sec.allowedSigners.length === 0) {
      add(
        'unsigned-image-allowed',
        `${SEC}.allowedSigners`,
        'Military encryption requires signed images: list at least one allowed signer (PCR8)',
      );
    }
    // Only TLS to named services may leave: a host entry is what the vsock proxy pins and what an auditor
    // can read; an IP range cannot be tied to a service, and non-TLS traffic cannot be held to TLS 1.3.
    net.egress.forEach((rule, i) => {
      if (rule.host === undefined || rule.protocol !== 'tcp' || !isOnlyPort(rule.port, 443)) {
        add(
          'egress-not-named-tls',
          `${NET}.egress.${i}`,
          'Military encryption allows egress only to a named host over tcp port 443',
        );
      }
    });
  }

  if (security.networkIsolation) {
    net.egress.forEach((rule, i) => {
      if (rule.cidr === undefined) return; // a host entry is an explicit allowlist entry
      const { family, prefix } = cidrPrefix(rule.cidr);
      const min = ISOLATED_EGRESS_MIN_PREFIX[family];
      if (prefix < min) {
        add(
          'egress-not-isolated',
          `${NET}.egress.${i}.cidr`,
          `network isolation allows egress only to allowlisted hosts or ${family} blocks of /${min} or narrower; ${rule.cidr} is wider`,
        );
      }
    });
    net.ingress.forEach((rule, i) => {
      if (cidrPrefix(rule.cidr).prefix === 0) {
        add(
          'ingress-from-anywhere',
          `${NET}.ingress.${i}.cidr`,
          `network isolation forbids ingress from anywhere (${rule.cidr})`,
        );
      }
    });
  }

  if (security.auditLogging) {
    if (!obs.metricsEnabled) {
      add(
        'metrics-off-with-audit-logging',
        `${OBS}.metricsEnabled`,
        'the contract requires audit logging: enable metrics',
      );
    }
    if (!obs.logForwarding) {
      add(
        'log-forwarding-off-with-audit-logging',
        `${OBS}.logForwarding`,
        'the contract requires audit logging: enable log forwarding',
      );
    }
  }

  if (sec.debugMode && !context.localStack) {
    add(
      'debug-mode-outside-local-stack',
      `${SEC}.debugMode`,
      'debug mode is refused outside the local stack (a debug enclave cannot be attested)',
    );
  }
  return unmet;
}

/** The 422 that lists every unmet requirement, for the API and the workflow's Validate step. */
export function incompatibleError(unmet: readonly UnmetRequirement[]): UnprocessableError {
  return new UnprocessableError(
    'enclave-incompatible',
    'Enclave does not satisfy its contract',
    `The enclave does not meet ${unmet.length} requirement(s) of its contract.`,
    unmet,
  );
}

/**
 * Throws the 422 listing every unmet requirement, or returns when the enclave is compatible.
 * @throws UnprocessableError (`enclave-incompatible`) with one `errors` entry per unmet requirement.
 */
export function assertCompatible(
  contract: CompatibilityContract,
  enclave: CompatibilityEnclave,
  context: CompatibilityContext,
): void {
  const unmet = checkCompatibility(contract, enclave, context);
  if (unmet.length > 0) throw incompatibleError(unmet);
}
