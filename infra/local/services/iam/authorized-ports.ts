import type { Database, Queryable } from '../../../../shared/database/database.ts';
import type { EventBus } from '../../../../shared/events/event-bus.ts';
import type { EncryptionContext, SecretSealer } from '../../../../shared/signing/secret-sealer.ts';
import type { Signer } from '../../../../shared/signing/signer.ts';
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
 * - the signer, as KMS: `kms:Sign` and `kms:GetPublicKey` on the signing key;
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

/** `signer` as KMS serves `principal`: `kms:Sign` and `kms:GetPublicKey` on the signing key. */
export function authorizedSigner(signer: Signer, principal: LocalPrincipal, keys: KeyPolicies): Signer {
  const on = (action: string) => [
    { action, resource: LOCAL_AWS_RESOURCES.signingKeyArn, resourcePolicy: keys.signingKey },
  ];
  return {
    sign: async (message) => {
      await authorize(principal, on('kms:Sign'), KMS_DENIED);
      return signer.sign(message);
    },
    publicKeys: async () => {
      await authorize(principal, on('kms:GetPublicKey'), KMS_DENIED);
      return signer.publicKeys();
    },
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
