import { EgressStoreUnavailableError } from '@egress/core';

/** The SQLite result code of an error from better-sqlite3 (`SQLITE_BUSY`, `SQLITE_FULL`, ...), if it has one. */
export function sqliteCode(error: unknown): string | undefined {
  const code = typeof error === 'object' && error !== null ? (error as { code?: unknown }).code : undefined;
  return typeof code === 'string' && code.startsWith('SQLITE_') ? code : undefined;
}

/** Why the queue file, removed while in use, could not be recreated. */
export class QueueFileRemovedError extends Error {
  override readonly name = 'QueueFileRemovedError';
}

/**
 * Turns a failure that waiting can mend into `EgressStoreUnavailableError`, which the engine
 * answers by keeping the events and writing them again with backoff: another process holding the
 * write lock past `busyTimeout`, a full disk, an I/O error. A transaction that failed wrote
 * nothing, so the same call made again commits each event once. Anything else is returned as is.
 */
export function asStoreError(error: unknown, path: string): unknown {
  if (EgressStoreUnavailableError.isInstance(error)) return error;
  if (error instanceof QueueFileRemovedError) {
    return new EgressStoreUnavailableError('sqlite', `${path}: the queue file was removed while in use and could not be recreated (${error.message}); nothing was written`, { cause: error });
  }
  const code = sqliteCode(error);
  if (code === undefined) return error;
  const cause = { cause: error };
  if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) {
    return new EgressStoreUnavailableError('sqlite', `${path}: another connection held the queue file's write lock for longer than busyTimeout (${code}); nothing was written`, cause);
  }
  if (code === 'SQLITE_FULL') {
    return new EgressStoreUnavailableError('sqlite', `${path}: the disk holding the queue file is full (${code}); nothing was written. Free space on it`, cause);
  }
  if (code.startsWith('SQLITE_IOERR')) {
    return new EgressStoreUnavailableError('sqlite', `${path}: the queue file could not be read or written (${code}: ${(error as Error).message}); nothing was written`, cause);
  }
  if (code === 'SQLITE_READONLY_DBMOVED') {
    return new EgressStoreUnavailableError('sqlite', `${path}: the queue file was removed or renamed while in use (${code}); nothing was written`, cause);
  }
  return error;
}
