import type { StoreStats } from './store.js';

type MutableStats = { -readonly [Key in keyof StoreStats]: StoreStats[Key] };

/**
 * Adds up counts per destination and partition, for a store's `stats()`: each store reads its
 * own structures (or queries) and feeds them here, and the rows come out as the contract wants.
 */
export class StoreStatsTable {
  private readonly rows = new Map<string, MutableStats>();

  add(destination: string, partition: string, counts: { waiting?: number; inFlight?: number; dead?: number; delivered?: number; failed?: number; oldestSentAt?: number | null }): void {
    const key = `${destination}\u0000${partition}`;
    let row = this.rows.get(key);
    if (!row) this.rows.set(key, (row = { destination, partition, waiting: 0, inFlight: 0, dead: 0, delivered: 0, failed: 0, oldestSentAt: undefined }));
    row.waiting += counts.waiting ?? 0;
    row.inFlight += counts.inFlight ?? 0;
    row.dead += counts.dead ?? 0;
    row.delivered += counts.delivered ?? 0;
    row.failed += counts.failed ?? 0;
    const oldest = counts.oldestSentAt;
    if (oldest !== undefined && oldest !== null) row.oldestSentAt = row.oldestSentAt === undefined ? oldest : Math.min(row.oldestSentAt, oldest);
  }

  /** The rows that hold anything: queued or dead events, or delivered and failed totals (a partition that emptied still reports what it delivered). */
  rowsWithEvents(): StoreStats[] {
    return [...this.rows.values()].filter((row) => row.waiting + row.inFlight + row.dead + row.delivered + row.failed > 0);
  }
}
