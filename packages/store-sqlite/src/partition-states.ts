import type BetterSqlite3 from 'better-sqlite3';
import { meetsExpectation, type PartitionState, type PartitionStateChange } from '@egress/core';

interface StateRow {
  destination: string;
  partition: string;
  state: 'paused' | 'disabled';
  since: number;
  probe_at: number;
  failures: number;
  reason: string;
}

/**
 * Paused and disabled partitions in `egress_partition_states`. Every process with the file open
 * reads them at each claim; a change is read and written inside the caller's write transaction,
 * so its condition holds against every other process.
 */
export class PartitionStates {
  private readonly ofDestination: BetterSqlite3.Statement<[string], StateRow>;
  private readonly all: BetterSqlite3.Statement<[], StateRow>;
  private readonly one: BetterSqlite3.Statement<[string, string], StateRow>;
  private readonly upsert: BetterSqlite3.Statement<[string, string, string, number, number, number, string]>;
  private readonly remove: BetterSqlite3.Statement<[string, string]>;

  constructor(database: BetterSqlite3.Database) {
    this.ofDestination = database.prepare('SELECT * FROM egress_partition_states WHERE destination = ?');
    this.all = database.prepare('SELECT * FROM egress_partition_states');
    this.one = database.prepare('SELECT * FROM egress_partition_states WHERE destination = ? AND partition = ?');
    this.upsert = database.prepare(
      `INSERT INTO egress_partition_states (destination, partition, state, since, probe_at, failures, reason) VALUES (?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (destination, partition) DO UPDATE SET state = excluded.state, since = excluded.since, probe_at = excluded.probe_at, failures = excluded.failures, reason = excluded.reason`,
    );
    this.remove = database.prepare('DELETE FROM egress_partition_states WHERE destination = ? AND partition = ?');
  }

  /** The states of one destination by partition, for a claim. */
  byPartition(destination: string): Map<string, PartitionState> {
    return new Map(this.ofDestination.all(destination).map((row) => [row.partition, toState(row)]));
  }

  list(destination: string | undefined): PartitionState[] {
    return (destination === undefined ? this.all.all() : this.ofDestination.all(destination)).map(toState);
  }

  change(change: PartitionStateChange): boolean {
    const { destination, partition, next } = change;
    const row = this.one.get(destination, partition);
    if (!meetsExpectation(row ? toState(row) : undefined, change.expected)) return false;
    if (next) this.upsert.run(destination, partition, next.state, next.since, next.probeAt, next.failures, next.reason);
    else this.remove.run(destination, partition);
    return true;
  }
}

function toState(row: StateRow): PartitionState {
  return { destination: row.destination, partition: row.partition, state: row.state, since: row.since, probeAt: row.probe_at, failures: row.failures, reason: row.reason };
}
