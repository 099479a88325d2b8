import type { Database } from '../database/database.ts';
import type { Signer } from '../signing/signer.ts';
import type { LocalStackHooks, WorkflowPorts } from '../workflow/workflow-ports.ts';

/** What use cases need from the world; built once per cold start (see runtime.ts) and passed in. */
export interface Dependencies {
  readonly db: Database;
  readonly signer: Signer;
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

/** The workflow ports, or a configuration error (a 500 that says nothing to the client). */
export function workflowPorts(deps: Dependencies): WorkflowPorts {
  if (!deps.workflow) throw new Error('this function is not configured for the provisioning workflow');
  return deps.workflow;
}
