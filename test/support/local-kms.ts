import { generateKeyPairSync } from 'node:crypto';
import { LOCAL_PARENT_ROLE } from '../../infra/local/local-enclaves.ts';
import type { LocalCredentials } from '../../infra/local/services/iam/local-credentials.ts';
import { LOCAL_REGION, type PolicyDocument } from '../../infra/local/services/iam/stack-policies.ts';
import { type KmsSimulator, startKmsSimulator } from '../../infra/local/services/kms/kms-simulator.ts';
import type {
  AttestRequest,
  NitroSimulator,
} from '../../infra/local/services/nitro-enclaves/nitro-simulator.ts';
import { instanceSessionArn } from '../../shared/http/instance-caller.ts';
import { openForRecipient } from '../../shared/keys/recipient-envelope.ts';
import { AwsJsonError, SignedJsonClient } from '../../shared/runtime/signed-json-client.ts';

/** The account and region the KMS suites' keys live in. */
export const KMS_ACCOUNT = '000000000000';
export const KMS_REGION = 'eu-central-1';
export const roleArn = (name: string): string => `arn:aws:iam::${KMS_ACCOUNT}:role/${name}`;
export const sessionArn = (name: string, id: string): string =>
  `arn:aws:sts::${KMS_ACCOUNT}:assumed-role/${name}/${id}`;

/**
 * The local KMS for a suite whose roles hold `identity` (role name → its identity policy; any other role
 * holds none), trusting the attestation documents of `nitro`.
 */
export function startSuiteKms(options: {
  readonly credentials: LocalCredentials;
  readonly identity: Readonly<Record<string, PolicyDocument>>;
  readonly nitro: NitroSimulator;
  readonly stateFile?: string;
  readonly now?: () => Date;
}): Promise<KmsSimulator> {
  return startKmsSimulator({
    region: KMS_REGION,
    accountId: KMS_ACCOUNT,
    lookup: options.credentials.lookup,
    principalOf: (callerArn) => {
      const name = /:assumed-role\/([^/]+)\//.exec(callerArn)![1]!;
      const policy = options.identity[name];
      return { roleArn: roleArn(name), sessionArn: callerArn, policies: policy ? [{ name, policy }] : [] };
    },
    attestationRoots: [options.nitro.rootPem],
    ...(options.stateFile ? { stateFile: options.stateFile } : {}),
    ...(options.now ? { now: options.now } : {}),
  });
}

/** A KMS client signing as a fresh session of `role`. */
export function kmsClientAs(
  kms: KmsSimulator,
  credentials: LocalCredentials,
  role: string,
  id = 'test',
): SignedJsonClient {
  const issued = credentials.issue(sessionArn(role, id));
  return new SignedJsonClient({
    service: 'kms',
    region: KMS_REGION,
    endpoint: kms.url,
    maxAttempts: 1,
    credentials: async () => issued,
  });
}

/**
 * An enclave asks KMS, through `client` (its parent's role session), for the data key in `blob`: it makes a
 * key pair, has `nitro` attest `request` with the public key, calls Decrypt with the Recipient, and opens
 * the answer with its private key. `ok` with the key, or KMS's error type.
 */
export async function attestedDecrypt(
  client: SignedJsonClient,
  nitro: NitroSimulator,
  request: Omit<AttestRequest, 'publicKey'>,
  blob: string,
  contractId: string,
): Promise<{ outcome: string; key?: Buffer }> {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const document = await nitro.attest({
    ...request,
    publicKey: new Uint8Array(publicKey.export({ type: 'spki', format: 'der' })),
  });
  try {
    const answer = (await client.call('Decrypt', {
      CiphertextBlob: blob,
      EncryptionContext: { contractId },
      Recipient: {
        KeyEncryptionAlgorithm: 'RSAES_OAEP_SHA_256',
        AttestationDocument: Buffer.from(document).toString('base64'),
      },
    })) as { CiphertextForRecipient?: string; Plaintext?: string };
    if (answer.Plaintext !== undefined) throw new Error('KMS answered an attested call in plaintext');
    return {
      outcome: 'ok',
      key: openForRecipient(Buffer.from(answer.CiphertextForRecipient ?? '', 'base64'), privateKey),
    };
  } catch (error) {
    if (error instanceof AwsJsonError) return { outcome: error.name };
    throw error;
  }
}

/** A KMS client of the local stack signing as the role session of the parent `instanceId`. */
export function parentKmsClient(
  enclaves: { readonly kms: KmsSimulator; readonly credentials: LocalCredentials },
  instanceId: string,
): SignedJsonClient {
  const issued = enclaves.credentials.issue(instanceSessionArn(LOCAL_PARENT_ROLE, instanceId));
  return new SignedJsonClient({
    service: 'kms',
    region: LOCAL_REGION,
    endpoint: enclaves.kms.url,
    maxAttempts: 1,
    credentials: async () => issued,
  });
}
