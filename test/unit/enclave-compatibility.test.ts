import { describe, expect, it } from 'vitest';
import { CONTRACT_STATUSES } from '../../shared/domain/contract.ts';
import type { ContractTerms } from '../../shared/domain/contract-terms.ts';
import { type EnclaveConfiguration, EnclaveConfigurationSchema } from '../../shared/domain/enclave.ts';
import {
  assertCompatible,
  COMPATIBILITY_REQUIREMENTS,
  type CompatibilityContract,
  type CompatibilityRequirement,
  checkCompatibility,
} from '../../shared/domain/enclave-compatibility.ts';
import { UnprocessableError } from '../../shared/domain/errors.ts';
import { contractFixture } from '../support/contracts.ts';

const SIGNER = 'd4'.repeat(48);
/** The contract fixture's validity window: [2026-01-01T00:00:00Z, 2030-01-01T00:00:00Z). */
const { start: START, end: END } = contractFixture().terms.validity;
/** An instant inside the window, for every rule that is not about it. */
const NOW = new Date('2027-01-01T00:00:00Z');
const DEPLOYED = { localStack: false, now: NOW };
const LOCAL = { localStack: true, now: NOW };

/** A contract with the strictest terms: Military, network isolation, audit logging, EU only. */
function contract(
  security: Partial<ContractTerms['security']> = {},
  overrides: Partial<CompatibilityContract> = {},
): CompatibilityContract {
  const c = contractFixture({ status: 'Active' });
  return {
    status: c.status,
    terms: {
      ...c.terms,
      security: {
        ...c.terms.security,
        encryptionLevel: 'Military',
        networkIsolation: true,
        auditLogging: true,
        ...security,
      },
      compliance: { ...c.terms.compliance, dataResidency: ['eu-central-1', 'eu-west-1'] },
    },
    ...overrides,
  };
}

/** An enclave that meets the strictest contract; tests break one thing at a time. */
function configuration(): EnclaveConfiguration {
  return EnclaveConfigurationSchema.parse({
    resources: { cpuCount: 2, memoryMiB: 4096, storageGiB: 50 },
    networkPolicies: {
      ingress: [{ protocol: 'tcp', port: 8443, cidr: '10.0.0.0/16' }],
      egress: [{ protocol: 'tcp', port: 443, host: 'kms.eu-central-1.amazonaws.com' }],
      encryptionRequired: true,
      minTlsVersion: '1.3',
    },
    securityPolicies: { secureBoot: true, measuredBoot: true, allowedSigners: [SIGNER], debugMode: false },
    observability: { metricsEnabled: true, logForwarding: true },
    image: { pcr0: 'a1'.repeat(48), pcr1: 'b2'.repeat(48), pcr2: 'c3'.repeat(48), pcr8: SIGNER },
  });
}

type Mutation = (c: EnclaveConfiguration) => void;
const enclave = (mutate: Mutation = () => {}, region = 'eu-central-1') => {
  const c = structuredClone(configuration());
  mutate(c);
  return { region, configuration: c };
};

const codes = (unmet: { requirement: CompatibilityRequirement }[]) => unmet.map((u) => u.requirement);

describe('checkCompatibility', () => {
  it('accepts an enclave that meets every requirement', () => {
    expect(checkCompatibility(contract(), enclave(), DEPLOYED)).toEqual([]);
  });

  it('requires an Active contract', () => {
    for (const status of CONTRACT_STATUSES.filter((s) => s !== 'Active')) {
      expect(checkCompatibility(contract({}, { status }), enclave(), DEPLOYED)).toEqual([
        { requirement: 'contract-not-active', field: 'contractId', message: expect.stringContaining(status) },
      ]);
    }
  });

  describe('the validity window [start, end), checked at the instant given, whatever the status says', () => {
    const at = (iso: string, deltaMs: number) => ({ ...DEPLOYED, now: new Date(Date.parse(iso) + deltaMs) });

    it('accepts from the start instant up to one millisecond before the end', () => {
      expect(checkCompatibility(contract(), enclave(), at(START, 0))).toEqual([]);
      expect(checkCompatibility(contract(), enclave(), at(END, -1))).toEqual([]);
    });

    it('refuses one millisecond before the start, naming the start', () => {
      expect(checkCompatibility(contract(), enclave(), at(START, -1))).toEqual([
        {
          requirement: 'contract-outside-validity',
          field: 'contractId',
          message: `the contract validity window opens at ${START}; no enclave may run under it before`,
        },
      ]);
    });

    it('refuses at the end and one millisecond after, naming the end, while the contract is still Active', () => {
      for (const delta of [0, 1]) {
        expect(checkCompatibility(contract(), enclave(), at(END, delta))).toEqual([
          {
            requirement: 'contract-outside-validity',
            field: 'contractId',
            message: `the contract validity window ended at ${END}; no enclave may run under it any more`,
          },
        ]);
      }
    });

    it('reports both the status and the window once the sweep marked the contract Expired', () => {
      expect(codes(checkCompatibility(contract({}, { status: 'Expired' }), enclave(), at(END, 1)))).toEqual([
        'contract-not-active',
        'contract-outside-validity',
      ]);
    });
  });

  it('limits the region to the data residency', () => {
    expect(checkCompatibility(contract(), enclave(undefined, 'us-east-1'), DEPLOYED)).toEqual([
      {
        requirement: 'region-outside-data-residency',
        field: 'region',
        message: expect.stringContaining('eu-central-1, eu-west-1'),
      },
    ]);
    expect(checkCompatibility(contract(), enclave(undefined, 'eu-west-1'), DEPLOYED)).toEqual([]);
  });

  /** Each rule alone: the mutation, the expected code and field, and the weakest contract that triggers it. */
  const RULES: [CompatibilityRequirement, string, Mutation, Partial<ContractTerms['security']>][] = [
    [
      'encryption-not-required',
      'configuration.networkPolicies.encryptionRequired',
      (c) => {
        c.networkPolicies.encryptionRequired = false;
      },
      { encryptionLevel: 'Standard', networkIsolation: false, auditLogging: false },
    ],
    [
      'tls-below-1.3',
      'configuration.networkPolicies.minTlsVersion',
      (c) => {
        c.networkPolicies.minTlsVersion = '1.2';
      },
      { encryptionLevel: 'High', networkIsolation: false, auditLogging: false },
    ],
    [
      'secure-boot-off',
      'configuration.securityPolicies.secureBoot',
      (c) => {
        c.securityPolicies.secureBoot = false;
      },
      { encryptionLevel: 'High', networkIsolation: false, auditLogging: false },
    ],
    [
      'measured-boot-off',
      'configuration.securityPolicies.measuredBoot',
      (c) => {
        c.securityPolicies.measuredBoot = false;
      },
      { encryptionLevel: 'Military', networkIsolation: false, auditLogging: false },
    ],
    [
      'unsigned-image-allowed',
      'configuration.securityPolicies.allowedSigners',
      (c) => {
        c.securityPolicies.allowedSigners = [];
      },
      { encryptionLevel: 'Military', networkIsolation: false, auditLogging: false },
    ],
    [
      'egress-not-named-tls',
      'configuration.networkPolicies.egress.0',
      (c) => {
        c.networkPolicies.egress = [{ protocol: 'tcp', port: 8080, host: 'registry.example.com' }];
      },
      { encryptionLevel: 'Military', networkIsolation: false, auditLogging: false },
    ],
    [
      'egress-not-isolated',
      'configuration.networkPolicies.egress.0.cidr',
      (c) => {
        c.networkPolicies.egress = [{ protocol: 'tcp', port: 443, cidr: '0.0.0.0/0' }];
      },
      { encryptionLevel: 'Standard', networkIsolation: true, auditLogging: false },
    ],
    [
      'ingress-from-anywhere',
      'configuration.networkPolicies.ingress.0.cidr',
      (c) => {
        c.networkPolicies.ingress = [{ protocol: 'tcp', port: 8443, cidr: '::/0' }];
      },
      { encryptionLevel: 'Standard', networkIsolation: true, auditLogging: false },
    ],
    [
      'metrics-off-with-audit-logging',
      'configuration.observability.metricsEnabled',
      (c) => {
        c.observability.metricsEnabled = false;
      },
      { encryptionLevel: 'Standard', networkIsolation: false, auditLogging: true },
    ],
    [
      'log-forwarding-off-with-audit-logging',
      'configuration.observability.logForwarding',
      (c) => {
        c.observability.logForwarding = false;
      },
      { encryptionLevel: 'Standard', networkIsolation: false, auditLogging: true },
    ],
  ];

  describe.each(RULES)('%s', (code, field, mutate, weakest) => {
    it('is reported alone, at its field, under the weakest contract that asks for it', () => {
      expect(checkCompatibility(contract(weakest), enclave(mutate), DEPLOYED)).toEqual([
        { requirement: code, field, message: expect.any(String) },
      ]);
    });

    it('is reported under the strictest contract too', () => {
      expect(codes(checkCompatibility(contract(), enclave(mutate), DEPLOYED))).toContain(code);
    });
  });

  // encryptionRequired applies at every level: there is no contract below Standard to try
  it.each(RULES.filter(([code]) => code !== 'encryption-not-required'))(
    '%s does not apply below its weakest contract',
    (_code, _field, mutate, weakest) => {
      const below: Partial<ContractTerms['security']> =
        weakest.encryptionLevel === 'High'
          ? { ...weakest, encryptionLevel: 'Standard' }
          : weakest.encryptionLevel === 'Military'
            ? { ...weakest, encryptionLevel: 'High' }
            : { encryptionLevel: 'Standard', networkIsolation: false, auditLogging: false };
      expect(checkCompatibility(contract(below), enclave(mutate), DEPLOYED)).toEqual([]);
    },
  );

  describe('debug mode', () => {
    const debug: Mutation = (c) => {
      c.securityPolicies.debugMode = true;
    };
    const standard = { encryptionLevel: 'Standard', networkIsolation: false, auditLogging: false } as const;

    it('is refused outside the local stack, whatever the contract', () => {
      expect(codes(checkCompatibility(contract(standard), enclave(debug), DEPLOYED))).toEqual([
        'debug-mode-outside-local-stack',
      ]);
    });

    it('is accepted in the local stack under a Standard contract only', () => {
      expect(checkCompatibility(contract(standard), enclave(debug), LOCAL)).toEqual([]);
      for (const encryptionLevel of ['High', 'Military'] as const) {
        expect(checkCompatibility(contract({ ...standard, encryptionLevel }), enclave(debug), LOCAL)).toEqual(
          [
            {
              requirement: 'debug-mode-forbidden-by-encryption',
              field: 'configuration.securityPolicies.debugMode',
              message: expect.stringContaining(encryptionLevel),
            },
          ],
        );
      }
    });

    it('names both reasons under a High contract outside the local stack', () => {
      expect(
        codes(checkCompatibility(contract({ encryptionLevel: 'High' }), enclave(debug), DEPLOYED)),
      ).toEqual(['debug-mode-forbidden-by-encryption', 'debug-mode-outside-local-stack']);
    });
  });

  describe('network isolation', () => {
    const isolated = { encryptionLevel: 'Standard', networkIsolation: true, auditLogging: false } as const;
    const egressTo =
      (cidr: string): Mutation =>
      (c) => {
        c.networkPolicies.egress = [{ protocol: 'tcp', port: 443, cidr }];
      };

    it.each([
      ['10.1.2.0/24', true],
      ['10.1.2.7/32', true],
      ['10.1.0.0/23', false],
      ['0.0.0.0/0', false],
      ['2001:db8:1:2::/64', true],
      ['2001:db8:1:2::/128', true],
      ['2001:db8::/48', false],
      ['::/0', false],
    ])('egress to %s is allowed: %s', (cidr, allowed) => {
      const unmet = checkCompatibility(contract(isolated), enclave(egressTo(cidr)), DEPLOYED);
      expect(codes(unmet)).toEqual(allowed ? [] : ['egress-not-isolated']);
    });

    it('allows allowlisted hosts on any port, and wide ingress short of anywhere', () => {
      const c = enclave((c) => {
        c.networkPolicies.egress = [
          { protocol: 'udp', port: { from: 5000, to: 6000 }, host: 'db.example.com' },
        ];
        c.networkPolicies.ingress = [{ protocol: 'tcp', port: 8443, cidr: '10.0.0.0/8' }];
      });
      expect(checkCompatibility(contract(isolated), c, DEPLOYED)).toEqual([]);
    });

    it('reports every offending rule, by index', () => {
      const c = enclave((c) => {
        c.networkPolicies.egress = [
          { protocol: 'tcp', port: 443, cidr: '0.0.0.0/0' },
          { protocol: 'tcp', port: 443, host: 'ok.example.com' },
          { protocol: 'tcp', port: 443, cidr: '10.0.0.0/8' },
        ];
        c.networkPolicies.ingress = [
          { protocol: 'tcp', port: 22, cidr: '0.0.0.0/0' },
          { protocol: 'tcp', port: 8443, cidr: '::/0' },
        ];
      });
      expect(checkCompatibility(contract(isolated), c, DEPLOYED).map((u) => u.field)).toEqual([
        'configuration.networkPolicies.egress.0.cidr',
        'configuration.networkPolicies.egress.2.cidr',
        'configuration.networkPolicies.ingress.0.cidr',
        'configuration.networkPolicies.ingress.1.cidr',
      ]);
    });

    it('lets anything through without isolation (below Military)', () => {
      const open = enclave((c) => {
        c.networkPolicies.egress = [{ protocol: 'tcp', port: 443, cidr: '0.0.0.0/0' }];
        c.networkPolicies.ingress = [{ protocol: 'tcp', port: 443, cidr: '0.0.0.0/0' }];
      });
      expect(checkCompatibility(contract({ ...isolated, networkIsolation: false }), open, DEPLOYED)).toEqual(
        [],
      );
    });
  });

  it('holds Military egress to named hosts over tcp/443, written either way', () => {
    const military = { encryptionLevel: 'Military', networkIsolation: false, auditLogging: false } as const;
    const c = enclave((c) => {
      c.networkPolicies.egress = [
        { protocol: 'tcp', port: { from: 443, to: 443 }, host: 'a.example.com' },
        { protocol: 'udp', port: 443, host: 'b.example.com' },
        { protocol: 'tcp', port: 443, cidr: '10.0.0.0/32' },
        { protocol: 'tcp', port: { from: 443, to: 444 }, host: 'c.example.com' },
      ];
    });
    expect(checkCompatibility(contract(military), c, DEPLOYED).map((u) => u.field)).toEqual([
      'configuration.networkPolicies.egress.1',
      'configuration.networkPolicies.egress.2',
      'configuration.networkPolicies.egress.3',
    ]);
    // no egress at all is the strictest, and compatible
    expect(
      checkCompatibility(
        contract(military),
        enclave((c) => {
          c.networkPolicies.egress = [];
        }),
        DEPLOYED,
      ),
    ).toEqual([]);
  });

  it('lists every unmet requirement at once, in the documented order', () => {
    const bad = enclave((c) => {
      c.networkPolicies.encryptionRequired = false;
      c.networkPolicies.minTlsVersion = '1.2';
      c.networkPolicies.egress = [{ protocol: 'udp', port: 53, cidr: '0.0.0.0/0' }];
      c.networkPolicies.ingress = [{ protocol: 'tcp', port: 22, cidr: '0.0.0.0/0' }];
      c.securityPolicies = { secureBoot: false, measuredBoot: false, allowedSigners: [], debugMode: true };
      c.observability = { metricsEnabled: false, logForwarding: false };
    }, 'us-east-1');
    const unmet = checkCompatibility(contract({}, { status: 'Suspended' }), bad, {
      ...DEPLOYED,
      now: new Date(END),
      deploymentRegion: 'eu-central-1',
    });
    expect(codes(unmet)).toEqual([...COMPATIBILITY_REQUIREMENTS]);
    for (const u of unmet) expect(u.message.length).toBeGreaterThan(10);
  });

  it('does not depend on a parsed contract beyond status and the security, residency and validity terms', () => {
    const minimal: CompatibilityContract = {
      status: 'Active',
      terms: {
        security: { encryptionLevel: 'Standard', networkIsolation: false, auditLogging: false },
        compliance: { dataResidency: ['eu-central-1'] },
        validity: { start: START, end: END },
      },
    };
    expect(checkCompatibility(minimal, enclave(), DEPLOYED)).toEqual([]);
  });
});

describe('the deployment region', () => {
  it('refuses an enclave declaring a region the deployment does not launch parents in', () => {
    const elsewhere = enclave(undefined, 'eu-west-1');
    const base = contract();
    const residency: CompatibilityContract = {
      ...base,
      terms: { ...base.terms, compliance: { dataResidency: ['eu-central-1', 'eu-west-1'] } },
    };
    expect(
      codes(checkCompatibility(residency, elsewhere, { ...DEPLOYED, deploymentRegion: 'eu-central-1' })),
    ).toEqual(['region-not-served']);
    expect(checkCompatibility(residency, elsewhere, { ...DEPLOYED, deploymentRegion: 'eu-west-1' })).toEqual(
      [],
    );
    // Unknown deployment region (pure checks): the rule does not apply.
    expect(checkCompatibility(residency, elsewhere, DEPLOYED)).toEqual([]);
  });
});

describe('assertCompatible', () => {
  it('returns for a compatible enclave', () => {
    expect(() => assertCompatible(contract(), enclave(), DEPLOYED)).not.toThrow();
  });

  it('throws one 422 listing every unmet requirement as problem+json errors', () => {
    const bad = enclave((c) => {
      c.observability = { metricsEnabled: false, logForwarding: false };
    }, 'us-east-1');
    try {
      assertCompatible(contract(), bad, DEPLOYED);
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(UnprocessableError);
      const e = err as UnprocessableError;
      expect(e.status).toBe(422);
      expect(e.type).toBe('enclave-incompatible');
      expect(e.expose).toBe(true);
      expect(e.errors?.map((i) => i.field)).toEqual([
        'region',
        'configuration.observability.metricsEnabled',
        'configuration.observability.logForwarding',
      ]);
      expect(e.message).toContain('3 requirement(s)');
    }
  });
});
