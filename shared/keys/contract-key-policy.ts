import { canonicalJson, sha256Hex } from '../domain/canonical-json.ts';
import type { MeasurementSet } from '../domain/measurement-set.ts';
import { pcr4ForInstanceId } from '../enclaves/parent-pcr4.ts';

/**
 * The key policy of a contract's data key: a pure function of the contract's state, rendered here and
 * nowhere else. KMS evaluates it on every call, so it, not the platform's bookkeeping, answers a provider's
 * question "can anything but an approved enclave under an Active contract read my data?".
 *
 * - The enclave parents' role may `Decrypt` and `GenerateDataKey` only with a recipient attestation (the
 *   `Recipient` parameter: KMS then answers only to the enclave's key, never in plaintext) whose image hash
 *   (`kms:RecipientAttestation:ImageSha384`, PCR0), PCR1, PCR2, PCR8 when pinned and the additional PCRs
 *   are those of an approved measurement set, **and** whose PCR4 is that of the parent of a Running enclave
 *   that attested as that set, and only for this contract's encryption context. One statement per such set,
 *   listing the PCR4s of its Running enclaves: each enclave is admitted only as the image it attested as, on
 *   its own parent. With no Running enclave there is no such statement, and nobody can decrypt.
 * - The function that manages contract keys administers the key (policy, enable and disable, deletion); the
 *   function that answers `POST /contracts/{id}/data-keys` may produce wrapped data keys
 *   (`GenerateDataKeyWithoutPlaintext`) for this contract's encryption context. Neither can decrypt.
 * - The account administers the key but never uses it (AWS's advice for attested keys: a statement for the
 *   account with `NotAction` the cryptographic operations), so the key cannot become unmanageable if a role
 *   is deleted, and no IAM policy in the account can grant a use of it.
 * - Statements are allows only: a call that none allows is denied (KMS's default).
 *
 * The rendering is canonical (RFC 8785, inputs sorted), so the same state gives the same text and digest
 * whatever the order of its inputs, and a rewrite is needed exactly when the digest changes.
 */

/** KMS's limit on a key policy document (32 KB), which the rendering refuses to exceed. */
export const MAX_KEY_POLICY_BYTES = 32_768;

/** The encryption context member every use of a contract key must carry: the contract's id. */
export const CONTRACT_CONTEXT_KEY = 'contractId';

/** What the parents' role may do with an attested recipient. */
export const ENCLAVE_ACTIONS = ['kms:Decrypt', 'kms:GenerateDataKey'] as const;

/** What the key-managing function may do on a contract key. */
export const ADMINISTRATOR_ACTIONS = [
  'kms:DescribeKey',
  'kms:DisableKey',
  'kms:EnableKey',
  'kms:GetKeyPolicy',
  'kms:ListResourceTags',
  'kms:PutKeyPolicy',
  'kms:ScheduleKeyDeletion',
  'kms:TagResource',
] as const;

/** What the account may not do with a contract key: every operation that uses key material. */
export const CRYPTOGRAPHIC_ACTIONS = [
  'kms:Decrypt',
  'kms:DeriveSharedSecret',
  'kms:Encrypt',
  'kms:GenerateDataKey*',
  'kms:GenerateMac',
  'kms:ReEncrypt*',
  'kms:Sign',
  'kms:Verify',
  'kms:VerifyMac',
] as const;

/** The roles a contract key's policy names (IAM role ARNs) and the account that owns the key. */
export interface ContractKeyPrincipals {
  readonly partition: string;
  readonly accountId: string;
  /** The function that creates contract keys and rewrites their policies. */
  readonly administratorRoleArn: string;
  /** The function that answers a provider's request for a wrapped data key. */
  readonly dataKeyRoleArn: string;
  /** The enclave parents' instance role (the enclave's KMS calls go out with its credentials). */
  readonly parentRoleArn: string;
}

/** An approved measurement set, as the policy pins it. */
export type KeyedMeasurementSet = Pick<
  MeasurementSet,
  'id' | 'pcr0' | 'pcr1' | 'pcr2' | 'pcr8' | 'additionalPcrs'
>;

/** A Running enclave of the contract: its parent and the set its verified attestation matched. */
export interface KeyedEnclave {
  readonly id: string;
  readonly instanceId: string;
  readonly measurementSetId: string;
}

export interface ContractKeyPolicyInput {
  readonly contractId: string;
  readonly principals: ContractKeyPrincipals;
  /** The contract's approved measurement sets (others are ignored by the caller's query, not here). */
  readonly measurementSets: readonly KeyedMeasurementSet[];
  /** The contract's Running enclaves. */
  readonly runningEnclaves: readonly KeyedEnclave[];
}

/** A rendered policy: the text to put, its digest, its size, and what it admits. */
export interface RenderedKeyPolicy {
  /** The policy document's text (RFC 8785), as `PutKeyPolicy` receives it. */
  readonly text: string;
  /** Lower-case hex SHA-256 of {@link text}. */
  readonly digest: string;
  readonly bytes: number;
  /** The measurement sets whose statement admits at least one enclave, by id (sorted). */
  readonly admittedMeasurementSets: readonly string[];
  /** The enclaves admitted, by id (sorted), with the PCR4 that stands for each. */
  readonly admittedEnclaves: readonly {
    readonly id: string;
    readonly instanceId: string;
    readonly pcr4: string;
  }[];
}

/** The policy would exceed KMS's 32 KB: the state cannot be expressed as one key policy. */
export class KeyPolicyTooLargeError extends Error {
  override readonly name = 'KeyPolicyTooLargeError';
  constructor(
    readonly bytes: number,
    readonly admittedEnclaves: number,
  ) {
    super(
      `the contract key's policy would take ${bytes} bytes with ${admittedEnclaves} admitted enclaves; KMS allows ${MAX_KEY_POLICY_BYTES}`,
    );
  }
}

const RECIPIENT = 'kms:RecipientAttestation:';

/**
 * Renders the policy of `input.contractId`'s key.
 * @throws KeyPolicyTooLargeError when the policy would exceed {@link MAX_KEY_POLICY_BYTES}.
 */
export function renderContractKeyPolicy(input: ContractKeyPolicyInput): RenderedKeyPolicy {
  const { contractId, principals } = input;
  const context = { StringEquals: { [`kms:EncryptionContext:${CONTRACT_CONTEXT_KEY}`]: contractId } };
  const sets = new Map(input.measurementSets.map((set) => [set.id, set]));
  const admitted = input.runningEnclaves
    .filter((enclave) => sets.has(enclave.measurementSetId))
    .map((enclave) => ({ ...enclave, pcr4: pcr4ForInstanceId(enclave.instanceId) }))
    .sort(byId);
  const bySet = new Map<string, string[]>();
  for (const enclave of admitted) {
    const pcr4s = bySet.get(enclave.measurementSetId) ?? [];
    pcr4s.push(enclave.pcr4);
    bySet.set(enclave.measurementSetId, pcr4s);
  }
  const setIds = [...bySet.keys()].sort(); // UTF-16 code unit order, as RFC 8785 orders keys

  const statements: Record<string, unknown>[] = [
    {
      Sid: 'AccountAdministersButNeverUses',
      Effect: 'Allow',
      Principal: { AWS: `arn:${principals.partition}:iam::${principals.accountId}:root` },
      NotAction: [...CRYPTOGRAPHIC_ACTIONS],
      Resource: '*',
    },
    {
      Sid: 'PlatformAdministers',
      Effect: 'Allow',
      Principal: { AWS: principals.administratorRoleArn },
      Action: [...ADMINISTRATOR_ACTIONS],
      Resource: '*',
    },
    {
      Sid: 'PlatformWrapsDataKeysForTheProvider',
      Effect: 'Allow',
      Principal: { AWS: principals.dataKeyRoleArn },
      Action: 'kms:GenerateDataKeyWithoutPlaintext',
      Resource: '*',
      Condition: context,
    },
    ...setIds.map((setId, index) => {
      const set = sets.get(setId)!;
      const pinned: Record<string, string | string[]> = {
        [`${RECIPIENT}ImageSha384`]: set.pcr0.toLowerCase(),
        [`${RECIPIENT}PCR1`]: set.pcr1.toLowerCase(),
        [`${RECIPIENT}PCR2`]: set.pcr2.toLowerCase(),
      };
      if (set.pcr8) pinned[`${RECIPIENT}PCR8`] = set.pcr8.toLowerCase();
      for (const [register, value] of Object.entries(set.additionalPcrs)) {
        pinned[`${RECIPIENT}PCR${register}`] = value.toLowerCase();
      }
      // Assigned last, so that no additional register can replace the parents' pin (the schemas refuse one).
      pinned[`${RECIPIENT}PCR4`] = bySet.get(setId)!.sort();
      return {
        Sid: `ApprovedEnclaves${index}`,
        Effect: 'Allow',
        Principal: { AWS: principals.parentRoleArn },
        Action: [...ENCLAVE_ACTIONS],
        Resource: '*',
        Condition: { StringEqualsIgnoreCase: pinned, ...context },
      };
    }),
  ];
  const text = canonicalJson({ Version: '2012-10-17', Id: `contract-${contractId}`, Statement: statements });
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes > MAX_KEY_POLICY_BYTES) throw new KeyPolicyTooLargeError(bytes, admitted.length);
  return {
    text,
    digest: sha256Hex(text),
    bytes,
    admittedMeasurementSets: setIds,
    admittedEnclaves: admitted.map(({ id, instanceId, pcr4 }) => ({ id, instanceId, pcr4 })),
  };
}

// Enclave ids are distinct, so `<=` would order them the same.
// Stryker disable next-line EqualityOperator: equivalent (above)
const byId = (a: { readonly id: string }, b: { readonly id: string }) => (a.id < b.id ? -1 : 1);
