import { EgressStoreUnavailableError, type QueuedEvent } from '@egress/core';
import type { DatabaseConnection } from './database-connection.js';

/**
 * Enqueue writes whose connection broke after their transaction began: PostgreSQL may have
 * committed them with the answer lost on the way. Writing such events again is not harmless, because
 * by then workers may have delivered and deleted them, and the second copy would be delivered again
 * under a new batch. So before events are written again, the fate of the earlier attempt is asked of
 * PostgreSQL (`txid_status`): committed events are not written twice.
 */
export class UncertainWrites {
  /** Transaction id of the broken attempt that carried each event. */
  private readonly attempts = new Map<string, string>();

  get size(): number {
    return this.attempts.size;
  }

  remember(transactionId: string, events: readonly QueuedEvent[]): void {
    for (const event of events) this.attempts.set(event.id, transactionId);
  }

  /**
   * `events` without those an earlier attempt committed. Rejects with `EgressStoreUnavailableError`
   * while that attempt is still open on the server (its connection not yet noticed as gone).
   */
  async withoutCommitted(events: readonly QueuedEvent[], pool: DatabaseConnection): Promise<readonly QueuedEvent[]> {
    const transactionIds = new Set<string>();
    for (const event of events) {
      const transactionId = this.attempts.get(event.id);
      if (transactionId !== undefined) transactionIds.add(transactionId);
    }
    if (transactionIds.size === 0) return events;
    const result = await pool.query<{ id: string; status: string | null }>(
      'SELECT id, txid_status(id::bigint) AS status FROM unnest($1::text[]) AS id',
      [[...transactionIds]],
      'checking whether an interrupted write was committed',
    );
    const committed = new Set<string>();
    for (const row of result.rows) {
      if (row.status === 'in progress') {
        throw new EgressStoreUnavailableError('postgres', 'an earlier write of these events is still open on a connection that broke; waiting for PostgreSQL to end it');
      }
      // 'aborted', or too old to know (null): nothing of it is visible, so writing again is right.
      if (row.status === 'committed') committed.add(row.id);
    }
    const remaining: QueuedEvent[] = [];
    for (const event of events) {
      const transactionId = this.attempts.get(event.id);
      this.attempts.delete(event.id);
      if (transactionId === undefined || !committed.has(transactionId)) remaining.push(event);
    }
    return remaining;
  }
}
