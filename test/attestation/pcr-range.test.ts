/**
 * Policies may pin PCR0–PCR31, and a pinned register the document does not carry never matches: real
 * documents carry PCR0–PCR15; simulator documents carry all 32 registers when the enclave extended one of
 * PCR16–PCR31.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import {
  type AttestRequest,
  imageMeasurements,
  NitroSimulator,
} from '../../infra/local/services/nitro-enclaves/nitro-simulator.ts';
import { buildPolicy, verifyAttestation } from '../../shared/attestation/index.ts';
import type { AttestationResult, MeasurementSet } from '../../shared/attestation/types.ts';
import { measurementSetOf, prodFixture } from './nitro-fixtures.ts';

const ZERO = '00'.repeat(48);
const NOW = new Date('2027-05-01T08:00:00.000Z');
const IMAGE = { eif: 'contract-runner:3.1.0' };
const base: AttestRequest = { instanceId: 'i-0a1b2c3d4e5f60719', image: IMAGE };
const PCR16 = 'a1'.repeat(48);
const PCR31 = 'b2'.repeat(48);

function codeOf(result: AttestationResult): string {
  return result.ok ? 'ok' : result.code;
}

describe('pins beyond PCR15 on a real document (16 registers)', () => {
  const verify = (set: MeasurementSet) =>
    verifyAttestation(prodFixture.bytes, buildPolicy({ measurements: [set] }), { at: prodFixture.at });

  it('a zero PCR15 that the document carries matches; a zero PCR16 that it does not carry is pcr_mismatch', () => {
    const own = measurementSetOf(prodFixture);
    expect(codeOf(verify(own))).toBe('ok');
    // The real document reports PCR15 as zeros: pinning zeros there is a match.
    expect(codeOf(verify({ ...own, 15: ZERO }))).toBe('ok');
    // PCR16 is absent, which is not "zero": the pin fails closed, whatever its value.
    const absent = verify({ ...own, 16: ZERO });
    expect(absent).toMatchObject({ ok: false, code: 'pcr_mismatch' });
    expect(!absent.ok && absent.message).toMatch(/differs in PCR16\.$/);
    expect(codeOf(verify({ ...own, 31: ZERO }))).toBe('pcr_mismatch');
  });
});

describe('simulator documents with PCR16–PCR31', () => {
  let simulator: NitroSimulator;
  let trusted: { at: Date; trustedRoots: string[] };
  const image = imageMeasurements(IMAGE);
  const imagePins = { 0: image.pcr0, 1: image.pcr1, 2: image.pcr2 };

  beforeAll(async () => {
    simulator = await NitroSimulator.create({ now: NOW });
    trusted = { at: NOW, trustedRoots: [simulator.rootPem] };
  });

  it('carry 32 registers when the enclave extended one of PCR16–31, else 16', async () => {
    const extended = { ...base, pcrs: { 16: PCR16, 31: PCR31 } };
    const expected = simulator.expectedPcrs(extended);
    expect(Object.keys(expected)).toHaveLength(32);
    expect([expected[16], expected[17], expected[31]]).toEqual([PCR16, ZERO, PCR31]);
    expect(Object.keys(simulator.expectedPcrs(base))).toHaveLength(16);
    const result = verifyAttestation(
      await simulator.attest(extended),
      buildPolicy({ measurements: [imagePins] }),
      trusted,
    );
    expect(result.ok && [...result.claims.pcrs.keys()]).toEqual([...Array(32).keys()]);
    await expect(simulator.attest({ ...base, pcrs: { 32: PCR31 } })).rejects.toThrow(/no PCR32/);
  });

  it('verify against a policy pinning PCR16 and PCR31, and refuse another value of either', async () => {
    const document = await simulator.attest({ ...base, pcrs: { 16: PCR16, 31: PCR31 } });
    const pinned = { ...imagePins, 16: PCR16, 31: PCR31 };
    expect(codeOf(verifyAttestation(document, buildPolicy({ measurements: [pinned] }), trusted))).toBe('ok');
    // Pins in upper case are the same values.
    const upper = { ...imagePins, 31: PCR31.toUpperCase() };
    expect(codeOf(verifyAttestation(document, buildPolicy({ measurements: [upper] }), trusted))).toBe('ok');
    // An unextended register of a 32-register document is zero, and present: pinning zeros matches it.
    const unextended = { ...imagePins, 17: ZERO };
    expect(codeOf(verifyAttestation(document, buildPolicy({ measurements: [unextended] }), trusted))).toBe(
      'ok',
    );
    for (const [index, other] of [
      [16, PCR31],
      [31, PCR16],
    ] as const) {
      const result = verifyAttestation(
        document,
        buildPolicy({ measurements: [{ ...pinned, [index]: other }] }),
        trusted,
      );
      expect(result).toMatchObject({ ok: false, code: 'pcr_mismatch' });
      expect(!result.ok && result.message).toMatch(new RegExp(`differs in PCR${index}\\.$`));
    }
  });

  it('without PCR16–31 (16 registers) refuse a policy pinning PCR31, even to zeros', async () => {
    const document = await simulator.attest(base);
    for (const value of [PCR31, ZERO]) {
      const policy = buildPolicy({ measurements: [{ ...imagePins, 31: value }] });
      expect(codeOf(verifyAttestation(document, policy, trusted))).toBe('pcr_mismatch');
    }
    // The second set, which the document satisfies, is the one that matches.
    const result = verifyAttestation(
      document,
      buildPolicy({ measurements: [{ ...imagePins, 16: ZERO }, imagePins] }),
      trusted,
    );
    expect(result.ok && result.matchedMeasurementSet).toBe(1);
  });
});
