import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  CreateEnclaveSchema,
  EgressRuleSchema,
  EnclaveAttestationSchema,
  EnclaveConfigurationSchema,
  EnclaveMetricsSchema,
  IngressRuleSchema,
  LocalCreateEnclaveSchema,
  SIMULATION_FAULTS,
  UpdateEnclaveSchema,
} from '../../shared/domain/enclave.ts';
import * as z from '../../shared/domain/zod.ts';

const PCR0 = 'A1'.repeat(48);
const PCR1 = 'b2'.repeat(48);
const PCR2 = 'c3'.repeat(48);
const SIGNER = 'd4'.repeat(48);

/** A complete, valid configuration as a client would send it (plain JSON, no parsed values). */
function configJson(): Record<string, unknown> {
  return {
    resources: { cpuCount: 2, memoryMiB: 4096, storageGiB: 50 },
    networkPolicies: {
      ingress: [{ protocol: 'tcp', port: 8443, cidr: '10.0.0.0/16' }],
      egress: [
        { protocol: 'tcp', port: 443, host: 'kms.eu-central-1.amazonaws.com' },
        { protocol: 'tcp', port: { from: 5432, to: 5433 }, cidr: '10.1.2.0/24' },
      ],
      encryptionRequired: true,
      minTlsVersion: '1.3',
    },
    securityPolicies: { secureBoot: true, measuredBoot: true, allowedSigners: [SIGNER], debugMode: false },
    observability: { metricsEnabled: true, logForwarding: true },
    image: { pcr0: PCR0, pcr1: PCR1, pcr2: PCR2, pcr8: SIGNER, name: 'trainer', version: '1.0.0' },
  };
}

const createJson = () => ({
  name: 'training-enclave',
  contractId: '99999999-9999-4999-8999-999999999999',
  region: 'eu-central-1',
  configuration: configJson(),
});

/** Sets `value` at `path` in a deep copy of `obj` (a `undefined` value removes the key). */
function withValue(obj: unknown, path: (string | number)[], value: unknown): Record<string, unknown> {
  const copy = structuredClone(obj) as Record<string, unknown>;
  let cursor: Record<string | number, unknown> = copy;
  for (const key of path.slice(0, -1)) cursor = cursor[key] as Record<string | number, unknown>;
  const last = path.at(-1)!;
  if (value === undefined) delete cursor[last];
  else cursor[last] = value;
  return copy;
}

const issuePaths = (result: { success: boolean; error?: z.core.$ZodError }) =>
  result.error?.issues.map((i) => i.path.join('.')) ?? [];

describe('EnclaveConfigurationSchema', () => {
  it('accepts a complete configuration and normalises measurements to lower case', () => {
    const config = EnclaveConfigurationSchema.parse(configJson());
    expect(config.image.pcr0).toBe(PCR0.toLowerCase());
    expect(config.image.pcr1).toBe(PCR1);
    expect(config.securityPolicies.allowedSigners).toEqual([SIGNER]);
  });

  it('normalises allowlisted host names to lower case', () => {
    const rule = EgressRuleSchema.parse({
      protocol: 'tcp',
      port: 443,
      host: 'KMS.EU-Central-1.amazonaws.com',
    });
    expect(rule.host).toBe('kms.eu-central-1.amazonaws.com');
  });

  const BAD: [string, (string | number)[], unknown][] = [
    ['odd vCPU count (enclaves take whole cores)', ['resources', 'cpuCount'], 3],
    ['vCPU count below 2', ['resources', 'cpuCount'], 0],
    ['vCPU count above 64', ['resources', 'cpuCount'], 66],
    ['fractional vCPU count', ['resources', 'cpuCount'], 2.5],
    ['memory below 512 MiB', ['resources', 'memoryMiB'], 256],
    ['memory above 256 GiB', ['resources', 'memoryMiB'], 262_145],
    ['memory as a string', ['resources', 'memoryMiB'], '4096'],
    ['storage of 0 GiB', ['resources', 'storageGiB'], 0],
    ['storage above 16 TiB', ['resources', 'storageGiB'], 16_385],
    ['port 0', ['networkPolicies', 'ingress', 0, 'port'], 0],
    ['port 65536', ['networkPolicies', 'ingress', 0, 'port'], 65_536],
    ['an inverted port range', ['networkPolicies', 'egress', 1, 'port'], { from: 9000, to: 8000 }],
    ['an unknown protocol', ['networkPolicies', 'ingress', 0, 'protocol'], 'icmp'],
    ['an IPv4 CIDR with a /33 prefix', ['networkPolicies', 'ingress', 0, 'cidr'], '10.0.0.0/33'],
    ['a bare IP address as a CIDR', ['networkPolicies', 'ingress', 0, 'cidr'], '10.0.0.1'],
    ['an IPv6 CIDR with a /129 prefix', ['networkPolicies', 'ingress', 0, 'cidr'], '2001:db8::/129'],
    ['a host name on an ingress rule', ['networkPolicies', 'ingress', 0, 'host'], 'example.com'],
    ['a wildcard host', ['networkPolicies', 'egress', 0, 'host'], '*.amazonaws.com'],
    ['a single-label host', ['networkPolicies', 'egress', 0, 'host'], 'localhost'],
    ['an egress rule with both cidr and host', ['networkPolicies', 'egress', 0, 'cidr'], '10.0.0.0/24'],
    ['an egress rule with neither cidr nor host', ['networkPolicies', 'egress', 0, 'host'], undefined],
    ['TLS 1.1', ['networkPolicies', 'minTlsVersion'], '1.1'],
    ['encryptionRequired as a string', ['networkPolicies', 'encryptionRequired'], 'true'],
    ['a short PCR8 signer', ['securityPolicies', 'allowedSigners', 0], 'ab'.repeat(47)],
    ['a non-hex PCR0', ['image', 'pcr0'], 'zz'.repeat(48)],
    ['an all-zero PCR0 (what debug mode reports)', ['image', 'pcr0'], '0'.repeat(96)],
    ['an image signed by a signer not allowed', ['image', 'pcr8'], 'ee'.repeat(48)],
    ['missing observability', ['observability'], undefined],
    ['an unknown key in resources', ['resources', 'gpuCount'], 1],
    ['an unknown top-level key', ['kmsKeyArn'], 'arn:aws:kms:…'],
    ...(
      [
        ['plain http', 'http://artifacts.example.com/train.eif'],
        ['credentials in the URL', 'https://user:secret@artifacts.example.com/train.eif'],
        ['an IP address', 'https://10.0.0.5/train.eif'],
        ['a hex IP address (curl reads it as 169.254.169.254)', 'https://0xa9.0xfe.0xa9.0xfe/x.eif'],
        ['an octal IP address', 'https://0177.0.0.1/x.eif'],
        ['an IPv6 address', 'https://[::1]/x.eif'],
        ['another port', 'https://artifacts.example.com:8443/train.eif'],
        ['a single-label host', 'https://localhost/train.eif'],
        ['no path', 'https://artifacts.example.com'],
        ['a quote (shell)', "https://artifacts.example.com/train'$(id).eif"],
        ['a space', 'https://artifacts.example.com/train 1.eif'],
        ['more than a tag value holds', `https://artifacts.example.com/${'a'.repeat(240)}.eif`],
      ] as const
    ).map(
      ([why, url]) =>
        [`an image source with ${why}`, ['image', 'source'], { url, sha256: 'ab'.repeat(32) }] as [
          string,
          (string | number)[],
          unknown,
        ],
    ),
    [
      'an image source with an upper-case digest',
      ['image', 'source'],
      { url: 'https://a.example.com/x.eif', sha256: 'AB'.repeat(32) },
    ],
    ['an image source without a digest', ['image', 'source'], { url: 'https://a.example.com/x.eif' }],
  ];

  it.each(BAD)('refuses %s', (_why, path, value) => {
    const result = EnclaveConfigurationSchema.safeParse(withValue(configJson(), path, value));
    expect(result.success).toBe(false);
    // the issue points into the part that was broken
    const prefix = path.slice(0, 2).join('.');
    expect(issuePaths(result).some((p) => p.startsWith(prefix) || prefix.startsWith(p))).toBe(true);
  });

  it('refuses more than 50 rules per direction and duplicate or more than 10 signers', () => {
    const rule = { protocol: 'tcp', port: 443, cidr: '10.0.0.0/24' };
    for (const [path, value] of [
      [['networkPolicies', 'ingress'], Array(51).fill(rule)],
      [['networkPolicies', 'egress'], Array(51).fill(rule)],
      [
        ['securityPolicies', 'allowedSigners'],
        [SIGNER, SIGNER.toUpperCase()],
      ],
      [
        ['securityPolicies', 'allowedSigners'],
        Array.from({ length: 11 }, (_, i) => i.toString(16).repeat(96)),
      ],
    ] as const) {
      expect(EnclaveConfigurationSchema.safeParse(withValue(configJson(), [...path], value)).success).toBe(
        false,
      );
    }
    expect(
      EnclaveConfigurationSchema.safeParse(
        withValue(configJson(), ['networkPolicies', 'egress'], Array(50).fill(rule)),
      ).success,
    ).toBe(true);
  });

  it('accepts IPv6 CIDRs, one-port ranges and unsigned images without signers', () => {
    let json = withValue(configJson(), ['networkPolicies', 'ingress', 0, 'cidr'], '2001:db8::/56');
    json = withValue(json, ['networkPolicies', 'egress', 1, 'port'], { from: 443, to: 443 });
    json = withValue(json, ['securityPolicies', 'allowedSigners'], []);
    json = withValue(json, ['image', 'pcr8'], undefined);
    expect(EnclaveConfigurationSchema.safeParse(json).success).toBe(true);
  });

  it("accepts an image source: the enclave's own EIF over https, pinned by its SHA-256", () => {
    const source = {
      url: 'https://artifacts.provider.example:443/eif/train-1.2.eif?version=7&variant=gpu',
      sha256: '0f'.repeat(32),
    };
    const config = EnclaveConfigurationSchema.parse(withValue(configJson(), ['image', 'source'], source));
    expect(config.image.source).toEqual(source);
  });

  it('lets a rule carry a short description but bounds it', () => {
    const ok = { protocol: 'udp', port: 53, cidr: '10.0.0.2/32', description: 'VPC resolver' };
    expect(IngressRuleSchema.safeParse(ok).success).toBe(true);
    expect(IngressRuleSchema.safeParse({ ...ok, description: 'x'.repeat(201) }).success).toBe(false);
  });
});

describe('create and update bodies', () => {
  it('accepts a complete create body', () => {
    expect(CreateEnclaveSchema.parse(createJson()).configuration.image.pcr0).toBe(PCR0.toLowerCase());
  });

  it.each([
    ['a non-uuid contractId', 'contractId', 'contract-1'],
    ['a made-up region', 'region', 'europe'],
    ['an empty name', 'name', '  '],
    ['a name with a newline', 'name', 'a\nb'],
    ['a name over 128 characters', 'name', 'n'.repeat(129)],
  ])('refuses %s', (_why, key, value) => {
    expect(CreateEnclaveSchema.safeParse({ ...createJson(), [key]: value }).success).toBe(false);
  });

  it('refuses the simulation field in the deployed schema and accepts it only locally', () => {
    for (const fault of SIMULATION_FAULTS) {
      const body = { ...createJson(), simulation: { fault } };
      const deployed = CreateEnclaveSchema.safeParse(body);
      expect(deployed.success).toBe(false);
      expect(deployed.error?.issues[0]?.code).toBe('unrecognized_keys');
      expect(LocalCreateEnclaveSchema.parse(body).simulation).toEqual({ fault });
    }
    expect(LocalCreateEnclaveSchema.safeParse(createJson()).success).toBe(true);
    expect(
      LocalCreateEnclaveSchema.safeParse({ ...createJson(), simulation: { fault: 'meteor' } }).success,
    ).toBe(false);
    // the local schema stays strict everywhere else
    expect(LocalCreateEnclaveSchema.safeParse({ ...createJson(), extra: 1 }).success).toBe(false);
  });

  it('updates the configuration, optionally with a name, and nothing else', () => {
    expect(UpdateEnclaveSchema.safeParse({ configuration: configJson() }).success).toBe(true);
    expect(UpdateEnclaveSchema.safeParse({ name: 'renamed', configuration: configJson() }).success).toBe(
      true,
    );
    expect(UpdateEnclaveSchema.safeParse({ name: 'renamed' }).success).toBe(false);
    expect(UpdateEnclaveSchema.safeParse({ configuration: configJson(), region: 'eu-west-1' }).success).toBe(
      false,
    );
  });

  it('renders as strict JSON Schema for the OpenAPI document', () => {
    for (const schema of [
      CreateEnclaveSchema,
      UpdateEnclaveSchema,
      EnclaveMetricsSchema,
      EnclaveAttestationSchema,
    ]) {
      const json = z.toJSONSchema(schema, { target: 'draft-2020-12', io: 'input', unrepresentable: 'any' });
      expect(JSON.stringify(json)).toContain('"additionalProperties":false');
    }
  });
});

describe('stored attestation and metrics', () => {
  it('keeps claims for a verified document and only the failure for a refused one', () => {
    const verified = {
      verdict: 'verified',
      verifiedAt: '2027-01-01T00:00:00Z',
      moduleId: 'i-0123456789abcdef0-enc0123456789abcdef',
      documentTimestamp: '2027-01-01T00:00:00Z',
      pcrs: { '0': 'a1'.repeat(48), '4': 'b2'.repeat(48) },
      measurementSetId: '77777777-7777-4777-8777-777777777777',
    };
    expect(EnclaveAttestationSchema.safeParse(verified).success).toBe(true);
    expect(EnclaveAttestationSchema.safeParse({ ...verified, verdict: 'refused' }).success).toBe(false);
    expect(
      EnclaveAttestationSchema.safeParse({
        verdict: 'refused',
        verifiedAt: '2027-01-01T00:00:00Z',
        code: 'pcr_mismatch',
        message: 'PCR0 does not match',
      }).success,
    ).toBe(true);
  });

  it('bounds metrics', () => {
    const ok = { reportedAt: '2027-01-01T00:00:00Z', cpuUtilizationPercent: 42.5, memoryUsedMiB: 2048 };
    expect(EnclaveMetricsSchema.safeParse(ok).success).toBe(true);
    expect(EnclaveMetricsSchema.safeParse({ ...ok, cpuUtilizationPercent: 101 }).success).toBe(false);
    expect(EnclaveMetricsSchema.safeParse({ ...ok, memoryUsedMiB: -1 }).success).toBe(false);
    expect(EnclaveMetricsSchema.safeParse({ ...ok, load: 1 }).success).toBe(false);
  });
});

describe('malformed configurations (property)', () => {
  /** Paths into a valid configuration, known and random, at which one value is replaced by any JSON. */
  const path = fc.oneof(
    fc.constantFrom<(string | number)[]>(
      ['resources'],
      ['resources', 'cpuCount'],
      ['networkPolicies', 'ingress'],
      ['networkPolicies', 'ingress', 0, 'cidr'],
      ['networkPolicies', 'egress', 0],
      ['networkPolicies', 'egress', 1, 'port'],
      ['networkPolicies', 'minTlsVersion'],
      ['securityPolicies', 'allowedSigners', 0],
      ['observability', 'logForwarding'],
      ['image'],
      ['image', 'pcr0'],
    ),
    fc.array(fc.oneof(fc.string({ maxLength: 12 }), fc.nat({ max: 3 })), { minLength: 1, maxLength: 4 }),
  );
  const mutated = fc
    .tuple(path, fc.jsonValue())
    .map(([at, value]) => withValueLenient(configJson(), at, value));

  it('either parses or fails with zod issues, never throws', () => {
    fc.assert(
      fc.property(fc.oneof(fc.jsonValue(), fc.anything(), mutated), (input) => {
        for (const schema of [EnclaveConfigurationSchema, CreateEnclaveSchema, LocalCreateEnclaveSchema]) {
          const result = schema.safeParse(input);
          if (!result.success) {
            expect(result.error).toBeInstanceOf(z.core.$ZodError);
            expect(result.error.issues.length).toBeGreaterThan(0);
          }
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('parses every configuration built from valid parts, and parsing is idempotent', () => {
    const hex = fc.stringMatching(/^[0-9a-fA-F]{96}$/).filter((h) => !/^0+$/.test(h));
    const cidr4 = fc
      .tuple(fc.ipV4(), fc.integer({ min: 0, max: 32 }))
      .map(([ip, prefix]) => `${ip}/${prefix}`);
    const port = fc.oneof(
      fc.integer({ min: 1, max: 65_535 }),
      fc
        .tuple(fc.integer({ min: 1, max: 65_535 }), fc.integer({ min: 1, max: 65_535 }))
        .map(([a, b]) => ({ from: Math.min(a, b), to: Math.max(a, b) })),
    );
    const protocol = fc.constantFrom('tcp', 'udp');
    const config = fc.record({
      resources: fc.record({
        cpuCount: fc.integer({ min: 1, max: 32 }).map((n) => n * 2),
        memoryMiB: fc.integer({ min: 512, max: 262_144 }),
        storageGiB: fc.integer({ min: 1, max: 16_384 }),
      }),
      networkPolicies: fc.record({
        ingress: fc.array(fc.record({ protocol, port, cidr: cidr4 }), { maxLength: 5 }),
        egress: fc.array(
          fc.oneof(
            fc.record({ protocol, port, cidr: cidr4 }),
            fc.record({ protocol, port, host: fc.domain() }),
          ),
          { maxLength: 5 },
        ),
        encryptionRequired: fc.boolean(),
        minTlsVersion: fc.constantFrom('1.2', '1.3'),
      }),
      securityPolicies: fc.record({
        secureBoot: fc.boolean(),
        measuredBoot: fc.boolean(),
        allowedSigners: fc.uniqueArray(hex, { maxLength: 3, selector: (h) => h.toLowerCase() }),
        debugMode: fc.boolean(),
      }),
      observability: fc.record({ metricsEnabled: fc.boolean(), logForwarding: fc.boolean() }),
      image: fc.record({ pcr0: hex, pcr1: hex, pcr2: hex }),
    });
    fc.assert(
      fc.property(config, (input) => {
        const parsed = EnclaveConfigurationSchema.parse(input);
        expect(EnclaveConfigurationSchema.parse(parsed)).toEqual(parsed);
      }),
      { numRuns: 500 },
    );
  });
});

/** Like `withValue`, but tolerates paths through non-objects (it then replaces the whole value). */
function withValueLenient(obj: unknown, path: (string | number)[], value: unknown): unknown {
  const copy = structuredClone(obj);
  let cursor: unknown = copy;
  for (const key of path.slice(0, -1)) {
    const next = (cursor as Record<string | number, unknown>)[key];
    if (typeof next !== 'object' || next === null) return value;
    cursor = next;
  }
  (cursor as Record<string | number, unknown>)[path.at(-1)!] = value;
  return copy;
}
