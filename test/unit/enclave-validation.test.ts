import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { UnprocessableError } from '../../shared/domain/errors.ts';
import type { MeasurementSet, MeasurementSetStatus } from '../../shared/domain/measurement-set.ts';
import { assertImageApproved, setAdmitsImage } from '../../shared/enclaves/enclave-validation.ts';

const pcr = (c: string) => c.repeat(96);
const IMAGE = { pcr0: pcr('a'), pcr1: pcr('b'), pcr2: pcr('c'), pcr8: pcr('8') };
const { pcr8: _signer, ...UNSIGNED } = IMAGE;

let next = 0;
function set(
  m: Partial<Pick<MeasurementSet, 'pcr0' | 'pcr1' | 'pcr2' | 'pcr8'>> = {},
  status: MeasurementSetStatus = 'Approved',
): MeasurementSet {
  next += 1;
  return {
    id: `00000000-0000-4000-8000-${String(next).padStart(12, '0')}`,
    contractId: '99999999-9999-4999-8999-999999999999',
    pcr0: IMAGE.pcr0,
    pcr1: IMAGE.pcr1,
    pcr2: IMAGE.pcr2,
    pcr8: IMAGE.pcr8,
    additionalPcrs: {},
    status,
    approvals: [],
    proposedBy: '11111111-1111-4111-8111-111111111111',
    version: status === 'Approved' ? 3 : 1,
    createdAt: '2027-01-01T00:00:00.000Z',
    updatedAt: '2027-01-01T00:00:00.000Z',
    ...m,
  };
}

function refusal(image: typeof UNSIGNED & { pcr8?: string }, sets: MeasurementSet[]): UnprocessableError {
  try {
    assertImageApproved(image, sets);
  } catch (error) {
    if (error instanceof UnprocessableError) return error;
    throw error;
  }
  throw new Error('expected a refusal');
}

describe('setAdmitsImage', () => {
  it.each([
    ['equal PCR0/1/2 and PCR8', {}, IMAGE, true],
    ['a set without PCR8, signed image', { pcr8: null }, IMAGE, true],
    ['a set without PCR8, unsigned image', { pcr8: null }, UNSIGNED, true],
    ['a set pinning PCR8, unsigned image', {}, UNSIGNED, false],
    ['a set pinning another PCR8', { pcr8: pcr('9') }, IMAGE, false],
    ['another PCR0', { pcr0: pcr('d') }, IMAGE, false],
    ['another PCR1', { pcr1: pcr('d') }, IMAGE, false],
    ['another PCR2', { pcr2: pcr('d') }, IMAGE, false],
  ] as const)('%s → %s', (_name, m, image, admits) => {
    expect(setAdmitsImage(set(m), image)).toBe(admits);
  });

  it('never admits an image that differs in PCR0, PCR1 or PCR2, whatever PCR8 says', () => {
    const hex = fc.stringMatching(/^[0-9a-f]{96}$/);
    fc.assert(
      fc.property(hex, fc.constantFrom('pcr0', 'pcr1', 'pcr2'), fc.option(hex), (other, key, pcr8) => {
        fc.pre(other !== IMAGE[key]);
        return !setAdmitsImage(set({ [key]: other, pcr8 }), IMAGE);
      }),
      { numRuns: 500 },
    );
  });
});

describe('assertImageApproved', () => {
  it('returns the approved sets that admit the image, the signer-pinning ones first', () => {
    const unpinned = set({ pcr8: null });
    const pinned = set();
    const otherImage = set({ pcr0: pcr('d') });
    const proposed = set({ pcr8: null }, 'Proposed');
    expect(assertImageApproved(IMAGE, [unpinned, otherImage, proposed, pinned])).toEqual([pinned, unpinned]);
  });

  it('explains a set that only one party approved', () => {
    const proposed = set({}, 'Proposed');
    const error = refusal(IMAGE, [set({ pcr0: pcr('d') }), proposed]);
    expect(error).toMatchObject({ status: 422, type: 'measurements-not-approved' });
    expect(error.errors).toEqual([
      {
        field: 'configuration.image',
        message: expect.stringContaining(`proposed (measurement set ${proposed.id})`),
      },
    ]);
  });

  it('explains an approved set that pins another signer, or a signer the image lacks', () => {
    const pinned = set({ pcr8: pcr('9') });
    expect(refusal(IMAGE, [pinned]).message).toContain(
      `set ${pinned.id} pins a different signing certificate (PCR8)`,
    );
    expect(refusal(UNSIGNED, [set()]).message).toContain('the image is unsigned');
  });

  it('says so when nothing approved matches PCR0/1/2, including when there are no sets at all', () => {
    for (const sets of [[], [set({ pcr2: pcr('d') })]]) {
      expect(refusal(IMAGE, sets).message).toContain(
        "no measurement set approved by both parties matches the image's PCR0, PCR1 and PCR2",
      );
    }
  });
});
