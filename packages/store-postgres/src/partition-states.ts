import type { PartitionState, PartitionStateChange } from '@egress/core';
import type { Queryable } from './batch-settlement.js';
import type { SchemaNames } from './schema-names.js';

interface StateRow {
  destination: string;
  partition: string;
  state: 'paused' | 'disabled';
  since: string;
  probe_at: string;
  failures: number;
  reason: string;
}

/** Paused and disabled partitions, for one destination or all. */
export async function readPartitionStates(executor: Queryable, names: SchemaNames, destination: string | undefined): Promise<PartitionState[]> {
  const result = await executor.query<StateRow>({
    text: `SELECT * FROM ${names.table('partition_states')} WHERE $1::text IS NULL OR destination = $1 ORDER BY destination, partition`,
    values: [destination ?? null],
  });
  return result.rows.map((row) => ({
    destination: row.destination,
    partition: row.partition,
    state: row.state,
    since: Number(row.since),
    probeAt: Number(row.probe_at),
    failures: row.failures,
    reason: row.reason,
  }));
}

/**
 * Writes or clears a partition's state in one statement whose condition is checked by the row it
 * writes, so that of two workers racing to pause a partition or to take its probe, one wins.
 */
export async function writePartitionState(executor: Queryable, names: SchemaNames, change: PartitionStateChange): Promise<boolean> {
  const table = names.table('partition_states');
  const { destination, partition, next, expected } = change;
  const key = [destination, partition];
  const condition = expected && expected.state !== 'running' ? expected : undefined;
  const probeDueBy = condition?.state === 'paused' ? (condition.probeDueBy ?? null) : null;
  let text: string;
  let values: unknown[];
  if (next) {
    const columns = [next.state, next.since, next.probeAt, next.failures, next.reason];
    if (expected?.state === 'running') {
      text = `INSERT INTO ${table} (destination, partition, state, since, probe_at, failures, reason) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (destination, partition) DO NOTHING RETURNING 1`;
      values = [...key, ...columns];
    } else if (condition) {
      text = `UPDATE ${table} SET state = $3, since = $4, probe_at = $5, failures = $6, reason = $7
              WHERE destination = $1 AND partition = $2 AND state = $8 AND ($9::bigint IS NULL OR probe_at <= $9) RETURNING 1`;
      values = [...key, ...columns, condition.state, probeDueBy];
    } else {
      text = `INSERT INTO ${table} (destination, partition, state, since, probe_at, failures, reason) VALUES ($1, $2, $3, $4, $5, $6, $7)
              ON CONFLICT (destination, partition) DO UPDATE SET state = excluded.state, since = excluded.since, probe_at = excluded.probe_at, failures = excluded.failures, reason = excluded.reason
              RETURNING 1`;
      values = [...key, ...columns];
    }
  } else if (expected?.state === 'running') {
    const found = await executor.query({ text: `SELECT 1 FROM ${table} WHERE destination = $1 AND partition = $2`, values: key });
    return found.rows.length === 0;
  } else if (condition) {
    text = `DELETE FROM ${table} WHERE destination = $1 AND partition = $2 AND state = $3 AND ($4::bigint IS NULL OR probe_at <= $4) RETURNING 1`;
    values = [...key, condition.state, probeDueBy];
  } else {
    await executor.query({ text: `DELETE FROM ${table} WHERE destination = $1 AND partition = $2`, values: key });
    return true;
  }
  const result = await executor.query({ text, values });
  return result.rows.length > 0;
}
