import { createCipheriv, createDecipheriv, randomBytes, randomUUID } from 'node:crypto';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { authenticateAttestation } from '../../../../shared/attestation/index.ts';
import { canonicalJson } from '../../../../shared/domain/canonical-json.ts';
import { sealForRecipient } from '../../../../shared/keys/recipient-envelope.ts';
import { type SigV4Principal, verifySigV4 } from '../apigateway/sigv4-verifier.ts';
import { type AuthorizationCheck, firstDenial } from '../iam/iam-authorizer.ts';
import type { LocalPrincipal, PolicyDocument } from '../iam/stack-policies.ts';

/**
 * A local KMS for the contracts' data keys: symmetric customer-managed keys with their key policies, served
 * over KMS's own protocol (AWS JSON 1.1, `X-Amz-Target: TrentService.<Operation>`, SigV4 for `kms`), so the
 * real SDK client talks to it, from a function's role session or an enclave's parent's.
 *
 * Operations: CreateKey, CreateAlias, DescribeKey, GetKeyPolicy, PutKeyPolicy, EnableKey, DisableKey,
 * ScheduleKeyDeletion, TagResource, ListResourceTags, GenerateDataKey, GenerateDataKeyWithoutPlaintext and
 * Decrypt, the last two data-key calls with `Recipient`.
 *
 * Every call on a key is authorised as KMS authorises it: the caller's identity policies and the key's
 * policy, evaluated together by the local IAM evaluator (a key policy that does not name the caller or
 * delegate to the account admits nothing), with the condition keys KMS derives: `kms:EncryptionContext:<k>`,
 * `aws:ResourceTag/<k>`, and, for a `Recipient`, `kms:RecipientAttestation:ImageSha384` (PCR0) and
 * `kms:RecipientAttestation:PCR<n>` from the attestation document, which is first authenticated by the
 * project's verifier (chain, signature; the simulator's root is trusted only because the local stack passes
 * it). An attested call answers `CiphertextForRecipient` (CMS, shared/keys/recipient-envelope.ts) and no
 * plaintext.
 *
 * What KMS enforces and this enforces too (AWS KMS API Reference):
 * - a disabled key refuses cryptographic operations (`DisabledException`); a key pending deletion refuses
 *   them and EnableKey/DisableKey (`KMSInvalidStateException`); when its date passes it is gone
 *   (`NotFoundException`); the waiting period is 7 to 30 days (default 30);
 * - a key policy is at most 32,768 characters; CreateKey and PutKeyPolicy refuse a policy that would not let
 *   the caller put a policy again (the lockout safety check, `MalformedPolicyDocumentException`) unless
 *   `BypassPolicyLockoutSafetyCheck`;
 * - GenerateDataKey* takes `KeySpec` or `NumberOfBytes` (1 to 1024), one of them; the only
 *   `KeyEncryptionAlgorithm` is `RSAES_OAEP_SHA_256`; ciphertext under another key than `KeyId` is
 *   `IncorrectKeyException`, a wrong encryption context `InvalidCiphertextException`;
 * - errors are HTTP 400 with `__type` and `message`.
 *
 * Ciphertext blobs are this stand-in's own (version, key id, AES-256-GCM with the canonical encryption
 * context as additional data): opaque to callers, as KMS's are.
 */

export interface KmsSimulatorOptions {
  readonly region: string;
  readonly accountId: string;
  /** The local STS stand-in's credentials (`LocalCredentials.lookup`). */
  readonly lookup: (accessKeyId: string) => SigV4Principal | undefined;
  /** The identity policies of a caller's role session (none for a session of an unknown role). */
  readonly principalOf: (callerArn: string) => LocalPrincipal;
  /** The roots a `Recipient` document may chain to: the Nitro simulator's, locally. */
  readonly attestationRoots: readonly (string | Uint8Array)[];
  /** Where the keys are kept across restarts (JSON); in memory only when absent. */
  readonly stateFile?: string;
  /**
   * The keys' clock (deletion dates, attestation certificates' validity). Requests are signed with the
   * caller's real time and checked against the real time, as SigV4 is.
   */
  readonly now?: () => Date;
}

export interface KmsSimulator {
  /** The endpoint, in place of `https://kms.<region>.amazonaws.com`. */
  readonly url: string;
  /** Each call: operation, the caller and KMS's error type when refused (for tests and the log). */
  readonly calls: { operation: string; callerArn?: string; error?: string }[];
  close(): Promise<void>;
}

type KeyState = 'Enabled' | 'Disabled' | 'PendingDeletion';

interface StoredKey {
  readonly keyId: string;
  readonly arn: string;
  readonly material: string; // base64, 32 bytes
  readonly created: number; // epoch ms
  description: string;
  state: KeyState;
  policy: string;
  tags: Record<string, string>;
  deletionDate?: number;
}

interface State {
  keys: Record<string, StoredKey>;
  aliases: Record<string, string>;
}

class KmsError extends Error {
  constructor(
    readonly type: string,
    message: string,
  ) {
    super(message);
  }
}

const MAX_POLICY_CHARS = 32_768;
const BLOB_VERSION = 1;
const DAY_MS = 86_400_000;
/** The key CreateKey's lockout check names before the key exists. */
const NEW_KEY = '00000000-0000-0000-0000-000000000000';

export async function startKmsSimulator(options: KmsSimulatorOptions): Promise<KmsSimulator> {
  const now = options.now ?? (() => new Date());
  const state: State = load(options.stateFile);
  const calls: KmsSimulator['calls'] = [];
  const save = () => {
    if (!options.stateFile) return;
    writeFileSync(`${options.stateFile}.tmp`, JSON.stringify(state), { mode: 0o600 });
    renameSync(`${options.stateFile}.tmp`, options.stateFile);
  };
  const keyArn = (keyId: string) => `arn:aws:kms:${options.region}:${options.accountId}:key/${keyId}`;
  const aliasArn = (name: string) => `arn:aws:kms:${options.region}:${options.accountId}:${name}`;

  /** The key `id` names (key id, key ARN, alias name or alias ARN); a key whose deletion date passed is gone. */
  function find(id: unknown): StoredKey {
    if (typeof id !== 'string' || id.length === 0 || id.length > 2048) {
      throw new KmsError('ValidationException', '1 validation error detected: KeyId is required');
    }
    let keyId = id;
    const alias = /^(?:arn:aws:kms:[^:]+:\d{12}:)?(alias\/.+)$/.exec(id)?.[1];
    if (alias) {
      const target = state.aliases[alias];
      if (!target) throw new KmsError('NotFoundException', `Alias ${aliasArn(alias)} is not found.`);
      keyId = target;
    } else {
      keyId = /^arn:aws:kms:[^:]+:\d{12}:key\/(.+)$/.exec(id)?.[1] ?? id;
    }
    const key = state.keys[keyId];
    if (key?.deletionDate !== undefined && key.deletionDate <= now().getTime()) {
      delete state.keys[keyId];
      for (const [name, target] of Object.entries(state.aliases))
        if (target === keyId) delete state.aliases[name];
      save();
    }
    const found = state.keys[keyId];
    if (!found) throw new KmsError('NotFoundException', `Key '${keyArn(keyId)}' does not exist`);
    return found;
  }

  /**
   * Authorises `action` as KMS does: on a key (its ARN, its policy as the resource policy, its tags as
   * `aws:ResourceTag/<k>`), or on another resource (an alias ARN, or `*` for CreateKey) by the caller's
   * identity policies alone.
   */
  async function authorize(
    callerArn: string,
    action: string,
    on: StoredKey | { readonly resource: string },
    context: Record<string, string | readonly string[]> = {},
    policy: string | undefined = 'policy' in on ? on.policy : undefined,
  ): Promise<void> {
    const principal = { ...options.principalOf(callerArn), sessionArn: callerArn };
    const resource = 'arn' in on ? on.arn : on.resource;
    const tags = 'tags' in on ? on.tags : {};
    const check: AuthorizationCheck = {
      action,
      resource,
      context: {
        ...context,
        ...Object.fromEntries(Object.entries(tags).map(([k, v]) => [`aws:ResourceTag/${k}`, v])),
      },
      ...(policy ? { resourcePolicy: JSON.parse(policy) as PolicyDocument } : {}),
      beyondReference:
        "KMS derives condition keys the evaluator's reference validates only after a '/' (kms:EncryptionContext:<k>, kms:RecipientAttestation:<k>)",
    };
    const denial = await firstDenial(principal, [check]);
    if (denial) {
      const why =
        denial.result === 'ExplicitlyDenied'
          ? `with an explicit deny in a ${policy ? 'resource' : 'identity'}-based policy`
          : `because no ${policy ? 'resource' : 'identity'}-based policy allows the ${action} action`;
      throw new KmsError(
        'AccessDeniedException',
        `User: ${callerArn} is not authorized to perform: ${action} on resource: ${resource} ${why}`,
      );
    }
  }

  /** The lockout safety check: the new policy must let the caller put a policy again. */
  async function checkLockout(
    callerArn: string,
    key: StoredKey | undefined,
    policy: string,
    bypass: unknown,
  ) {
    if (bypass === true) return;
    try {
      await authorize(callerArn, 'kms:PutKeyPolicy', key ?? { resource: keyArn(NEW_KEY) }, {}, policy);
    } catch {
      throw new KmsError(
        'MalformedPolicyDocumentException',
        'The new key policy will not allow you to update the key policy in the future.',
      );
    }
  }
  function metadata(key: StoredKey) {
    return {
      AWSAccountId: options.accountId,
      KeyId: key.keyId,
      Arn: key.arn,
      CreationDate: key.created / 1000,
      Enabled: key.state === 'Enabled',
      Description: key.description,
      KeyUsage: 'ENCRYPT_DECRYPT',
      KeyState: key.state,
      Origin: 'AWS_KMS',
      KeyManager: 'CUSTOMER',
      KeySpec: 'SYMMETRIC_DEFAULT',
      CustomerMasterKeySpec: 'SYMMETRIC_DEFAULT',
      EncryptionAlgorithms: ['SYMMETRIC_DEFAULT'],
      MultiRegion: false,
      ...(key.deletionDate === undefined
        ? {}
        : {
            DeletionDate: key.deletionDate / 1000,
            PendingDeletionWindowInDays: Math.round((key.deletionDate - now().getTime()) / DAY_MS),
          }),
    };
  }

  function usable(key: StoredKey): void {
    if (key.state === 'Disabled') throw new KmsError('DisabledException', `${key.arn} is disabled.`);
    if (key.state === 'PendingDeletion') {
      throw new KmsError('KMSInvalidStateException', `${key.arn} is pending deletion.`);
    }
  }

  function policyText(policy: unknown): string {
    if (typeof policy !== 'string' || policy.length === 0) {
      throw new KmsError(
        'ValidationException',
        "1 validation error detected: Value at 'policy' failed to satisfy constraint: Member must have length greater than or equal to 1",
      );
    }
    if (policy.length > MAX_POLICY_CHARS) {
      throw new KmsError(
        'ValidationException',
        `1 validation error detected: Value at 'policy' failed to satisfy constraint: Member must have length less than or equal to ${MAX_POLICY_CHARS}`,
      );
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(policy);
    } catch {
      throw new KmsError('MalformedPolicyDocumentException', 'The policy is not valid JSON.');
    }
    const statements = (parsed as { Statement?: unknown })?.Statement;
    if (!Array.isArray(statements) || statements.length === 0) {
      throw new KmsError('MalformedPolicyDocumentException', 'The policy has no statements.');
    }
    return policy;
  }

  function defaultPolicy(): string {
    return JSON.stringify({
      Version: '2012-10-17',
      Id: 'key-default-1',
      Statement: [
        {
          Sid: 'Enable IAM User Permissions',
          Effect: 'Allow',
          Principal: { AWS: `arn:aws:iam::${options.accountId}:root` },
          Action: 'kms:*',
          Resource: '*',
        },
      ],
    });
  }

  function encryptionContext(value: unknown): Record<string, string> {
    if (value === undefined || value === null) return {};
    if (typeof value !== 'object' || Array.isArray(value)) {
      throw new KmsError('ValidationException', 'EncryptionContext must be a map of strings.');
    }
    for (const member of Object.values(value)) {
      if (typeof member !== 'string')
        throw new KmsError('ValidationException', 'EncryptionContext must be a map of strings.');
    }
    return value as Record<string, string>;
  }

  const contextKeys = (context: Record<string, string>) => ({
    ...Object.fromEntries(Object.entries(context).map(([k, v]) => [`kms:EncryptionContext:${k}`, v])),
    ...(Object.keys(context).length > 0 ? { 'kms:EncryptionContextKeys': Object.keys(context) } : {}),
  });

  /** The recipient's public key and the condition keys of its authenticated attestation document. */
  function recipientOf(
    recipient: unknown,
  ): { publicKey: Uint8Array; keys: Record<string, string> } | undefined {
    if (recipient === undefined || recipient === null) return undefined;
    const { KeyEncryptionAlgorithm: algorithm, AttestationDocument: document } = recipient as Record<
      string,
      unknown
    >;
    if (algorithm !== 'RSAES_OAEP_SHA_256') {
      throw new KmsError(
        'ValidationException',
        "1 validation error detected: Value at 'recipient.keyEncryptionAlgorithm' failed to satisfy constraint: Member must satisfy enum value set: [RSAES_OAEP_SHA_256]",
      );
    }
    if (typeof document !== 'string' || document.length === 0 || document.length > 262_144 * 2) {
      throw new KmsError('ValidationException', 'Recipient.AttestationDocument is required.');
    }
    const verdict = authenticateAttestation(document, { at: now(), trustedRoots: options.attestationRoots });
    if (!verdict.ok) {
      throw new KmsError('ValidationException', `The attestation document is not valid: ${verdict.message}`);
    }
    if (!verdict.claims.publicKey) {
      throw new KmsError(
        'ValidationException',
        'The attestation document has no public key to encrypt the response to.',
      );
    }
    const keys: Record<string, string> = {};
    for (const [index, value] of verdict.claims.pcrs) keys[`kms:RecipientAttestation:PCR${index}`] = value;
    const pcr0 = verdict.claims.pcrs.get(0);
    if (pcr0) keys['kms:RecipientAttestation:ImageSha384'] = pcr0;
    return { publicKey: verdict.claims.publicKey, keys };
  }

  function dataKeyLength(input: Record<string, unknown>): number {
    const { KeySpec: spec, NumberOfBytes: bytes } = input;
    if ((spec === undefined) === (bytes === undefined)) {
      throw new KmsError('ValidationException', 'Please specify either number of bytes or key spec.');
    }
    if (spec !== undefined) {
      if (spec === 'AES_256') return 32;
      if (spec === 'AES_128') return 16;
      throw new KmsError(
        'ValidationException',
        "Value at 'keySpec' failed to satisfy constraint: Member must satisfy enum value set: [AES_256, AES_128]",
      );
    }
    if (typeof bytes !== 'number' || !Number.isInteger(bytes) || bytes < 1 || bytes > 1024) {
      throw new KmsError(
        'ValidationException',
        "Value at 'numberOfBytes' failed to satisfy constraint: Member must have value between 1 and 1024",
      );
    }
    return bytes;
  }

  function encrypt(key: StoredKey, plaintext: Buffer, context: Record<string, string>): Buffer {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', Buffer.from(key.material, 'base64'), iv);
    cipher.setAAD(Buffer.from(canonicalJson(context), 'utf8'));
    const sealed = Buffer.concat([cipher.update(plaintext), cipher.final()]);
    const id = Buffer.from(key.keyId.replaceAll('-', ''), 'hex');
    return Buffer.concat([Buffer.from([BLOB_VERSION]), id, iv, sealed, cipher.getAuthTag()]);
  }

  function keyOfBlob(blob: Buffer): string {
    if (blob.length < 1 + 16 + 12 + 16 || blob[0] !== BLOB_VERSION) {
      throw new KmsError('InvalidCiphertextException', '');
    }
    const hex = blob.subarray(1, 17).toString('hex');
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
  }

  function decrypt(key: StoredKey, blob: Buffer, context: Record<string, string>): Buffer {
    try {
      const decipher = createDecipheriv(
        'aes-256-gcm',
        Buffer.from(key.material, 'base64'),
        blob.subarray(17, 29),
      );
      decipher.setAAD(Buffer.from(canonicalJson(context), 'utf8'));
      decipher.setAuthTag(blob.subarray(blob.length - 16));
      return Buffer.concat([decipher.update(blob.subarray(29, blob.length - 16)), decipher.final()]);
    } catch {
      throw new KmsError('InvalidCiphertextException', '');
    }
  }

  const base64Of = (value: unknown, field: string): Buffer => {
    if (typeof value !== 'string' || value.length === 0 || value.length > 8192) {
      throw new KmsError('ValidationException', `1 validation error detected: ${field} is required`);
    }
    return Buffer.from(value, 'base64');
  };

  async function operate(operation: string, input: Record<string, unknown>, caller: string): Promise<object> {
    switch (operation) {
      case 'CreateKey': {
        const tags = tagList(input.Tags);
        const spec = (input.KeySpec ?? input.CustomerMasterKeySpec ?? 'SYMMETRIC_DEFAULT') as string;
        const usage = (input.KeyUsage ?? 'ENCRYPT_DECRYPT') as string;
        if (spec !== 'SYMMETRIC_DEFAULT' || usage !== 'ENCRYPT_DECRYPT') {
          throw new KmsError(
            'UnsupportedOperationException',
            'This stand-in creates symmetric encryption keys only.',
          );
        }
        await authorize(
          caller,
          'kms:CreateKey',
          { resource: '*' },
          {
            ...Object.fromEntries(Object.entries(tags).map(([k, v]) => [`aws:RequestTag/${k}`, v])),
            ...(Object.keys(tags).length > 0 ? { 'aws:TagKeys': Object.keys(tags) } : {}),
            'kms:KeySpec': spec,
            'kms:KeyUsage': usage,
          },
        );
        const policy = input.Policy === undefined ? defaultPolicy() : policyText(input.Policy);
        await checkLockout(caller, undefined, policy, input.BypassPolicyLockoutSafetyCheck);
        const keyId = randomUUID();
        const key: StoredKey = {
          keyId,
          arn: keyArn(keyId),
          material: randomBytes(32).toString('base64'),
          created: now().getTime(),
          description: typeof input.Description === 'string' ? input.Description : '',
          state: 'Enabled',
          policy,
          tags,
        };
        if (Object.keys(tags).length > 0) {
          // Tags on CreateKey need kms:TagResource too, authorised on the key being created.
          await authorize(caller, 'kms:TagResource', key, {
            ...Object.fromEntries(Object.entries(tags).map(([k, v]) => [`aws:RequestTag/${k}`, v])),
            'aws:TagKeys': Object.keys(tags),
          });
        }
        state.keys[keyId] = key;
        save();
        return { KeyMetadata: metadata(key) };
      }
      case 'CreateAlias': {
        const name = input.AliasName;
        if (
          typeof name !== 'string' ||
          !/^alias\/[a-zA-Z0-9/_-]{1,250}$/.test(name) ||
          name.startsWith('alias/aws/')
        ) {
          throw new KmsError(
            'ValidationException',
            'AliasName must begin with alias/ followed by a name, and may not begin with alias/aws/.',
          );
        }
        const key = find(input.TargetKeyId);
        await authorize(caller, 'kms:CreateAlias', { resource: aliasArn(name) });
        await authorize(caller, 'kms:CreateAlias', key);
        if (state.aliases[name])
          throw new KmsError(
            'AlreadyExistsException',
            `An alias with the name ${aliasArn(name)} already exists`,
          );
        state.aliases[name] = key.keyId;
        save();
        return {};
      }
      case 'DescribeKey': {
        const key = find(input.KeyId);
        await authorize(caller, 'kms:DescribeKey', key);
        return { KeyMetadata: metadata(key) };
      }
      case 'GetKeyPolicy': {
        const key = find(input.KeyId);
        await authorize(caller, 'kms:GetKeyPolicy', key);
        return { Policy: key.policy, PolicyName: 'default' };
      }
      case 'PutKeyPolicy': {
        const key = find(input.KeyId);
        await authorize(caller, 'kms:PutKeyPolicy', key);
        if (input.PolicyName !== undefined && input.PolicyName !== 'default') {
          throw new KmsError('ValidationException', 'PolicyName must be default.');
        }
        const policy = policyText(input.Policy);
        await checkLockout(caller, key, policy, input.BypassPolicyLockoutSafetyCheck);
        key.policy = policy;
        save();
        return {};
      }
      case 'EnableKey':
      case 'DisableKey': {
        const key = find(input.KeyId);
        await authorize(caller, `kms:${operation}`, key);
        if (key.state === 'PendingDeletion') {
          throw new KmsError('KMSInvalidStateException', `${key.arn} is pending deletion.`);
        }
        key.state = operation === 'EnableKey' ? 'Enabled' : 'Disabled';
        save();
        return {};
      }
      case 'ScheduleKeyDeletion': {
        const key = find(input.KeyId);
        await authorize(caller, 'kms:ScheduleKeyDeletion', key);
        const days = input.PendingWindowInDays ?? 30;
        if (typeof days !== 'number' || !Number.isInteger(days) || days < 7 || days > 30) {
          throw new KmsError(
            'ValidationException',
            "Value at 'pendingWindowInDays' failed to satisfy constraint: Member must have value between 7 and 30",
          );
        }
        if (key.state === 'PendingDeletion') {
          throw new KmsError('KMSInvalidStateException', `${key.arn} is pending deletion.`);
        }
        key.state = 'PendingDeletion';
        key.deletionDate = now().getTime() + days * DAY_MS;
        save();
        return {
          KeyId: key.arn,
          DeletionDate: key.deletionDate / 1000,
          KeyState: key.state,
          PendingWindowInDays: days,
        };
      }
      case 'TagResource': {
        const key = find(input.KeyId);
        const tags = tagList(input.Tags);
        await authorize(caller, 'kms:TagResource', key, {
          ...Object.fromEntries(Object.entries(tags).map(([k, v]) => [`aws:RequestTag/${k}`, v])),
          'aws:TagKeys': Object.keys(tags),
        });
        Object.assign(key.tags, tags);
        save();
        return {};
      }
      case 'ListResourceTags': {
        const key = find(input.KeyId);
        await authorize(caller, 'kms:ListResourceTags', key);
        return {
          Tags: Object.entries(key.tags).map(([TagKey, TagValue]) => ({ TagKey, TagValue })),
          Truncated: false,
        };
      }
      case 'GenerateDataKey':
      case 'GenerateDataKeyWithoutPlaintext': {
        const key = find(input.KeyId);
        const context = encryptionContext(input.EncryptionContext);
        const length = dataKeyLength(input);
        const recipient = operation === 'GenerateDataKey' ? recipientOf(input.Recipient) : undefined;
        await authorize(caller, `kms:${operation}`, key, { ...contextKeys(context), ...recipient?.keys });
        usable(key);
        const plaintext = randomBytes(length);
        const answer = {
          KeyId: key.arn,
          CiphertextBlob: encrypt(key, plaintext, context).toString('base64'),
        };
        if (operation === 'GenerateDataKeyWithoutPlaintext') return answer;
        return recipient
          ? {
              ...answer,
              CiphertextForRecipient: sealForRecipient(plaintext, recipient.publicKey).toString('base64'),
            }
          : { ...answer, Plaintext: plaintext.toString('base64') };
      }
      case 'Decrypt': {
        const blob = base64Of(input.CiphertextBlob, 'CiphertextBlob');
        const context = encryptionContext(input.EncryptionContext);
        if (input.EncryptionAlgorithm !== undefined && input.EncryptionAlgorithm !== 'SYMMETRIC_DEFAULT') {
          throw new KmsError(
            'IncorrectKeyException',
            'The key is a symmetric key: the encryption algorithm is SYMMETRIC_DEFAULT.',
          );
        }
        const key = find(keyOfBlob(blob));
        if (input.KeyId !== undefined && find(input.KeyId).keyId !== key.keyId) {
          throw new KmsError(
            'IncorrectKeyException',
            'The key ID in the request does not identify a KMS key that can perform this operation.',
          );
        }
        const recipient = recipientOf(input.Recipient);
        await authorize(caller, 'kms:Decrypt', key, { ...contextKeys(context), ...recipient?.keys });
        usable(key);
        const plaintext = decrypt(key, blob, context);
        return recipient
          ? {
              KeyId: key.arn,
              EncryptionAlgorithm: 'SYMMETRIC_DEFAULT',
              CiphertextForRecipient: sealForRecipient(plaintext, recipient.publicKey).toString('base64'),
            }
          : {
              KeyId: key.arn,
              EncryptionAlgorithm: 'SYMMETRIC_DEFAULT',
              Plaintext: plaintext.toString('base64'),
            };
      }
      default:
        throw new KmsError('UnknownOperationException', '');
    }
  }

  const server: Server = createServer((request, response) => {
    const reply = (status: number, body: object) => {
      const text = JSON.stringify(body);
      response.writeHead(status, {
        'content-type': 'application/x-amz-json-1.1',
        'content-length': Buffer.byteLength(text),
      });
      response.end(text);
    };
    handle(request)
      .then((answer) => reply(200, answer))
      .catch((error: unknown) => {
        if (error instanceof KmsError) reply(400, { __type: error.type, message: error.message });
        else reply(500, { __type: 'KMSInternalException', message: 'An internal error occurred.' });
      });
  });

  async function handle(request: IncomingMessage): Promise<object> {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of request) {
      size += (chunk as Buffer).length;
      if (size > 1_000_000) throw new KmsError('ValidationException', 'The request is too large.');
      chunks.push(chunk as Buffer);
    }
    const body = Buffer.concat(chunks).toString('utf8');
    const operation = /^TrentService\.(\w+)$/.exec(String(request.headers['x-amz-target'] ?? ''))?.[1];
    const record: KmsSimulator['calls'][number] = { operation: operation ?? '?' };
    calls.push(record);
    try {
      if (request.method !== 'POST' || !operation) throw new KmsError('UnknownOperationException', '');
      const verdict = await verifySigV4(
        { method: 'POST', url: request.url ?? '/', headers: request.headers, body },
        {
          service: 'kms',
          region: options.region,
          lookup: options.lookup,
        },
      );
      if (!verdict.ok) {
        throw new KmsError(
          verdict.message.startsWith('The security token')
            ? 'UnrecognizedClientException'
            : 'InvalidSignatureException',
          verdict.message,
        );
      }
      record.callerArn = verdict.callerArn;
      let input: Record<string, unknown>;
      try {
        input = JSON.parse(body || '{}') as Record<string, unknown>;
      } catch {
        throw new KmsError('SerializationException', 'The request body is not JSON.');
      }
      if (typeof input !== 'object' || input === null || Array.isArray(input)) {
        throw new KmsError('SerializationException', 'The request body is not a JSON object.');
      }
      return await operate(operation, input, verdict.callerArn);
    } catch (error) {
      if (error instanceof KmsError) record.error = error.type;
      throw error;
    }
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    calls,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function tagList(tags: unknown): Record<string, string> {
  if (tags === undefined) return {};
  if (!Array.isArray(tags)) throw new KmsError('ValidationException', 'Tags must be a list.');
  const out: Record<string, string> = {};
  for (const tag of tags) {
    const { TagKey: key, TagValue: value } = (tag ?? {}) as Record<string, unknown>;
    if (
      typeof key !== 'string' ||
      typeof value !== 'string' ||
      key.length === 0 ||
      key.length > 128 ||
      value.length > 256
    ) {
      throw new KmsError(
        'TagException',
        'Each tag needs a TagKey (1 to 128 characters) and a TagValue (at most 256).',
      );
    }
    out[key] = value;
  }
  return out;
}

function load(file: string | undefined): State {
  if (!file) return { keys: {}, aliases: {} };
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as State;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { keys: {}, aliases: {} };
    throw error;
  }
}
