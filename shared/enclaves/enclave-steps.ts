import { auditedWrite } from '../audit/audited-write.ts';
import { loadContract } from '../contracts/contract-store.ts';
import type { ContractData } from '../domain/contract.ts';
import { type Actor, validityWindowAt } from '../domain/contract-lifecycle.ts';
import {
  type EnclaveAttestation,
  EnclaveAttestationSchema,
  type EnclaveData,
  isFinalEnclaveStatus,
  provisioningIdOf,
} from '../domain/enclave.ts';
import { applyEnclaveTransition, type EnclaveTransitionContext } from '../domain/enclave-lifecycle.ts';
import { ConflictError, NotFoundError, UnprocessableError } from '../domain/errors.ts';
import * as z from '../domain/zod.ts';
import type { Dependencies } from '../runtime/dependencies.ts';
import type { AttestationClaimsSummary } from './enclave-attestation.ts';
import { type EnclaveEventType, enclaveEvent } from './enclave-events.ts';
import { type LoadedEnclave, loadEnclave, updateEnclaveMutation } from './enclave-store.ts';

/**
 * The provisioning workflow's closing steps, as use cases its Lambda tasks call (the platform acts; there
 * is no HTTP caller):
 * - **Activate**: after VerifyAttestation accepted the document, the enclave becomes `Running` with the
 *   verdict and the trusted claims stored.
 * - **Compensate**: after any failure or timeout (and after the instance was terminated), the enclave
 *   becomes `Failed` with the reason.
 *
 * Both write the row, its audit record and its domain event in one version-guarded statement
 * (`auditedWrite`), retry a lost race from a fresh load (the lifecycle rules are checked again), and are
 * idempotent: Step Functions delivers a task at least once and an operator may re-run an execution, so a
 * second call with the same outcome answers the current state and writes nothing.
 */

/** The platform, which these steps act as: the only actor the lifecycle lets `activate` and `fail`. */
const SYSTEM_ACTOR: Actor = { kind: 'system' };

/** Attempts at a version-guarded write before a lost race becomes a ConflictError (as contract mutations). */
const MAX_ATTEMPTS = 3;

/** Bound of the stored `statusReason` (it is shown to clients and copied into the audit trail). */
export const MAX_STATUS_REASON_LENGTH = 1000;
/** Bounds of a refusal record's fields, as `EnclaveAttestationSchema` declares them. */
const MAX_REFUSAL_CODE_LENGTH = 64;
const MAX_REFUSAL_MESSAGE_LENGTH = 1000;

/** What VerifyAttestation accepted: an `EnclaveAttestationSuccess` is one (its `index` is not needed). */
export interface VerifiedAttestation {
  readonly claims: AttestationClaimsSummary;
  /** The approved measurement set the document matched. */
  readonly matchedMeasurementSet: { readonly id: string };
}

export interface ActivateEnclaveInput {
  readonly enclaveId: string;
  /** The parent instance the attested enclave runs on (PCR4 was pinned to it). */
  readonly instanceId: string;
  /**
   * The execution activating: it must be the one that claimed the enclave (`claimProvisioning`), so a
   * superseded execution's late Activate (say, after a suspend and resume started a new run) cannot make
   * the enclave Running on a stale attestation.
   */
  readonly executionArn: string;
  readonly attestation: VerifiedAttestation;
}

export interface FailureReason {
  /** A short machine code, e.g. an attestation failure code (`pcr_mismatch`) or a problem type. */
  readonly code: string;
  /** A sentence for humans; no secrets (it is stored, audited and returned to the parties). */
  readonly message: string;
}

export interface FailEnclaveInput {
  readonly enclaveId: string;
  readonly reason: FailureReason;
  /** The instance the workflow launched (and Compensate terminated), recorded if the enclave has none yet. */
  readonly instanceId?: string | undefined;
  /**
   * True when the failure is the attestation's refusal (VerifyAttestation): the refusal is then recorded
   * as the enclave's attestation verdict even if none was stored before.
   */
  readonly attestationRefused?: boolean | undefined;
  /**
   * The failing provisioning execution: when given, the enclave is failed only while that execution owns
   * it (a superseded execution's late failure changes nothing).
   */
  readonly executionArn?: string | undefined;
}

/**
 * Activate: the enclave becomes `Running` on `instanceId` with the verified attestation stored (verdict
 * `verified`, module id, document timestamp, PCRs, matched set, verification time), its status reason
 * cleared; audited as `activate`, published as `EnclaveActivated`.
 *
 * The transition is checked against the contract as it is NOW, not as Validate saw it: a contract suspended
 * while the instance booted refuses activation (and the workflow compensates), and so does a contract whose
 * validity window has ended (or not begun) at this instant, even before the expiry sweep marks it Expired.
 * The write itself also requires the contract still Active and its window not ended at the activation's
 * instant, in the same statement, so a suspension landing between the check and the write makes it not
 * apply; the retry then reloads and refuses.
 *
 * A duplicate callback (already `Running` on the same instance with an attestation of the same document
 * timestamp) returns the current state without writing.
 * @throws NotFoundError for an unknown enclave; IllegalTransitionError when it is not `Initializing`;
 *   UnprocessableError (`transition-guard-failed`) when its contract is not Active or outside its validity
 *   window; ConflictError when the write keeps losing races; ZodError when the claims do not make a valid
 *   attestation record.
 * @example
 * const verdict = await verifyEnclaveAttestation(input, attestationDeps);
 * if (verdict.ok) await activateEnclave(deps, { enclaveId, instanceId, attestation: verdict });
 */
export async function activateEnclave(deps: Dependencies, input: ActivateEnclaveInput): Promise<EnclaveData> {
  const { claims, matchedMeasurementSet } = input.attestation;
  for (let attempt = 1; ; attempt++) {
    const { enclave, auditHead } = await load(deps, input.enclaveId);
    if (
      enclave.status === 'Running' &&
      enclave.instanceId === input.instanceId &&
      enclave.attestation?.verdict === 'verified' &&
      enclave.attestation.documentTimestamp === claims.timestamp
    ) {
      return enclave;
    }
    const now = deps.now();
    const contract = await contractOf(deps, enclave);
    const status = applyEnclaveTransition(enclave, 'activate', SYSTEM_ACTOR, contextOf(contract));
    assertWithinValidity(contract, now);
    if (enclave.executionArn !== input.executionArn) {
      throw new ConflictError(
        'enclave-not-owned',
        'Not this execution’s enclave',
        `Enclave ${enclave.id} is being provisioned by another execution; this one may not activate it.`,
      );
    }
    const at = now.toISOString();
    // Parsed so only a record the API would itself return is stored (strict: the claims' other fields,
    // such as the nonce and the certificate window, stay out).
    const attestation: EnclaveAttestation = z.parse(EnclaveAttestationSchema, {
      verdict: 'verified',
      verifiedAt: at,
      moduleId: claims.moduleId,
      documentTimestamp: claims.timestamp,
      pcrs: { ...claims.pcrs },
      measurementSetId: matchedMeasurementSet.id,
    });
    const next: EnclaveData = {
      ...enclave,
      status,
      attestation,
      instanceId: input.instanceId,
      executionArn: input.executionArn,
      statusReason: null,
      version: enclave.version + 1,
      updatedAt: at,
    };
    const applied = await platformWrite(deps, enclave, auditHead, next, {
      action: 'activate',
      data: {
        instanceId: input.instanceId,
        moduleId: claims.moduleId,
        matchedMeasurementSet: matchedMeasurementSet.id,
      },
      event: 'EnclaveActivated',
      eventExtra: { instanceId: input.instanceId, measurementSetId: matchedMeasurementSet.id },
      requireActiveContract: true,
    });
    if (applied) return next;
    if (attempt >= MAX_ATTEMPTS) throw concurrentModification();
  }
}

/**
 * Compensate: the enclave becomes `Failed` with `statusReason` = `code: message` (bounded). A verified
 * attestation no longer vouches for anything once the enclave failed, so it is replaced by a refusal
 * record carrying the reason; so is a missing one when the failure is the attestation's refusal
 * (`attestationRefused`). Audited as `fail` with the reason, published as `EnclaveFailed`.
 *
 * An enclave already `Failed` or `Terminated` is returned as it is, without writing: Compensate may run
 * twice (a retried task, a re-run execution), and a terminated enclave needs no failure on top.
 * @throws NotFoundError for an unknown enclave; ConflictError when the write keeps losing races.
 * @example
 * await failEnclave(deps, { enclaveId, instanceId, reason: { code: 'pcr_mismatch', message }, attestationRefused: true });
 */
export async function failEnclave(deps: Dependencies, input: FailEnclaveInput): Promise<EnclaveData> {
  const code = truncate(input.reason.code, MAX_REFUSAL_CODE_LENGTH);
  const message = truncate(input.reason.message, MAX_REFUSAL_MESSAGE_LENGTH);
  const statusReason = truncate(`${code}: ${message}`, MAX_STATUS_REASON_LENGTH);
  for (let attempt = 1; ; attempt++) {
    const { enclave, auditHead } = await load(deps, input.enclaveId);
    if (isFinalEnclaveStatus(enclave.status)) return enclave;
    if (input.executionArn !== undefined && enclave.executionArn !== input.executionArn) return enclave;
    const status = applyEnclaveTransition(
      enclave,
      'fail',
      SYSTEM_ACTOR,
      contextOf(await contractOf(deps, enclave)),
    );
    const at = deps.now().toISOString();
    const voids = enclave.attestation?.verdict === 'verified' || input.attestationRefused === true;
    const attestation: EnclaveAttestation | null = voids
      ? z.parse(EnclaveAttestationSchema, { verdict: 'refused', verifiedAt: at, code, message })
      : enclave.attestation;
    const instanceId = enclave.instanceId ?? input.instanceId ?? null;
    const next: EnclaveData = {
      ...enclave,
      status,
      attestation,
      instanceId,
      statusReason,
      version: enclave.version + 1,
      updatedAt: at,
    };
    const applied = await platformWrite(deps, enclave, auditHead, next, {
      action: 'fail',
      data: { from: enclave.status, code, message, instanceId },
      event: 'EnclaveFailed',
      eventExtra: { reason: statusReason, instanceId },
    });
    if (applied) return next;
    if (attempt >= MAX_ATTEMPTS) throw concurrentModification();
  }
}

/** What a provisioning execution's claim found. */
export type ProvisioningClaim =
  | { readonly claimed: true; readonly enclave: EnclaveData }
  | { readonly claimed: false; readonly reason: string };

/**
 * The Validate step's first act: execution `executionArn` claims enclave `enclaveId` for provisioning, by
 * recording itself as the enclave's execution in a version-guarded, audited write (`provision`). Only an
 * `Initializing` enclave that no other execution has claimed can be claimed; the same execution claiming
 * again (a retried task) finds its own claim and writes nothing. Anything else is not a failure to
 * compensate but a superseded execution: a duplicate event delivery, an operator's re-run, or an enclave
 * that moved on (terminated, already running).
 * @throws NotFoundError for an unknown enclave; ConflictError when the write keeps losing races.
 */
export async function claimProvisioning(
  deps: Dependencies,
  enclaveId: string,
  executionArn: string,
): Promise<ProvisioningClaim> {
  for (let attempt = 1; ; attempt++) {
    const { enclave, auditHead } = await load(deps, enclaveId);
    if (enclave.status !== 'Initializing') {
      return { claimed: false, reason: `Enclave ${enclave.id} is ${enclave.status}, not Initializing.` };
    }
    if (enclave.executionArn === executionArn) return { claimed: true, enclave };
    if (enclave.executionArn !== null) {
      return {
        claimed: false,
        reason: `Enclave ${enclave.id} is being provisioned by execution ${enclave.executionArn}.`,
      };
    }
    const at = deps.now().toISOString();
    const next: EnclaveData = { ...enclave, executionArn, version: enclave.version + 1, updatedAt: at };
    const applied = await platformWrite(deps, enclave, auditHead, next, {
      action: 'provision',
      // Parties read this trail: the execution's name, never its ARN (the account id, the state machine).
      data: { provisioningId: provisioningIdOf(executionArn), restart: enclave.instanceId !== null },
      event: 'EnclaveProvisioningStarted',
      eventExtra: { executionArn },
    });
    if (applied) return { claimed: true, enclave: next };
    if (attempt >= MAX_ATTEMPTS) throw concurrentModification();
  }
}

/** A change the platform makes (no identity acts), as the workflow's steps write it. */
interface PlatformChange {
  readonly action: string;
  readonly data: Record<string, unknown>;
  readonly event: EnclaveEventType;
  readonly eventExtra: Record<string, unknown>;
  /** Apply only while the enclave's contract is Active (checked in the write itself). */
  readonly requireActiveContract?: boolean;
}

/**
 * Writes `next` over `enclave` with its audit record (chained to `auditHead`, actor: the platform) and its
 * event, in one version-guarded statement. @returns false when the version moved (a lost race).
 */
async function platformWrite(
  deps: Dependencies,
  enclave: EnclaveData,
  auditHead: string,
  next: EnclaveData,
  change: PlatformChange,
): Promise<boolean> {
  const { applied } = await auditedWrite(deps.db, {
    ...updateEnclaveMutation(next, enclave.version, {
      requireActiveContract: change.requireActiveContract === true,
    }),
    audit: {
      entityType: 'enclave',
      entityId: enclave.id,
      seq: next.version,
      action: change.action,
      actorId: null,
      occurredAt: next.updatedAt,
      data: change.data,
    },
    prevHash: auditHead,
    event: enclaveEvent(deps, change.event, next, change.eventExtra),
  });
  return applied;
}

async function load(deps: Dependencies, enclaveId: string): Promise<LoadedEnclave> {
  const loaded = await loadEnclave(deps.db, enclaveId);
  if (!loaded) throw new NotFoundError(`Enclave ${enclaveId}`);
  return loaded;
}

/** The enclave's contract as it is now (the foreign key guarantees one). */
async function contractOf(deps: Dependencies, enclave: EnclaveData): Promise<ContractData> {
  const loaded = await loadContract(deps.db, enclave.contractId);
  if (!loaded) throw new Error(`enclave ${enclave.id} refers to missing contract ${enclave.contractId}`);
  return loaded.contract;
}

/** The lifecycle's context: the contract's parties and status. */
function contextOf(contract: ContractData): EnclaveTransitionContext {
  const { providerId, consumerId, status } = contract;
  return { contract: { providerId, consumerId, status } };
}

/**
 * Activation happens inside the contract's validity window or not at all: the same refusal as a contract
 * that is no longer Active (the expiry sweep may not have marked an ended contract Expired yet).
 * @throws UnprocessableError (`transition-guard-failed`) naming the instant that closes the window.
 */
function assertWithinValidity(contract: ContractData, now: Date): void {
  const { reason } = validityWindowAt(contract.terms.validity, now);
  if (reason) {
    throw new UnprocessableError(
      'transition-guard-failed',
      'Transition not allowed now',
      `Cannot activate: ${reason}.`,
    );
  }
}

function concurrentModification(): ConflictError {
  return new ConflictError(
    'concurrent-modification',
    'Concurrent modification',
    'The enclave is being changed concurrently; retry.',
  );
}

/** `s` cut to at most `max` UTF-16 units, never splitting a surrogate pair. */
function truncate(s: string, max: number): string {
  if (s.length <= max) return s;
  const cut = s.slice(0, max - 1);
  return `${/[\uD800-\uDBFF]$/.test(cut) ? cut.slice(0, -1) : cut}…`;
}
