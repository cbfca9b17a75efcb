import { hostname } from 'node:os';
import type BetterSqlite3 from 'better-sqlite3';

/** Tokens of the store instances open in this process, to tell them from earlier ones with the same pid. */
const openHere = new Set<string>();

export interface Holder {
  readonly token: string;
  readonly host: string;
  readonly pid: number;
}

/** Registers this instance as a holder of the file; `release` undoes it. */
export function registerHolder(database: BetterSqlite3.Database, token: string, now: number): void {
  database.prepare('INSERT INTO egress_holders (token, host, pid, opened_at) VALUES (?, ?, ?, ?)').run(token, hostname(), process.pid, now);
  openHere.add(token);
}

export function unregisterHolder(database: BetterSqlite3.Database, token: string): void {
  openHere.delete(token);
  database.prepare('DELETE FROM egress_holders WHERE token = ?').run(token);
}

export function forgetHolder(token: string): void {
  openHere.delete(token);
}

/**
 * A holder is gone when it ran on this machine and its process no longer exists (or, for this
 * process, when it is not one of the instances still open here). A holder on another machine (a
 * file on a shared volume) cannot be checked, so it counts as alive and its leases simply expire.
 */
function isGone(holder: Holder): boolean {
  if (holder.host !== hostname()) return false;
  if (holder.pid === process.pid) return !openHere.has(holder.token);
  try {
    process.kill(holder.pid, 0);
    return false;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

/**
 * Gives back, ready at once, every batch leased by a store instance that is gone: a process killed
 * mid-delivery should not make its batches wait for the lease to run out. Their attempts stay
 * counted, because the delivery may have happened (or may be what killed the process: a batch that
 * crashes its worker every time must still reach `maxAttempts` and be dead-lettered rather than
 * loop forever). Returns how many batches were given back and whether another live instance holds
 * the file.
 */
export function recoverLeases(database: BetterSqlite3.Database): { recovered: number; othersAlive: boolean } {
  const holders = database.prepare('SELECT token, host, pid FROM egress_holders').all() as Holder[];
  const remove = database.prepare('DELETE FROM egress_holders WHERE token = ?');
  let othersAlive = false;
  for (const holder of holders) {
    if (isGone(holder)) remove.run(holder.token);
    else othersAlive = true;
  }
  const { changes } = database
    .prepare('UPDATE egress_batches SET leased = 0, ready_at = 0, holder = NULL, lease = NULL WHERE leased = 1 AND (holder IS NULL OR holder NOT IN (SELECT token FROM egress_holders))')
    .run();
  return { recovered: changes, othersAlive };
}

/**
 * Puts right what an interrupted process may have left (events pointing at a batch that is gone go
 * back to waiting) and forgets partitions that hold nothing. Only when no other live instance has
 * the file open, since those cache partition numbers.
 */
export function tidyUp(database: BetterSqlite3.Database): void {
  database.prepare('UPDATE egress_events SET batch = NULL WHERE batch IS NOT NULL AND batch NOT IN (SELECT batch FROM egress_batches)').run();
  database
    .prepare(
      `DELETE FROM egress_queues WHERE NOT EXISTS (SELECT 1 FROM egress_events e WHERE e.queue = egress_queues.queue AND e.batch IS NULL)
       AND NOT EXISTS (SELECT 1 FROM egress_batches b WHERE b.queue = egress_queues.queue)`,
    )
    .run();
}
