import type { Database } from '../database/database.ts';
import type { Doorbell } from '../events/doorbell.ts';
import type { RotationPolicy } from '../identities/credential-rotation.ts';
import type { ContractKeys } from '../keys/contract-keys.ts';
import type { SecretSealer } from '../signing/secret-sealer.ts';
import type { PlatformKeyManager, Signer } from '../signing/signer.ts';
import type { RelyingParty } from '../signing/webauthn.ts';
import type { LocalStackHooks, WorkflowPorts } from '../workflow/workflow-ports.ts';

/** What use cases need from the world; built once per cold start (see runtime.ts) and passed in. */
export interface Dependencies {
  /** The database; where the doorbell is configured, it rings after every write that leaves the jobs work. */
  readonly db: Database;
  readonly signer: Signer;
  /**
   * Rotation of the platform key (a new KMS key, the signing alias moved to it): in the function that
   * rotates (`PLATFORM_KEY_TAG`) and the local stack. A rotation that finds none fails as misconfigured.
   */
  readonly platformKeys?: PlatformKeyManager;
  /**
   * Envelope encryption under the credential key (the TOTP seeds): in functions configured for it
   * (`CREDENTIAL_KEY_ID`) and the local stack. A use case that needs it and finds none fails as
   * misconfigured (500).
   */
  readonly secrets?: SecretSealer;
  /**
   * The contracts' data keys in KMS (shared/keys/contract-keys.ts): in the function that syncs them
   * (`CONTRACT_KEY_TAG`, with what their policies name) and the one that wraps data keys, and the local stack.
   */
  readonly contractKeys?: ContractKeys;
  /**
   * The doorbell the scheduled jobs read instead of the database while nothing is written
   * (shared/events/doorbell.ts): in functions configured for it (`DOORBELL_TABLE_NAME`) and the local
   * stack. Without it, the jobs query the database on every run.
   */
  readonly doorbell?: Doorbell;
  /**
   * The WebAuthn relying party (`WEBAUTHN_RP_ID`, `WEBAUTHN_ORIGINS`): where passkeys are registered and
   * biometric signatures made. Without it a passkey ceremony fails as misconfigured (500).
   */
  readonly relyingParty?: RelyingParty;
  /**
   * How old credentials may get before the rotation report counts them due (`CREDENTIAL_MAX_AGE_DAYS`,
   * `PLATFORM_KEY_MAX_AGE_DAYS`). @default a year each ({@link DEFAULT_ROTATION_POLICY})
   */
  readonly rotationPolicy?: RotationPolicy;
  readonly now: () => Date;
  readonly newId: () => string;
  /** The AWS region this deployment runs in (enclave parents launch there); undefined where unknown. */
  readonly region?: string | undefined;
  /**
   * The provisioning workflow's ports (nonces, task tokens, callbacks, EC2): only in functions configured
   * for it (`WORKFLOW_TABLE_NAME`) and in the local stack. A use case that needs them and finds none fails
   * as misconfigured (500), never silently.
   */
  readonly workflow?: WorkflowPorts;
  /**
   * Present only in the local stack. Its presence is what allows the local-only features (a create body's
   * `simulation`, debug-mode enclaves, the simulator's attestation root); the deployed stack never sets it.
   */
  readonly local?: LocalStackHooks;
}

/** The secret sealer, or a configuration error (a 500 that says nothing to the client). */
export function secretSealer(deps: Dependencies): SecretSealer {
  if (!deps.secrets) throw new Error('this function is not configured for the credential key');
  return deps.secrets;
}

/** The WebAuthn relying party, or a configuration error (a 500 that says nothing to the client). */
export function relyingParty(deps: Dependencies): RelyingParty {
  if (!deps.relyingParty) throw new Error('this deployment has no WebAuthn relying party (WEBAUTHN_RP_ID)');
  return deps.relyingParty;
}

/** The workflow ports, or a configuration error (a 500 that says nothing to the client). */
export function workflowPorts(deps: Dependencies): WorkflowPorts {
  if (!deps.workflow) throw new Error('this function is not configured for the provisioning workflow');
  return deps.workflow;
}
