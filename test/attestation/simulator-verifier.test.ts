/**
 * The Nitro simulator against the verifier: a clean simulator document verifies when (and only when) the
 * simulator's root is passed as a trust anchor, each defect yields its failure code, and what the enclave
 * asked to attest comes back in the claims.
 */
import { createHash } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  type AttestRequest,
  DEFECT_FAILURE_CODES,
  DEFECTS,
  imageMeasurements,
  NitroSimulator,
} from '../../infra/local/services/nitro-enclaves/nitro-simulator.ts';
import { buildPolicy, verifyAttestation } from '../../shared/attestation/index.ts';
import type { AttestationResult, Policy } from '../../shared/attestation/types.ts';

const INSTANCE = 'i-0a1b2c3d4e5f60718';
const IMAGE = { eif: 'contract-runner:2.3.0' };
const ROLE = 'arn:aws:iam::123456789012:role/enclave-parent';
const NOW = new Date('2025-03-14T15:09:26.535Z');
const base: AttestRequest = { instanceId: INSTANCE, image: IMAGE, iamRoleArn: ROLE };

function codeOf(result: AttestationResult): string {
  return result.ok ? 'ok' : result.code;
}

describe('simulator documents through verifyAttestation', () => {
  let simulator: NitroSimulator;
  let policy: Policy;
  let trusted: { at: Date; trustedRoots: string[] };

  beforeAll(async () => {
    simulator = await NitroSimulator.create({ now: NOW });
    const image = imageMeasurements(IMAGE);
    policy = buildPolicy({ measurements: [{ 0: image.pcr0, 1: image.pcr1, 2: image.pcr2 }] });
    trusted = { at: NOW, trustedRoots: [simulator.rootPem] };
  });

  it('verify with the simulator root as trust anchor, and are refused under the default (AWS) trust', async () => {
    const document = await simulator.attest(base);
    const result = verifyAttestation(document, policy, trusted);
    expect(codeOf(result)).toBe('ok');
    expect(codeOf(verifyAttestation(document, policy, { at: NOW, trustedRoots: [simulator.rootDer] }))).toBe(
      'ok',
    );
    expect(codeOf(verifyAttestation(document, policy, { ...trusted, useCache: false }))).toBe('ok');
    // The very same bytes, without the explicit anchor: only the pinned AWS root is trusted.
    expect(codeOf(verifyAttestation(document, policy, { at: NOW }))).toBe('untrusted_root');
    expect(codeOf(verifyAttestation(document, policy, { at: NOW, useCache: false }))).toBe('untrusted_root');
    // Base64, as the CLI and HTTP callers pass it.
    expect(codeOf(verifyAttestation(Buffer.from(document).toString('base64'), policy, trusted))).toBe('ok');
  });

  it('pin every measured register: PCR3 (role), PCR4 (instance), the full expected set', async () => {
    const document = await simulator.attest(base);
    const expected = simulator.expectedPcrs(base);
    const zero48 = Buffer.alloc(48);
    expect(expected[4]).toBe(createHash('sha384').update(zero48).update(INSTANCE).digest('hex'));
    expect(expected[3]).toBe(createHash('sha384').update(zero48).update(ROLE).digest('hex'));
    const full = buildPolicy({ measurements: [expected] });
    expect(codeOf(verifyAttestation(document, full, trusted))).toBe('ok');
    const otherInstance = simulator.expectedPcrs({ ...base, instanceId: 'i-0fffffffffffffff0' });
    expect(
      codeOf(verifyAttestation(document, buildPolicy({ measurements: [{ 4: otherInstance[4] }] }), trusted)),
    ).toBe('pcr_mismatch');
    const otherRole = simulator.expectedPcrs({ ...base, iamRoleArn: `${ROLE}-2` });
    expect(
      codeOf(verifyAttestation(document, buildPolicy({ measurements: [{ 3: otherRole[3] }] }), trusted)),
    ).toBe('pcr_mismatch');
    // A second acceptable set is matched and reported.
    const result = verifyAttestation(
      document,
      buildPolicy({ measurements: [{ 4: otherInstance[4] }, expected] }),
      trusted,
    );
    expect(result.ok && result.matchedMeasurementSet).toBe(1);
  });

  it('round-trip nonce, user_data and public_key into the claims (null when absent, either encoding)', async () => {
    const nonce = new Uint8Array(Buffer.from('00112233445566778899aabbccddeeff', 'hex'));
    const userData = new TextEncoder().encode('{"contract":"c-42"}');
    const publicKey = new Uint8Array(Buffer.from('3059301306072a8648ce3d0201', 'hex'));
    const document = await simulator.attest({ ...base, nonce, userData, publicKey });
    const result = verifyAttestation(
      document,
      buildPolicy({
        measurements: [simulator.expectedPcrs(base)],
        expectedNonce: nonce,
        requireFreshness: true,
        expectedUserData: userData,
        expectedPublicKey: publicKey,
        maxAgeMs: 60_000,
      }),
      trusted,
    );
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.claims.nonce).toEqual(nonce);
    expect(result.claims.userData).toEqual(userData);
    expect(result.claims.publicKey).toEqual(publicKey);
    expect(result.claims.moduleId).toMatch(/^i-0a1b2c3d4e5f60718-enc[0-9a-f]{16}$/);
    expect(result.claims.timestamp).toBe(NOW.getTime());
    expect(result.claims.digest).toBe('SHA384');
    expect(result.claims.debugMode).toBe(false);
    expect(result.claims.pcrs.get(4)).toBe(simulator.expectedPcrs(base)[4]);
    expect(result.claims.cabundle[0]).toEqual(simulator.rootDer);
    expect(
      Date.parse(result.claims.leafValidTo) - Date.parse(result.claims.leafValidFrom),
    ).toBeGreaterThanOrEqual(3 * 3_600_000);

    for (const absentFields of ['null', 'omit'] as const) {
      const bare = verifyAttestation(await simulator.attest({ ...base, absentFields }), policy, trusted);
      expect(codeOf(bare)).toBe('ok');
      if (!bare.ok) continue;
      expect([bare.claims.nonce, bare.claims.userData, bare.claims.publicKey]).toEqual([null, null, null]);
    }

    const otherNonce = verifyAttestation(
      document,
      buildPolicy({ measurements: [simulator.expectedPcrs(base)], expectedNonce: new Uint8Array(16) }),
      trusted,
    );
    expect(codeOf(otherNonce)).toBe('nonce_mismatch');
  });

  it.each(DEFECTS)('defect %s yields its failure code (cached and uncached)', async (defect) => {
    const document = await simulator.attest({ ...base, defects: [defect] });
    const expected = DEFECT_FAILURE_CODES[defect];
    expect(codeOf(verifyAttestation(document, policy, { ...trusted, useCache: false }))).toBe(expected);
    expect(codeOf(verifyAttestation(document, policy, trusted))).toBe(expected);
    // Twice through the cache: a refused chain must not become trusted by having been seen.
    expect(codeOf(verifyAttestation(document, policy, trusted))).toBe(expected);
  });

  it('debug-mode documents verify only when the policy allows debug and pins what debug leaves measured', async () => {
    const document = await simulator.attest({ ...base, debug: true });
    const zero = '00'.repeat(48);
    expect(codeOf(verifyAttestation(document, policy, trusted))).toBe('debug_mode');
    const debugPolicy = buildPolicy({
      measurements: [{ 0: zero, 1: zero, 2: zero, 4: simulator.expectedPcrs(base)[4] }],
      allowDebug: true,
    });
    const result = verifyAttestation(document, debugPolicy, trusted);
    expect(codeOf(result)).toBe('ok');
    expect(result.ok && result.claims.debugMode).toBe(true);
    expect(result.ok && result.claims.pcrs.get(8)).toBe(zero);
    // allowDebug does not make the production image's PCRs match a debug document.
    expect(codeOf(verifyAttestation(document, buildPolicy({ ...policy, allowDebug: true }), trusted))).toBe(
      'pcr_mismatch',
    );
  });

  it('expired and not-yet-valid leaves are judged at the verification instant', async () => {
    // A clean document is refused once its leaf has expired (about 3 h), and before the leaf's start.
    const document = await simulator.attest(base);
    expect(
      codeOf(
        verifyAttestation(document, policy, { ...trusted, at: new Date(NOW.getTime() + 4 * 3_600_000) }),
      ),
    ).toBe('expired');
    expect(
      codeOf(verifyAttestation(document, policy, { ...trusted, at: new Date(NOW.getTime() - 60_000) })),
    ).toBe('not_yet_valid');
  });

  it('warm path: successive documents of one enclave share the chain, fresh leaves too', async () => {
    const first = await simulator.attest({ ...base, nonce: new Uint8Array([1]) });
    const second = await simulator.attest({ ...base, nonce: new Uint8Array([2]) });
    const freshLeaf = await simulator.attest({ ...base, nonce: new Uint8Array([3]), leaf: 'per-document' });
    for (const document of [first, second, freshLeaf]) {
      expect(codeOf(verifyAttestation(document, policy, trusted))).toBe('ok');
      expect(codeOf(verifyAttestation(document, policy, { ...trusted, useCache: false }))).toBe('ok');
    }
    // A different simulator (another root) with the same instance is not trusted by the first one's anchor.
    const other = await NitroSimulator.create({ now: NOW });
    expect(codeOf(verifyAttestation(await other.attest(base), policy, trusted))).toBe('untrusted_root');
  });

  it('deeper and shallower chains verify too', async () => {
    for (const intermediates of [1, 5]) {
      const sim = await NitroSimulator.create({ now: NOW, intermediates });
      const result = verifyAttestation(await sim.attest(base), policy, {
        at: NOW,
        trustedRoots: [sim.rootPem],
      });
      expect(codeOf(result)).toBe('ok');
      expect(result.ok && result.claims.cabundle.length).toBe(intermediates + 1);
    }
  });
});
