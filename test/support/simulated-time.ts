/**
 * A simulated clock for tasks that wait (scheduled runs, a publisher looking every second) while they also
 * do real I/O (PGlite, dynalite). Time moves only when every task {@link spawn}ed is asleep in
 * {@link sleep}: then the clock jumps to the earliest wake-up. An hour of schedules thus runs in the time
 * its real calls take, in the order their timers give, whatever those calls cost.
 *
 * @example
 * const time = new SimulatedTime(new Date('2027-01-01T00:00:00Z'));
 * time.every(60_000, () => drainOutbox(db, bus, { ...options, now: time.now, sleep: time.sleep }));
 * await time.runFor(3_600_000);
 */
export class SimulatedTime {
  private ms: number;
  private readonly timers: { at: number; seq: number; wake: () => void }[] = [];
  private seq = 0;
  private live = 0;
  private sleeping = 0;
  private onIdle: (() => void) | undefined;
  private readonly failures: unknown[] = [];

  constructor(start: Date) {
    this.ms = start.getTime();
  }

  readonly now = (): Date => new Date(this.ms);

  /** Resolves once the clock moved `ms` on; only a {@link spawn}ed task may wait here. */
  readonly sleep = (ms: number): Promise<void> =>
    new Promise<void>((wake) => {
      this.timers.push({ at: this.ms + Math.max(0, ms), seq: this.seq++, wake });
      this.sleeping++;
      this.checkIdle();
    });

  /** Runs `task` as one of the tasks the clock waits for. */
  spawn(task: () => Promise<unknown>): void {
    this.live++;
    void Promise.resolve()
      .then(task)
      .catch((error: unknown) => this.failures.push(error))
      .finally(() => {
        this.live--;
        this.checkIdle();
      });
  }

  /** Starts `run` now and every `everyMs` after, as EventBridge Scheduler would. */
  every(everyMs: number, run: () => Promise<unknown>): void {
    this.spawn(async () => {
      for (;;) {
        this.spawn(run);
        await this.sleep(everyMs);
      }
    });
  }

  /** Lets the tasks run until the clock has moved `ms` on (and every task is asleep or done). */
  async runFor(ms: number): Promise<void> {
    const until = this.ms + ms;
    for (;;) {
      await new Promise<void>((resolve) => {
        this.onIdle = resolve;
        this.checkIdle();
      });
      if (this.failures.length > 0) throw this.failures[0];
      this.timers.sort((a, b) => a.at - b.at || a.seq - b.seq);
      const next = this.timers[0];
      if (!next || next.at > until) {
        this.ms = until;
        return;
      }
      this.timers.shift();
      this.ms = next.at;
      this.sleeping--;
      next.wake();
    }
  }

  private checkIdle(): void {
    if (this.sleeping !== this.live || !this.onIdle) return;
    const resolve = this.onIdle;
    this.onIdle = undefined;
    resolve();
  }
}
