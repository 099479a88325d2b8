import type { DomainEvent } from '../audit/audited-write.ts';
import type { EnclaveData } from '../domain/enclave.ts';
import type { Dependencies } from '../runtime/dependencies.ts';

/** The enclave's domain events (EventBridge detail-types): the API's and the provisioning workflow's. */
export type EnclaveEventType =
  | 'EnclaveCreated'
  | 'EnclaveUpdated'
  | 'EnclaveSuspended'
  | 'EnclaveResumed'
  | 'EnclaveTerminated'
  | 'EnclaveProvisioningStarted'
  | 'EnclaveActivated'
  | 'EnclaveFailed';

/**
 * The outbox event of an enclave change: the payload always carries `enclaveId`, `contractId`, `status` and
 * `version` (what the EventBridge rules and the enforcement function read), plus what the change adds.
 */
export function enclaveEvent(
  deps: Pick<Dependencies, 'newId'>,
  type: EnclaveEventType,
  e: EnclaveData,
  extra: Record<string, unknown> = {},
): DomainEvent {
  return {
    id: deps.newId(),
    aggregateType: 'enclave',
    aggregateId: e.id,
    type,
    occurredAt: e.updatedAt,
    payload: { enclaveId: e.id, contractId: e.contractId, status: e.status, version: e.version, ...extra },
  };
}
