import { EgressStoreUnavailableError, type Logger, type QueuedEvent } from '@egress/core';
import { describeError } from './connection-failure.js';
import type { ConnectionStatus } from './connection-status.js';
import type { DatabaseConnection } from './database-connection.js';
import type { LocalSpool } from './local-spool.js';

/** While PostgreSQL is unreachable the store checks for its return this often at first... */
const delayMin = 200;
/** ...and at least this often however long the outage. */
const delayMax = 1000;
/** Spooled events moved into PostgreSQL per transaction. */
const spoolMoveChunk = 5000;

/** What recovery needs from the store. */
export interface RecoveryHost {
  readonly pool: DatabaseConnection;
  readonly status: ConnectionStatus;
  readonly spool: LocalSpool | undefined;
  /** Connects and migrates (once); rejects while PostgreSQL cannot be reached. */
  openDatabase(): Promise<void>;
  /** Writes events into PostgreSQL in one transaction. */
  insertEvents(events: readonly QueuedEvent[]): Promise<void>;
  logger(): Logger | undefined;
}

/**
 * Brings the store back after an outage. While PostgreSQL is unreachable, not yet migrated, or the
 * spool holds events, it checks again with a growing delay: a successful check makes the status
 * `connected` (which wakes the workers and the engine's commit buffer) and moves the spool over.
 */
export class OutageRecovery {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private delay = delayMin;
  private stopped = false;
  /** The last failure logged, so that an outage is logged once, not on every attempt. */
  private loggedFailure: string | undefined;

  constructor(private readonly host: RecoveryHost) {}

  /** Checks after `delay` (default: the current backoff) unless a check is already due or running. */
  schedule(delay = this.delay): void {
    if (this.stopped || this.timer || this.running) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.running = this.recover().finally(() => {
        this.running = undefined;
        if (this.needed()) this.schedule();
      });
    }, delay);
    this.timer.unref();
  }

  /** The database answered: the next outage starts with short checks again. */
  reset(): void {
    this.delay = delayMin;
  }

  /** Stops checking; whatever the spool still holds stays in the file for the next store. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.running;
  }

  /** Logs `message` unless the same failure was logged last. */
  logOnce(level: 'warn' | 'error', error: unknown, message: string): void {
    const text = describeError(error);
    if (this.loggedFailure === text) return;
    this.loggedFailure = text;
    this.host.logger()?.[level]({ error: text }, message);
  }

  /** Moves spooled events into PostgreSQL in the order they were accepted; each chunk leaves the file only after PostgreSQL committed it. */
  async moveSpool(): Promise<void> {
    const spool = this.host.spool;
    if (!spool || spool.count === 0) return;
    let moved = 0;
    while (spool.count > 0) {
      const next = spool.read(spoolMoveChunk);
      if (!next) break;
      // The same event written twice (a chunk committed just before the process died) is kept once.
      await this.host.insertEvents(next.events);
      spool.remove(next.throughSeq);
      moved += next.events.length;
      this.host.status.setSpooled(spool.count);
    }
    if (moved > 0 && spool.count === 0) this.host.logger()?.info({ events: moved }, 'moved the spooled events into PostgreSQL');
  }

  private needed(): boolean {
    return !this.host.pool.opened || this.host.status.current().state !== 'connected' || (this.host.spool?.count ?? 0) > 0;
  }

  private async recover(): Promise<void> {
    const { pool, status } = this.host;
    try {
      if (!pool.opened) await this.host.openDatabase();
      else if (status.current().state !== 'connected') await pool.query('SELECT 1 AS reachable', [], 'checking whether PostgreSQL is back');
      await this.moveSpool();
      this.delay = delayMin;
      this.loggedFailure = undefined;
    } catch (error) {
      this.delay = Math.min(delayMax, this.delay * 2);
      // A configuration problem found in the background (privileges, a foreign schema) is logged,
      // and the spool keeps the events until someone fixes it.
      if (!EgressStoreUnavailableError.isInstance(error)) this.logOnce('error', error, 'cannot move the spooled events into PostgreSQL');
    }
  }
}
