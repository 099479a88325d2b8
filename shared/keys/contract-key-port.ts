import type { ContractKeyPrincipals } from './contract-key-policy.ts';

/**
 * The contract keys' port and names, apart from their use cases (shared/keys/contract-keys.ts): what the
 * KMS adapter needs, so a bundle that holds it does not load the use cases.
 */

/** The tag every contract key carries, valued with the deployment (its stack): what IAM grants are scoped by. */
export const CONTRACT_KEY_TAG_KEY = 'enclave-contracts:contract-key';
/** The tag naming the contract a key belongs to. */
export const CONTRACT_ID_TAG_KEY = 'enclave-contracts:contract';
/** KMS's shortest waiting period before deleting a key. */
export const KEY_DELETION_WINDOW_DAYS = 7;

/** KMS, as the contract keys use it. */
export interface ContractKeyManager {
  /**
   * Creates a key with `policy` and the deployment's tags, and names it `alias`; answers the key's ARN. When
   * the alias already names a key (an earlier attempt got that far), that key is answered and the one just
   * created is scheduled for deletion.
   */
  createKey(input: {
    readonly contractId: string;
    readonly alias: string;
    readonly policy: string;
  }): Promise<string>;
  putPolicy(keyArn: string, policy: string): Promise<void>;
  setEnabled(keyArn: string, enabled: boolean): Promise<void>;
  /** Schedules the key's deletion; answers KMS's deletion date. */
  scheduleDeletion(keyArn: string, days: number): Promise<Date>;
  /** A data key wrapped under the key for the contract's encryption context (no plaintext). */
  wrapDataKey(keyArn: string, contractId: string): Promise<{ keyArn: string; ciphertextBlob: string }>;
}

/** The contract keys' dependencies: KMS, and (for the function that syncs them) what the policy names. */
export interface ContractKeys {
  readonly manager: ContractKeyManager;
  /** Set for the function that syncs the keys: the roles its policies name, and the alias prefix. */
  readonly sync?: {
    readonly principals: ContractKeyPrincipals;
    /** e.g. `alias/enclave-contracts/prod/contracts/`; the contract id is appended. */
    readonly aliasPrefix: string;
  };
}

/** A KMS failure; `transient` when worth retrying (throttling, a KMS fault, no answer). */
export class ContractKeyError extends Error {
  override readonly name = 'ContractKeyError';
  readonly transient: boolean;
  constructor(message: string, options?: { cause?: unknown; transient?: boolean }) {
    super(message, options);
    this.transient = options?.transient ?? false;
  }
}
