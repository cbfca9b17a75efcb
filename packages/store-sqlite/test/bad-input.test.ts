import { fork } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EgressConfigurationError } from '@egress/core';
import { sqliteStore, type SqliteStoreOptions } from '@egress/store-sqlite';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { claimDefaults, queuedEvent, temporaryDirectory } from './helpers.js';

const packageRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');

let directory: ReturnType<typeof temporaryDirectory>;
let path: string;

beforeEach(() => {
  directory = temporaryDirectory();
  path = join(directory.path, 'queue.db');
});

afterEach(() => directory.remove());

function fingerprint(file: string): string {
  return createHash('sha256').update(readFileSync(file)).digest('hex');
}

async function openError(file: string): Promise<Error> {
  const store = sqliteStore({ path: file });
  try {
    await store.open();
  } catch (error) {
    expect(EgressConfigurationError.isInstance(error)).toBe(true);
    return error as Error;
  }
  await store.close();
  throw new Error('open() succeeded');
}

async function createQueue(file: string): Promise<void> {
  const store = sqliteStore({ path: file });
  await store.open();
  await store.enqueue(Array.from({ length: 2_000 }, (_, index) => queuedEvent(index, { payload: JSON.stringify({ n: index, padding: 'x'.repeat(200) }) })));
  await store.close();
}

describe('files that are not a queue of ours', () => {
  test('refuses a file that is not SQLite, naming the path and leaving it as it was', async () => {
    writeFileSync(path, 'name,email\nLuke,luke@example.com\n'.repeat(50));
    const before = fingerprint(path);
    const error = await openError(path);
    expect(error.message).toContain(path);
    expect(error.message).toMatch(/not a SQLite database/);
    expect(fingerprint(path)).toBe(before);
    expect(existsSync(`${path}-wal`)).toBe(false);
  });

  test('refuses a SQLite database that another program created, naming its tables', async () => {
    const foreign = new Database(path);
    foreign.exec("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO users (name) VALUES ('Leia');");
    foreign.close();
    const before = fingerprint(path);
    const error = await openError(path);
    expect(error.message).toContain(path);
    expect(error.message).toMatch(/Egress did not create \(tables: users\)/);
    expect(fingerprint(path)).toBe(before);
  });

  test('refuses a queue written by a newer version of the package', async () => {
    await createQueue(path);
    const newer = new Database(path);
    newer.pragma('user_version = 5');
    newer.close();
    const before = fingerprint(path);
    const error = await openError(path);
    expect(error.message).toContain(path);
    expect(error.message).toMatch(/newer @egress\/store-sqlite \(schema version 5; this version reads up to 4\)/);
    expect(fingerprint(path)).toBe(before);
  });

  test('refuses a queue whose pages are damaged', async () => {
    await createQueue(path);
    const bytes = readFileSync(path);
    // Overwrite pages in the middle of the file, past the header and the schema.
    bytes.fill(0xa5, 8 * 4096 + 100, 40 * 4096);
    writeFileSync(path, bytes);
    const before = fingerprint(path);
    const error = await openError(path);
    expect(error.message).toContain(path);
    expect(error.message).toMatch(/damaged|malformed|corrupt/);
    expect(fingerprint(path)).toBe(before);
  });

  test('refuses a queue cut short', async () => {
    await createQueue(path);
    const bytes = readFileSync(path);
    writeFileSync(path, bytes.subarray(0, Math.floor(bytes.length / 2)));
    const before = fingerprint(path);
    const error = await openError(path);
    expect(error.message).toContain(path);
    expect(error.message).toMatch(/damaged/);
    expect(fingerprint(path)).toBe(before);
  });

  test('refuses a directory given as the path', async () => {
    const error = await openError(directory.path);
    expect(error.message).toMatch(/is a directory/);
  });
});

describe('older queues', () => {
  test('migrates a version-1 queue in place: its events stay and settlements are counted from then on', async () => {
    await createQueue(path);
    // A version-1 file is the current schema without egress_counters, egress_partition_states and the trace columns.
    const older = new Database(path);
    older.exec('DROP TABLE egress_counters; DROP TABLE egress_partition_states; ALTER TABLE egress_events DROP COLUMN trace; ALTER TABLE egress_dead DROP COLUMN trace;');
    older.pragma('user_version = 1');
    older.close();

    const store = sqliteStore({ path });
    await store.open();
    try {
      const { batches } = await store.claim({ ...claimDefaults, maxBatches: 1, maxEvents: 5 });
      await store.settle(batches[0]!, { delivered: batches[0]!.events.map((event) => event.id), dead: [] });
      const [row] = await store.stats(claimDefaults.now);
      expect(row).toMatchObject({ destination: 'test', partition: '', waiting: 1_995, delivered: 5, failed: 0 });
    } finally {
      await store.close();
    }
    const migrated = new Database(path, { readonly: true });
    expect(migrated.pragma('user_version', { simple: true })).toBe(4);
    expect(migrated.prepare('SELECT delivered, failed FROM egress_counters').all()).toEqual([{ delivered: 5, failed: 0 }]);
    migrated.close();
  });

  test('migrates a version-2 queue in place: partitions can be disabled from then on, and claims skip them', async () => {
    await createQueue(path);
    const older = new Database(path);
    older.exec('DROP TABLE egress_partition_states; ALTER TABLE egress_events DROP COLUMN trace; ALTER TABLE egress_dead DROP COLUMN trace;');
    older.pragma('user_version = 2');
    older.close();

    const store = sqliteStore({ path });
    await store.open();
    try {
      const next = { state: 'disabled' as const, since: 1, probeAt: 0, failures: 0, reason: 'by hand' };
      expect(await store.setPartitionState!({ destination: 'test', partition: '', next, expected: { state: 'running' } })).toBe(true);
      const { batches } = await store.claim({ ...claimDefaults, maxBatches: 1, maxEvents: 5 });
      expect(batches).toEqual([]);
    } finally {
      await store.close();
    }
    const migrated = new Database(path, { readonly: true });
    expect(migrated.pragma('user_version', { simple: true })).toBe(4);
    expect(migrated.prepare('SELECT partition, state, reason FROM egress_partition_states').all()).toEqual([{ partition: '', state: 'disabled', reason: 'by hand' }]);
    migrated.close();
  });

  test('migrates a version-3 queue in place: its events stay, untraced, and new events keep their trace context', async () => {
    await createQueue(path);
    const older = new Database(path);
    older.exec('ALTER TABLE egress_events DROP COLUMN trace; ALTER TABLE egress_dead DROP COLUMN trace;');
    older.pragma('user_version = 3');
    older.close();

    const store = sqliteStore({ path });
    await store.open();
    try {
      const trace = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
      await store.enqueue([{ ...queuedEvent(9_999), destination: 'traced', trace }]);
      const { batches: old } = await store.claim({ ...claimDefaults, maxBatches: 1, maxEvents: 1 });
      expect(old[0]!.events[0]!.trace).toBeUndefined();
      const { batches: traced } = await store.claim({ ...claimDefaults, destination: 'traced', maxBatches: 1, maxEvents: 1 });
      expect(traced[0]!.events[0]!.trace).toBe(trace);
    } finally {
      await store.close();
    }
    const migrated = new Database(path, { readonly: true });
    expect(migrated.pragma('user_version', { simple: true })).toBe(4);
    migrated.close();
  });
});

describe('permissions', () => {
  /** Opens the store in a child process running as an unprivileged user (root may write anywhere). */
  function openAsUnprivileged(file: string): Promise<{ opened: boolean; configuration?: boolean; message?: string }> {
    const asRoot = process.getuid?.() === 0;
    const child = fork(join(packageRoot, 'test', 'fixtures', 'open-worker.ts'), [], {
      cwd: packageRoot,
      execArgv: ['--import', 'tsx'],
      env: { ...process.env, TSX_TSCONFIG_PATH: resolve(packageRoot, '..', '..', 'tsconfig.json'), QUEUE_PATH: file },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      ...(asRoot ? { uid: 65534, gid: 65534 } : {}),
    });
    return new Promise((resolve, reject) => {
      child.on('message', (message: { opened: boolean }) => resolve(message));
      child.on('exit', (code) => reject(new Error(`open worker exited with ${code} without reporting`)));
    });
  }

  test('a directory the process may not write to is a clear error at open', async () => {
    const locked = join(directory.path, 'locked');
    mkdirSync(locked, { mode: 0o755 });
    chmodSync(directory.path, 0o755);
    if (process.getuid?.() !== 0) chmodSync(locked, 0o555);
    const outcome = await openAsUnprivileged(join(locked, 'queue.db'));
    expect(outcome.opened).toBe(false);
    expect(outcome.configuration).toBe(true);
    expect(outcome.message).toContain(join(locked, 'queue.db'));
    expect(outcome.message).toMatch(/cannot (open|write|create)/);
  }, 60_000);

  test('a queue file the process may not write to is a clear error at open, and stays as it was', async () => {
    await createQueue(path);
    chmodSync(directory.path, 0o755);
    chmodSync(path, 0o444);
    if (process.getuid?.() !== 0) chmodSync(directory.path, 0o555);
    const before = fingerprint(path);
    const outcome = await openAsUnprivileged(path);
    chmodSync(directory.path, 0o755);
    expect(outcome.opened).toBe(false);
    expect(outcome.configuration).toBe(true);
    expect(outcome.message).toContain(path);
    expect(fingerprint(path)).toBe(before);
  }, 60_000);
});

describe('options', () => {
  test.each<[string, unknown, RegExp]>([
    ['a missing path', {}, /\[sqlite\] option "path"/],
    ['an empty path', { path: ' ' }, /\[sqlite\] option "path"/],
    ['an in-memory path', { path: ':memory:' }, /memoryStore/],
    ['an unknown option', { path: 'q.db', synchronus: 'full' }, /\[sqlite\] option "synchronus": unknown option/],
    ['a bad synchronous mode', { path: 'q.db', synchronous: 'off' }, /\[sqlite\] option "synchronous"/],
    ['a negative maxEvents', { path: 'q.db', maxEvents: -1 }, /\[sqlite\] option "maxEvents"/],
    ['an unreadable maxBytes', { path: 'q.db', maxBytes: 'lots' }, /\[sqlite\] option "maxBytes"/],
    ['an unreadable busyTimeout', { path: 'q.db', busyTimeout: 'soon' }, /\[sqlite\] option "busyTimeout"/],
  ])('rejects %s when the store is created', (_name, options, message) => {
    let thrown: unknown;
    try {
      sqliteStore(options as SqliteStoreOptions);
    } catch (error) {
      thrown = error;
    }
    expect(EgressConfigurationError.isInstance(thrown)).toBe(true);
    expect((thrown as Error).message).toMatch(message);
  });

  test('creates the directory of a new queue file', async () => {
    const nested = join(directory.path, 'a', 'b', 'queue.db');
    const store = sqliteStore({ path: nested, maxBytes: '1MiB', busyTimeout: '1s', synchronous: 'full' });
    await store.open();
    await store.enqueue([queuedEvent(0)]);
    await store.close();
    expect(existsSync(nested)).toBe(true);
  });
});
