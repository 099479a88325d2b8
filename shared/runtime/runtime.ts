import { randomUUID } from 'node:crypto';
import { DataApiDatabase } from '../database/data-api-database.ts';
import type { Database } from '../database/database.ts';
import { PgliteDatabase } from '../database/pglite-database.ts';
import { PostgresDatabase } from '../database/postgres-database.ts';
import { type Doorbell, type DoorbellRing, ringingDatabase } from '../events/doorbell.ts';
import { DynamoDbDoorbell } from '../events/dynamodb-doorbell.ts';
import { SignedDoorbellRing } from '../events/signed-doorbell-ring.ts';
import type { ContractKeys } from '../keys/contract-keys.ts';
import { KmsContractKeys } from '../keys/kms-contract-keys.ts';
import { KmsDataKeys } from '../signing/kms-data-keys.ts';
import { KmsKeyManager, KmsSigner } from '../signing/kms-signer.ts';
import { LocalSigner } from '../signing/local-signer.ts';
import { EnvelopeSealer, LocalDataKeys, type SecretSealer } from '../signing/secret-sealer.ts';
import { PLATFORM_KEY_TAG_KEY, type PlatformKeyManager, type Signer } from '../signing/signer.ts';
import type { RelyingParty } from '../signing/webauthn.ts';
import { openWorkflowTable as openDynamoDbWorkflowTable } from '../workflow/dynamodb-workflow-table.ts';
import { Ec2InstanceControl } from '../workflow/ec2-instance-control.ts';
import { SfnTaskCallback } from '../workflow/sfn-task-callback.ts';
import type { WorkflowPorts } from '../workflow/workflow-ports.ts';
import { unavailable } from './adapters.ts';
import { parseConfig, type RuntimeConfig } from './config.ts';
import type { Dependencies } from './dependencies.ts';
import { mapStacksWhenBundled } from './source-mapped-stacks.ts';

/**
 * Which adapters this bundle holds: replaced by `true` or `false` when `AppFunction` bundles a function
 * (esbuild `define`, from its grants: see `bundleDefines` in adapters.ts). esbuild drops every branch below
 * that tests a `false` one, with the adapter's imports and its AWS SDK client, so a function parses and
 * builds only what it may use. Unbundled (tests, tools), none is defined and every adapter can be built.
 */
declare const __BUNDLED_DATABASE__: boolean | undefined;
declare const __BUNDLED_DOORBELL__: boolean | undefined;
declare const __BUNDLED_DOORBELL_WATCH__: boolean | undefined;
declare const __BUNDLED_SIGNER__: boolean | undefined;
declare const __BUNDLED_PLATFORM_KEYS__: boolean | undefined;
declare const __BUNDLED_WORKFLOW_TABLE__: boolean | undefined;
declare const __BUNDLED_TASK_CALLBACKS__: boolean | undefined;
declare const __BUNDLED_INSTANCES__: boolean | undefined;
declare const __BUNDLED_SECRETS__: boolean | undefined;
declare const __BUNDLED_CONTRACT_KEYS__: boolean | undefined;

mapStacksWhenBundled(import.meta.url);

/**
 * Composition root: builds the adapters once per cold start from the parsed configuration. The local stack
 * and tests install their own dependencies with `useRuntime` before any handler runs.
 */
let current: Promise<Dependencies> | undefined;

export function runtime(): Promise<Dependencies> {
  current ??= buildRuntime(parseConfig(process.env));
  return current;
}

/** Installs the dependencies every handler of this process will use (local stack, tests). */
export function useRuntime(deps: Dependencies): void {
  current = Promise.resolve(deps);
}

/**
 * The deployed composition: the adapters this bundle holds, each built once, the others
 * {@link unavailable}. It never sets `Dependencies.local`: the local-only features (simulation faults,
 * debug-mode enclaves, the simulator's attestation root) exist only where the local stack installs them
 * with `useRuntime`, whatever the environment says.
 *
 * Each `if` tests its constant literally (not through a helper): that is what esbuild can fold, dropping
 * the branch and with it the only use of the adapter's (static) import. Static, not `import()`: esbuild
 * wraps a dynamically imported module and what it imports, and stops tree-shaking them (the attestation
 * routes carried every DynamoDB operation's schema: 80 KB more).
 */
export async function buildRuntime(config: RuntimeConfig): Promise<Dependencies> {
  const { ring, watch: doorbell } = openDoorbell(config);
  const [database, signer, workflow] = await Promise.all([
    openDatabase(config),
    openSigner(config),
    openWorkflow(config),
  ]);
  // Every write that leaves the scheduled jobs work rings the doorbell after its commit.
  const db = ring ? ringingDatabase(database, ring) : database;
  const secrets = openSecrets(config);
  const relyingParty = relyingPartyOf(config);
  const platformKeys = openPlatformKeys(config);
  const contractKeys = openContractKeys(config);
  return {
    db,
    ...(doorbell ? { doorbell } : {}),
    signer,
    ...(platformKeys ? { platformKeys } : {}),
    ...(secrets ? { secrets } : {}),
    ...(contractKeys ? { contractKeys } : {}),
    ...(relyingParty ? { relyingParty } : {}),
    rotationPolicy: {
      maxAgeDays: Number(config.CREDENTIAL_MAX_AGE_DAYS),
      platformKeyMaxAgeDays: Number(config.PLATFORM_KEY_MAX_AGE_DAYS),
    },
    now: () => new Date(),
    newId: randomUUID,
    region: config.AWS_REGION,
    ...(workflow ? { workflow } : {}),
  };
}

/** The WebAuthn relying party when the deployment names one (`WEBAUTHN_RP_ID`, `WEBAUTHN_ORIGINS`). */
export function relyingPartyOf(config: RuntimeConfig): RelyingParty | undefined {
  if (!config.WEBAUTHN_RP_ID) return undefined;
  const origins = (config.WEBAUTHN_ORIGINS ?? '')
    .split(',')
    .map((o) => o.trim())
    .filter(Boolean);
  return { id: config.WEBAUTHN_RP_ID, name: 'Enclave Contracts', origins };
}

/** The workflow ports when the function is configured for them (`WORKFLOW_TABLE_NAME`), else none. */
async function openWorkflow(config: RuntimeConfig): Promise<WorkflowPorts | undefined> {
  const tableName = config.WORKFLOW_TABLE_NAME;
  if (!tableName) return undefined;
  const [stores, callbacks, instances] = await Promise.all([
    openWorkflowTable(tableName),
    openTaskCallbacks(),
    openInstances(),
  ]);
  // Empty: every `iam` route refuses (fail closed) rather than trusting an unconfigured role.
  return { ...stores, callbacks, instances, parentRoleName: config.PARENT_ROLE_NAME ?? '' };
}

async function openWorkflowTable(tableName: string): Promise<Pick<WorkflowPorts, 'nonces' | 'taskTokens'>> {
  if (typeof __BUNDLED_WORKFLOW_TABLE__ === 'undefined' || __BUNDLED_WORKFLOW_TABLE__) {
    return openDynamoDbWorkflowTable(tableName);
  } else {
    return { nonces: unavailable('workflowTable'), taskTokens: unavailable('workflowTable') };
  }
}

async function openTaskCallbacks(): Promise<WorkflowPorts['callbacks']> {
  if (typeof __BUNDLED_TASK_CALLBACKS__ === 'undefined' || __BUNDLED_TASK_CALLBACKS__) {
    return new SfnTaskCallback();
  } else {
    return unavailable('taskCallbacks');
  }
}

async function openInstances(): Promise<WorkflowPorts['instances']> {
  if (typeof __BUNDLED_INSTANCES__ === 'undefined' || __BUNDLED_INSTANCES__) {
    return new Ec2InstanceControl();
  } else {
    return unavailable('instances');
  }
}

/**
 * The doorbell when the function is configured for it (`DOORBELL_TABLE_NAME`): the jobs' (`doorbellWatch`)
 * reads and rings through the DynamoDB client; a writer's (`doorbell`) only rings, signed by hand so that
 * no request function carries the DynamoDB client.
 */
function openDoorbell(config: RuntimeConfig): { ring?: DoorbellRing; watch?: Doorbell } {
  const tableName = config.DOORBELL_TABLE_NAME;
  if (!tableName) return {};
  if (typeof __BUNDLED_DOORBELL_WATCH__ === 'undefined' || __BUNDLED_DOORBELL_WATCH__) {
    const doorbell = new DynamoDbDoorbell({ tableName });
    return { ring: doorbell, watch: doorbell };
  } else if (typeof __BUNDLED_DOORBELL__ === 'undefined' || __BUNDLED_DOORBELL__) {
    return { ring: new SignedDoorbellRing({ tableName, region: config.AWS_REGION }) };
  } else {
    return {};
  }
}

async function openDatabase(config: RuntimeConfig): Promise<Database> {
  if (typeof __BUNDLED_DATABASE__ === 'undefined' || __BUNDLED_DATABASE__) {
    const db = config.database;
    switch (db.DATABASE_DRIVER) {
      case 'data-api': {
        return new DataApiDatabase({
          resourceArn: db.DATA_API_RESOURCE_ARN,
          secretArn: db.DATA_API_SECRET_ARN,
          database: db.DATABASE_NAME,
          ...(db.DATA_API_ENDPOINT
            ? { endpoint: { url: db.DATA_API_ENDPOINT, region: config.AWS_REGION ?? 'eu-central-1' } }
            : {}),
        });
      }
      case 'postgres': {
        return new PostgresDatabase(db.DATABASE_URL);
      }
      case 'pglite': {
        return PgliteDatabase.open(db.PGLITE_DATA_DIR);
      }
    }
  } else {
    return unavailable('database');
  }
}

/** The credential key's sealer when the function is configured for it (`CREDENTIAL_KEY_ID`), else none. */
function openSecrets(config: RuntimeConfig): SecretSealer | undefined {
  const keyId = config.CREDENTIAL_KEY_ID;
  if (!keyId) return undefined;
  if (typeof __BUNDLED_SECRETS__ === 'undefined' || __BUNDLED_SECRETS__) {
    if (config.SIGNER === 'kms') return new EnvelopeSealer(new KmsDataKeys({ keyId }));
    return new EnvelopeSealer(LocalDataKeys.create({ keyId }));
  } else {
    return unavailable<SecretSealer>('secrets');
  }
}

/** The platform key's rotation when the function is configured for it (`PLATFORM_KEY_TAG`), else none. */
function openPlatformKeys(config: RuntimeConfig): PlatformKeyManager | undefined {
  const tag = config.PLATFORM_KEY_TAG;
  if (!tag) return undefined;
  if (typeof __BUNDLED_PLATFORM_KEYS__ === 'undefined' || __BUNDLED_PLATFORM_KEYS__) {
    if (config.SIGNER === 'kms') {
      return new KmsKeyManager({
        alias: config.SIGNING_KEY_ID!,
        tag: { key: PLATFORM_KEY_TAG_KEY, value: tag },
      });
    }
    return undefined;
  } else {
    return unavailable<PlatformKeyManager>('platformKeys');
  }
}

/**
 * The contract keys when the function is configured for them (`CONTRACT_KEY_TAG`), with what their
 * policies name when it syncs them (`CONTRACT_KEY_ALIAS_PREFIX` and the role ARNs), else none.
 */
function openContractKeys(config: RuntimeConfig): ContractKeys | undefined {
  const tag = config.CONTRACT_KEY_TAG;
  if (!tag) return undefined;
  if (typeof __BUNDLED_CONTRACT_KEYS__ === 'undefined' || __BUNDLED_CONTRACT_KEYS__) {
    const manager = new KmsContractKeys({ tag });
    const admin = config.CONTRACT_KEY_ADMIN_ROLE_ARN;
    const dataKeys = config.CONTRACT_KEY_DATA_ROLE_ARN;
    const parents = config.PARENT_ROLE_ARN;
    const aliasPrefix = config.CONTRACT_KEY_ALIAS_PREFIX;
    if (!admin || !dataKeys || !parents || !aliasPrefix) return { manager };
    const [, partition, , , accountId] = admin.split(':');
    return {
      manager,
      sync: {
        aliasPrefix,
        principals: {
          partition: partition!,
          accountId: accountId!,
          administratorRoleArn: admin,
          dataKeyRoleArn: dataKeys,
          parentRoleArn: parents,
        },
      },
    };
  } else {
    return unavailable<ContractKeys>('contractKeys');
  }
}

async function openSigner(config: RuntimeConfig): Promise<Signer> {
  if (typeof __BUNDLED_SIGNER__ === 'undefined' || __BUNDLED_SIGNER__) {
    if (config.SIGNER === 'kms') {
      return new KmsSigner({ keyId: config.SIGNING_KEY_ID! });
    }
    return LocalSigner.create();
  } else {
    return unavailable('signer');
  }
}
