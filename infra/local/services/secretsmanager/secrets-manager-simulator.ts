import { randomInt, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A local Secrets Manager: the secret versions and staging labels that rotation works on, served over the
 * service's own protocol (AWS JSON 1.1, `X-Amz-Target: secretsmanager.<Operation>`) so the real SDK client
 * talks to it. Only what rotation and the deployment steps use: CreateSecret, GetSecretValue, PutSecretValue,
 * DescribeSecret, UpdateSecretVersionStage, GetRandomPassword and RotateSecret.
 *
 * It enforces what the service enforces for these (Secrets Manager API Reference and User Guide, "Rotation
 * by Lambda function" and "Staging labels"):
 * - a staging label is on at most one version; moving AWSCURRENT requires naming the version that holds it
 *   (`RemoveFromVersionId`), and the version that loses AWSCURRENT gets AWSPREVIOUS;
 * - GetSecretValue given both VersionId and VersionStage finds only a version that has both, and fails with
 *   ResourceNotFoundException otherwise (what rotation functions rely on to find their AWSPENDING);
 * - PutSecretValue is idempotent for a ClientRequestToken with the same value, ResourceExistsException with
 *   another;
 * - RotateSecret first labels a version that has no value yet AWSPENDING (DescribeSecret lists it; GetSecretValue
 *   does not find it until createSecret puts its value with that ClientRequestToken), then invokes the rotation function's four steps in order
 *   (createSecret, setSecret, testSecret, finishSecret); it refuses while a rotation is unfinished (a version
 *   labelled AWSPENDING but not AWSCURRENT), and holds the function to its contract: it must end with
 *   AWSCURRENT on the new version (AWSPENDING there too, or on none). A failed step leaves AWSCURRENT where
 *   it was, and the pending version for the next attempt.
 *
 * Errors come as the service sends them: HTTP 400, `__type` and `Message` in the body.
 */

/** A Secrets Manager rotation function's event, as Lambda receives it. */
export interface RotationEvent {
  readonly SecretId: string;
  readonly ClientRequestToken: string;
  readonly Step: 'createSecret' | 'setSecret' | 'testSecret' | 'finishSecret';
}

interface SecretVersion {
  readonly id: string;
  /** None yet: the version RotateSecret opens for the rotation function's createSecret to fill. */
  value?: string;
  readonly created: Date;
  readonly stages: Set<string>;
}

interface StoredSecret {
  readonly arn: string;
  readonly name: string;
  readonly versions: Map<string, SecretVersion>;
  rotationEnabled: boolean;
  lastRotated?: Date;
}

class ServiceError extends Error {
  constructor(
    readonly type: string,
    message: string,
  ) {
    super(message);
  }
}

const notFound = (what: string) =>
  new ServiceError('ResourceNotFoundException', `Secrets Manager can't find the ${what}.`);
const invalidParameter = (message: string) => new ServiceError('InvalidParameterException', message);
const invalidRequest = (message: string) => new ServiceError('InvalidRequestException', message);

/** The four steps, in the order Secrets Manager invokes them. */
const ROTATION_STEPS = ['createSecret', 'setSecret', 'testSecret', 'finishSecret'] as const;

const TOKEN = /^[A-Za-z0-9-]{32,64}$/;
const PUNCTUATION = '!"#$%&\'()*+,-./:;<=>?@[\\]^_`{|}~';

/** A running simulator. */
export interface SecretsManagerSimulator {
  /** `http://host:port`, for `new SecretsManagerClient({ endpoint })`. */
  readonly endpoint: string;
  /** The rotation function RotateSecret invokes (in AWS, the secret's rotation Lambda). */
  setRotationFunction(rotate: (event: RotationEvent) => Promise<unknown>): void;
  close(): Promise<void>;
}

/** Starts a simulator with no secrets; resolves once it listens. */
export async function startSecretsManagerSimulator(
  options: { region?: string; account?: string } = {},
): Promise<SecretsManagerSimulator> {
  const region = options.region ?? 'eu-central-1';
  const account = options.account ?? '000000000000';
  const secrets = new Map<string, StoredSecret>();
  let rotationFunction: ((event: RotationEvent) => Promise<unknown>) | undefined;

  const find = (secretId: unknown): StoredSecret => {
    if (typeof secretId !== 'string' || secretId === '') throw invalidParameter('SecretId is required.');
    const secret = secrets.get(secretId) ?? [...secrets.values()].find((s) => s.name === secretId);
    if (!secret) throw notFound('specified secret');
    return secret;
  };
  const holder = (secret: StoredSecret, stage: string) =>
    [...secret.versions.values()].find((v) => v.stages.has(stage));
  const label = (secret: StoredSecret, version: SecretVersion, stage: string) => {
    for (const other of secret.versions.values()) other.stages.delete(stage);
    version.stages.add(stage);
  };
  const addVersion = (secret: StoredSecret, token: unknown, value: unknown, stages: readonly string[]) => {
    if (typeof value !== 'string' || value === '') throw invalidParameter('SecretString is required.');
    if (value.length > 65_536) throw invalidParameter('SecretString exceeds the maximum size of 65536.');
    const id = token === undefined ? randomUUID() : String(token);
    if (!TOKEN.test(id)) throw invalidParameter('ClientRequestToken must be 32 to 64 characters.');
    const existing = secret.versions.get(id);
    if (existing && existing.value === undefined) {
      existing.value = value;
      for (const stage of stages) label(secret, existing, stage);
      return existing;
    }
    if (existing) {
      if (existing.value !== value) {
        throw new ServiceError(
          'ResourceExistsException',
          'You can’t modify an existing version, you can only create new versions.',
        );
      }
      return existing;
    }
    const version: SecretVersion = { id, value, created: new Date(), stages: new Set() };
    secret.versions.set(id, version);
    for (const stage of stages) label(secret, version, stage);
    return version;
  };
  const secretValue = (secret: StoredSecret, version: SecretVersion) => ({
    ARN: secret.arn,
    Name: secret.name,
    VersionId: version.id,
    SecretString: version.value ?? '',
    VersionStages: [...version.stages],
    CreatedDate: version.created.getTime() / 1000,
  });

  const operations: Record<string, (body: Record<string, unknown>) => Promise<object> | object> = {
    CreateSecret(body) {
      const name = body.Name;
      if (typeof name !== 'string' || !/^[A-Za-z0-9/_+=.@-]{1,512}$/.test(name)) {
        throw invalidParameter('Name is required and may hold only ASCII letters, digits and /_+=.@-.');
      }
      if ([...secrets.values()].some((s) => s.name === name)) {
        throw new ServiceError(
          'ResourceExistsException',
          `The operation failed because the secret ${name} already exists.`,
        );
      }
      const suffix = Array.from({ length: 6 }, () => 'abcdefghijklmnopqrstuvwxyz'[randomInt(26)]).join('');
      const secret: StoredSecret = {
        arn: `arn:aws:secretsmanager:${region}:${account}:secret:${name}-${suffix}`,
        name,
        versions: new Map(),
        rotationEnabled: false,
      };
      const version = addVersion(secret, body.ClientRequestToken, body.SecretString, ['AWSCURRENT']);
      secrets.set(secret.arn, secret);
      return { ARN: secret.arn, Name: name, VersionId: version.id };
    },
    GetSecretValue(body) {
      const secret = find(body.SecretId);
      const { VersionId: versionId, VersionStage: stage } = body;
      let version: SecretVersion | undefined;
      if (versionId !== undefined) {
        version = secret.versions.get(String(versionId));
        if (version && stage !== undefined && !version.stages.has(String(stage))) version = undefined;
      } else {
        version = holder(secret, stage === undefined ? 'AWSCURRENT' : String(stage));
      }
      if (!version || version.value === undefined)
        throw notFound(
          `specified secret value for ${versionId !== undefined ? `VersionId: ${String(versionId)}` : `staging label: ${String(stage)}`}`,
        );
      return secretValue(secret, version);
    },
    PutSecretValue(body) {
      const secret = find(body.SecretId);
      const stages = Array.isArray(body.VersionStages) ? body.VersionStages.map(String) : ['AWSCURRENT'];
      const before = holder(secret, 'AWSCURRENT');
      const version = addVersion(secret, body.ClientRequestToken, body.SecretString, stages);
      if (stages.includes('AWSCURRENT') && before && before !== version) label(secret, before, 'AWSPREVIOUS');
      return {
        ARN: secret.arn,
        Name: secret.name,
        VersionId: version.id,
        VersionStages: [...version.stages],
      };
    },
    DescribeSecret(body) {
      const secret = find(body.SecretId);
      return {
        ARN: secret.arn,
        Name: secret.name,
        RotationEnabled: secret.rotationEnabled,
        ...(secret.lastRotated ? { LastRotatedDate: secret.lastRotated.getTime() / 1000 } : {}),
        VersionIdsToStages: Object.fromEntries(
          [...secret.versions.values()].filter((v) => v.stages.size > 0).map((v) => [v.id, [...v.stages]]),
        ),
      };
    },
    UpdateSecretVersionStage(body) {
      const secret = find(body.SecretId);
      const stage = body.VersionStage;
      if (typeof stage !== 'string' || stage === '') throw invalidParameter('VersionStage is required.');
      const current = holder(secret, stage);
      const move = body.MoveToVersionId === undefined ? undefined : String(body.MoveToVersionId);
      const remove = body.RemoveFromVersionId === undefined ? undefined : String(body.RemoveFromVersionId);
      if (remove !== undefined && current?.id !== remove) {
        throw invalidParameter(`The staging label ${stage} is not attached to version ${remove}.`);
      }
      if (move !== undefined && current && current.id !== move && remove === undefined) {
        throw invalidParameter(
          `The staging label ${stage} is currently attached to version ${current.id}, so you must explicitly reference that version in RemoveFromVersionId.`,
        );
      }
      if (move !== undefined) {
        const target = secret.versions.get(move);
        if (!target) throw notFound(`specified secret version: ${move}`);
        label(secret, target, stage);
        if (stage === 'AWSCURRENT' && current && current !== target) label(secret, current, 'AWSPREVIOUS');
      } else if (current) {
        if (stage === 'AWSCURRENT') throw invalidParameter('You can’t remove AWSCURRENT without moving it.');
        current.stages.delete(stage);
      }
      return { ARN: secret.arn, Name: secret.name };
    },
    GetRandomPassword(body) {
      const length = body.PasswordLength === undefined ? 32 : Number(body.PasswordLength);
      if (!Number.isInteger(length) || length < 1 || length > 4096) {
        throw invalidParameter('PasswordLength must be between 1 and 4096.');
      }
      const excluded = new Set(String(body.ExcludeCharacters ?? ''));
      const pool = [
        ...(body.ExcludeLowercase ? '' : 'abcdefghijklmnopqrstuvwxyz'),
        ...(body.ExcludeUppercase ? '' : 'ABCDEFGHIJKLMNOPQRSTUVWXYZ'),
        ...(body.ExcludeNumbers ? '' : '0123456789'),
        ...(body.ExcludePunctuation ? '' : PUNCTUATION),
        ...(body.IncludeSpace ? ' ' : ''),
      ].filter((c) => !excluded.has(c));
      if (pool.length === 0) throw invalidParameter('The exclusions leave no characters to choose from.');
      return { RandomPassword: Array.from({ length }, () => pool[randomInt(pool.length)]).join('') };
    },
    async RotateSecret(body) {
      const secret = find(body.SecretId);
      if (!rotationFunction)
        throw invalidRequest('No Lambda rotation function ARN is associated with this secret.');
      const pending = holder(secret, 'AWSPENDING');
      if (pending && !pending.stages.has('AWSCURRENT')) {
        throw invalidRequest('A previous rotation isn’t complete. That rotation will be reattempted.');
      }
      secret.rotationEnabled = true;
      const token = body.ClientRequestToken === undefined ? randomUUID() : String(body.ClientRequestToken);
      if (!TOKEN.test(token)) throw invalidParameter('ClientRequestToken must be 32 to 64 characters.');
      if (secret.versions.has(token)) throw invalidRequest(`The version ${token} already exists.`);
      const opened: SecretVersion = { id: token, created: new Date(), stages: new Set() };
      secret.versions.set(token, opened);
      label(secret, opened, 'AWSPENDING');
      for (const step of ROTATION_STEPS) {
        try {
          await rotationFunction({ SecretId: secret.arn, ClientRequestToken: token, Step: step });
        } catch (error) {
          // In AWS the failure shows in the function's logs and the secret's LastRotationFailed state; the
          // caller of RotateSecret has already been answered. Here the caller learns it.
          throw invalidRequest(
            `Rotation step ${step} failed: ${error instanceof Error ? error.message : String(error)}`,
          );
        }
      }
      const rotated = secret.versions.get(token);
      if (!rotated?.stages.has('AWSCURRENT')) {
        throw invalidRequest('finishSecret returned without moving AWSCURRENT to the new version.');
      }
      secret.lastRotated = new Date();
      return { ARN: secret.arn, Name: secret.name, VersionId: token };
    },
  };

  const handle = async (request: IncomingMessage, response: ServerResponse): Promise<void> => {
    let status = 200;
    let payload: object;
    try {
      const target = String(request.headers['x-amz-target'] ?? '');
      const operation = target.startsWith('secretsmanager.')
        ? operations[target.slice('secretsmanager.'.length)]
        : undefined;
      if (request.method !== 'POST' || !operation) {
        throw new ServiceError('UnknownOperationException', `Unknown operation ${target}`);
      }
      const chunks: Buffer[] = [];
      for await (const chunk of request) chunks.push(chunk as Buffer);
      let body: unknown;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}');
      } catch {
        throw new ServiceError('SerializationException', 'The request body is not JSON.');
      }
      if (typeof body !== 'object' || body === null || Array.isArray(body)) {
        throw new ServiceError('SerializationException', 'The request body is not a JSON object.');
      }
      payload = await operation(body as Record<string, unknown>);
    } catch (error) {
      status = 400;
      payload =
        error instanceof ServiceError
          ? { __type: error.type, Message: error.message }
          : { __type: 'InternalServiceError', Message: 'An error occurred on the server side.' };
      if (!(error instanceof ServiceError)) status = 500;
    }
    const text = JSON.stringify(payload);
    response.writeHead(status, {
      'content-type': 'application/x-amz-json-1.1',
      'content-length': Buffer.byteLength(text),
      'x-amzn-requestid': randomUUID(),
    });
    response.end(text);
  };

  const server = createServer((request, response) => {
    void handle(request, response);
  });
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    setRotationFunction(rotate) {
      rotationFunction = rotate;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
