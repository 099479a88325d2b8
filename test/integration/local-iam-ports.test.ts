/**
 * The local stand-ins for the Data API, KMS signing and EventBridge answer as the calling function's role,
 * with the policies the synthesized stack gives it and, for KMS, the key's own policy: a function the
 * template grants nothing is refused as AWS refuses it (AccessDeniedException, IAM's wording), and what
 * the template grants goes through.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import {
  authorizedBus,
  authorizedDatabase,
  authorizedKeyManager,
  authorizedSealer,
  authorizedSigner,
} from '../../infra/local/services/iam/authorized-ports.ts';
import {
  LOCAL_AWS_RESOURCES,
  principal,
  type StackPrincipals,
  stackPrincipals,
} from '../../infra/local/services/iam/stack-policies.ts';
import { PgliteDatabase } from '../../shared/database/pglite-database.ts';
import { InProcessBus } from '../../shared/events/in-process-bus.ts';
import { LocalSigner } from '../../shared/signing/local-signer.ts';
import { EnvelopeSealer, LocalDataKeys } from '../../shared/signing/secret-sealer.ts';
import { TEST_RESOURCE_NAMES } from '../support/local-iam.ts';

const NAMES = TEST_RESOURCE_NAMES;

let principals: StackPrincipals;
let db: PgliteDatabase;
let signer: LocalSigner;

beforeAll(async () => {
  principals = stackPrincipals(NAMES);
  db = await PgliteDatabase.open();
  await db.query('CREATE TABLE t (v int)');
  signer = await LocalSigner.create({ initialKeyId: LOCAL_AWS_RESOURCES.signingKeyArn });
}, 120_000);

const route = (id: string) => principals.routes.get(id)!;
const denied = (action: string) =>
  expect.objectContaining({
    name: 'AccessDeniedException',
    message: expect.stringMatching(
      new RegExp(`is not authorized to perform: ${action} on resource: arn:aws:`),
    ),
  });

describe('the Data API stand-in', () => {
  it('runs statements and transactions for a function granted the database', async () => {
    const asRoute = authorizedDatabase(db, route('createContract'), principals.keyPolicies);
    expect((await asRoute.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    await asRoute.transaction((tx) => tx.query('INSERT INTO t VALUES (1)'));
    expect((await db.query('SELECT count(*)::int AS n FROM t')).rows).toEqual([{ n: 1 }]);
  });

  it('refuses a function granted no database, with IAM wording and 403', async () => {
    const asOpenApi = authorizedDatabase(db, route('getOpenApi'), principals.keyPolicies);
    const error = await asOpenApi.query('SELECT 1').catch((e: unknown) => e);
    expect(error).toEqual(denied('rds-data:ExecuteStatement'));
    expect((error as { $metadata: { httpStatusCode: number } }).$metadata.httpStatusCode).toBe(403);
    await expect(asOpenApi.transaction((tx) => tx.query('INSERT INTO t VALUES (2)'))).rejects.toEqual(
      denied('rds-data:BeginTransaction'),
    );
  });

  it('needs the secret and its key too, and a denied commit rolls the transaction back', async () => {
    const stmt = (actions: string[]) =>
      principal('Partial', [
        {
          name: 'p',
          policy: {
            Version: '2012-10-17',
            Statement: [
              { Effect: 'Allow', Action: actions, Resource: LOCAL_AWS_RESOURCES.clusterArn },
              {
                Effect: 'Allow',
                Action: 'secretsmanager:GetSecretValue',
                Resource: LOCAL_AWS_RESOURCES.secretArn,
              },
              { Effect: 'Allow', Action: 'kms:Decrypt', Resource: LOCAL_AWS_RESOURCES.secretKeyArn },
            ],
          },
        },
      ]);
    const noCommit = authorizedDatabase(
      db,
      stmt(['rds-data:ExecuteStatement', 'rds-data:BeginTransaction']),
      principals.keyPolicies,
    );
    await expect(noCommit.transaction((tx) => tx.query('INSERT INTO t VALUES (3)'))).rejects.toEqual(
      denied('rds-data:CommitTransaction'),
    );
    expect((await db.query('SELECT count(*)::int AS n FROM t WHERE v = 3')).rows).toEqual([{ n: 0 }]);
    const noSecret = principal('NoSecret', [
      {
        name: 'p',
        policy: {
          Version: '2012-10-17',
          Statement: [
            {
              Effect: 'Allow',
              Action: 'rds-data:ExecuteStatement',
              Resource: LOCAL_AWS_RESOURCES.clusterArn,
            },
          ],
        },
      },
    ]);
    await expect(authorizedDatabase(db, noSecret, principals.keyPolicies).query('SELECT 1')).rejects.toEqual(
      denied('secretsmanager:GetSecretValue'),
    );
  });
});

describe('the KMS signing stand-in', () => {
  it('signs for the functions granted kms:Sign on the tagged platform keys only', async () => {
    const message = new TextEncoder().encode('terms');
    await expect(
      authorizedSigner(signer, route('activateContract'), principals).sign(message),
    ).resolves.toBeDefined();
    await expect(authorizedSigner(signer, route('createContract'), principals).sign(message)).rejects.toEqual(
      denied('kms:Sign'),
    );
    await expect(
      authorizedSigner(signer, route('listPlatformKeys'), principals).sign(message),
    ).rejects.toEqual(denied('kms:Sign'));
  });

  it("authorises by the key's tag: a key of another deployment (another tag value) is refused", async () => {
    const other = { ...principals, platformKeys: { ...principals.platformKeys, tag: 'AnotherStack' } };
    await expect(
      authorizedSigner(signer, route('activateContract'), other).sign(new Uint8Array([1])),
    ).rejects.toEqual(denied('kms:Sign'));
  });

  it('rotates for the rotation route only: a new key, then the alias, and signatures follow the alias', async () => {
    const keys = await LocalSigner.create({ initialKeyId: LOCAL_AWS_RESOURCES.signingKeyArn });
    const first = (await keys.sign(new Uint8Array([1]))).kid;
    await expect(
      authorizedKeyManager(keys, route('activateContract'), principals).createSigningKey(),
    ).rejects.toMatchObject({
      name: 'AccessDeniedException',
      message: expect.stringContaining('is not authorized to perform: kms:CreateKey on resource: *'),
    });
    await expect(
      authorizedKeyManager(keys, route('activateContract'), principals).moveAlias(
        LOCAL_AWS_RESOURCES.signingKeyArn,
      ),
    ).rejects.toEqual(denied('kms:UpdateAlias'));
    const rotation = authorizedKeyManager(keys, route('rotatePlatformKey'), principals);
    const created = await rotation.createSigningKey();
    expect((await keys.sign(new Uint8Array([1]))).kid).toBe(first);
    await rotation.moveAlias(created.keyId);
    const after = await authorizedSigner(keys, route('activateContract'), principals).sign(
      new Uint8Array([1]),
    );
    expect(after.kid).toBe(created.jwk.kid);
    expect(after.key.keyId).toBe(created.keyId);
    // The rotation may not sign.
    await expect(
      authorizedSigner(keys, route('rotatePlatformKey'), principals).sign(new Uint8Array([1])),
    ).rejects.toEqual(denied('kms:Sign'));
  });

  it("evaluates the key's policy: a key that does not trust the account refuses every identity policy", async () => {
    const closed = {
      ...principals,
      keyPolicies: {
        ...principals.keyPolicies,
        signingKey: {
          Version: '2012-10-17',
          Statement: [
            {
              Effect: 'Allow',
              Principal: { AWS: 'arn:aws:iam::111111111111:root' },
              Action: 'kms:*',
              Resource: '*',
            },
          ],
        },
      },
    };
    await expect(
      authorizedSigner(signer, route('activateContract'), closed).sign(new Uint8Array([1])),
    ).rejects.toEqual(denied('kms:Sign'));
  });
});

describe('the KMS data-key stand-in (the credential key)', () => {
  const sealer = new EnvelopeSealer(LocalDataKeys.create({ keyId: LOCAL_AWS_RESOURCES.credentialKeyArn }));
  const seed = new TextEncoder().encode('a totp seed');
  const context = { purpose: 'totp-seed', identityId: 'i', credentialId: 'c' };
  const as = (id: string, keys = principals.keyPolicies) => authorizedSealer(sealer, route(id), keys);

  it('seals for the enrolment and opens for confirmation and signing, each with its own action', async () => {
    const sealed = await as('enrolTotp').seal(seed, context);
    expect(Buffer.from(await as('confirmTotp').open(sealed, context)).toString()).toBe('a totp seed');
    expect(Buffer.from(await as('signContract').open(sealed, context)).toString()).toBe('a totp seed');
    await expect(as('enrolTotp').open(sealed, context)).rejects.toEqual(denied('kms:Decrypt'));
    await expect(as('signContract').seal(seed, context)).rejects.toEqual(denied('kms:GenerateDataKey'));
    await expect(as('getContract').open(sealed, context)).rejects.toEqual(denied('kms:Decrypt'));
  });

  it('grants only for TOTP seeds: another purpose in the encryption context is refused', async () => {
    const other = { ...context, purpose: 'something-else' };
    await expect(as('enrolTotp').seal(seed, other)).rejects.toEqual(denied('kms:GenerateDataKey'));
    const sealed = await sealer.seal(seed, other);
    await expect(as('signContract').open(sealed, other)).rejects.toEqual(denied('kms:Decrypt'));
  });

  it("evaluates the key's policy too", async () => {
    const closed = { ...principals.keyPolicies, credentialKey: { Version: '2012-10-17', Statement: [] } };
    await expect(as('enrolTotp', closed).seal(seed, context)).rejects.toEqual(denied('kms:GenerateDataKey'));
  });
});

describe('the EventBridge stand-in', () => {
  it('lets the outbox publisher put events on the bus, and no other job', async () => {
    const bus = new InProcessBus();
    await expect(authorizedBus(bus, principals.jobs.publishOutbox).publish([])).resolves.toBeDefined();
    await expect(authorizedBus(bus, principals.jobs.expireContracts).publish([])).rejects.toEqual(
      denied('events:PutEvents'),
    );
  });
});
