import type { SimulationFault } from '../domain/enclave.ts';
import type { Dependencies } from '../runtime/dependencies.ts';
import type { NonceStore } from './nonce-store.ts';
import type { TaskTokenStore } from './task-token-store.ts';

/**
 * The ports of the enclave provisioning workflow and of the automation that keeps EC2 in line with the
 * enclaves' statuses. In AWS: DynamoDB (nonces, task tokens), Step Functions (`SendTaskSuccess`) and EC2;
 * locally: dynalite, the local workflow runner and the EC2 simulator. Built once per cold start
 * (`shared/runtime/runtime.ts`) or by the local stack.
 */
export interface WorkflowPorts {
  readonly nonces: NonceStore;
  readonly taskTokens: TaskTokenStore;
  readonly callbacks: TaskCallback;
  readonly instances: InstanceControl;
  /**
   * The IAM role enclave parent instances run with: the only role whose sessions the `iam` routes accept
   * (the session name of an instance-profile role is the instance id).
   */
  readonly parentRoleName: string;
}

/** Completes, or keeps alive, a workflow task waiting for a callback (`.waitForTaskToken`). */
export interface TaskCallback {
  /**
   * `SendTaskSuccess` with `output` (JSON). `'gone'` when the task no longer waits: it timed out, its
   * execution ended, or the token is not one Step Functions issued (TaskTimedOut, TaskDoesNotExist,
   * InvalidToken). Any other failure throws.
   */
  succeed(taskToken: string, output: unknown): Promise<'sent' | 'gone'>;
  /**
   * `SendTaskHeartbeat`: the task's heartbeat timer starts again. `'gone'` as for `succeed`; any other
   * failure throws.
   */
  heartbeat(taskToken: string): Promise<'sent' | 'gone'>;
}

/** EC2 instance states as EC2 names them. */
export type InstanceStateName =
  | 'pending'
  | 'running'
  | 'shutting-down'
  | 'terminated'
  | 'stopping'
  | 'stopped';

export interface ParentInstance {
  readonly instanceId: string;
  readonly state: InstanceStateName;
}

/** An instance as EC2 describes it now, with the enclave its tag names (null: no enclave tag). */
export interface InstanceOwner extends ParentInstance {
  readonly enclaveId: string | null;
}

/**
 * What the platform does to enclave parent instances outside the state machine (Compensate, suspend,
 * terminate). Instances are found by the enclave tag, never by a stored id alone: an instance whose launch
 * response was lost is still found, and the IAM policy only allows acting on instances carrying the tag.
 */
export interface InstanceControl {
  /** Instances tagged with `enclaveId` that are not yet `terminated`. */
  listForEnclave(enclaveId: string): Promise<ParentInstance[]>;
  /**
   * The instance's state and the enclave its tag names (null when untagged), or null when EC2 does not know
   * it: what an EC2 event about an instance is checked against before the database is touched.
   */
  parentOf(instanceId: string): Promise<InstanceOwner | null>;
  /** StopInstances; stopping an already stopped instance is a no-op (as in EC2). */
  stop(instanceIds: readonly string[]): Promise<void>;
  /** TerminateInstances; terminating a terminated instance is a no-op (as in EC2). */
  terminate(instanceIds: readonly string[]): Promise<void>;
}

/** EC2 tags the platform puts on every enclave parent instance and its volumes. */
export const INSTANCE_TAGS = {
  /** The enclave the instance hosts: what IAM conditions and every lookup match on. */
  enclaveId: 'enclave-contracts:enclave-id',
  contractId: 'enclave-contracts:contract-id',
  /**
   * The Challenge step's nonce (base64). The parent agent reads it from instance metadata (IMDSv2 with
   * instance tags enabled) and asks the enclave's NSM for a document carrying it. It is not a secret: it
   * proves freshness, is bound to the enclave and consumed once.
   */
  attestationNonce: 'enclave-contracts:attestation-nonce',
  /** The enclave's vCPUs and memory: the parent's user data sizes the Nitro Enclaves allocator from them. */
  cpuCount: 'enclave-contracts:enclave-cpu-count',
  memoryMiB: 'enclave-contracts:enclave-memory-mib',
  /**
   * The enclave's own EIF (its `image.source`) and its SHA-256; empty when it declares none and the parent
   * fetches the deployment's default EIF. Read by the user data on the first boot.
   */
  imageUrl: 'enclave-contracts:image-url',
  imageSha256: 'enclave-contracts:image-sha256',
} as const;

/**
 * Local stack only: hooks that let a developer drive the workflow's failure paths by hand. Present in
 * `Dependencies.local` only when the process is the local stack; the deployed API refuses what needs them.
 */
export interface LocalStackHooks {
  /** Remembers the fault the simulated parent agent of `enclaveId` plays (`simulation.fault`). */
  recordSimulation(enclaveId: string, fault: SimulationFault): void;
  /**
   * The Nitro simulator's root certificate (PEM), trusted by VerifyAttestation in the local stack only.
   * The deployed runtime never builds `Dependencies.local`, so it trusts the pinned AWS root alone.
   */
  readonly attestationRoots: readonly string[];
  /**
   * The dependencies as the local stand-ins serve them to one function of the stack: its AWS calls (DynamoDB,
   * Step Functions callbacks, EC2) authorised as that function's role by the local IAM stand-in, as AWS
   * authorises them. Absent, every function shares the dependencies as they are.
   */
  readonly asFunction?: (fn: LocalFunctionName, deps: Dependencies) => Dependencies;
}

/** A function of the deployed stack, as the local stack tells them apart. */
export type LocalFunctionName =
  | { readonly route: string }
  | { readonly step: string }
  | { readonly enforcement: true }
  | { readonly contractKeys: true }
  | { readonly job: 'publishOutbox' | 'expireContracts' | 'checkpointAudit' | 'reportCredentialRotation' };
