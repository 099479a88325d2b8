import type { Database, Queryable } from '../../../../shared/database/database.ts';
import type { EventBus } from '../../../../shared/events/event-bus.ts';
import type { LocalSigner } from '../../../../shared/signing/local-signer.ts';
import type { EncryptionContext, SecretSealer } from '../../../../shared/signing/secret-sealer.ts';
import {
  PLATFORM_KEY_TAG_KEY,
  type PlatformKeyManager,
  type Signer,
} from '../../../../shared/signing/signer.ts';
import { type AuthorizationCheck, denialMessage, firstDenial } from './iam-authorizer.ts';
import {
  LOCAL_AWS_RESOURCES,
  LOCAL_REGION,
  type LocalPrincipal,
  type StackPrincipals,
} from './stack-policies.ts';

/** The stack's key policies, which KMS evaluates with the caller's own policies. */
type KeyPolicies = StackPrincipals['keyPolicies'];

/**
 * The ports of the local stack that stand in for AWS services reached with a function's credentials, each
 * authorised as that function's role before it acts, with the checks the service makes:
 * - the database, as the RDS Data API: `rds-data:ExecuteStatement` on the cluster for every statement
 *   (`BeginTransaction` and `CommitTransaction` around a transaction), and, since the
 *   Data API reads the credentials secret with the caller's permissions, `secretsmanager:GetSecretValue` on
 *   the secret and `kms:Decrypt` on its key through Secrets Manager (`kms:ViaService`) ("Authorizing access
 *   to RDS Data API" and "Authentication and access control for AWS Secrets Manager": a secret encrypted
 *   with a customer managed key needs the caller's kms:Decrypt);
 * - the signer, as KMS: `kms:Sign` and `kms:GetPublicKey` on the key the signing alias names, and the
 *   platform key's rotation (`kms:CreateKey`, `kms:TagResource`, `kms:UpdateAlias`);
 * - the secret sealer, as KMS: `kms:GenerateDataKey` and `kms:Decrypt` on the credential key, with the
 *   encryption context;
 * - the event bus, as EventBridge: `events:PutEvents` on the bus.
 * A denial fails as the service fails it: `AccessDeniedException` with IAM's wording.
 *
 * The same policies give the same answer for the same checks, so each answer is kept per role and check:
 * a statement costs one map lookup once its checks were evaluated.
 */

const decisions = new Map<string, Promise<string | undefined>>();

/** IAM's message for the first of `checks` that `principal` may not make, or undefined (cached). */
function denial(
  principal: LocalPrincipal,
  checks: readonly AuthorizationCheck[],
): Promise<string | undefined> {
  const key = `${principal.roleArn}\n${JSON.stringify(checks)}`;
  let decision = decisions.get(key);
  if (decision === undefined) {
    decision = firstDenial(principal, checks).then((d) => (d ? denialMessage(d) : undefined));
    decisions.set(key, decision);
  }
  return decision;
}

/** An AWS SDK v3 service exception as the service would throw it for a denial. */
export function accessDenied(message: string, httpStatusCode: number): Error {
  return Object.assign(new Error(message), {
    name: 'AccessDeniedException',
    $fault: 'client',
    $metadata: { httpStatusCode },
  });
}

async function authorize(
  principal: LocalPrincipal,
  checks: readonly AuthorizationCheck[],
  httpStatusCode: number,
): Promise<void> {
  const message = await denial(principal, checks);
  if (message !== undefined) throw accessDenied(message, httpStatusCode);
}

/** What the Data API checks before it runs `action` (the secret is read with the caller's permissions). */
function dataApiChecks(action: string, keys: KeyPolicies): AuthorizationCheck[] {
  const { clusterArn, secretArn, secretKeyArn } = LOCAL_AWS_RESOURCES;
  return [
    { action: `rds-data:${action}`, resource: clusterArn },
    { action: 'secretsmanager:GetSecretValue', resource: secretArn },
    {
      action: 'kms:Decrypt',
      resource: secretKeyArn,
      context: { 'kms:ViaService': `secretsmanager.${LOCAL_REGION}.amazonaws.com` },
      resourcePolicy: keys.secretKey,
    },
  ];
}

/** The Data API answers a denial with 403. */
const DATA_API_DENIED = 403;
/** KMS and EventBridge answer a denial with 400. */
const KMS_DENIED = 400;

/** `db` as the Data API serves `principal`: every statement and transaction authorised first. */
export function authorizedDatabase(db: Database, principal: LocalPrincipal, keys: KeyPolicies): Database {
  const statement = () => authorize(principal, dataApiChecks('ExecuteStatement', keys), DATA_API_DENIED);
  const inTransaction = (tx: Queryable): Queryable => ({
    query: async (text, params) => {
      await statement();
      return tx.query(text, params);
    },
  });
  return {
    query: async (text, params) => {
      await statement();
      return db.query(text, params);
    },
    transaction: async (work) => {
      await authorize(principal, dataApiChecks('BeginTransaction', keys), DATA_API_DENIED);
      return db.transaction(async (tx) => {
        const value = await work(inTransaction(tx));
        // The commit is a call of its own: denied, the transaction rolls back (a denied rollback changes
        // nothing locally: the Data API would let the transaction time out, rolled back all the same).
        await authorize(principal, dataApiChecks('CommitTransaction', keys), DATA_API_DENIED);
        return value;
      });
    },
    close: () => db.close(),
  };
}

/**
 * The local platform keys as KMS serves `principal`: a signature through the alias is `kms:Sign` and
 * `kms:GetPublicKey` on the key the alias names, which KMS authorises with that key's tags
 * (`aws:ResourceTag/...`) and its key policy. Keys a rotation created carry the default key policy, which,
 * like the stack's first key's, delegates to IAM (the stack's is used for both).
 */
export function authorizedSigner(signer: LocalSigner, principal: LocalPrincipal, stack: KeyAccess): Signer {
  return {
    sign: async (message) => {
      const key = signer.currentKeyId;
      await authorize(
        principal,
        ['kms:Sign', 'kms:GetPublicKey'].map((action) => onPlatformKey(action, key, stack)),
        KMS_DENIED,
      );
      return signer.sign(message);
    },
  };
}

/**
 * The local platform keys' rotation as KMS serves `principal`: `CreateKey` (authorised with the request's
 * tags, key spec and usage) and the `TagResource` it implies, `GetPublicKey` of the new key, and
 * `UpdateAlias` on the alias, the key it leaves and the key it names.
 */
export function authorizedKeyManager(
  manager: LocalSigner,
  principal: LocalPrincipal,
  stack: KeyAccess,
): PlatformKeyManager {
  const tagKey = `aws:RequestTag/${PLATFORM_KEY_TAG_KEY}`;
  return {
    createSigningKey: async () => {
      await authorize(
        principal,
        [
          {
            action: 'kms:CreateKey',
            resource: '*',
            context: {
              [tagKey]: stack.platformKeys.tag,
              'aws:TagKeys': [PLATFORM_KEY_TAG_KEY],
              'kms:KeySpec': 'ECC_NIST_P256',
              'kms:KeyUsage': 'SIGN_VERIFY',
            },
            beyondReference: 'CreateKey names no resource: IAM authorises it on "*"',
          },
        ],
        KMS_DENIED,
      );
      const created = await manager.createSigningKey();
      // KMS authorises the tags and the public key on the key it created (a denial fails the call).
      await authorize(
        principal,
        [
          {
            ...onPlatformKey('kms:TagResource', created.keyId, stack),
            context: { [tagKey]: stack.platformKeys.tag, 'aws:TagKeys': [PLATFORM_KEY_TAG_KEY] },
          },
          onPlatformKey('kms:GetPublicKey', created.keyId, stack),
        ],
        KMS_DENIED,
      );
      return created;
    },
    moveAlias: async (keyId) => {
      await authorize(
        principal,
        [
          { action: 'kms:UpdateAlias', resource: stack.platformKeys.aliasArn },
          onPlatformKey('kms:UpdateAlias', manager.currentKeyId, stack),
          onPlatformKey('kms:UpdateAlias', keyId, stack),
        ],
        KMS_DENIED,
      );
      return manager.moveAlias(keyId);
    },
  };
}

/** What KMS needs to authorise a call on a platform key: the key policy and the deployment's tag. */
type KeyAccess = Pick<StackPrincipals, 'keyPolicies' | 'platformKeys'>;

function onPlatformKey(action: string, keyId: string, stack: KeyAccess): AuthorizationCheck {
  return {
    action,
    resource: keyId,
    resourcePolicy: stack.keyPolicies.signingKey,
    context: { [`aws:ResourceTag/${PLATFORM_KEY_TAG_KEY}`]: stack.platformKeys.tag },
  };
}

/**
 * `sealer` as KMS serves `principal`: a seal is `kms:GenerateDataKey`, an open `kms:Decrypt`, each on the
 * credential key with the encryption context as condition keys (`kms:EncryptionContext:<member>`).
 */
export function authorizedSealer(
  sealer: SecretSealer,
  principal: LocalPrincipal,
  keys: KeyPolicies,
): SecretSealer {
  const on = (action: string, context: EncryptionContext) => [
    {
      action,
      resource: LOCAL_AWS_RESOURCES.credentialKeyArn,
      resourcePolicy: keys.credentialKey,
      context: Object.fromEntries(
        Object.entries(context).map(([member, value]) => [`kms:EncryptionContext:${member}`, value]),
      ),
      beyondReference:
        "kms:EncryptionContext:<member> is in the reference, as a variable the evaluator's validation matches only after a '/', so it would drop these keys and deny every context-conditioned grant",
    },
  ];
  return {
    seal: async (plaintext, context) => {
      await authorize(principal, on('kms:GenerateDataKey', context), KMS_DENIED);
      return sealer.seal(plaintext, context);
    },
    open: async (sealed, context) => {
      await authorize(principal, on('kms:Decrypt', context), KMS_DENIED);
      return sealer.open(sealed, context);
    },
  };
}

/** `bus` as EventBridge serves `principal`: `events:PutEvents` on the bus. */
export function authorizedBus(bus: EventBus, principal: LocalPrincipal): EventBus {
  return {
    publish: async (events) => {
      await authorize(
        principal,
        [{ action: 'events:PutEvents', resource: LOCAL_AWS_RESOURCES.busArn }],
        KMS_DENIED,
      );
      return bus.publish(events);
    },
  };
}
