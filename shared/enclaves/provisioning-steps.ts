import { listMeasurementSets } from '../contracts/measurement-store.ts';
import { ConflictError, DomainError, NotFoundError } from '../domain/errors.ts';
import * as z from '../domain/zod.ts';
import { type Dependencies, workflowPorts } from '../runtime/dependencies.ts';
import { allowedSignersOf, verifyEnclaveAttestation } from './enclave-attestation.ts';
import { type CompensationOutcome, compensateProvisioning } from './enclave-compensation.ts';
import { activateEnclave, claimProvisioning, type VerifiedAttestation } from './enclave-steps.ts';
import { loadEnclave } from './enclave-store.ts';
import { assertImageApproved, validateEnclaveForProvisioning } from './enclave-validation.ts';
import {
  type ChallengeOutput,
  EC2_INTEGRATION_ERROR,
  ec2ErrorCode,
  type PlanOutput,
  STATES,
  STEP_ERRORS,
  WORKFLOW_TIMING,
} from './provisioning-workflow.ts';

/**
 * The provisioning state machine's Lambda steps as use cases (`functions/workflow/*.ts` are one line each).
 * Each parses its state input strictly (a malformed input is a defect of the definition, failed loudly),
 * calls the domain use case, and turns outcomes into what the state machine's Retry/Catch match on: a
 * {@link StepError} named after `STEP_ERRORS`. Transient dependency failures become `TransientStepFailure`
 * (retried with backoff); everything else is caught by the state's Catch and goes to Compensate.
 */

/** An error the state machine matches by name (`errorType` of the Lambda error). */
export class StepError extends Error {
  constructor(
    override readonly name: (typeof STEP_ERRORS)[keyof typeof STEP_ERRORS],
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

const ENCLAVE_ID = z.uuid();
const EXECUTION_ARN = z.string().check(z.minLength(1), z.maxLength(2048));
const INSTANCE_ID = z.string().check(z.regex(/^i-(?:[0-9a-f]{8}|[0-9a-f]{17})$/));
const NONCE_B64 = z.base64().check(z.minLength(1), z.maxLength(64));

const ValidateInputSchema = z.object({ enclaveId: ENCLAVE_ID, executionArn: EXECUTION_ARN });
const ChallengeInputSchema = ValidateInputSchema;
const AwaitInputSchema = z.object({
  enclaveId: ENCLAVE_ID,
  instanceId: INSTANCE_ID,
  executionArn: EXECUTION_ARN,
  taskToken: z.string().check(z.minLength(1), z.maxLength(1024)),
});
const VerifyInputSchema = z.object({
  enclaveId: ENCLAVE_ID,
  executionArn: EXECUTION_ARN,
  instanceId: INSTANCE_ID,
  // The route bounded it (64 KiB decoded); the library bounds it again.
  document: z.string().check(z.minLength(1), z.maxLength(100_000)),
  nonce: NONCE_B64,
});
const ActivateInputSchema = z.object({
  enclaveId: ENCLAVE_ID,
  instanceId: INSTANCE_ID,
  executionArn: EXECUTION_ARN,
  verification: z.object({
    claims: z.object({
      moduleId: z.string(),
      digest: z.literal('SHA384'),
      timestamp: z.string(),
      pcrs: z.record(z.string(), z.string()),
      leafValidFrom: z.string(),
      leafValidTo: z.string(),
      nonce: z.nullable(z.string()),
      publicKey: z.nullable(z.string()),
      userData: z.nullable(z.string()),
    }),
    matchedMeasurementSet: z.object({ id: z.uuid() }),
  }),
});
const CompensateInputSchema = z.object({
  executionArn: EXECUTION_ARN,
  state: z.object({
    enclaveId: ENCLAVE_ID,
    /** Validate's result: absent when the execution failed before (or while) claiming the enclave. */
    plan: z.optional(z.unknown()),
    instance: z.optional(z.object({ instanceId: INSTANCE_ID })),
    /** WaitForAttestation's result: present once the document was in. */
    submission: z.optional(z.unknown()),
    error: z.optional(z.object({ Error: z.optional(z.string()), Cause: z.optional(z.string()) })),
  }),
});

/** Validate: claim the enclave for this execution, check it against its contract, size its parent. */
export async function validateStep(deps: Dependencies, input: unknown): Promise<PlanOutput> {
  const { enclaveId, executionArn } = z.parse(ValidateInputSchema, input);
  return step(async () => {
    let claim: Awaited<ReturnType<typeof claimProvisioning>>;
    try {
      claim = await claimProvisioning(deps, enclaveId, executionArn);
    } catch (error) {
      if (error instanceof NotFoundError) throw new StepError(STEP_ERRORS.superseded, error.message);
      throw error;
    }
    if (!claim.claimed) throw new StepError(STEP_ERRORS.superseded, claim.reason);
    try {
      const plan = await validateEnclaveForProvisioning(deps, enclaveId, {
        localStack: deps.local !== undefined,
      });
      return {
        contractId: plan.contract.id,
        instanceTypes: plan.instanceTypes,
        lastInstanceTypeIndex: plan.instanceTypes.length - 1,
        enclaveCpuCount: String(plan.enclave.configuration.resources.cpuCount),
        enclaveMemoryMiB: String(plan.enclave.configuration.resources.memoryMiB),
        imageUrl: plan.enclave.configuration.image.source?.url ?? '',
        imageSha256: plan.enclave.configuration.image.source?.sha256 ?? '',
        ...(plan.enclave.instanceId === null ? {} : { restartInstanceId: plan.enclave.instanceId }),
      };
    } catch (error) {
      if (error instanceof DomainError && error.status < 500 && !(error instanceof ConflictError)) {
        throw new StepError(STEP_ERRORS.notProvisionable, describeDomainError(error));
      }
      throw error;
    }
  });
}

/** Challenge: a fresh nonce bound to the enclave, living a little longer than the wait for it. */
export async function challengeStep(deps: Dependencies, input: unknown): Promise<ChallengeOutput> {
  const { enclaveId, executionArn } = z.parse(ChallengeInputSchema, input);
  return step(async () => {
    const { nonces, taskTokens } = workflowPorts(deps);
    // A new run starts with no wait: the previous run's (taken or expired) must not answer this run's agent.
    await taskTokens.discard(enclaveId);
    const issued = await nonces.issue(
      { enclaveId, executionId: executionArn },
      WORKFLOW_TIMING.nonceTtlSeconds,
    );
    return { nonce: Buffer.from(issued.nonce).toString('base64'), expiresAt: issued.expiresAt.toISOString() };
  });
}

/**
 * WaitForAttestation's Lambda: records the task token, bound to the launched instance, so that only that
 * instance's agent can complete the wait, once; the wait expires with the state's timeout.
 */
export async function awaitAttestationStep(deps: Dependencies, input: unknown): Promise<{ waiting: true }> {
  const { enclaveId, instanceId, executionArn, taskToken } = z.parse(AwaitInputSchema, input);
  return step(async () => {
    // Terminated (or taken over) since the launch: fail now, so Compensate removes the parent at once
    // instead of leaving it running until the wait times out.
    await assertOwner(deps, enclaveId, executionArn);
    const expiresAt = new Date(deps.now().getTime() + WORKFLOW_TIMING.attestationTimeoutSeconds * 1000);
    await workflowPorts(deps).taskTokens.put(enclaveId, { taskToken, executionArn, instanceId, expiresAt });
    return { waiting: true };
  });
}

/** VerifyAttestation: the document against the enclave's approved measurements; the nonce consumed once. */
export async function verifyAttestationStep(
  deps: Dependencies,
  input: unknown,
): Promise<VerifiedAttestation> {
  const { enclaveId, executionArn, instanceId, document, nonce } = z.parse(VerifyInputSchema, input);
  return step(async () => {
    const loaded = await loadEnclave(deps.db, enclaveId);
    if (!loaded)
      throw new StepError(STEP_ERRORS.attestationRefused, 'enclave-gone: the enclave no longer exists.');
    const { enclave } = loaded;
    let approvedMeasurements: ReturnType<typeof assertImageApproved>;
    try {
      // Read again, not carried from Validate: an approval withdrawn meanwhile must count.
      approvedMeasurements = assertImageApproved(
        enclave.configuration.image,
        await listMeasurementSets(deps.db, enclave.contractId),
      );
    } catch (error) {
      if (error instanceof DomainError) {
        throw new StepError(STEP_ERRORS.attestationRefused, describeDomainError(error));
      }
      throw error;
    }
    const verdict = await verifyEnclaveAttestation(
      {
        document,
        enclaveId,
        instanceId,
        approvedMeasurements,
        expectedNonce: new Uint8Array(Buffer.from(nonce, 'base64')),
        allowedSigners: allowedSignersOf(enclave.configuration),
        // A retried VerifyAttestation of this execution is not a replay; another execution's is.
        consumptionId: executionArn,
      },
      {
        nonces: workflowPorts(deps).nonces,
        now: deps.now,
        // Only the local stack trusts another root (the Nitro simulator's); deployed, the AWS root alone.
        ...(deps.local ? { trustedRoots: deps.local.attestationRoots } : {}),
      },
    );
    if (!verdict.ok)
      throw new StepError(STEP_ERRORS.attestationRefused, `${verdict.code}: ${verdict.message}`);
    return { claims: verdict.claims, matchedMeasurementSet: { id: verdict.matchedMeasurementSet.id } };
  });
}

/** Activate: the enclave becomes Running, unless it may not any more (terminated, contract suspended). */
export async function activateStep(
  deps: Dependencies,
  input: unknown,
): Promise<{ status: string; version: number }> {
  const { enclaveId, instanceId, executionArn, verification } = z.parse(ActivateInputSchema, input);
  return step(async () => {
    try {
      const enclave = await activateEnclave(deps, {
        enclaveId,
        instanceId,
        executionArn,
        attestation: verification,
      });
      return { status: enclave.status, version: enclave.version };
    } catch (error) {
      if (error instanceof DomainError && error.status < 500 && !isConcurrency(error)) {
        throw new StepError(STEP_ERRORS.activationRefused, describeDomainError(error));
      }
      throw error;
    }
  });
}

/**
 * Compensate: every instance tagged with the enclave is terminated, then the enclave is `Failed` with the
 * reason taken from the caught error. It acts only on what provisioning owns: an enclave that is `Running`
 * or `Suspended` (its activation landed, or another execution's did) is left alone; a final one only has
 * leftover instances terminated. Safe to repeat.
 */
export async function compensateStep(deps: Dependencies, input: unknown): Promise<CompensationOutcome> {
  const { executionArn, state } = z.parse(CompensateInputSchema, input);
  const reason = failureReason(state);
  return step(() =>
    compensateProvisioning(deps, {
      enclaveId: state.enclaveId,
      executionArn,
      instanceId: state.instance?.instanceId,
      reason,
      attestationRefused: state.error?.Error === STEP_ERRORS.attestationRefused,
      claimIfUnclaimed: state.plan === undefined,
    }),
  );
}

/** The enclave must still be Initializing and claimed by `executionArn`, or this run has nothing to do. */
async function assertOwner(deps: Dependencies, enclaveId: string, executionArn: string): Promise<void> {
  const loaded = await loadEnclave(deps.db, enclaveId);
  const enclave = loaded?.enclave;
  if (enclave?.status !== 'Initializing' || enclave.executionArn !== executionArn) {
    throw new StepError(
      STEP_ERRORS.activationRefused,
      `enclave-not-owned: enclave ${enclaveId} is ${enclave?.status ?? 'gone'} and not provisioned by this execution any more.`,
    );
  }
}

/**
 * The failure reason recorded on the enclave, from the execution's state at Compensate (the error the
 * failed state's Catch put at `$.error`, and how far the run got): a short
 * code and a sentence. Lambda errors arrive with the Lambda error document as the cause (its
 * `errorMessage` is used, never its stack trace); step errors carry `code: message`.
 */
export function failureReason(state: {
  readonly enclaveId: string;
  readonly error?: { readonly Error?: string; readonly Cause?: string };
  readonly instance?: unknown;
  readonly submission?: unknown;
}): {
  code: string;
  message: string;
} {
  const { error } = state;
  const name = error?.Error ?? 'unknown';
  const cause = causeMessage(error?.Cause);
  switch (name) {
    case 'States.Timeout':
    case 'States.HeartbeatTimeout':
      // Every task has a timeout; only WaitForAttestation's is the attestation's: the state that failed
      // was the wait when a parent was launched (`$.instance`) and no document is in (`$.submission`).
      if (name === 'States.Timeout' && (state.instance === undefined || state.submission !== undefined)) {
        return {
          code: 'step_timeout',
          message: `A provisioning step did not finish in time (each step has ${WORKFLOW_TIMING.lambdaTimeoutSeconds} seconds).`,
        };
      }
      return {
        code: 'attestation_timeout',
        message: `No attestation document arrived in time (${STATES.waitForAttestation}: ${name === 'States.HeartbeatTimeout' ? `no heartbeat for ${WORKFLOW_TIMING.attestationHeartbeatSeconds}` : `more than ${WORKFLOW_TIMING.attestationTimeoutSeconds}`} seconds).`,
      };
    case STEP_ERRORS.attestationRefused:
    case STEP_ERRORS.notProvisionable:
    case STEP_ERRORS.activationRefused: {
      const match = /^([a-z0-9_-]{1,64}): (.*)$/s.exec(cause);
      return match ? { code: match[1]!, message: match[2]! } : { code: name, message: cause };
    }
    case EC2_INTEGRATION_ERROR:
      // EC2 refused (no capacity left in any candidate type, throttled past the relaunches, not authorized):
      // the code EC2's wording names, and its message with the request id support asks for.
      return { code: ec2ErrorCode(cause), message: cause || 'EC2 refused the request.' };
    default:
      return { code: name.slice(0, 64), message: cause || 'The provisioning workflow failed.' };
  }
}

function causeMessage(cause: string | undefined): string {
  if (!cause) return '';
  try {
    const parsed = JSON.parse(cause) as { errorMessage?: unknown };
    if (typeof parsed?.errorMessage === 'string') return parsed.errorMessage;
  } catch {
    // Not a Lambda error document: the cause is the message itself.
  }
  return cause;
}

function describeDomainError(error: DomainError): string {
  const issues = (error.errors ?? []).map((i) => `${i.field}: ${i.message}`).join('; ');
  return `${error.type}: ${error.message}${issues ? ` (${issues})` : ''}`;
}

function isConcurrency(error: DomainError): boolean {
  return error instanceof ConflictError && error.type === 'concurrent-modification';
}

/** Runs a step, turning transient dependency failures into the retried step error. */
async function step<T>(run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    if (isTransient(error)) {
      throw new StepError(STEP_ERRORS.transient, 'A dependency was unavailable; retry.', { cause: error });
    }
    throw error;
  }
}

/** The ports' and the database's errors say whether a retry may help (`transient`). */
function isTransient(error: unknown): boolean {
  if (error instanceof DomainError) return isConcurrency(error) || error.status === 503;
  return error instanceof Error && (error as { transient?: unknown }).transient === true;
}
