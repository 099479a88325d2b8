/**
 * The local KMS stand-in (infra/local/services/kms/kms-simulator.ts) through the project's SigV4 JSON client,
 * with a contract key whose policy the renderer wrote: the enclave parents' sessions get a data key only
 * with an authenticated attestation document of an approved image on a Running enclave's parent, and only
 * as `CiphertextForRecipient`, which the enclave's private key opens; each refusal comes as KMS sends it.
 */
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalCredentials } from '../../infra/local/services/iam/local-credentials.ts';
import type { PolicyDocument } from '../../infra/local/services/iam/stack-policies.ts';
import { type KmsSimulator, startKmsSimulator } from '../../infra/local/services/kms/kms-simulator.ts';
import {
  imageMeasurements,
  NitroSimulator,
} from '../../infra/local/services/nitro-enclaves/nitro-simulator.ts';
import {
  type ContractKeyPrincipals,
  type KeyedEnclave,
  type KeyedMeasurementSet,
  renderContractKeyPolicy,
} from '../../shared/keys/contract-key-policy.ts';
import { openForRecipient } from '../../shared/keys/recipient-envelope.ts';
import { AwsJsonError, SignedJsonClient } from '../../shared/runtime/signed-json-client.ts';
import { startSuiteKms } from '../support/local-kms.ts';

const ACCOUNT = '000000000000';
const REGION = 'eu-central-1';
const role = (name: string) => `arn:aws:iam::${ACCOUNT}:role/${name}`;
const session = (name: string, id: string) => `arn:aws:sts::${ACCOUNT}:assumed-role/${name}/${id}`;
const PRINCIPALS: ContractKeyPrincipals = {
  partition: 'aws',
  accountId: ACCOUNT,
  administratorRoleArn: role('ContractKeys'),
  dataKeyRoleArn: role('DataKeys'),
  parentRoleArn: role('Parents'),
};
const TAG = 'enclave-contracts:contract';
const CONTRACT = '22222222-2222-4222-8222-222222222222';
const IMAGE = { eif: 'contract-runner:2.3.0' };
const OTHER_IMAGE = { eif: 'contract-runner:9.9.9' };
const measured = imageMeasurements(IMAGE);
const SET: KeyedMeasurementSet = {
  id: 'aaaaaaaa-0000-4000-8000-000000000001',
  pcr0: measured.pcr0,
  pcr1: measured.pcr1,
  pcr2: measured.pcr2,
  pcr8: null,
  additionalPcrs: {},
};
const ENCLAVE_A: KeyedEnclave = {
  id: 'e1000000-0000-4000-8000-000000000001',
  instanceId: 'i-0123456789abcdef0',
  measurementSetId: SET.id,
};
const ENCLAVE_B: KeyedEnclave = {
  id: 'e2000000-0000-4000-8000-000000000002',
  instanceId: 'i-0123456789abcdef1',
  measurementSetId: SET.id,
};

/** The identity policies the roles hold (what the CDK stack grants; the key policy does the rest). */
const IDENTITY: Record<string, PolicyDocument> = {
  ContractKeys: {
    Version: '2012-10-17',
    Statement: [
      {
        Effect: 'Allow',
        Action: 'kms:CreateKey',
        Resource: '*',
        Condition: {
          'ForAllValues:StringEquals': { 'aws:TagKeys': [TAG] },
          Null: { [`aws:RequestTag/${TAG}`]: 'false' },
        },
      },
      { Effect: 'Allow', Action: ['kms:TagResource', 'kms:PutKeyPolicy'], Resource: '*' },
      {
        Effect: 'Allow',
        Action: 'kms:CreateAlias',
        Resource: `arn:aws:kms:${REGION}:${ACCOUNT}:alias/enclave-contracts/contracts/*`,
      },
      { Effect: 'Allow', Action: 'kms:CreateAlias', Resource: `arn:aws:kms:${REGION}:${ACCOUNT}:key/*` },
    ],
  },
  // A stranger whose own policy allows every KMS action: the key policy still admits it to nothing.
  Stranger: { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'kms:*', Resource: '*' }] },
};

let kms: KmsSimulator;
let nitro: NitroSimulator;
let otherNitro: NitroSimulator;
let clock = new Date();
const credentials = new LocalCredentials(() => clock.getTime());
const dir = mkdtempSync(join(tmpdir(), 'kms-simulator-'));

function clientAs(roleName: string, id = 'test'): SignedJsonClient {
  const issued = credentials.issue(session(roleName, id));
  return new SignedJsonClient({
    service: 'kms',
    region: REGION,
    endpoint: kms.url,
    maxAttempts: 1,
    credentials: async () => issued,
  });
}

/** The type of KMS's refusal (`AccessDeniedException`, …), or 'ok'. */
async function outcome(call: Promise<unknown>): Promise<string> {
  try {
    await call;
    return 'ok';
  } catch (error) {
    if (error instanceof AwsJsonError) return error.name;
    throw error;
  }
}

/** An enclave: its key pair, and an attestation document carrying the public key. */
async function enclave(
  instanceId: string,
  options: { image?: typeof IMAGE; debug?: boolean; simulator?: NitroSimulator } = {},
) {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const document = await (options.simulator ?? nitro).attest({
    instanceId,
    image: options.image ?? IMAGE,
    publicKey: new Uint8Array(publicKey.export({ type: 'spki', format: 'der' })),
    ...(options.debug ? { debug: true } : {}),
  });
  return {
    privateKey,
    recipient: {
      KeyEncryptionAlgorithm: 'RSAES_OAEP_SHA_256',
      AttestationDocument: Buffer.from(document).toString('base64'),
    },
  };
}

const policyFor = (running: KeyedEnclave[]) =>
  renderContractKeyPolicy({
    contractId: CONTRACT,
    principals: PRINCIPALS,
    measurementSets: [SET],
    runningEnclaves: running,
  }).text;

beforeAll(async () => {
  nitro = await NitroSimulator.create();
  otherNitro = await NitroSimulator.create();
  kms = await startSuiteKms({
    credentials,
    identity: IDENTITY,
    nitro,
    stateFile: join(dir, 'kms.json'),
    now: () => clock,
  });
});
afterAll(async () => {
  await kms?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('the local KMS with a contract key', () => {
  let keyId: string;
  let wrapped: string;
  const context = { contractId: CONTRACT };

  it('creates the key with its rendered policy and tag, and an alias, as the key-managing function', async () => {
    const admin = clientAs('ContractKeys');
    const created = (await admin.call('CreateKey', {
      Description: `contract ${CONTRACT}`,
      Policy: policyFor([ENCLAVE_A, ENCLAVE_B]),
      Tags: [{ TagKey: TAG, TagValue: CONTRACT }],
    })) as { KeyMetadata: { KeyId: string; Arn: string; KeyState: string; Enabled: boolean } };
    expect(created.KeyMetadata).toMatchObject({ KeyState: 'Enabled', Enabled: true });
    keyId = created.KeyMetadata.KeyId;
    await admin.call('CreateAlias', {
      AliasName: `alias/enclave-contracts/contracts/${CONTRACT}`,
      TargetKeyId: keyId,
    });
    // A tag the function may not set, or no tag, is refused before anything is created.
    expect(
      await outcome(
        admin.call('CreateKey', { Policy: policyFor([]), Tags: [{ TagKey: 'other', TagValue: 'x' }] }),
      ),
    ).toBe('AccessDeniedException');
    expect(await outcome(admin.call('CreateKey', { Policy: policyFor([]) }))).toBe('AccessDeniedException');
    // An alias outside the function's prefix.
    expect(
      await outcome(admin.call('CreateAlias', { AliasName: 'alias/elsewhere', TargetKeyId: keyId })),
    ).toBe('AccessDeniedException');
    // The policy it reads back is the one it rendered; the alias names the key.
    const read = (await admin.call('GetKeyPolicy', { KeyId: keyId, PolicyName: 'default' })) as {
      Policy: string;
    };
    expect(read.Policy).toBe(policyFor([ENCLAVE_A, ENCLAVE_B]));
    const described = (await admin.call('DescribeKey', {
      KeyId: `alias/enclave-contracts/contracts/${CONTRACT}`,
    })) as {
      KeyMetadata: { KeyId: string };
    };
    expect(described.KeyMetadata.KeyId).toBe(keyId);
  });

  it('wraps a data key for the provider, under the contract context only', async () => {
    const dataKeys = clientAs('DataKeys');
    const answer = (await dataKeys.call('GenerateDataKeyWithoutPlaintext', {
      KeyId: `alias/enclave-contracts/contracts/${CONTRACT}`,
      KeySpec: 'AES_256',
      EncryptionContext: context,
    })) as { CiphertextBlob: string; KeyId: string; Plaintext?: string };
    expect(answer.Plaintext).toBeUndefined();
    expect(answer.KeyId).toContain(keyId);
    wrapped = answer.CiphertextBlob;
    expect(
      await outcome(
        dataKeys.call('GenerateDataKeyWithoutPlaintext', {
          KeyId: keyId,
          KeySpec: 'AES_256',
          EncryptionContext: { contractId: 'another' },
        }),
      ),
    ).toBe('AccessDeniedException');
    expect(
      await outcome(
        dataKeys.call('GenerateDataKeyWithoutPlaintext', { KeyId: keyId, EncryptionContext: context }),
      ),
    ).toBe('ValidationException');
    // It can wrap, never unwrap.
    expect(
      await outcome(dataKeys.call('Decrypt', { CiphertextBlob: wrapped, EncryptionContext: context })),
    ).toBe('AccessDeniedException');
    expect(
      await outcome(
        clientAs('Stranger').call('Decrypt', { CiphertextBlob: wrapped, EncryptionContext: context }),
      ),
    ).toBe('AccessDeniedException');
  });

  it("releases the data key to an approved enclave on a Running enclave's parent, encrypted to the enclave's key alone", async () => {
    const a = await enclave(ENCLAVE_A.instanceId);
    const b = await enclave(ENCLAVE_B.instanceId);
    const parentsA = clientAs('Parents', ENCLAVE_A.instanceId);
    const answerA = (await parentsA.call('Decrypt', {
      CiphertextBlob: wrapped,
      EncryptionContext: context,
      Recipient: a.recipient,
    })) as {
      Plaintext?: string;
      CiphertextForRecipient: string;
    };
    expect(answerA.Plaintext).toBeUndefined();
    const keyA = openForRecipient(Buffer.from(answerA.CiphertextForRecipient, 'base64'), a.privateKey);
    const answerB = (await clientAs('Parents', ENCLAVE_B.instanceId).call('Decrypt', {
      CiphertextBlob: wrapped,
      EncryptionContext: context,
      Recipient: b.recipient,
    })) as { CiphertextForRecipient: string };
    const keyB = openForRecipient(Buffer.from(answerB.CiphertextForRecipient, 'base64'), b.privateKey);
    expect(keyA).toHaveLength(32);
    expect(keyB).toEqual(keyA);
    // The parent, holding A's answer, cannot open it with any other key.
    expect(() =>
      openForRecipient(Buffer.from(answerA.CiphertextForRecipient, 'base64'), b.privateKey),
    ).toThrow('for another key');
  });

  it('refuses what KMS refuses: no attestation, another image, debug mode, another parent, another root, another context', async () => {
    const parents = clientAs('Parents', ENCLAVE_A.instanceId);
    const decrypt = (recipient: object | undefined, ctx: object = context) =>
      outcome(
        parents.call('Decrypt', {
          CiphertextBlob: wrapped,
          EncryptionContext: ctx,
          ...(recipient ? { Recipient: recipient } : {}),
        }),
      );
    expect(await decrypt(undefined)).toBe('AccessDeniedException');
    expect(await decrypt((await enclave(ENCLAVE_A.instanceId, { image: OTHER_IMAGE })).recipient)).toBe(
      'AccessDeniedException',
    );
    expect(await decrypt((await enclave(ENCLAVE_A.instanceId, { debug: true })).recipient)).toBe(
      'AccessDeniedException',
    );
    expect(await decrypt((await enclave('i-0fedcba9876543210')).recipient)).toBe('AccessDeniedException');
    expect(await decrypt((await enclave(ENCLAVE_A.instanceId, { simulator: otherNitro })).recipient)).toBe(
      'ValidationException',
    );
    const good = (await enclave(ENCLAVE_A.instanceId)).recipient;
    expect(await decrypt(good, { contractId: 'another' })).toBe('AccessDeniedException');
    expect(await decrypt({ ...good, KeyEncryptionAlgorithm: 'RSAES_OAEP_SHA_1' })).toBe(
      'ValidationException',
    );
    expect(
      await decrypt({ ...good, AttestationDocument: Buffer.from('not a document').toString('base64') }),
    ).toBe('ValidationException');
    // The parent's role may not decrypt without a recipient even for its own contract, nor change the policy.
    expect(await outcome(parents.call('PutKeyPolicy', { KeyId: keyId, Policy: policyFor([]) }))).toBe(
      'AccessDeniedException',
    );
  });

  it('follows the policy: a suspended enclave loses access while its sibling keeps it', async () => {
    await clientAs('ContractKeys').call('PutKeyPolicy', {
      KeyId: keyId,
      Policy: policyFor([ENCLAVE_B]),
      PolicyName: 'default',
    });
    const a = await enclave(ENCLAVE_A.instanceId);
    const b = await enclave(ENCLAVE_B.instanceId);
    expect(
      await outcome(
        clientAs('Parents', 'a').call('Decrypt', {
          CiphertextBlob: wrapped,
          EncryptionContext: context,
          Recipient: a.recipient,
        }),
      ),
    ).toBe('AccessDeniedException');
    expect(
      await outcome(
        clientAs('Parents', 'b').call('Decrypt', {
          CiphertextBlob: wrapped,
          EncryptionContext: context,
          Recipient: b.recipient,
        }),
      ),
    ).toBe('ok');
  });

  it('refuses a policy that would lock the administrator out, or one over 32 KB', async () => {
    const admin = clientAs('ContractKeys');
    const locked = JSON.parse(policyFor([ENCLAVE_B])) as { Statement: { Sid: string }[] };
    locked.Statement = locked.Statement.filter(
      (s) => s.Sid !== 'PlatformAdministers' && s.Sid !== 'AccountAdministersButNeverUses',
    );
    expect(await outcome(admin.call('PutKeyPolicy', { KeyId: keyId, Policy: JSON.stringify(locked) }))).toBe(
      'MalformedPolicyDocumentException',
    );
    const padded = JSON.parse(policyFor([ENCLAVE_B])) as { Id: string };
    padded.Id = 'x'.repeat(32_768);
    expect(await outcome(admin.call('PutKeyPolicy', { KeyId: keyId, Policy: JSON.stringify(padded) }))).toBe(
      'ValidationException',
    );
  });

  it('disables, enables, schedules deletion (7 to 30 days) and forgets the key when its date passes', async () => {
    const admin = clientAs('ContractKeys');
    const b = await enclave(ENCLAVE_B.instanceId);
    const decrypt = () =>
      outcome(
        clientAs('Parents', 'b').call('Decrypt', {
          CiphertextBlob: wrapped,
          EncryptionContext: context,
          Recipient: b.recipient,
        }),
      );
    await admin.call('DisableKey', { KeyId: keyId });
    expect(await decrypt()).toBe('DisabledException');
    await admin.call('EnableKey', { KeyId: keyId });
    expect(await decrypt()).toBe('ok');
    expect(await outcome(admin.call('ScheduleKeyDeletion', { KeyId: keyId, PendingWindowInDays: 6 }))).toBe(
      'ValidationException',
    );
    const scheduled = (await admin.call('ScheduleKeyDeletion', { KeyId: keyId, PendingWindowInDays: 7 })) as {
      KeyState: string;
      DeletionDate: number;
    };
    expect(scheduled.KeyState).toBe('PendingDeletion');
    expect(scheduled.DeletionDate * 1000 - clock.getTime()).toBe(7 * 86_400_000);
    expect(await decrypt()).toBe('KMSInvalidStateException');
    expect(await outcome(admin.call('EnableKey', { KeyId: keyId }))).toBe('KMSInvalidStateException');
    // Seven days on (the role session renewed, as Lambda's are), the key is gone.
    clock = new Date(clock.getTime() + 7 * 86_400_000 + 1000);
    expect(await outcome(clientAs('ContractKeys').call('DescribeKey', { KeyId: keyId }))).toBe(
      'NotFoundException',
    );
  });

  it('keeps its keys across a restart (the state file)', async () => {
    const admin = clientAs('ContractKeys');
    const created = (await admin.call('CreateKey', {
      Policy: policyFor([ENCLAVE_A]),
      Tags: [{ TagKey: TAG, TagValue: CONTRACT }],
    })) as {
      KeyMetadata: { KeyId: string };
    };
    const restarted = await startKmsSimulator({
      region: REGION,
      accountId: ACCOUNT,
      lookup: credentials.lookup,
      principalOf: (callerArn) => ({ roleArn: role('ContractKeys'), sessionArn: callerArn, policies: [] }),
      attestationRoots: [],
      stateFile: join(dir, 'kms.json'),
      now: () => clock,
    });
    try {
      const client = new SignedJsonClient({
        service: 'kms',
        region: REGION,
        endpoint: restarted.url,
        maxAttempts: 1,
        credentials: async () => credentials.issue(session('ContractKeys', 'x')),
      });
      expect(await outcome(client.call('DescribeKey', { KeyId: created.KeyMetadata.KeyId }))).toBe('ok');
    } finally {
      await restarted.close();
    }
  });

  it('authenticates every call: an unknown key or a wrong signature is refused as KMS refuses it', async () => {
    const forged = new SignedJsonClient({
      service: 'kms',
      region: REGION,
      endpoint: kms.url,
      maxAttempts: 1,
      credentials: async () => ({
        accessKeyId: 'ASIAUNKNOWNUNKNOWN00',
        secretAccessKey: 'x',
        sessionToken: 'y',
      }),
    });
    expect(await outcome(forged.call('DescribeKey', { KeyId: keyId }))).toBe('UnrecognizedClientException');
    const issued = credentials.issue(session('ContractKeys', 'tampered'));
    const tampered = new SignedJsonClient({
      service: 'kms',
      region: REGION,
      endpoint: kms.url,
      maxAttempts: 1,
      credentials: async () => ({ ...issued, secretAccessKey: `${issued.secretAccessKey}x` }),
    });
    expect(await outcome(tampered.call('DescribeKey', { KeyId: keyId }))).toBe('InvalidSignatureException');
  });
});

describe('the local KMS refuses what KMS refuses, with its error types', () => {
  /** A key whose default policy delegates to the account, used by a role whose own policy allows kms:*. */
  let keyId: string;
  let otherKeyId: string;
  const user = () => clientAs('Stranger');

  beforeAll(async () => {
    // Back to the attestation documents' time (the suite above moved the keys' clock a week on).
    clock = new Date();
    const create = async () =>
      ((await user().call('CreateKey', {})) as { KeyMetadata: { KeyId: string } }).KeyMetadata.KeyId;
    keyId = await create();
    otherKeyId = await create();
  });

  it('binds a ciphertext to its key and its encryption context', async () => {
    const { CiphertextBlob: blob } = (await user().call('GenerateDataKey', {
      KeyId: keyId,
      NumberOfBytes: 32,
      EncryptionContext: { contractId: CONTRACT },
    })) as { CiphertextBlob: string };
    const decrypt = (input: object) => outcome(user().call('Decrypt', { CiphertextBlob: blob, ...input }));
    expect(await decrypt({ EncryptionContext: { contractId: CONTRACT } })).toBe('ok');
    expect(await decrypt({ EncryptionContext: { contractId: 'another' } })).toBe(
      'InvalidCiphertextException',
    );
    expect(await decrypt({})).toBe('InvalidCiphertextException');
    expect(await decrypt({ EncryptionContext: { contractId: CONTRACT }, KeyId: otherKeyId })).toBe(
      'IncorrectKeyException',
    );
    expect(
      await decrypt({
        EncryptionContext: { contractId: CONTRACT },
        EncryptionAlgorithm: 'RSAES_OAEP_SHA_256',
      }),
    ).toBe('IncorrectKeyException');
    const tampered = Buffer.from(blob, 'base64');
    tampered[tampered.length - 1]! ^= 1;
    expect(
      await outcome(
        user().call('Decrypt', {
          CiphertextBlob: tampered.toString('base64'),
          EncryptionContext: { contractId: CONTRACT },
        }),
      ),
    ).toBe('InvalidCiphertextException');
    expect(
      await outcome(user().call('Decrypt', { CiphertextBlob: Buffer.from('short').toString('base64') })),
    ).toBe('InvalidCiphertextException');
  });

  it('takes KeySpec or NumberOfBytes (1 to 1024), one of them', async () => {
    const generate = (input: object) =>
      outcome(user().call('GenerateDataKeyWithoutPlaintext', { KeyId: keyId, ...input }));
    expect(await generate({ KeySpec: 'AES_128' })).toBe('ok');
    expect(await generate({ NumberOfBytes: 1024 })).toBe('ok');
    for (const bad of [
      {},
      { KeySpec: 'AES_256', NumberOfBytes: 32 },
      { NumberOfBytes: 0 },
      { NumberOfBytes: 1025 },
      { KeySpec: 'AES_512' },
    ]) {
      expect(await generate(bad), JSON.stringify(bad)).toBe('ValidationException');
    }
  });

  it('refuses an attestation document without a public key to answer to', async () => {
    const document = await nitro.attest({ instanceId: ENCLAVE_A.instanceId, image: IMAGE });
    const recipient = {
      KeyEncryptionAlgorithm: 'RSAES_OAEP_SHA_256',
      AttestationDocument: Buffer.from(document).toString('base64'),
    };
    const refused = (await user()
      .call('GenerateDataKey', { KeyId: keyId, NumberOfBytes: 32, Recipient: recipient })
      .catch((error: unknown) => error)) as AwsJsonError;
    expect(refused.name).toBe('ValidationException');
    expect(refused.message).toContain('no public key');
  });

  it('names aliases as KMS does, once each, never under alias/aws/, and finds keys by them', async () => {
    expect(
      await outcome(user().call('CreateAlias', { AliasName: 'alias/aws/mine', TargetKeyId: keyId })),
    ).toBe('ValidationException');
    expect(await outcome(user().call('CreateAlias', { AliasName: 'not-an-alias', TargetKeyId: keyId }))).toBe(
      'ValidationException',
    );
    expect(await outcome(user().call('CreateAlias', { AliasName: 'alias/mine', TargetKeyId: keyId }))).toBe(
      'ok',
    );
    expect(
      await outcome(user().call('CreateAlias', { AliasName: 'alias/mine', TargetKeyId: otherKeyId })),
    ).toBe('AlreadyExistsException');
    expect(await outcome(user().call('DescribeKey', { KeyId: 'alias/nobody' }))).toBe('NotFoundException');
    const found = (await user().call('DescribeKey', { KeyId: 'alias/mine' })) as {
      KeyMetadata: { KeyId: string };
    };
    expect(found.KeyMetadata.KeyId).toBe(keyId);
  });

  it('creates symmetric encryption keys only, and refuses a call it does not know', async () => {
    expect(
      await outcome(user().call('CreateKey', { KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY' })),
    ).toBe('UnsupportedOperationException');
    expect(await outcome(user().call('ReEncrypt', {}))).toBe('UnknownOperationException');
  });
});
