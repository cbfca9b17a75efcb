import { EgressStoreUnavailableError, type QueuedEvent } from '@egress/core';

interface Pending {
  readonly events: readonly QueuedEvent[];
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
}

/** Most events written by one statement; larger backlogs go out in several. */
const maxEventsPerWrite = 20_000;

/**
 * Group commit: `enqueue` calls that arrive while a write is in flight wait for the next write and
 * go out together in one INSERT, one transaction and one WAL flush. A call's events are never split
 * across writes, so each call stays all-or-nothing.
 */
export class GroupCommit {
  private queue: Pending[] = [];
  private writing = 0;
  private readonly idleWaiters: (() => void)[] = [];

  constructor(
    private readonly write: (events: readonly QueuedEvent[]) => Promise<void>,
    /** Writes in flight at once, each on its own connection. */
    private readonly concurrency: number,
  ) {}

  submit(events: readonly QueuedEvent[]): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ events, resolve, reject });
      this.drain();
    });
  }

  /** Resolves once every submitted call has been written or has failed. */
  idle(): Promise<void> {
    if (this.writing === 0 && this.queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private async writeGroup(group: readonly Pending[], events: readonly QueuedEvent[]): Promise<void> {
    try {
      await this.write(events);
      for (const pending of group) pending.resolve();
    } catch (error) {
      // Unreachable is nobody's fault: every call fails alike, and writing each alone would reorder them.
      if (group.length === 1 || EgressStoreUnavailableError.isInstance(error)) {
        for (const pending of group) pending.reject(error);
        return;
      }
      // One bad call must not fail the calls that happened to share its write: write each alone.
      await Promise.all(
        group.map((pending) =>
          this.write(pending.events).then(
            () => pending.resolve(),
            (alone: unknown) => pending.reject(alone),
          ),
        ),
      );
    }
  }

  private drain(): void {
    while (this.writing < this.concurrency && this.queue.length > 0) {
      const group: Pending[] = [];
      let count = 0;
      while (this.queue.length > 0 && (group.length === 0 || count + this.queue[0]!.events.length <= maxEventsPerWrite)) {
        const next = this.queue.shift()!;
        group.push(next);
        count += next.events.length;
      }
      const events = group.length === 1 ? group[0]!.events : group.flatMap((pending) => pending.events);
      this.writing += 1;
      this.writeGroup(group, events).finally(() => {
        this.writing -= 1;
        this.drain();
        if (this.writing === 0 && this.queue.length === 0) for (const wake of this.idleWaiters.splice(0)) wake();
      });
    }
  }
}
