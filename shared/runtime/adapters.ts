import type { Doorbell } from '../events/doorbell.ts';
import type { ContractKeys } from '../keys/contract-keys.ts';
import type { SecretSealer } from '../signing/secret-sealer.ts';
import type { PlatformKeyManager } from '../signing/signer.ts';
import type { Dependencies } from './dependencies.ts';

/**
 * The adapters a function can be built with: each is one AWS client and what wraps it. A function holds
 * exactly those its grants imply ({@link adaptersOf}); the rest are neither bundled nor constructed, so a
 * cold start parses and builds only what the function may use (the EC2 client alone is 1 MB minified).
 *
 * - `database`: the Aurora Data API (RDS Data client), `Dependencies.db`.
 * - `doorbell`: the ring of the doorbell's DynamoDB item (shared/events/doorbell.ts), which every writer's
 *   database rings after its writes; it comes with the `database` grant. Signed by hand, without the
 *   DynamoDB client (shared/events/signed-doorbell-ring.ts).
 * - `doorbellWatch`: the doorbell read and marked by the scheduled jobs, `Dependencies.doorbell` (the
 *   DynamoDB client).
 * - `signer`: the platform's KMS key (sign and read its public key), `Dependencies.signer`.
 * - `platformKeys`: rotation of the platform's KMS key (create a key, move the alias),
 *   `Dependencies.platformKeys`.
 * - `workflowTable`: the workflow's DynamoDB table, `workflow.nonces` and `workflow.taskTokens`.
 * - `taskCallbacks`: Step Functions task callbacks, `workflow.callbacks`.
 * - `instances`: EC2 control of enclave parents, `workflow.instances`.
 * - `secrets`: envelope encryption under the credential key (KMS data keys), `Dependencies.secrets`.
 * - `contractKeys`: the contracts' KMS keys (wrapping data keys; creating and changing the keys for the
 *   function that syncs them), `Dependencies.contractKeys`. Signed by hand, without the KMS client.
 */
export const ADAPTERS = [
  'database',
  'doorbell',
  'doorbellWatch',
  'signer',
  'platformKeys',
  'workflowTable',
  'taskCallbacks',
  'instances',
  'secrets',
  'contractKeys',
] as const;
export type Adapter = (typeof ADAPTERS)[number];

/**
 * The grants of routes (`shared/http/routes.ts`), workflow steps (`shared/enclaves/provisioning-workflow.ts`)
 * and the other functions, with the adapters each needs. The CDK turns the same grants into IAM
 * permissions, so a function's code and its permissions cannot drift apart.
 */
const ADAPTERS_OF_GRANT = {
  database: ['database', 'doorbell'],
  watchDoorbell: ['doorbellWatch'],
  sign: ['signer'],
  rotatePlatformKey: ['platformKeys'],
  taskCallback: ['workflowTable', 'taskCallbacks'],
  taskHeartbeat: ['workflowTable', 'taskCallbacks'],
  workflowTable: ['workflowTable'],
  terminateTaggedInstances: ['instances'],
  controlInstances: ['instances'],
  sealSecrets: ['secrets'],
  openSecrets: ['secrets'],
  wrapDataKeys: ['contractKeys'],
  manageContractKeys: ['contractKeys'],
} as const satisfies Record<string, readonly Adapter[]>;
export type AdapterGrant = keyof typeof ADAPTERS_OF_GRANT;

/** The adapters a function with these grants is built with, in {@link ADAPTERS} order. */
export function adaptersOf(grants: readonly AdapterGrant[]): Adapter[] {
  const wanted = new Set<Adapter>(grants.flatMap((grant) => ADAPTERS_OF_GRANT[grant]));
  return ADAPTERS.filter((adapter) => wanted.has(adapter));
}

/**
 * The compile-time constants that tell `shared/runtime/runtime.ts` which adapters a bundle holds (esbuild
 * `define`, see `AppFunction`): `__BUNDLED__`, and `__BUNDLED_DATABASE__` and so on, each `true` or `false`. esbuild drops the
 * branches guarded by a `false` one, and with them the imports of the adapters and their SDK clients.
 * Unbundled code (tests, the local stack) sees none of them and may build any adapter.
 */
export function bundleDefines(adapters: readonly Adapter[]): Record<string, string> {
  return {
    __BUNDLED__: 'true',
    ...Object.fromEntries(
      ADAPTERS.map((adapter) => [bundleConstant(adapter), String(adapters.includes(adapter))]),
    ),
  };
}

function bundleConstant(adapter: Adapter): string {
  return `__BUNDLED_${adapter.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}__`;
}

/** The error every use of an adapter a function was not built with throws (a 500 for an API caller). */
export class AdapterUnavailableError extends Error {
  override readonly name = 'AdapterUnavailableError';
  constructor(readonly adapter: Adapter) {
    super(
      `this function was not built with the ${adapter} adapter: grant it (shared/http/routes.ts, the workflow steps or the function's construct) before using it`,
    );
  }
}

/**
 * Stands in for an adapter a function does not hold: any use (a method, a property) throws
 * {@link AdapterUnavailableError}. Only `then` reads as absent, so the stand-in can be awaited or
 * returned from an async function without being mistaken for a promise.
 */
export function unavailable<T extends object>(adapter: Adapter): T {
  return new Proxy({} as T, {
    get(_target, property) {
      if (property === 'then') return undefined;
      throw new AdapterUnavailableError(adapter);
    },
  });
}

/**
 * The view of `deps` that a function holding only `adapters` gets: every other adapter is
 * {@link unavailable}. Built per route by `defineRoute`, so the local stack and the tests, which install one
 * set of dependencies for every handler, refuse an adapter a route was not granted as AWS would (there, the
 * adapter is not even in the bundle, and IAM would deny the call).
 */
export function restrictTo(deps: Dependencies, adapters: readonly Adapter[]): Dependencies {
  const holds = (adapter: Adapter) => adapters.includes(adapter);
  const workflow = deps.workflow;
  return {
    ...deps,
    db: holds('database') ? deps.db : unavailable('database'),
    ...(deps.doorbell
      ? { doorbell: holds('doorbellWatch') ? deps.doorbell : unavailable<Doorbell>('doorbellWatch') }
      : {}),
    signer: holds('signer') ? deps.signer : unavailable('signer'),
    ...(deps.platformKeys
      ? {
          platformKeys: holds('platformKeys')
            ? deps.platformKeys
            : unavailable<PlatformKeyManager>('platformKeys'),
        }
      : {}),
    ...(deps.secrets
      ? { secrets: holds('secrets') ? deps.secrets : unavailable<SecretSealer>('secrets') }
      : {}),
    ...(deps.contractKeys
      ? {
          contractKeys: holds('contractKeys') ? deps.contractKeys : unavailable<ContractKeys>('contractKeys'),
        }
      : {}),
    ...(workflow
      ? {
          workflow: {
            ...workflow,
            nonces: holds('workflowTable') ? workflow.nonces : unavailable('workflowTable'),
            taskTokens: holds('workflowTable') ? workflow.taskTokens : unavailable('workflowTable'),
            callbacks: holds('taskCallbacks') ? workflow.callbacks : unavailable('taskCallbacks'),
            instances: holds('instances') ? workflow.instances : unavailable('instances'),
          },
        }
      : {}),
  };
}
