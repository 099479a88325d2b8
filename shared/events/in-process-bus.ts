import type { DomainEvent } from '../audit/audited-write.ts';
import type { EventBus } from './event-bus.ts';

/** The local stack's bus: keeps the latest events published (tests read them) and tells subscribers. */
export class InProcessBus implements EventBus {
  readonly published: DomainEvent[] = [];
  private static readonly KEEP = 10_000;
  private readonly subscribers: ((e: DomainEvent) => void)[] = [];

  subscribe(subscriber: (e: DomainEvent) => void): void {
    this.subscribers.push(subscriber);
  }

  async publish(events: readonly DomainEvent[]): Promise<Set<string>> {
    for (const e of events) {
      this.published.push(e);
      if (this.published.length > InProcessBus.KEEP) this.published.shift();
      for (const s of this.subscribers) s(e);
    }
    return new Set(events.map((e) => e.id));
  }
}
