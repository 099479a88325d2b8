/**
 * `authenticateAttestation`: the envelope, chain and signature checks of `verifyAttestation` without a
 * measurement policy, for a relying party that decides on the claims itself (KMS with a `Recipient`: the
 * local KMS stand-in). It must refuse every document `verifyAttestation` refuses for what the document *is*
 * (forged, expired, from another root, malformed), with the same code, and accept what it refuses only for
 * what the policy *wants* (measurements, debug mode).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import {
  DEFECT_FAILURE_CODES,
  DEFECTS,
  NitroSimulator,
} from '../../infra/local/services/nitro-enclaves/nitro-simulator.ts';
import { authenticateAttestation, buildPolicy, verifyAttestation } from '../../shared/attestation/index.ts';
import { fixtures } from './nitro-fixtures.ts';

const NOW = new Date('2025-03-14T15:09:26.535Z');
const REQUEST = { instanceId: 'i-0a1b2c3d4e5f60718', image: { eif: 'contract-runner:2.3.0' } };
/** The codes a policy decides; every other code is about the document itself. */
const POLICY_CODES = new Set(['debug_mode', 'pcr_mismatch']);

describe('authenticateAttestation', () => {
  let simulator: NitroSimulator;
  beforeAll(async () => {
    simulator = await NitroSimulator.create({ now: NOW });
  });

  it('authenticates the real AWS documents at their time, with the claims verifyAttestation gives', () => {
    expect(fixtures.length).toBeGreaterThan(0);
    for (const fixture of fixtures) {
      const authentic = authenticateAttestation(fixture.bytes, { at: fixture.at });
      expect(authentic.ok, fixture.name).toBe(true);
      const pcrs = Object.fromEntries(Object.entries(fixture.facts.pcrs).filter(([i]) => Number(i) < 3));
      const verified = verifyAttestation(
        fixture.bytes,
        buildPolicy({ measurements: [pcrs], allowDebug: true }),
        {
          at: fixture.at,
        },
      );
      expect(verified.ok && authentic.ok && authentic.claims).toEqual(verified.ok && verified.claims);
      // A day after the leaf expired, it is refused as verifyAttestation refuses it.
      const late = new Date(Date.parse(fixture.facts.leaf_valid_to) + 86_400_000);
      const refused = authenticateAttestation(fixture.base64, { at: late });
      expect(refused.ok ? 'ok' : refused.code).toBe('expired');
    }
  });

  it('trusts the simulator root only when given it', async () => {
    const document = await simulator.attest(REQUEST);
    const trusted = authenticateAttestation(document, { at: NOW, trustedRoots: [simulator.rootPem] });
    expect(trusted.ok && trusted.claims.pcrs.get(4)).toBe(simulator.expectedPcrs(REQUEST)[4]);
    const untrusted = authenticateAttestation(document, { at: NOW });
    expect(untrusted.ok ? 'ok' : untrusted.code).toBe('untrusted_root');
  });

  it.each(DEFECTS)(
    'refuses a document with %s as verifyAttestation does, unless only a policy would',
    async (defect) => {
      const document = await simulator.attest({ ...REQUEST, defects: [defect] });
      const result = authenticateAttestation(document, { at: NOW, trustedRoots: [simulator.rootPem] });
      const expected = DEFECT_FAILURE_CODES[defect];
      if (POLICY_CODES.has(expected)) {
        expect(result.ok).toBe(true);
      } else {
        expect(result.ok ? 'ok' : result.code).toBe(expected);
      }
    },
  );

  it('answers bad input with a failure, never a throw', () => {
    for (const input of ['', 'not base64!', new Uint8Array(0), null, 42] as unknown as string[]) {
      const result = authenticateAttestation(input);
      expect(result.ok).toBe(false);
    }
    const badInstant = authenticateAttestation('', { at: new Date(Number.NaN) });
    expect(badInstant.ok ? 'ok' : badInstant.code).toBe('invalid_policy');
  });
});
