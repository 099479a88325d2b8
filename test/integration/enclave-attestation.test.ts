/**
 * The VerifyAttestation use case end to end: documents from the Nitro simulator (its root trusted only when
 * passed explicitly), the real verifier, and the DynamoDB nonce store on dynalite through the real SDK.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  type LocalDynamoDb,
  startLocalDynamoDb,
} from '../../infra/local/services/dynamodb/local-dynamodb.ts';
import {
  imageMeasurements,
  NitroSimulator,
  pcr4ForInstance,
} from '../../infra/local/services/nitro-enclaves/nitro-simulator.ts';
import type { MeasurementSet } from '../../shared/domain/measurement-set.ts';
import {
  allowedSignersOf,
  DEFAULT_ATTESTATION_MAX_AGE_MS,
  type EnclaveAttestationDeps,
  pcr4ForInstanceId,
  verifyEnclaveAttestation,
} from '../../shared/enclaves/enclave-attestation.ts';
import { DynamoDbNonceStore } from '../../shared/workflow/dynamodb-nonce-store.ts';
import { sdkCalls } from '../support/dynamodb-faults.ts';

const TABLE = 'attestation-nonces';
const T0 = new Date('2027-03-01T12:00:00.000Z');
const IMAGE = { eif: 'contract-runner:1.4.2' };
const OTHER_IMAGE = { eif: 'contract-runner:9.9.9' };
const SIGNER_PCR8 = '8'.repeat(96);
const OTHER_SIGNER_PCR8 = '9'.repeat(96);

let local: LocalDynamoDb;
let simulator: NitroSimulator;
let nonces: DynamoDbNonceStore;
let clock = T0;
let instanceCounter = 0;

beforeAll(async () => {
  [local, simulator] = await Promise.all([startLocalDynamoDb(), NitroSimulator.create({ now: () => clock })]);
  await local.createNonceTable(TABLE);
  nonces = new DynamoDbNonceStore({ tableName: TABLE, client: sdkCalls(local.client), now: () => clock });
});

afterAll(async () => {
  await local?.close();
});

afterEach(() => {
  clock = T0;
});

/** A fresh parent instance id per call (17 hex digits), so tests do not share PCR4 or leaves. */
function newInstanceId(): string {
  instanceCounter += 1;
  return `i-${instanceCounter.toString(16).padStart(17, '0')}`;
}

/** A measurement set as both parties approved it (the store's shape; approvals are not re-checked here). */
function approvedSet(
  id: string,
  image: { eif: string },
  overrides: Partial<MeasurementSet> = {},
): MeasurementSet {
  return {
    id,
    contractId: 'contract-1',
    ...imageMeasurements(image),
    pcr8: null,
    additionalPcrs: {},
    status: 'Approved',
    approvals: [],
    proposedBy: 'provider-1',
    version: 2,
    createdAt: T0.toISOString(),
    updatedAt: T0.toISOString(),
    ...overrides,
  };
}

/** The simulator's root as the local stack would pass it. */
function localDeps(overrides: Partial<EnclaveAttestationDeps> = {}): EnclaveAttestationDeps {
  return { nonces, now: () => clock, trustedRoots: [simulator.rootPem], ...overrides };
}

/** An enclave with an issued nonce, and a clean document for it from its launched instance. */
async function launched(options: { ttlSeconds?: number } = {}) {
  const enclaveId = `enclave-${randomBytes(4).toString('hex')}`;
  const instanceId = newInstanceId();
  const { nonce } = await nonces.issue({ enclaveId, executionId: 'exec-1' }, options.ttlSeconds ?? 900);
  const document = await simulator.attest({ instanceId, image: IMAGE, nonce });
  return { enclaveId, instanceId, nonce, document };
}

describe('verifyEnclaveAttestation', () => {
  it('accepts a clean document, consumes its nonce and returns JSON-safe claims with the matched set', async () => {
    const { enclaveId, instanceId, nonce, document } = await launched();
    const sets = [approvedSet('set-other', OTHER_IMAGE), approvedSet('set-image', IMAGE)];

    const result = await verifyEnclaveAttestation(
      { document, enclaveId, instanceId, approvedMeasurements: sets, expectedNonce: nonce },
      localDeps(),
    );

    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.matchedMeasurementSet).toEqual({ index: 1, id: 'set-image' });
    const m = imageMeasurements(IMAGE);
    expect(result.claims.moduleId).toMatch(new RegExp(`^${instanceId}-enc[0-9a-f]{16}$`));
    expect(result.claims.digest).toBe('SHA384');
    expect(result.claims.timestamp).toBe(T0.toISOString());
    expect(result.claims.pcrs['0']).toBe(m.pcr0);
    expect(result.claims.pcrs['1']).toBe(m.pcr1);
    expect(result.claims.pcrs['2']).toBe(m.pcr2);
    expect(result.claims.pcrs['4']).toBe(Buffer.from(pcr4ForInstance(instanceId)).toString('hex'));
    expect(result.claims.nonce).toBe(Buffer.from(nonce).toString('hex'));
    expect(Date.parse(result.claims.leafValidFrom)).toBeLessThanOrEqual(T0.getTime());
    expect(Date.parse(result.claims.leafValidTo)).toBeGreaterThan(T0.getTime());
    // Storable as is: a JSON round trip changes nothing (no Uint8Array, no Map).
    expect(JSON.parse(JSON.stringify(result))).toEqual(result);
    // The nonce is used up.
    expect(await nonces.consume(enclaveId, nonce)).toBe('already_consumed');
  });

  it('computes PCR4 exactly as the Nitro simulator (and AWS) do', () => {
    for (const instanceId of ['i-0123abcd', 'i-020b6af9246d90e92']) {
      expect(pcr4ForInstanceId(instanceId)).toBe(Buffer.from(pcr4ForInstance(instanceId)).toString('hex'));
    }
  });

  it('refuses the same document a second time: nonce_replayed', async () => {
    const { enclaveId, instanceId, nonce, document } = await launched();
    const input = {
      document,
      enclaveId,
      instanceId,
      approvedMeasurements: [approvedSet('set-image', IMAGE)],
      expectedNonce: nonce,
    };

    expect((await verifyEnclaveAttestation(input, localDeps())).ok).toBe(true);
    expect(await verifyEnclaveAttestation(input, localDeps())).toMatchObject({
      ok: false,
      code: 'nonce_replayed',
    });
    // Also as base64, as the agent may submit it.
    expect(
      await verifyEnclaveAttestation(
        { ...input, document: Buffer.from(document).toString('base64') },
        localDeps(),
      ),
    ).toMatchObject({ ok: false, code: 'nonce_replayed' });
  });

  it('refuses a document of another image: pcr_mismatch, and the nonce stays usable', async () => {
    const { enclaveId, instanceId, nonce } = await launched();
    const wrong = await simulator.attest({ instanceId, image: OTHER_IMAGE, nonce });
    const input = {
      enclaveId,
      instanceId,
      approvedMeasurements: [approvedSet('set-image', IMAGE)],
      expectedNonce: nonce,
    };

    expect(await verifyEnclaveAttestation({ ...input, document: wrong }, localDeps())).toMatchObject({
      ok: false,
      code: 'pcr_mismatch',
    });
    const right = await simulator.attest({ instanceId, image: IMAGE, nonce });
    expect((await verifyEnclaveAttestation({ ...input, document: right }, localDeps())).ok).toBe(true);
  });

  it('refuses a document from another instance (PCR4): pcr_mismatch', async () => {
    const { enclaveId, instanceId, nonce } = await launched();
    const elsewhere = await simulator.attest({ instanceId: newInstanceId(), image: IMAGE, nonce });

    const result = await verifyEnclaveAttestation(
      {
        document: elsewhere,
        enclaveId,
        instanceId,
        approvedMeasurements: [approvedSet('set-image', IMAGE)],
        expectedNonce: nonce,
      },
      localDeps(),
    );

    expect(result).toMatchObject({ ok: false, code: 'pcr_mismatch' });
    if (!result.ok) expect(result.message).toContain('PCR4');
    expect(await nonces.consume(enclaveId, nonce)).toBe('consumed');
  });

  it('pins PCR8 when the approved set pins a signer', async () => {
    const { enclaveId, instanceId, nonce } = await launched();
    const sets = [approvedSet('set-signed', IMAGE, { pcr8: SIGNER_PCR8 })];
    const input = { enclaveId, instanceId, approvedMeasurements: sets, expectedNonce: nonce };

    const unsigned = await simulator.attest({ instanceId, image: IMAGE, nonce });
    expect(await verifyEnclaveAttestation({ ...input, document: unsigned }, localDeps())).toMatchObject({
      ok: false,
      code: 'pcr_mismatch',
    });
    const signed = await simulator.attest({ instanceId, image: IMAGE, nonce, pcrs: { 8: SIGNER_PCR8 } });
    expect(await verifyEnclaveAttestation({ ...input, document: signed }, localDeps())).toMatchObject({
      ok: true,
      matchedMeasurementSet: { index: 0, id: 'set-signed' },
    });
  });

  it("pins PCR8 to the enclave's allowed signers when the approved set does not pin one", async () => {
    const { enclaveId, instanceId, nonce } = await launched();
    const sets = [approvedSet('set-any-signer', IMAGE)];
    const input = {
      enclaveId,
      instanceId,
      approvedMeasurements: sets,
      expectedNonce: nonce,
      allowedSigners: allowedSignersOf({
        image: {},
        securityPolicies: { allowedSigners: [OTHER_SIGNER_PCR8, SIGNER_PCR8] },
      }),
    };
    for (const document of [
      await simulator.attest({ instanceId, image: IMAGE, nonce }),
      await simulator.attest({ instanceId, image: IMAGE, nonce, pcrs: { 8: 'ee'.repeat(48) } }),
    ]) {
      expect(await verifyEnclaveAttestation({ ...input, document }, localDeps())).toMatchObject({
        ok: false,
        code: 'pcr_mismatch',
      });
    }
    const signed = await simulator.attest({ instanceId, image: IMAGE, nonce, pcrs: { 8: SIGNER_PCR8 } });
    expect(await verifyEnclaveAttestation({ ...input, document: signed }, localDeps())).toMatchObject({
      ok: true,
      matchedMeasurementSet: { index: 0, id: 'set-any-signer' },
    });
  });

  it('refuses when no approved set is signed by an allowed signer: measurements-not-approved', async () => {
    const { enclaveId, instanceId, nonce } = await launched();
    const signed = await simulator.attest({ instanceId, image: IMAGE, nonce, pcrs: { 8: SIGNER_PCR8 } });
    const result = await verifyEnclaveAttestation(
      {
        document: signed,
        enclaveId,
        instanceId,
        approvedMeasurements: [approvedSet('set-signed', IMAGE, { pcr8: SIGNER_PCR8 })],
        expectedNonce: nonce,
        allowedSigners: allowedSignersOf({
          image: { pcr8: OTHER_SIGNER_PCR8 },
          securityPolicies: { allowedSigners: [] },
        }),
      },
      localDeps(),
    );
    expect(result).toMatchObject({ ok: false, code: 'measurements-not-approved' });
  });

  it('refuses a debug-mode document: debug_mode', async () => {
    const { enclaveId, instanceId, nonce } = await launched();
    const debug = await simulator.attest({ instanceId, image: IMAGE, nonce, debug: true });

    expect(
      await verifyEnclaveAttestation(
        {
          document: debug,
          enclaveId,
          instanceId,
          approvedMeasurements: [approvedSet('set-image', IMAGE)],
          expectedNonce: nonce,
        },
        localDeps(),
      ),
    ).toMatchObject({ ok: false, code: 'debug_mode' });
  });

  it('refuses a document whose leaf certificate expired: expired', async () => {
    const { enclaveId, instanceId, nonce } = await launched();
    const expired = await simulator.attest({ instanceId, image: IMAGE, nonce, defects: ['expired_leaf'] });

    expect(
      await verifyEnclaveAttestation(
        {
          document: expired,
          enclaveId,
          instanceId,
          approvedMeasurements: [approvedSet('set-image', IMAGE)],
          expectedNonce: nonce,
        },
        localDeps(),
      ),
    ).toMatchObject({ ok: false, code: 'expired' });
  });

  it('refuses a document older than the maximum age: stale (default 5 minutes, or maxAgeMs)', async () => {
    const { enclaveId, instanceId, nonce } = await launched();
    const input = {
      enclaveId,
      instanceId,
      approvedMeasurements: [approvedSet('set-image', IMAGE)],
      expectedNonce: nonce,
    };
    const old = await simulator.attest({
      instanceId,
      image: IMAGE,
      nonce,
      timestamp: T0.getTime() - DEFAULT_ATTESTATION_MAX_AGE_MS - 1,
    });

    expect(await verifyEnclaveAttestation({ ...input, document: old }, localDeps())).toMatchObject({
      ok: false,
      code: 'stale',
    });

    const minuteOld = await simulator.attest({
      instanceId,
      image: IMAGE,
      nonce,
      timestamp: T0.getTime() - 60_000,
    });
    expect(
      await verifyEnclaveAttestation({ ...input, document: minuteOld }, localDeps({ maxAgeMs: 30_000 })),
    ).toMatchObject({ ok: false, code: 'stale' });
    // Within the default age it passes, and only then is the nonce consumed.
    expect((await verifyEnclaveAttestation({ ...input, document: minuteOld }, localDeps())).ok).toBe(true);
  });

  it('refuses a document with another nonce: nonce_mismatch, without consuming the expected nonce', async () => {
    const { enclaveId, instanceId, nonce } = await launched();
    const { nonce: otherNonce } = await nonces.issue({ enclaveId }, 900);
    const input = {
      enclaveId,
      instanceId,
      approvedMeasurements: [approvedSet('set-image', IMAGE)],
      expectedNonce: nonce,
    };

    for (const wrongNonce of [otherNonce, new Uint8Array(randomBytes(32))]) {
      const document = await simulator.attest({ instanceId, image: IMAGE, nonce: wrongNonce });
      expect(await verifyEnclaveAttestation({ ...input, document }, localDeps())).toMatchObject({
        ok: false,
        code: 'nonce_mismatch',
      });
    }
    const noNonce = await simulator.attest({ instanceId, image: IMAGE });
    expect(await verifyEnclaveAttestation({ ...input, document: noNonce }, localDeps())).toMatchObject({
      ok: false,
      code: 'nonce_mismatch',
    });

    // The real nonce was not burnt: the genuine document still passes.
    const genuine = await simulator.attest({ instanceId, image: IMAGE, nonce });
    expect((await verifyEnclaveAttestation({ ...input, document: genuine }, localDeps())).ok).toBe(true);
    // Nor was the other one consumed by the refusals.
    expect(await nonces.consume(enclaveId, otherNonce)).toBe('consumed');
  });

  it('refuses a verified document whose nonce expired or belongs to another enclave', async () => {
    const expiring = await launched({ ttlSeconds: 60 });
    clock = new Date(T0.getTime() + 61_000);
    const late = await simulator.attest({
      instanceId: expiring.instanceId,
      image: IMAGE,
      nonce: expiring.nonce,
    });
    expect(
      await verifyEnclaveAttestation(
        {
          document: late,
          enclaveId: expiring.enclaveId,
          instanceId: expiring.instanceId,
          approvedMeasurements: [approvedSet('set-image', IMAGE)],
          expectedNonce: expiring.nonce,
        },
        localDeps(),
      ),
    ).toMatchObject({ ok: false, code: 'nonce_expired' });

    clock = T0;
    const { instanceId, nonce, document } = await launched();
    expect(
      await verifyEnclaveAttestation(
        {
          document,
          enclaveId: 'enclave-not-the-one',
          instanceId,
          approvedMeasurements: [approvedSet('set-image', IMAGE)],
          expectedNonce: nonce,
        },
        localDeps(),
      ),
    ).toMatchObject({ ok: false, code: 'nonce_unknown' });
  });

  it('refuses when no approved set is given: measurements-not-approved, never a match-anything policy', async () => {
    const { enclaveId, instanceId, nonce, document } = await launched();
    const base = { document, enclaveId, instanceId, expectedNonce: nonce };

    for (const approvedMeasurements of [[], [approvedSet('set-proposed', IMAGE, { status: 'Proposed' })]]) {
      expect(await verifyEnclaveAttestation({ ...base, approvedMeasurements }, localDeps())).toMatchObject({
        ok: false,
        code: 'measurements-not-approved',
      });
    }
    expect(await nonces.consume(enclaveId, nonce)).toBe('consumed');
  });

  it('refuses an instance id that cannot pin PCR4: invalid_policy', async () => {
    const { enclaveId, nonce, document } = await launched();

    expect(
      await verifyEnclaveAttestation(
        {
          document,
          enclaveId,
          instanceId: '',
          approvedMeasurements: [approvedSet('set-image', IMAGE)],
          expectedNonce: nonce,
        },
        localDeps(),
      ),
    ).toMatchObject({ ok: false, code: 'invalid_policy' });
  });

  it('never trusts the simulator root implicitly: untrusted_root under the default (AWS) trust', async () => {
    const { enclaveId, instanceId, nonce, document } = await launched();
    const input = {
      document,
      enclaveId,
      instanceId,
      approvedMeasurements: [approvedSet('set-image', IMAGE)],
      expectedNonce: nonce,
    };

    expect(await verifyEnclaveAttestation(input, { nonces, now: () => clock })).toMatchObject({
      ok: false,
      code: 'untrusted_root',
    });
    // The refused forgery did not burn the nonce.
    expect((await verifyEnclaveAttestation(input, localDeps())).ok).toBe(true);
  });
});
