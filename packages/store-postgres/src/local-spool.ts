import { closeSync, mkdirSync, openSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { EgressConfigurationError, type QueuedEvent } from '@egress/core';
import type BetterSqlite3 from 'better-sqlite3';
import { queuedEvent } from './batch-claim.js';
import { describeError } from './connection-failure.js';

/** What identifies a spool file, so that no other SQLite database is mistaken for one. */
const spoolFormat = 'egress-postgres-spool';
const spoolVersion = '2';

interface SpoolRow {
  seq: number;
  id: string;
  destination: string;
  partition: string;
  payload: string;
  size: number;
  sent_at: number;
  attempts: number;
  trace: string | null;
}

export interface SpooledEvents {
  readonly events: QueuedEvent[];
  /** The last row read; `remove(throughSeq)` deletes up to it once the events are safe elsewhere. */
  readonly throughSeq: number;
}

/**
 * Events accepted while PostgreSQL could not be reached, kept in a local SQLite file until they are
 * moved into PostgreSQL. Every append is one transaction synced to disk (WAL, `synchronous = FULL`)
 * before `enqueue` resolves, so an event survives the process being killed the next instant.
 * Rows are read back in the order they were appended.
 */
export class LocalSpool {
  private database: BetterSqlite3.Database | undefined;
  private statements:
    | {
        insert: BetterSqlite3.Statement;
        read: BetterSqlite3.Statement<[number], SpoolRow>;
        remove: BetterSqlite3.Statement<[number]>;
      }
    | undefined;
  /** Events in the file. */
  count = 0;

  constructor(
    readonly path: string,
    /** The PostgreSQL schema the events belong to: a spool is never moved into another queue. */
    private readonly schema: string,
  ) {}

  private get where(): string {
    return `[postgres] option "spool" (${this.path})`;
  }

  async open(): Promise<void> {
    if (this.database) return;
    const Database = await loadBetterSqlite3(this.where);
    this.createPrivately();
    let database: BetterSqlite3.Database;
    try {
      // A lock held elsewhere is answered at once rather than after better-sqlite3's default wait.
      database = new Database(this.path, { timeout: 100 });
    } catch (error) {
      throw new EgressConfigurationError(`cannot open the spool file (${describeError(error)})`, this.where, { cause: error });
    }
    try {
      this.prepare(database);
    } catch (error) {
      database.close();
      throw error;
    }
    this.database = database;
  }

  /** Appends events after those already in the file, durably, all or none. */
  append(events: readonly QueuedEvent[]): void {
    const { database, statements } = this.opened();
    database.transaction(() => {
      for (const event of events) {
        statements.insert.run(event.id, event.destination, event.partition, event.payload, Math.max(0, Math.ceil(event.size)), event.sentAt, event.attempts, event.trace ?? null);
      }
    })();
    this.count += events.length;
  }

  /** The oldest `limit` events, in the order they were appended. */
  read(limit: number): SpooledEvents | undefined {
    const rows = this.opened().statements.read.all(limit);
    if (rows.length === 0) return undefined;
    return {
      events: rows.map((row) => queuedEvent(row.id, row.destination, row.partition, row.payload, row.size, row.sent_at, row.attempts, row.trace)),
      throughSeq: rows[rows.length - 1]!.seq,
    };
  }

  /** Deletes every event up to and including `throughSeq`. */
  remove(throughSeq: number): void {
    const result = this.opened().statements.remove.run(throughSeq);
    this.count = Math.max(0, this.count - result.changes);
  }

  close(): void {
    this.database?.close();
    this.database = undefined;
    this.statements = undefined;
  }

  private opened(): { database: BetterSqlite3.Database; statements: NonNullable<LocalSpool['statements']> } {
    if (!this.database || !this.statements) throw new Error('[egress] [postgres] the spool is not open');
    return { database: this.database, statements: this.statements };
  }

  /** The events are the application's data: the directory is made 0700 and the file 0600 when they are created here. */
  private createPrivately(): void {
    try {
      mkdirSync(dirname(this.path), { recursive: true, mode: 0o700 });
    } catch (error) {
      throw new EgressConfigurationError(`cannot create the directory ${dirname(this.path)} (${describeError(error)})`, this.where, { cause: error });
    }
    try {
      if (statSync(this.path).isDirectory()) throw new EgressConfigurationError('is a directory; expected the path of a spool file', this.where);
      return;
    } catch (error) {
      if (EgressConfigurationError.isInstance(error)) throw error;
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') {
        throw new EgressConfigurationError(`cannot read the spool file (${describeError(error)})`, this.where, { cause: error });
      }
    }
    try {
      // SQLite gives its -wal and -shm files the mode of the database file.
      closeSync(openSync(this.path, 'wx', 0o600));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') return;
      throw new EgressConfigurationError(`cannot create the spool file (${describeError(error)})`, this.where, { cause: error });
    }
  }

  private prepare(database: BetterSqlite3.Database): void {
    try {
      // One process per spool: two processes moving the same file into PostgreSQL would deliver its
      // events twice. The exclusive lock is taken now and held until close, so a second process is
      // refused at open instead.
      database.pragma('locking_mode = EXCLUSIVE');
      database.exec('BEGIN EXCLUSIVE; COMMIT');
      const tables = (database.prepare(`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'`).all() as { name: string }[]).map((row) => row.name);
      if (tables.length > 0) {
        const ours = tables.includes('spool_info') && tables.includes('spooled_events');
        const info = ours ? new Map((database.prepare('SELECT key, value FROM spool_info').all() as { key: string; value: string }[]).map((row) => [row.key, row.value])) : undefined;
        if (!info || info.get('format') !== spoolFormat) {
          throw new EgressConfigurationError(`is a SQLite database that is not an Egress spool (tables: ${tables.slice(0, 5).join(', ')}); refusing to use it, nothing was changed`, this.where);
        }
        if (info.get('version') === '1') upgradeFromVersion1(database);
        else if (info.get('version') !== spoolVersion) {
          throw new EgressConfigurationError(`was written by another version of @egress/store-postgres (spool version ${info.get('version')}); nothing was changed`, this.where);
        }
        if (info.get('schema') !== this.schema) {
          throw new EgressConfigurationError(
            `holds events for the schema "${info.get('schema')}", not "${this.schema}"; give each store its own spool file. Nothing was changed`,
            this.where,
          );
        }
      }
      // WAL and FULL: a committed append is on disk before `enqueue` resolves.
      const mode = database.pragma('journal_mode = WAL', { simple: true });
      if (mode !== 'wal') throw new Error(`journal_mode stayed ${String(mode)}`);
      database.pragma('synchronous = FULL');
      if (tables.length === 0) {
        database.exec(`
          CREATE TABLE spool_info (key TEXT PRIMARY KEY, value TEXT NOT NULL);
          CREATE TABLE spooled_events (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT NOT NULL,
            destination TEXT NOT NULL,
            partition TEXT NOT NULL,
            payload TEXT NOT NULL,
            size INTEGER NOT NULL,
            sent_at INTEGER NOT NULL,
            attempts INTEGER NOT NULL,
            trace TEXT
          );`);
        const info = database.prepare('INSERT INTO spool_info (key, value) VALUES (?, ?)');
        database.transaction(() => {
          info.run('format', spoolFormat);
          info.run('version', spoolVersion);
          info.run('schema', this.schema);
        })();
      }
      this.statements = {
        insert: database.prepare('INSERT INTO spooled_events (id, destination, partition, payload, size, sent_at, attempts, trace) VALUES (?, ?, ?, ?, ?, ?, ?, ?)'),
        read: database.prepare<[number], SpoolRow>('SELECT * FROM spooled_events ORDER BY seq LIMIT ?'),
        remove: database.prepare<[number]>('DELETE FROM spooled_events WHERE seq <= ?'),
      };
      this.count = (database.prepare('SELECT count(*) AS count FROM spooled_events').get() as { count: number }).count;
    } catch (error) {
      if (EgressConfigurationError.isInstance(error)) throw error;
      if ((error as { code?: unknown }).code === 'SQLITE_BUSY') {
        throw new EgressConfigurationError('is in use by another process; give each process its own spool file (a spool moved by two processes would deliver its events twice)', this.where, {
          cause: error,
        });
      }
      throw new EgressConfigurationError(`cannot use the spool file (${describeError(error)}); check that it and its directory are readable and writable`, this.where, { cause: error });
    }
  }
}

/** Version 2 adds each event's trace context; a version-1 spool left by an older release keeps its events and gains the column. */
function upgradeFromVersion1(database: BetterSqlite3.Database): void {
  database.transaction(() => {
    database.exec('ALTER TABLE spooled_events ADD COLUMN trace TEXT');
    database.prepare("UPDATE spool_info SET value = ? WHERE key = 'version'").run(spoolVersion);
  })();
}

/** better-sqlite3 is an optional peer dependency, loaded only when a spool is configured. */
async function loadBetterSqlite3(where: string): Promise<typeof BetterSqlite3> {
  try {
    const loaded = (await import('better-sqlite3')) as { default?: typeof BetterSqlite3 };
    return loaded.default ?? (loaded as unknown as typeof BetterSqlite3);
  } catch (error) {
    throw new EgressConfigurationError('the spool needs the better-sqlite3 package, which could not be loaded; install it beside @egress/store-postgres (npm install better-sqlite3)', where, {
      cause: error,
    });
  }
}
