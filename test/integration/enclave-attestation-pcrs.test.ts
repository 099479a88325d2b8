/**
 * The VerifyAttestation step pins an approved set's additional PCRs: documents from the Nitro simulator
 * (its root trusted only when passed explicitly), the real verifier, and the DynamoDB nonce store on
 * dynalite through the real SDK. A set row whose additional PCRs name a register they may not hold (the
 * schema and the table refuse it, so the row was altered) is refused as `invalid_policy`, never merged.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type LocalDynamoDb,
  startLocalDynamoDb,
} from '../../infra/local/services/dynamodb/local-dynamodb.ts';
import {
  type AttestRequest,
  imageMeasurements,
  NitroSimulator,
  pcr3ForRole,
} from '../../infra/local/services/nitro-enclaves/nitro-simulator.ts';
import type { MeasurementSet } from '../../shared/domain/measurement-set.ts';
import { pcr4ForInstanceId, verifyEnclaveAttestation } from '../../shared/enclaves/enclave-attestation.ts';
import { DynamoDbNonceStore } from '../../shared/workflow/dynamodb-nonce-store.ts';
import { sdkCalls } from '../support/dynamodb-faults.ts';

const TABLE = 'attestation-nonces-pcrs';
const NOW = new Date('2027-03-02T09:00:00.000Z');
const IMAGE = { eif: 'contract-runner:1.5.0' };
const ROLE = 'arn:aws:iam::123456789012:role/enclave-parent';
const PCR16 = 'c0'.repeat(48);
const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex');

let local: LocalDynamoDb;
let simulator: NitroSimulator;
let nonces: DynamoDbNonceStore;
let instanceCounter = 0x100;

beforeAll(async () => {
  [local, simulator] = await Promise.all([startLocalDynamoDb(), NitroSimulator.create({ now: NOW })]);
  await local.createNonceTable(TABLE);
  nonces = new DynamoDbNonceStore({ tableName: TABLE, client: sdkCalls(local.client), now: () => NOW });
});

afterAll(async () => {
  await local?.close();
});

function approvedSet(additionalPcrs: Record<string, string>): MeasurementSet {
  return {
    id: `set-${randomBytes(4).toString('hex')}`,
    contractId: 'contract-1',
    ...imageMeasurements(IMAGE),
    pcr8: null,
    additionalPcrs,
    status: 'Approved',
    approvals: [],
    proposedBy: 'provider-1',
    version: 3,
    createdAt: NOW.toISOString(),
    updatedAt: NOW.toISOString(),
  };
}

/** An enclave on a fresh instance with an issued nonce, attesting with `request` (its image by default). */
async function attest(set: MeasurementSet, request: Partial<AttestRequest> = {}) {
  const enclaveId = `enclave-${randomBytes(4).toString('hex')}`;
  instanceCounter += 1;
  const instanceId = `i-${instanceCounter.toString(16).padStart(17, '0')}`;
  const { nonce } = await nonces.issue({ enclaveId, executionId: 'exec-1' }, 900);
  const document = await simulator.attest({ instanceId, image: IMAGE, nonce, ...request });
  const result = await verifyEnclaveAttestation(
    { document, enclaveId, instanceId, approvedMeasurements: [set], expectedNonce: nonce },
    { nonces, now: () => NOW, trustedRoots: [simulator.rootPem] },
  );
  return { result, enclaveId, nonce, instanceId };
}

describe('verifyEnclaveAttestation with additional PCRs', () => {
  it('accepts a document that reports the pinned PCR3 (role) and PCR16 (extended by the enclave)', async () => {
    const set = approvedSet({ 3: hex(pcr3ForRole(ROLE)), 16: PCR16 });
    const { result } = await attest(set, { iamRoleArn: ROLE, pcrs: { 16: PCR16 } });
    expect(result).toMatchObject({ ok: true, matchedMeasurementSet: { index: 0, id: set.id } });
    expect(result.ok && result.claims.pcrs['16']).toBe(PCR16);
    expect(result.ok && Object.keys(result.claims.pcrs)).toHaveLength(32);
  });

  it.each<[string, Partial<AttestRequest>, RegExp]>([
    ['does not carry PCR16 (16 registers)', { iamRoleArn: ROLE }, /PCR16\.$/],
    ['reports another PCR16', { iamRoleArn: ROLE, pcrs: { 16: 'c1'.repeat(48) } }, /PCR16\.$/],
    ['runs under another role (PCR3)', { iamRoleArn: `${ROLE}-2`, pcrs: { 16: PCR16 } }, /PCR3\.$/],
  ])(
    'refuses a document that %s as pcr_mismatch, and leaves its nonce unused',
    async (_why, request, which) => {
      const set = approvedSet({ 3: hex(pcr3ForRole(ROLE)), 16: PCR16 });
      const { result, enclaveId, nonce } = await attest(set, request);
      expect(result).toMatchObject({ ok: false, code: 'pcr_mismatch' });
      expect(!result.ok && result.message).toMatch(which);
      expect(await nonces.consume(enclaveId, nonce)).toBe('consumed');
    },
  );

  it.each<[string, (instanceId: string) => unknown]>([
    // Even the very value the document reports: PCR4 is the platform's pin, never a set's.
    ['PCR4 (the launched instance)', (instanceId) => ({ 4: pcr4ForInstanceId(instanceId) })],
    ['PCR0 (an image register)', () => ({ 0: imageMeasurements(IMAGE).pcr0 })],
    ['PCR8 (the signer)', () => ({ 8: '00'.repeat(48) })],
    ['"016" (a second spelling of PCR16)', () => ({ '016': PCR16 })],
    ['PCR32', () => ({ 32: PCR16 })],
    ['an array', () => [PCR16]],
    ['null', () => null],
  ])('refuses as invalid_policy a set row whose additional PCRs hold %s', async (_why, additional) => {
    instanceCounter += 1;
    const instanceId = `i-${instanceCounter.toString(16).padStart(17, '0')}`;
    const enclaveId = `enclave-${randomBytes(4).toString('hex')}`;
    const { nonce } = await nonces.issue({ enclaveId, executionId: 'exec-1' }, 900);
    const document = await simulator.attest({ instanceId, image: IMAGE, nonce, pcrs: { 16: PCR16 } });
    const set = { ...approvedSet({}), additionalPcrs: additional(instanceId) } as MeasurementSet;
    const result = await verifyEnclaveAttestation(
      { document, enclaveId, instanceId, approvedMeasurements: [set], expectedNonce: nonce },
      { nonces, now: () => NOW, trustedRoots: [simulator.rootPem] },
    );
    expect(result).toMatchObject({ ok: false, code: 'invalid_policy' });
    expect(!result.ok && result.message).toContain(set.id);
  });

  it('refuses as invalid_policy an additional PCR whose value is not 96 hex digits', async () => {
    const { result } = await attest(approvedSet({ 16: 'c0' }), { pcrs: { 16: PCR16 } });
    expect(result).toMatchObject({ ok: false, code: 'invalid_policy' });
  });
});
