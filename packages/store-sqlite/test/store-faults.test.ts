import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { createEgress, defineDestination, EgressStoreUnavailableError, type Batch, type Egress, type Logger, type Receipt } from '@egress/core';
import { afterAll, afterEach, describe, expect, test } from 'vitest';
import { sqliteStore } from '../src/index.js';
import { queuedEvent, temporaryDirectory } from './helpers.js';

const betterSqlite = createRequire(import.meta.url).resolve('better-sqlite3');

interface Input {
  n: number;
  text?: string;
}

/** Records what arrives; holds every delivery while `held` is set, so that events stay in the queue file. */
function recordingSink() {
  const arrived: number[] = [];
  let release: (() => void) | undefined;
  let gate: Promise<void> | undefined;
  const destination = defineDestination({
    name: 'events',
    input: { '~standard': { version: 1, vendor: 'test', validate: (value: unknown) => ({ value: value as Input }) } },
    async deliver(batch: Batch<Input>) {
      if (gate) await gate;
      for (const event of batch.events) arrived.push(event.payload.n);
    },
  });
  return {
    destination,
    arrived,
    hold() {
      gate = new Promise((resolve) => (release = resolve));
    },
    letGo() {
      gate = undefined;
      release?.();
    },
  };
}

function recordingLogger() {
  const lines: string[] = [];
  const logger: Logger = { debug: () => {}, info: () => {}, warn: (_fields, message) => lines.push(message), error: (_fields, message) => lines.push(message) };
  return { logger, lines };
}

async function eventually(check: () => boolean, timeout = 15_000): Promise<void> {
  const deadline = Date.now() + timeout;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const sequence = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, index) => from + index);

let cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  cleanups = [];
});

function track<T extends Pick<Egress, 'close'>>(egress: T): T {
  cleanups.push(() => egress.close({ timeout: 1000 }));
  return egress;
}

/** Another process that opens the queue file and holds its write lock until told to let go. */
async function lockHolder(path: string): Promise<ChildProcess & { letGo(): Promise<void> }> {
  const script = `
    const Database = require(${JSON.stringify(betterSqlite)});
    const database = new Database(${JSON.stringify(path)});
    database.exec('BEGIN IMMEDIATE');
    process.stdout.write('locked\\n');
    process.stdin.once('data', () => { database.exec('COMMIT'); database.close(); process.exit(0); });
  `;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['pipe', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    child.stdout!.once('data', () => resolve());
    child.once('exit', (code) => reject(new Error(`the lock holder exited with ${code}`)));
  });
  const letGo = () =>
    new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.stdin!.write('go\n');
    });
  cleanups.push(() => void child.kill('SIGKILL'));
  return Object.assign(child, { letGo });
}

describe('SQLITE_BUSY: another process holds the write lock', () => {
  test('enqueue fails with EgressStoreUnavailableError naming the file, and writes nothing', async () => {
    const directory = temporaryDirectory();
    cleanups.push(directory.remove);
    const path = join(directory.path, 'queue.db');
    const store = sqliteStore({ path, busyTimeout: 50 });
    await store.open();
    cleanups.push(() => store.close());
    const holder = await lockHolder(path);
    const failure = await store.enqueue([queuedEvent(1)]).catch((error: unknown) => error);
    expect(EgressStoreUnavailableError.isInstance(failure)).toBe(true);
    expect((failure as Error).message).toMatch(/^\[egress\] \[sqlite\] .*queue\.db: another connection held the queue file's write lock for longer than busyTimeout \(SQLITE_BUSY\); nothing was written$/);
    await holder.letGo();
    expect(await store.stats(Date.now())).toEqual([]);
    await store.enqueue([queuedEvent(2)]);
    expect((await store.stats(Date.now()))[0]).toMatchObject({ waiting: 1 });
  });

  test('the engine keeps the events while the lock is held, then commits and delivers each once, in order', async () => {
    const directory = temporaryDirectory();
    cleanups.push(directory.remove);
    const path = join(directory.path, 'queue.db');
    const sink = recordingSink();
    const egress = track(createEgress({ destinations: [sink.destination], store: sqliteStore({ path, busyTimeout: 50 }), logger: recordingLogger().logger }));
    await egress.ready();
    const holder = await lockHolder(path);
    const receipts: Receipt[] = sequence(1, 20).map((n) => egress.send.events({ n }));
    await eventually(() => egress.storeStatus().state === 'unreachable');
    expect(egress.storeStatus()).toMatchObject({ kind: 'sqlite', buffered: 20 });
    expect(egress.storeStatus().error).toMatch(/SQLITE_BUSY/);
    await holder.letGo();
    await Promise.all(receipts.map((receipt) => receipt.committed()));
    await egress.flush();
    expect(sink.arrived).toEqual(sequence(1, 20));
    expect(egress.storeStatus()).toMatchObject({ state: 'connected', buffered: 0 });
  });

  test('open() while another process holds the lock is retried by the engine until it is free', async () => {
    const directory = temporaryDirectory();
    cleanups.push(directory.remove);
    const path = join(directory.path, 'queue.db');
    // Create the queue file first, as an earlier run would have.
    const first = sqliteStore({ path });
    await first.open();
    await first.close();
    const holder = await lockHolder(path);
    const sink = recordingSink();
    const egress = track(createEgress({ destinations: [sink.destination], store: sqliteStore({ path, busyTimeout: 50 }), logger: recordingLogger().logger }));
    const receipt = egress.send.events({ n: 1 });
    await eventually(() => egress.storeStatus().state === 'unreachable');
    await holder.letGo();
    await egress.ready();
    expect(await receipt.settled()).toEqual({ status: 'delivered' });
    expect(sink.arrived).toEqual([1]);
  });
});

describe('the queue file removed while in use', () => {
  test('is recreated at its path with everything it held; events sent afterwards go there too, each delivered once', async () => {
    const directory = temporaryDirectory();
    cleanups.push(directory.remove);
    const path = join(directory.path, 'queue.db');
    const sink = recordingSink();
    sink.hold();
    const { logger, lines } = recordingLogger();
    const egress = track(createEgress({ destinations: [sink.destination], store: sqliteStore({ path }), logger, policies: { events: { batch: { maxEvents: 100 } } } }));
    const before = sequence(1, 10).map((n) => egress.send.events({ n }));
    await Promise.all(before.map((receipt) => receipt.committed()));
    for (const file of [path, `${path}-wal`, `${path}-shm`]) rmSync(file, { force: true });
    expect(existsSync(path)).toBe(false);
    const after = sequence(11, 20).map((n) => egress.send.events({ n }));
    await Promise.all(after.map((receipt) => receipt.committed()));
    expect(existsSync(path)).toBe(true);
    expect(lines.filter((line) => /removed while in use; everything it held was copied/.test(line))).toHaveLength(1);
    sink.letGo();
    await egress.flush();
    expect([...sink.arrived].sort((a, b) => a - b)).toEqual(sequence(1, 20));
    expect(sink.arrived).toHaveLength(20);
    await egress.close();
    // The new file is a queue like any other: the next process opens it and finds it empty.
    const reopened = sqliteStore({ path });
    await reopened.open();
    expect(await reopened.stats(Date.now())).toEqual([expect.objectContaining({ waiting: 0, inFlight: 0, delivered: 20 })]);
    await reopened.close();
  });
});

/** A 2 MiB tmpfs: a real file system that runs out of space. Mounting needs root (CI containers run as root). */
function smallFileSystem(): { path: string; unmount(): void } | { refused: string } {
  const directory = temporaryDirectory();
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', directory.path], { stdio: 'pipe' });
  } catch (error) {
    directory.remove();
    return { refused: (error as Error).message };
  }
  return {
    path: directory.path,
    unmount: () => {
      execFileSync('umount', [directory.path]);
      directory.remove();
    },
  };
}

const tmpfs = smallFileSystem();

describe.skipIf('refused' in tmpfs)(`a full disk (ENOSPC on a 2 MiB tmpfs${'refused' in tmpfs ? `; mounting was refused: ${tmpfs.refused}` : ''})`, () => {
  afterAll(() => {
    if (!('refused' in tmpfs)) tmpfs.unmount();
  });

  test('commits fail with a typed error while the disk is full, nothing committed is lost, and every accepted event arrives once space is freed', async () => {
    if ('refused' in tmpfs) return;
    const folder = join(tmpfs.path, 'queue');
    mkdirSync(folder);
    // The 2 MiB are shared by the tests here: each gives back what it took, after its engine closed.
    cleanups.push(() => rmSync(folder, { recursive: true, force: true }));
    // Room for the queue file to be created, then taken by this file until the test frees it.
    const filler = join(tmpfs.path, 'filler');
    cleanups.push(() => rmSync(filler, { force: true }));
    writeFileSync(filler, Buffer.alloc(1200 * 1024));
    const sink = recordingSink();
    sink.hold();
    const egress = track(
      createEgress({ destinations: [sink.destination], store: sqliteStore({ path: join(folder, 'queue.db') }), logger: recordingLogger().logger, policies: { events: { batch: { maxEvents: 1000 } } } }),
    );
    await egress.ready();
    const text = 'x'.repeat(16 * 1024);
    const receipts: Receipt[] = [];
    for (let n = 1; n <= 80; n += 1) {
      receipts.push(egress.send.events({ n, text }));
      // Several commits rather than one, so that some land before the disk is full.
      if (n % 10 === 0) await new Promise((resolve) => setTimeout(resolve, 20));
    }
    await eventually(() => egress.storeStatus().state === 'unreachable');
    const status = egress.storeStatus();
    expect(status.error).toMatch(/the disk holding the queue file is full \(SQLITE_FULL\); nothing was written/);
    expect(status.buffered).toBeGreaterThan(0);
    const committedBeforeFreeing = (await Promise.all(receipts.map((receipt) => Promise.race([receipt.committed().then(() => 1), Promise.resolve(0)])))).reduce((sum: number, value) => sum + value, 0);
    expect(committedBeforeFreeing).toBeLessThan(80);
    rmSync(filler);
    await Promise.all(receipts.map((receipt) => receipt.committed()));
    sink.letGo();
    await egress.flush();
    expect(sink.arrived).toEqual(sequence(1, 80));
    expect((await egress.stats())[0]).toMatchObject({ delivered: 80, lost: 0, dropped: 0 });
  });

  test('a store opened on a full disk is opened again by the engine once there is room, and delivers what was sent meanwhile', async () => {
    if ('refused' in tmpfs) return;
    const folder = join(tmpfs.path, 'opening');
    mkdirSync(folder);
    cleanups.push(() => rmSync(folder, { recursive: true, force: true }));
    const filler = join(tmpfs.path, 'filler-all');
    cleanups.push(() => rmSync(filler, { force: true }));
    writeFileSync(filler, Buffer.alloc(0));
    // Take every free block.
    const chunk = Buffer.alloc(64 * 1024);
    try {
      for (;;) appendFileSync(filler, chunk);
    } catch (error) {
      expect((error as NodeJS.ErrnoException).code).toBe('ENOSPC');
    }
    const sink = recordingSink();
    const egress = track(createEgress({ destinations: [sink.destination], store: sqliteStore({ path: join(folder, 'queue.db') }), logger: recordingLogger().logger }));
    const receipts = [1, 2, 3].map((n) => egress.send.events({ n }));
    await eventually(() => egress.storeStatus().state === 'unreachable');
    expect(egress.storeStatus().error).toMatch(/SQLITE_FULL/);
    rmSync(filler);
    await egress.ready();
    await Promise.all(receipts.map((receipt) => receipt.committed()));
    await egress.flush();
    expect(sink.arrived).toEqual([1, 2, 3]);
  });
});
