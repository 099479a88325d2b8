import type { DomainEvent } from '../audit/audited-write.ts';

/** Where outbox events go: EventBridge in AWS, an in-process bus locally. */
export interface EventBus {
  /** Publishes the events; returns the ids that were accepted (the rest are retried later). */
  publish(events: readonly DomainEvent[]): Promise<Set<string>>;
}

export const EVENT_SOURCE = 'enclave-contracts';
