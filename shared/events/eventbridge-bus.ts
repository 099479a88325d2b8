import { EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import type { DomainEvent } from '../audit/audited-write.ts';
import { EVENT_SOURCE, type EventBus } from './event-bus.ts';

/**
 * EventBridge adapter. PutEvents takes at most 10 entries and can fail partially: only the entries
 * without an error are reported as published, so the outbox keeps and retries the others.
 */
export class EventBridgeBus implements EventBus {
  private readonly client: EventBridgeClient;

  constructor(private readonly options: { busName: string; client?: EventBridgeClient }) {
    this.client = options.client ?? new EventBridgeClient({});
  }

  async publish(events: readonly DomainEvent[]): Promise<Set<string>> {
    const accepted = new Set<string>();
    for (let i = 0; i < events.length; i += 10) {
      const batch = events.slice(i, i + 10);
      const result = await this.client.send(
        new PutEventsCommand({
          Entries: batch.map((e) => ({
            EventBusName: this.options.busName,
            Source: EVENT_SOURCE,
            DetailType: e.type,
            Time: new Date(e.occurredAt),
            Resources: [],
            Detail: JSON.stringify({
              eventId: e.id,
              aggregateType: e.aggregateType,
              aggregateId: e.aggregateId,
              ...(e.payload as object),
            }),
          })),
        }),
      );
      batch.forEach((e, j) => {
        if (!result.Entries?.[j]?.ErrorCode && result.Entries?.[j]?.EventId) accepted.add(e.id);
      });
    }
    return accepted;
  }
}
