import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ENCLAVE_LIMITS } from '../../shared/domain/enclave.ts';
import { UnprocessableError } from '../../shared/domain/errors.ts';
import {
  chooseInstanceTypes,
  enclaveCapacity,
  fitsInstanceType,
  INSTANCE_FAMILIES,
  INSTANCE_TYPES,
  type InstanceType,
  MIN_PARENT_VCPUS,
  PARENT_RESERVE,
  parentReserveMiB,
} from '../../shared/domain/instance-types.ts';

const byName = (name: string): InstanceType => {
  const type = INSTANCE_TYPES.find((t) => t.name === name);
  if (!type) throw new Error(`${name} is not in the catalog`);
  return type;
};

describe('the catalog', () => {
  it('holds only Nitro Enclaves parents: xlarge and up, never large or metal', () => {
    for (const t of INSTANCE_TYPES) {
      expect(t.vcpus).toBeGreaterThanOrEqual(MIN_PARENT_VCPUS);
      expect(t.name).toMatch(/^(c5|c6i|c7i|m5|m6i|m7i|r5|r6i)\.\d*xlarge$/);
    }
    expect(new Set(INSTANCE_TYPES.map((t) => t.name)).size).toBe(INSTANCE_TYPES.length);
    expect(new Set(INSTANCE_TYPES.map((t) => t.family))).toEqual(new Set(INSTANCE_FAMILIES));
  });

  it('knows real sizes', () => {
    expect(byName('m5.xlarge')).toMatchObject({ vcpus: 4, memoryGiB: 16, numaNodes: 1 });
    expect(byName('c5.9xlarge')).toMatchObject({ vcpus: 36, memoryGiB: 72, numaNodes: 1 });
    expect(byName('c5.18xlarge')).toMatchObject({ vcpus: 72, memoryGiB: 144, numaNodes: 2 });
    expect(byName('r6i.32xlarge')).toMatchObject({ vcpus: 128, memoryGiB: 1024, numaNodes: 2 });
    expect(byName('m7i.24xlarge')).toMatchObject({ vcpus: 96, memoryGiB: 384, numaNodes: 1 });
    expect(byName('m7i.48xlarge')).toMatchObject({ vcpus: 192, memoryGiB: 768, numaNodes: 2 });
  });

  it('is ordered smallest first: vCPUs, then memory, then family price order', () => {
    for (let i = 1; i < INSTANCE_TYPES.length; i++) {
      const [a, b] = [INSTANCE_TYPES[i - 1]!, INSTANCE_TYPES[i]!];
      const key = (t: InstanceType) => [t.vcpus, t.memoryGiB, INSTANCE_FAMILIES.indexOf(t.family)];
      const [ka, kb] = [key(a), key(b)];
      const cmp = ka[0]! - kb[0]! || ka[1]! - kb[1]! || ka[2]! - kb[2]!;
      expect(cmp, `${a.name} before ${b.name}`).toBeLessThan(0);
    }
  });
});

describe("the parent's share", () => {
  it('is 2 vCPUs and 1 GiB + 10 % of the memory', () => {
    expect(PARENT_RESERVE.vcpus).toBe(2);
    expect(parentReserveMiB({ memoryGiB: 16 })).toBe(1024 + 1639);
    expect(parentReserveMiB({ memoryGiB: 8 })).toBe(1024 + 820);
  });

  it('leaves the enclave the rest, in whole cores and within one NUMA node', () => {
    expect(enclaveCapacity(byName('m5.xlarge'))).toEqual({ cpuCount: 2, memoryMiB: 16_384 - 2663 });
    expect(enclaveCapacity(byName('c5.9xlarge'))).toEqual({ cpuCount: 34, memoryMiB: 73_728 - 1024 - 7373 });
    // two sockets: the enclave gets one node, not the machine minus the parent
    expect(enclaveCapacity(byName('m5.24xlarge'))).toEqual({ cpuCount: 48, memoryMiB: 196_608 });
    expect(enclaveCapacity(byName('c5.18xlarge'))).toEqual({ cpuCount: 36, memoryMiB: 73_728 });
  });

  it('is respected at the boundary', () => {
    const m5 = byName('m5.xlarge');
    const max = enclaveCapacity(m5).memoryMiB;
    expect(fitsInstanceType({ cpuCount: 2, memoryMiB: max }, m5)).toBe(true);
    expect(fitsInstanceType({ cpuCount: 2, memoryMiB: max + 1 }, m5)).toBe(false);
    // 4 vCPUs would leave the parent none
    expect(fitsInstanceType({ cpuCount: 4, memoryMiB: 1024 }, m5)).toBe(false);
  });

  it('refuses a parent below 4 vCPUs even if it were in the catalog', () => {
    const large: InstanceType = { name: 'm5.large', family: 'm5', vcpus: 2, memoryGiB: 8, numaNodes: 1 };
    expect(enclaveCapacity(large)).toEqual({ cpuCount: 0, memoryMiB: 0 });
    expect(fitsInstanceType({ cpuCount: 2, memoryMiB: 512 }, large)).toBe(false);
  });
});

describe('chooseInstanceTypes', () => {
  it('picks the smallest, cheapest fit first and lists the fallbacks in order', () => {
    const choice = chooseInstanceTypes({ cpuCount: 2, memoryMiB: 4096 });
    expect(choice.slice(0, 8)).toEqual([
      'c6i.xlarge',
      'c5.xlarge',
      'c7i.xlarge',
      'm6i.xlarge',
      'm5.xlarge',
      'm7i.xlarge',
      'r6i.xlarge',
      'r5.xlarge',
    ]);
    expect(choice).toEqual(INSTANCE_TYPES.map((t) => t.name));
  });

  it('moves up in memory before vCPUs when the memory does not fit', () => {
    // 8 GiB does not fit a c*.xlarge (8 GiB minus the parent's share) but fits an m*.xlarge
    expect(chooseInstanceTypes({ cpuCount: 2, memoryMiB: 8192 })[0]).toBe('m6i.xlarge');
    // 16 GiB needs more than an m*.xlarge: the r*.xlarge has 32 GiB
    expect(chooseInstanceTypes({ cpuCount: 2, memoryMiB: 16_384 })[0]).toBe('r6i.xlarge');
  });

  it('keeps 2 vCPUs for the parent', () => {
    expect(chooseInstanceTypes({ cpuCount: 4, memoryMiB: 2048 })[0]).toBe('c6i.2xlarge');
    expect(chooseInstanceTypes({ cpuCount: 6, memoryMiB: 2048 })[0]).toBe('c6i.2xlarge');
    expect(chooseInstanceTypes({ cpuCount: 8, memoryMiB: 2048 })[0]).toBe('c6i.4xlarge');
  });

  it('sizes the largest enclave within one NUMA node', () => {
    const choice = chooseInstanceTypes({
      cpuCount: ENCLAVE_LIMITS.maxCpuCount,
      memoryMiB: ENCLAVE_LIMITS.maxMemoryMiB,
    });
    // 64 vCPUs fit no two-socket 96-vCPU type (48 per node) and 256 GiB fits no c-family node; the
    // single-socket m7i.24xlarge (96 vCPUs, 384 GiB) is the smallest that holds it
    expect(choice).toEqual(['m7i.24xlarge', 'm6i.32xlarge', 'r6i.32xlarge', 'm7i.48xlarge']);
  });

  it('honours families and exclusions (the retry after InsufficientInstanceCapacity)', () => {
    const first = chooseInstanceTypes({ cpuCount: 2, memoryMiB: 4096 }, { families: ['m5', 'm6i'] });
    expect(first.slice(0, 3)).toEqual(['m6i.xlarge', 'm5.xlarge', 'm6i.2xlarge']);
    const retry = chooseInstanceTypes(
      { cpuCount: 2, memoryMiB: 4096 },
      { families: ['m5', 'm6i'], exclude: ['m6i.xlarge'] },
    );
    expect(retry).toEqual(first.slice(1));
  });

  it('throws a 422 when nothing fits', () => {
    const tooBig = () =>
      chooseInstanceTypes({ cpuCount: 64, memoryMiB: 4096 }, { families: ['c5', 'm5', 'r5'] });
    expect(tooBig).toThrow(UnprocessableError);
    try {
      tooBig();
    } catch (err) {
      const e = err as UnprocessableError;
      expect(e.status).toBe(422);
      expect(e.type).toBe('no-instance-type-fits');
      expect(e.errors?.[0]?.field).toBe('configuration.resources');
    }
    const all = INSTANCE_TYPES.map((t) => t.name);
    expect(() => chooseInstanceTypes({ cpuCount: 2, memoryMiB: 512 }, { exclude: all })).toThrow(
      /no allowed/,
    );
    expect(() => chooseInstanceTypes({ cpuCount: 2, memoryMiB: 512 }, { families: [] })).toThrow(
      UnprocessableError,
    );
  });

  describe('properties', () => {
    const resources = fc.record({
      cpuCount: fc.integer({ min: 1, max: ENCLAVE_LIMITS.maxCpuCount / 2 }).map((n) => n * 2),
      memoryMiB: fc.integer({ min: ENCLAVE_LIMITS.minMemoryMiB, max: ENCLAVE_LIMITS.maxMemoryMiB }),
    });
    const options = fc.record(
      {
        families: fc.subarray([...INSTANCE_FAMILIES]),
        exclude: fc.subarray(INSTANCE_TYPES.map((t) => t.name)),
      },
      { requiredKeys: [] },
    );

    it('every valid enclave fits some parent when nothing is excluded', () => {
      fc.assert(
        fc.property(resources, (r) => {
          expect(chooseInstanceTypes(r).length).toBeGreaterThan(0);
        }),
        { numRuns: 1000 },
      );
    });

    it('returns only allowed types that fit with the parent share kept, smallest first, or throws a 422', () => {
      fc.assert(
        fc.property(resources, options, (r, o) => {
          let names: string[];
          try {
            names = chooseInstanceTypes(r, o);
          } catch (err) {
            expect(err).toBeInstanceOf(UnprocessableError);
            // and indeed nothing allowed fits
            const allowed = INSTANCE_TYPES.filter(
              (t) =>
                (o.families ?? INSTANCE_FAMILIES).includes(t.family) && !(o.exclude ?? []).includes(t.name),
            );
            expect(allowed.some((t) => fitsInstanceType(r, t))).toBe(false);
            return;
          }
          const types = names.map(byName);
          for (const t of types) {
            expect(t.vcpus - r.cpuCount).toBeGreaterThanOrEqual(PARENT_RESERVE.vcpus);
            expect(t.memoryGiB * 1024 - r.memoryMiB).toBeGreaterThanOrEqual(parentReserveMiB(t));
            expect(r.cpuCount).toBeLessThanOrEqual(t.vcpus / t.numaNodes);
            expect(o.exclude ?? []).not.toContain(t.name);
            if (o.families) expect(o.families).toContain(t.family);
          }
          for (let i = 1; i < types.length; i++) {
            expect(types[i]!.vcpus).toBeGreaterThanOrEqual(types[i - 1]!.vcpus);
          }
        }),
        { numRuns: 1000 },
      );
    });
  });
});
