import type { Removed, SettlementRequest } from './batch-settlement.js';

interface Pending {
  readonly request: SettlementRequest;
  /** When `settle` was called. */
  readonly since: number;
  readonly resolve: (removed: Removed) => void;
  readonly reject: (error: unknown) => void;
}

/** Most settlements written by one transaction. */
const maxSettlementsPerWrite = 500;

/**
 * Group commit for settlements, as `GroupCommit` is for enqueues: `settle` calls that arrive while
 * a write is in flight go out together in the next one, one transaction and one WAL flush for many
 * batches. A worker delivering single-event batches settles hundreds of them a second, and this is
 * what keeps that from costing a commit each. Each settlement stays whole: it is in one write.
 *
 * Settlements nobody waits for may also be held back a moment (`holdMs`) while `mayHold` says so,
 * so that at a steady rate, when each would otherwise go out alone, a few share a write.
 */
export class SettlementGroup {
  private queue: Pending[] = [];
  private writing = 0;
  private readonly idleWaiters: (() => void)[] = [];
  private holdTimer: NodeJS.Timeout | undefined;
  /** Set by `idle()`: nothing is held back any more until everything is written. */
  private hurry = false;

  constructor(
    /** Writes the settlements in one transaction; returns what each removed, in order. */
    private readonly write: (requests: readonly SettlementRequest[]) => Promise<Removed[]>,
    /** Writes in flight at once, each on its own connection. */
    private readonly concurrency: number,
    /** Longest a settlement waits for others to share its write. */
    private readonly holdMs = 0,
    /** Whether the settlements waiting may wait longer for others: none is waited on, and more are coming. */
    private readonly mayHold: (requests: readonly SettlementRequest[]) => boolean = () => false,
  ) {}

  submit(request: SettlementRequest): Promise<Removed> {
    return new Promise<Removed>((resolve, reject) => {
      this.queue.push({ request, since: Date.now(), resolve, reject });
      this.drain();
    });
  }

  /** Resolves once every submitted settlement has been written or has failed. */
  idle(): Promise<void> {
    if (this.writing === 0 && this.queue.length === 0) return Promise.resolve();
    this.hurry = true;
    this.drain();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private async writeGroup(group: readonly Pending[]): Promise<void> {
    try {
      const removed = await this.write(group.map((pending) => pending.request));
      group.forEach((pending, index) => pending.resolve(removed[index]!));
    } catch (error) {
      if (group.length === 1) {
        group[0]!.reject(error);
        return;
      }
      // One settlement that cannot be written must not fail the others that shared its write.
      await Promise.all(
        group.map((pending) =>
          this.write([pending.request]).then(
            (removed) => pending.resolve(removed[0]!),
            (alone: unknown) => pending.reject(alone),
          ),
        ),
      );
    }
  }

  private drain(): void {
    while (this.writing < this.concurrency && this.queue.length > 0) {
      const heldFor = Date.now() - this.queue[0]!.since;
      if (heldFor < this.holdMs && !this.hurry && this.mayHold(this.queue.map((pending) => pending.request))) {
        this.holdTimer ??= setTimeout(() => this.endHold(), this.holdMs - heldFor);
        return;
      }
      this.cancelHold();
      const group = this.queue.splice(0, maxSettlementsPerWrite);
      this.writing += 1;
      this.writeGroup(group).finally(() => {
        this.writing -= 1;
        this.drain();
        if (this.writing === 0 && this.queue.length === 0) {
          this.hurry = false;
          for (const wake of this.idleWaiters.splice(0)) wake();
        }
      });
    }
  }

  private endHold(): void {
    this.holdTimer = undefined;
    this.drain();
  }

  private cancelHold(): void {
    if (this.holdTimer) clearTimeout(this.holdTimer);
    this.holdTimer = undefined;
  }
}
