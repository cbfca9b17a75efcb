import { existsSync, statSync } from 'node:fs';
import type Database from 'better-sqlite3';
import { openDatabase, type OpenOptions } from './open-database.js';

/**
 * The queue file was deleted (or renamed) while this connection had it open. The connection still
 * reads the old file, so everything committed in it is copied into a new file at the same path
 * (`VACUUM INTO` writes a consistent copy, write-ahead log included), which is then opened as the
 * queue. Without this, the process would go on writing to a file nobody can open again, and lose it
 * all at exit. Refuses when something else already sits at the path: that file is not ours to replace.
 */
export function recreateRemovedFile(removed: Database.Database, path: string, options: OpenOptions): Database.Database {
  if (existsSync(path)) throw new Error(`a different file now sits at ${path}; leaving it alone`);
  removed.prepare('VACUUM INTO ?').run(path);
  return openDatabase(path, options);
}

/**
 * Tells whether the queue file at a path is still the one a connection opened. In WAL mode SQLite
 * goes on writing to a deleted file without a word, so the store asks before every transaction
 * group: one `stat` per group, not per operation.
 */
export class QueueFileIdentity {
  private device = 0;
  private inode = 0;

  constructor(private readonly path: string) {
    this.remember();
  }

  /** Takes the file now at the path as the one in use. */
  remember(): void {
    const stats = statSync(this.path);
    this.device = stats.dev;
    this.inode = stats.ino;
  }

  /** Whether the file in use was removed, renamed or replaced. */
  gone(): boolean {
    const stats = statSync(this.path, { throwIfNoEntry: false });
    return stats === undefined || stats.ino !== this.inode || stats.dev !== this.device;
  }
}
