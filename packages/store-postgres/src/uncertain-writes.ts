import { EgressStoreUnavailableError, type QueuedEvent } from '@egress/core';
import type { DatabaseConnection } from './database-connection.js';
import type { SchemaNames } from './schema-names.js';

/** How long the check waits for an interrupted write that is still running on the server. */
const stillRunningWait = 1000;

/** PostgreSQL's code for a lock that was not granted within `lock_timeout`. */
const lockNotAvailable = '55P03';

/**
 * Enqueue writes whose connection broke after the statement may have been sent: PostgreSQL may have
 * committed them with the answer lost on the way. Writing such events again is not harmless, because
 * by then workers may have delivered and deleted them, and the second copy would be delivered again
 * under a new batch.
 *
 * Each write is one statement that also sets its producer's row in `producers` to the write's
 * number, and writes nothing when that row is fenced at or past its number. Before this store writes
 * again, the fate of an interrupted write is settled by raising the fence to its number: a write
 * still running holds the row's lock, so the fence waits for it; afterwards the row says whether it
 * committed (`last_write` reached its number), and a write that had not started yet never will.
 * Writes of one store are one at a time, and none is sent while an earlier one is unsettled, so the
 * row's last write is always the one in question.
 */
export class UncertainWrites {
  /** The interrupted write not yet settled, and the events it carried. */
  private pending: { write: number; eventIds: ReadonlySet<string> } | undefined;
  /** Events of an interrupted write that did commit: they are not written again when they come back. */
  private readonly committed = new Set<string>();

  constructor(
    private readonly names: SchemaNames,
    /** The producer's key in `producers`. */
    private readonly producer: string,
  ) {}

  /** Whether a write must look here first. */
  get outstanding(): boolean {
    return this.pending !== undefined || this.committed.size > 0;
  }

  remember(write: number, events: readonly QueuedEvent[]): void {
    this.pending = { write, eventIds: new Set(events.map((event) => event.id)) };
  }

  /**
   * `events` without those an interrupted write committed. Rejects with `EgressStoreUnavailableError`
   * while that write is still open on the server (its connection not yet noticed as gone).
   */
  async withoutCommitted(events: readonly QueuedEvent[], pool: DatabaseConnection): Promise<readonly QueuedEvent[]> {
    if (this.pending) await this.settle(this.pending, pool);
    if (this.committed.size === 0) return events;
    const remaining: QueuedEvent[] = [];
    for (const event of events) {
      if (!this.committed.delete(event.id)) remaining.push(event);
    }
    return remaining;
  }

  private async settle(pending: { write: number; eventIds: ReadonlySet<string> }, pool: DatabaseConnection): Promise<void> {
    let lastWrite: number;
    try {
      const result = await pool.query<{ last_write: string }>(
        `INSERT INTO ${this.names.table('producers')} AS p (producer, fence, written_at)
         SELECT $1, $2, $3 FROM (SELECT set_config('lock_timeout', '${stillRunningWait}', true)) AS bounded
         ON CONFLICT (producer) DO UPDATE SET fence = greatest(p.fence, EXCLUDED.fence)
         RETURNING last_write`,
        [this.producer, pending.write, Date.now()],
        'checking whether an interrupted write was committed',
      );
      lastWrite = Number(result.rows[0]!.last_write);
    } catch (error) {
      if ((error as { code?: unknown }).code === lockNotAvailable) {
        throw new EgressStoreUnavailableError('postgres', 'an earlier write of these events is still open on a connection that broke; waiting for PostgreSQL to end it', { cause: error });
      }
      throw error;
    }
    this.pending = undefined;
    if (lastWrite >= pending.write) for (const id of pending.eventIds) this.committed.add(id);
  }
}
