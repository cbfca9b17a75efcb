import { accessSync, closeSync, constants, mkdirSync, openSync, readSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { EgressConfigurationError } from '@egress/core';
import Database from 'better-sqlite3';
import { SCHEMA_VERSION, createSchema, identifyDatabase, migrateSchema, missingTables } from './schema.js';

const sqliteHeader = Buffer.from('SQLite format 3\u0000', 'latin1');

export interface OpenOptions {
  readonly synchronous: 'normal' | 'full';
  readonly busyTimeout: number;
}

/**
 * Opens the queue file, or creates it, and makes sure it is ours before anything is written: a
 * file that is not SQLite, a SQLite database created by something else, a queue written by a newer
 * version of this package, or a damaged file each stop `open()` with an error naming the path, and
 * the file is left exactly as it was. A queue written by an older version is migrated in place.
 */
export function openDatabase(path: string, options: OpenOptions): Database.Database {
  const where = `[sqlite] ${path}`;
  checkBeforeOpening(path, where);

  let database: Database.Database;
  try {
    database = new Database(path, { timeout: options.busyTimeout });
  } catch (error) {
    throw new EgressConfigurationError(`cannot open the queue file (${describe(error)}); check that it and its directory are readable and writable`, where, { cause: error });
  }
  try {
    prepare(database, where, options);
    return database;
  } catch (error) {
    database.close();
    throw error;
  }
}

function createPrivateFile(path: string, where: string): void {
  try {
    closeSync(openSync(path, 'wx', 0o600));
  } catch (error) {
    // Another process created it in the meantime: it is theirs to have made right.
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return;
    throw new EgressConfigurationError(`cannot create the queue file (${describe(error)})`, where, { cause: error });
  }
}

function checkBeforeOpening(path: string, where: string): void {
  let size: number | undefined;
  try {
    const stats = statSync(path);
    if (stats.isDirectory()) throw new EgressConfigurationError('is a directory; expected the path of a queue file', where);
    size = stats.size;
  } catch (error) {
    if (EgressConfigurationError.isInstance(error)) throw error;
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new EgressConfigurationError(`cannot read the queue file (${describe(error)})`, where, { cause: error });
    }
  }
  if (size === undefined) {
    try {
      // The queue holds payloads in clear, credentials included (a retry needs them): only the
      // owner may enter a directory the store creates or read the file it creates. SQLite gives the
      // -wal and -shm files the queue file's permissions.
      mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    } catch (error) {
      throw new EgressConfigurationError(`cannot create the directory ${dirname(path)} (${describe(error)})`, where, { cause: error });
    }
    if (path !== ':memory:' && path !== '' && !path.startsWith('file:')) createPrivateFile(path, where);
  } else {
    try {
      accessSync(path, constants.R_OK | constants.W_OK);
    } catch (error) {
      throw new EgressConfigurationError(`cannot write the queue file (${describe(error)}); the process needs to read and write it`, where, { cause: error });
    }
  }
  // The log (-wal) and index (-shm) files are created beside the queue, so the directory must be writable too.
  try {
    accessSync(dirname(path), constants.W_OK | constants.X_OK);
  } catch (error) {
    throw new EgressConfigurationError(`cannot write in the directory ${dirname(path)} (${describe(error)}); the queue and its -wal and -shm files live there`, where, { cause: error });
  }
  if (size === undefined || size === 0) return;
  // SQLite itself would only say "file is not a database" at the first query; say what the file is not.
  const header = Buffer.alloc(sqliteHeader.length);
  let descriptor: number | undefined;
  try {
    descriptor = openSync(path, 'r');
    readSync(descriptor, header, 0, header.length, 0);
  } catch (error) {
    throw new EgressConfigurationError(`cannot read the queue file (${describe(error)})`, where, { cause: error });
  } finally {
    if (descriptor !== undefined) closeSync(descriptor);
  }
  if (size < 100 || !header.equals(sqliteHeader)) {
    throw new EgressConfigurationError('is not a SQLite database (corrupt, or some other kind of file); refusing to use it, nothing was changed', where);
  }
}

function prepare(database: Database.Database, where: string, options: OpenOptions): void {
  let identity: ReturnType<typeof identifyDatabase>;
  try {
    identity = identifyDatabase(database);
  } catch (error) {
    throw new EgressConfigurationError(`is damaged or unreadable (${describe(error)}); refusing to use it, nothing was changed. Restore it from a backup or move it aside`, where, { cause: error });
  }
  if (identity.kind === 'foreign') {
    const tables = identity.tables.length > 0 ? ` (tables: ${identity.tables.slice(0, 5).join(', ')}${identity.tables.length > 5 ? ', ...' : ''})` : '';
    throw new EgressConfigurationError(`is a SQLite database that Egress did not create${tables}; refusing to use it, nothing was changed. Point the store at a new file`, where);
  }
  if (identity.kind === 'ours') {
    if (identity.version > SCHEMA_VERSION) {
      throw new EgressConfigurationError(
        `was written by a newer @egress/store-sqlite (schema version ${identity.version}; this version reads up to ${SCHEMA_VERSION}); upgrade @egress/store-sqlite. Nothing was changed`,
        where,
      );
    }
    const missing = missingTables(database, identity.version);
    if (identity.version < 1 || missing.length > 0) {
      throw new EgressConfigurationError(`is an Egress queue with a damaged schema (missing: ${missing.join(', ') || 'version'}); refusing to use it, nothing was changed`, where);
    }
    let problems: string[];
    try {
      problems = (database.pragma('quick_check(5)') as { quick_check: string }[])
        .flatMap((row) => row.quick_check.split('\n'))
        .map((line) => line.trim())
        .filter((line) => line !== 'ok' && line !== '' && !line.startsWith('***'));
    } catch (error) {
      problems = [describe(error)];
    }
    if (problems.length > 0) {
      throw new EgressConfigurationError(`is damaged (${problems.join('; ')}); refusing to use it, nothing was changed. Restore it from a backup or move it aside`, where);
    }
  }

  try {
    // WAL: writers do not block readers (`egress status` can read while a worker writes), and a
    // commit is one append to the log. Set only now, because switching modes writes the header.
    const mode = database.pragma('journal_mode = WAL', { simple: true });
    if (mode !== 'wal') throw new Error(`journal_mode stayed ${String(mode)}`);
    database.pragma(`synchronous = ${options.synchronous === 'full' ? 'FULL' : 'NORMAL'}`);
    database.pragma('foreign_keys = OFF');
    database.pragma('cache_size = -16384');
    database.pragma('temp_store = MEMORY');
    // Checkpoint less often: pages rewritten again and again (a partition's head, the batches) are copied once per checkpoint.
    database.pragma('wal_autocheckpoint = 10000');
    database.pragma('journal_size_limit = 67108864');
    if (identity.kind === 'empty') createSchema(database);
    else if (identity.version < SCHEMA_VERSION) migrateSchema(database);
  } catch (error) {
    throw new EgressConfigurationError(`cannot write the queue file (${describe(error)}); check that it and its directory are writable`, where, { cause: error });
  }
}

function describe(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as NodeJS.ErrnoException).code;
    return code && !error.message.includes(code) ? `${code}: ${error.message}` : error.message;
  }
  return String(error);
}
