/**
 * The contract key's policy (shared/keys/contract-key-policy.ts), rendered from a contract's state and then
 * evaluated by the IAM evaluator the local stack uses for KMS (`@cloud-copilot/iam-simulate` through
 * firstDenial): who may decrypt, with which attestation, for which contract, is decided by the rendered text,
 * so these tests ask the evaluator rather than read the JSON.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type AuthorizationCheck, firstDenial } from '../../infra/local/services/iam/iam-authorizer.ts';
import type { LocalPrincipal, PolicyDocument } from '../../infra/local/services/iam/stack-policies.ts';
import { canonicalJson, sha256Hex } from '../../shared/domain/canonical-json.ts';
import { pcr4ForInstanceId } from '../../shared/enclaves/enclave-attestation.ts';
import {
  type ContractKeyPolicyInput,
  type KeyedMeasurementSet,
  KeyPolicyTooLargeError,
  MAX_KEY_POLICY_BYTES,
  renderContractKeyPolicy,
} from '../../shared/keys/contract-key-policy.ts';
import { admitWhatFits } from '../../shared/keys/contract-keys.ts';

const ACCOUNT = '000000000000';
const role = (name: string) => `arn:aws:iam::${ACCOUNT}:role/${name}`;
const PRINCIPALS = {
  partition: 'aws',
  accountId: ACCOUNT,
  administratorRoleArn: role('ContractKeys'),
  dataKeyRoleArn: role('DataKeys'),
  parentRoleArn: role('Parents'),
};
const KEY_ARN = `arn:aws:kms:eu-central-1:${ACCOUNT}:key/11111111-1111-4111-8111-111111111111`;
const CONTRACT = '22222222-2222-4222-8222-222222222222';
const OTHER_CONTRACT = '33333333-3333-4333-8333-333333333333';

const hex = (digit: string) => digit.repeat(96);
const SET_A: KeyedMeasurementSet = {
  id: 'aaaaaaaa-0000-4000-8000-000000000001',
  pcr0: hex('a'),
  pcr1: hex('b'),
  pcr2: hex('c'),
  pcr8: null,
  additionalPcrs: {},
};
const SET_B: KeyedMeasurementSet = {
  id: 'bbbbbbbb-0000-4000-8000-000000000002',
  pcr0: hex('d'),
  pcr1: hex('e'),
  pcr2: hex('f'),
  pcr8: hex('1'),
  additionalPcrs: { '3': hex('2'), '16': hex('3') },
};
const ENCLAVE_1 = {
  id: 'e1000000-0000-4000-8000-000000000001',
  instanceId: 'i-0123456789abcdef0',
  measurementSetId: SET_A.id,
};
const ENCLAVE_2 = {
  id: 'e2000000-0000-4000-8000-000000000002',
  instanceId: 'i-0123456789abcdef1',
  measurementSetId: SET_A.id,
};
const ENCLAVE_3 = {
  id: 'e3000000-0000-4000-8000-000000000003',
  instanceId: 'i-0123456789abcdef2',
  measurementSetId: SET_B.id,
};

const INPUT: ContractKeyPolicyInput = {
  contractId: CONTRACT,
  principals: PRINCIPALS,
  measurementSets: [SET_A, SET_B],
  runningEnclaves: [ENCLAVE_1, ENCLAVE_2, ENCLAVE_3],
};

/** A principal with no identity policy: what it may do on the key comes from the key policy alone. */
const bare = (roleArn: string): LocalPrincipal => ({
  roleArn,
  sessionArn: `${roleArn.replace(':iam::', ':sts::').replace(':role/', ':assumed-role/')}/session`,
  policies: [],
});

/** The attestation condition keys KMS derives from a verified recipient document. */
function recipient(set: KeyedMeasurementSet, instanceId: string, overrides: Record<string, string> = {}) {
  const keys: Record<string, string> = {
    'kms:RecipientAttestation:ImageSha384': set.pcr0,
    'kms:RecipientAttestation:PCR0': set.pcr0,
    'kms:RecipientAttestation:PCR1': set.pcr1,
    'kms:RecipientAttestation:PCR2': set.pcr2,
    'kms:RecipientAttestation:PCR3': hex('2'),
    'kms:RecipientAttestation:PCR4': pcr4ForInstanceId(instanceId),
    'kms:RecipientAttestation:PCR8': set.pcr8 ?? hex('9'),
    'kms:RecipientAttestation:PCR16': hex('3'),
  };
  return { ...keys, ...overrides };
}

async function allowed(
  policy: string,
  roleArn: string,
  action: string,
  context: Record<string, string>,
): Promise<boolean> {
  const check: AuthorizationCheck = {
    action,
    resource: KEY_ARN,
    resourcePolicy: JSON.parse(policy) as PolicyDocument,
    context,
    beyondReference: 'the recipient attestation and encryption context keys, as KMS derives them',
  };
  return (await firstDenial(bare(roleArn), [check])) === undefined;
}

const contextOf = (contractId: string) => ({ 'kms:EncryptionContext:contractId': contractId });

describe('the contract key policy', () => {
  const rendered = renderContractKeyPolicy(INPUT);

  it('lets a Running enclave decrypt only with an attestation of its approved image on its own parent, for its contract', async () => {
    const { text } = rendered;
    const parents = PRINCIPALS.parentRoleArn;
    for (const enclave of [ENCLAVE_1, ENCLAVE_2]) {
      expect(
        await allowed(text, parents, 'kms:Decrypt', {
          ...recipient(SET_A, enclave.instanceId),
          ...contextOf(CONTRACT),
        }),
      ).toBe(true);
    }
    expect(
      await allowed(text, parents, 'kms:Decrypt', {
        ...recipient(SET_B, ENCLAVE_3.instanceId),
        ...contextOf(CONTRACT),
      }),
    ).toBe(true);
    expect(
      await allowed(text, parents, 'kms:GenerateDataKey', {
        ...recipient(SET_A, ENCLAVE_1.instanceId),
        ...contextOf(CONTRACT),
      }),
    ).toBe(true);
    // Upper-case hex is the same measurement (StringEqualsIgnoreCase, as AWS's examples use).
    expect(
      await allowed(text, parents, 'kms:Decrypt', {
        ...recipient(SET_A, ENCLAVE_1.instanceId, {
          'kms:RecipientAttestation:ImageSha384': SET_A.pcr0.toUpperCase(),
        }),
        ...contextOf(CONTRACT),
      }),
    ).toBe(true);
  });

  it('refuses each way the attestation or the request can differ', async () => {
    const { text } = rendered;
    const parents = PRINCIPALS.parentRoleArn;
    const good = { ...recipient(SET_A, ENCLAVE_1.instanceId), ...contextOf(CONTRACT) };
    const refusals: [string, Record<string, string>][] = [
      ['another image', { ...good, 'kms:RecipientAttestation:ImageSha384': hex('0') }],
      ['another kernel (PCR1)', { ...good, 'kms:RecipientAttestation:PCR1': hex('0') }],
      ['another application (PCR2)', { ...good, 'kms:RecipientAttestation:PCR2': hex('0') }],
      [
        'a parent with no Running enclave',
        { ...good, 'kms:RecipientAttestation:PCR4': pcr4ForInstanceId('i-0fedcba9876543210') },
      ],
      // Set B's enclave runs on its own parent: set A's image there is not what it attested as.
      [
        'an approved image on the parent of an enclave of another set',
        { ...good, 'kms:RecipientAttestation:PCR4': pcr4ForInstanceId(ENCLAVE_3.instanceId) },
      ],
      ['another contract', { ...good, ...contextOf(OTHER_CONTRACT) }],
    ];
    for (const [why, context] of refusals) {
      expect(await allowed(text, parents, 'kms:Decrypt', context), why).toBe(false);
    }
    // No Recipient: no attestation keys at all.
    expect(await allowed(text, parents, 'kms:Decrypt', contextOf(CONTRACT)), 'no attestation').toBe(false);
    // No encryption context.
    expect(
      await allowed(text, parents, 'kms:Decrypt', recipient(SET_A, ENCLAVE_1.instanceId)),
      'no context',
    ).toBe(false);
    // Set B pins PCR8 and additional PCRs: each must match.
    const b = { ...recipient(SET_B, ENCLAVE_3.instanceId), ...contextOf(CONTRACT) };
    for (const register of ['PCR8', 'PCR3', 'PCR16']) {
      expect(
        await allowed(text, parents, 'kms:Decrypt', {
          ...b,
          [`kms:RecipientAttestation:${register}`]: hex('0'),
        }),
        register,
      ).toBe(false);
    }
  });

  it('gives nobody else a cryptographic use: not the account, the administrator, or the data-key function beyond wrapping', async () => {
    const { text } = rendered;
    const attested = { ...recipient(SET_A, ENCLAVE_1.instanceId), ...contextOf(CONTRACT) };
    for (const principal of [
      `arn:aws:iam::${ACCOUNT}:root`,
      PRINCIPALS.administratorRoleArn,
      PRINCIPALS.dataKeyRoleArn,
      role('Other'),
    ]) {
      for (const action of ['kms:Decrypt', 'kms:GenerateDataKey', 'kms:Encrypt', 'kms:ReEncryptFrom']) {
        expect(await allowed(text, principal, action, attested), `${principal} ${action}`).toBe(false);
      }
    }
    expect(
      await allowed(
        text,
        PRINCIPALS.dataKeyRoleArn,
        'kms:GenerateDataKeyWithoutPlaintext',
        contextOf(CONTRACT),
      ),
    ).toBe(true);
    expect(
      await allowed(
        text,
        PRINCIPALS.dataKeyRoleArn,
        'kms:GenerateDataKeyWithoutPlaintext',
        contextOf(OTHER_CONTRACT),
      ),
    ).toBe(false);
    expect(await allowed(text, PRINCIPALS.dataKeyRoleArn, 'kms:PutKeyPolicy', {})).toBe(false);
    for (const action of [
      'kms:PutKeyPolicy',
      'kms:DisableKey',
      'kms:EnableKey',
      'kms:ScheduleKeyDeletion',
      'kms:DescribeKey',
    ]) {
      expect(await allowed(text, PRINCIPALS.administratorRoleArn, action, {}), action).toBe(true);
    }
    expect(await allowed(text, PRINCIPALS.administratorRoleArn, 'kms:CancelKeyDeletion', {})).toBe(false);
    expect(await allowed(text, PRINCIPALS.parentRoleArn, 'kms:PutKeyPolicy', {})).toBe(false);
  });

  it('admits nobody without a Running enclave, and only the sets Running enclaves attested as', async () => {
    const none = renderContractKeyPolicy({ ...INPUT, runningEnclaves: [] });
    expect(none.admittedEnclaves).toEqual([]);
    expect(none.admittedMeasurementSets).toEqual([]);
    expect(
      await allowed(none.text, PRINCIPALS.parentRoleArn, 'kms:Decrypt', {
        ...recipient(SET_A, ENCLAVE_1.instanceId),
        ...contextOf(CONTRACT),
      }),
    ).toBe(false);
    // An enclave whose set is no longer approved (or never was) is not admitted.
    const onlyB = renderContractKeyPolicy({ ...INPUT, measurementSets: [SET_B] });
    expect(onlyB.admittedEnclaves.map((e) => e.id)).toEqual([ENCLAVE_3.id]);
    expect(onlyB.admittedMeasurementSets).toEqual([SET_B.id]);
    expect(
      await allowed(onlyB.text, PRINCIPALS.parentRoleArn, 'kms:Decrypt', {
        ...recipient(SET_A, ENCLAVE_1.instanceId),
        ...contextOf(CONTRACT),
      }),
    ).toBe(false);
    // One enclave suspended: it loses access, its sibling on the same set keeps it.
    const one = renderContractKeyPolicy({ ...INPUT, runningEnclaves: [ENCLAVE_2, ENCLAVE_3] });
    expect(
      await allowed(one.text, PRINCIPALS.parentRoleArn, 'kms:Decrypt', {
        ...recipient(SET_A, ENCLAVE_1.instanceId),
        ...contextOf(CONTRACT),
      }),
    ).toBe(false);
    expect(
      await allowed(one.text, PRINCIPALS.parentRoleArn, 'kms:Decrypt', {
        ...recipient(SET_A, ENCLAVE_2.instanceId),
        ...contextOf(CONTRACT),
      }),
    ).toBe(true);
    expect(one.digest).not.toBe(rendered.digest);
  });

  it('names what it admits, with each enclave PCR4', () => {
    expect(rendered.admittedMeasurementSets).toEqual([SET_A.id, SET_B.id]);
    expect(rendered.admittedEnclaves).toEqual(
      [ENCLAVE_1, ENCLAVE_2, ENCLAVE_3].map(({ id, instanceId }) => ({
        id,
        instanceId,
        pcr4: pcr4ForInstanceId(instanceId),
      })),
    );
    expect(rendered.bytes).toBe(Buffer.byteLength(rendered.text));
    expect(rendered.digest).toMatch(/^[0-9a-f]{64}$/);
  });

  it('is canonical: the same state in any order renders the same text and digest', () => {
    fc.assert(
      fc.property(
        fc.shuffledSubarray([...INPUT.measurementSets], { minLength: 2, maxLength: 2 }),
        fc.shuffledSubarray([...INPUT.runningEnclaves], { minLength: 3, maxLength: 3 }),
        (measurementSets, runningEnclaves) => {
          const again = renderContractKeyPolicy({ ...INPUT, measurementSets, runningEnclaves });
          expect(again.text).toBe(rendered.text);
          expect(again.digest).toBe(rendered.digest);
        },
      ),
    );
  });

  it('is exactly this document (the policy KMS enforces, written out): statements, order, lower-case hex', () => {
    // Inputs out of order, upper-case hex, and the lowest enclave id on the later set, so that every
    // ordering the rendering promises (sets by id, PCR4s by value) and its case are visible in the text.
    const setB = {
      ...SET_B,
      pcr0: hex('D'),
      pcr1: hex('E'),
      pcr2: hex('F'),
      pcr8: hex('B'),
      additionalPcrs: { '16': hex('3'), '3': hex('A') },
    };
    const first = {
      id: 'e0000000-0000-4000-8000-000000000000',
      instanceId: 'i-0fedcba9876543210',
      measurementSetId: SET_B.id,
    };
    const golden = renderContractKeyPolicy({
      ...INPUT,
      measurementSets: [setB, SET_A],
      runningEnclaves: [ENCLAVE_2, first, ENCLAVE_1],
    });
    const pcr4 = (...instances: string[]) => instances.map(pcr4ForInstanceId).sort();
    // ENCLAVE_1's PCR4 sorts after ENCLAVE_2's: the list is in value order, not the enclaves'.
    expect(pcr4ForInstanceId(ENCLAVE_1.instanceId) > pcr4ForInstanceId(ENCLAVE_2.instanceId)).toBe(true);
    const context = { StringEquals: { 'kms:EncryptionContext:contractId': CONTRACT } };
    const expected = {
      Version: '2012-10-17',
      Id: `contract-${CONTRACT}`,
      Statement: [
        {
          Sid: 'AccountAdministersButNeverUses',
          Effect: 'Allow',
          Principal: { AWS: `arn:aws:iam::${ACCOUNT}:root` },
          NotAction: [
            'kms:Decrypt',
            'kms:DeriveSharedSecret',
            'kms:Encrypt',
            'kms:GenerateDataKey*',
            'kms:GenerateMac',
            'kms:ReEncrypt*',
            'kms:Sign',
            'kms:Verify',
            'kms:VerifyMac',
          ],
          Resource: '*',
        },
        {
          Sid: 'PlatformAdministers',
          Effect: 'Allow',
          Principal: { AWS: role('ContractKeys') },
          Action: [
            'kms:DescribeKey',
            'kms:DisableKey',
            'kms:EnableKey',
            'kms:GetKeyPolicy',
            'kms:ListResourceTags',
            'kms:PutKeyPolicy',
            'kms:ScheduleKeyDeletion',
            'kms:TagResource',
          ],
          Resource: '*',
        },
        {
          Sid: 'PlatformWrapsDataKeysForTheProvider',
          Effect: 'Allow',
          Principal: { AWS: role('DataKeys') },
          Action: 'kms:GenerateDataKeyWithoutPlaintext',
          Resource: '*',
          Condition: context,
        },
        {
          Sid: 'ApprovedEnclaves0',
          Effect: 'Allow',
          Principal: { AWS: role('Parents') },
          Action: ['kms:Decrypt', 'kms:GenerateDataKey'],
          Resource: '*',
          Condition: {
            StringEqualsIgnoreCase: {
              'kms:RecipientAttestation:ImageSha384': hex('a'),
              'kms:RecipientAttestation:PCR1': hex('b'),
              'kms:RecipientAttestation:PCR2': hex('c'),
              'kms:RecipientAttestation:PCR4': pcr4(ENCLAVE_1.instanceId, ENCLAVE_2.instanceId),
            },
            ...context,
          },
        },
        {
          Sid: 'ApprovedEnclaves1',
          Effect: 'Allow',
          Principal: { AWS: role('Parents') },
          Action: ['kms:Decrypt', 'kms:GenerateDataKey'],
          Resource: '*',
          Condition: {
            StringEqualsIgnoreCase: {
              'kms:RecipientAttestation:ImageSha384': hex('d'),
              'kms:RecipientAttestation:PCR1': hex('e'),
              'kms:RecipientAttestation:PCR2': hex('f'),
              'kms:RecipientAttestation:PCR8': hex('b'),
              'kms:RecipientAttestation:PCR3': hex('a'),
              'kms:RecipientAttestation:PCR16': hex('3'),
              'kms:RecipientAttestation:PCR4': pcr4(first.instanceId),
            },
            ...context,
          },
        },
      ],
    };
    expect(JSON.parse(golden.text)).toEqual(expected);
    expect(golden.text).toBe(canonicalJson(expected));
    expect(golden.digest).toBe(sha256Hex(golden.text));
    expect(golden.admittedMeasurementSets).toEqual([SET_A.id, SET_B.id]);
    expect(golden.admittedEnclaves.map((e) => e.id)).toEqual([first.id, ENCLAVE_1.id, ENCLAVE_2.id]);
  });

  it('takes a policy of exactly 32768 bytes, and refuses one byte more with how large and how many', () => {
    const base = renderContractKeyPolicy(INPUT).bytes;
    // The administrator's role ARN appears once in the text: each character added to it is one byte.
    const padded = (extra: number) =>
      renderContractKeyPolicy({
        ...INPUT,
        principals: {
          ...PRINCIPALS,
          administratorRoleArn: `${PRINCIPALS.administratorRoleArn}${'x'.repeat(extra)}`,
        },
      });
    expect(padded(MAX_KEY_POLICY_BYTES - base).bytes).toBe(MAX_KEY_POLICY_BYTES);
    let refusal: unknown;
    try {
      padded(MAX_KEY_POLICY_BYTES - base + 1);
    } catch (error) {
      refusal = error;
    }
    expect(refusal).toBeInstanceOf(KeyPolicyTooLargeError);
    expect(refusal).toMatchObject({
      name: 'KeyPolicyTooLargeError',
      bytes: MAX_KEY_POLICY_BYTES + 1,
      admittedEnclaves: 3,
    });
  });

  it("refuses a state beyond KMS's 32 KB, and says how many enclaves of one set fit", () => {
    const enclaves = (n: number) =>
      Array.from({ length: n }, (_, i) => ({
        id: `e0000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
        instanceId: `i-${i.toString(16).padStart(17, '0')}`,
        measurementSetId: SET_B.id,
      }));
    const fits = (n: number) => {
      try {
        return (
          renderContractKeyPolicy({ ...INPUT, runningEnclaves: enclaves(n) }).bytes <= MAX_KEY_POLICY_BYTES
        );
      } catch (error) {
        expect(error).toBeInstanceOf(KeyPolicyTooLargeError);
        return false;
      }
    };
    let fit = 1;
    while (fits(fit + 1)) fit++;
    // The figure the documentation states: ~300 Running enclaves of one fully pinned set fit.
    expect(fit).toBeGreaterThanOrEqual(290);
    expect(() => renderContractKeyPolicy({ ...INPUT, runningEnclaves: enclaves(fit + 1) })).toThrow(
      KeyPolicyTooLargeError,
    );
    expect(renderContractKeyPolicy({ ...INPUT, runningEnclaves: enclaves(fit) }).bytes).toBeLessThanOrEqual(
      MAX_KEY_POLICY_BYTES,
    );
  });
});

describe('admitting what fits', () => {
  it('admits the oldest Running enclaves that fit and refuses the rest, newest first out', () => {
    const enclaves = Array.from({ length: 340 }, (_, i) => ({
      id: `e0000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
      instanceId: `i-${i.toString(16).padStart(17, '0')}`,
      measurementSetId: SET_B.id,
    }));
    const render = (running: readonly (typeof enclaves)[number][]) =>
      renderContractKeyPolicy({ ...INPUT, runningEnclaves: running });
    const { policy, refused } = admitWhatFits(render, enclaves);
    const admitted = policy.admittedEnclaves.length;
    expect(refused.length).toBeGreaterThan(0);
    expect(admitted + refused.length).toBe(enclaves.length);
    expect(policy.admittedEnclaves.map((e) => e.id)).toEqual(enclaves.slice(0, admitted).map((e) => e.id));
    expect(refused).toEqual(enclaves.slice(admitted).map((e) => e.id));
    // The largest that fits: one more does not.
    expect(() => render(enclaves.slice(0, admitted + 1))).toThrow(KeyPolicyTooLargeError);
    // Everything fits: nothing refused.
    expect(admitWhatFits(render, enclaves.slice(0, 10)).refused).toEqual([]);
  });
});
