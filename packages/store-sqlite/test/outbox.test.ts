import { fork } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EgressCapacityError, EgressConfigurationError, createEgress, memoryStore, silentLogger } from '@egress/core';
import { sqliteStore } from '@egress/store-sqlite';
import Database from 'better-sqlite3';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { openApplication, orderDestination } from './fixtures/outbox-application.js';
import { temporaryDirectory } from './helpers.js';

const here = dirname(fileURLToPath(import.meta.url));
const packageRoot = resolve(here, '..');
const rootTsconfig = resolve(packageRoot, '..', '..', 'tsconfig.json');
const directory = temporaryDirectory();
const arrivals = new Map<number, number>();
const server = createServer((request, response) => {
  const chunks: Buffer[] = [];
  request.on('data', (chunk: Buffer) => chunks.push(chunk));
  request.on('end', () => {
    for (const order of JSON.parse(Buffer.concat(chunks).toString('utf8')) as number[]) arrivals.set(order, (arrivals.get(order) ?? 0) + 1);
    response.end('ok');
  });
});
let sinkUrl: string;
let files = 0;
const opened: ReturnType<typeof openApplication>[] = [];

function application(options: Parameters<typeof openApplication>[2] = {}) {
  const opening = openApplication(join(directory.path, `app-${++files}.db`), sinkUrl, options);
  opened.push(opening);
  return opening;
}

async function until(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`gave up waiting: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

beforeAll(async () => {
  await new Promise<void>((listening) => server.listen(0, '127.0.0.1', () => listening()));
  sinkUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
});

afterEach(async () => {
  for (const { egress, database } of opened.splice(0)) {
    await egress.close();
    database.close();
  }
});

afterAll(async () => {
  await new Promise((closed) => server.close(closed));
  directory.remove();
});

describe('transactional outbox on the application’s own SQLite file', () => {
  test('the queue tables live beside the application’s; a committed order’s event is delivered, and invisible to other connections until the commit', async () => {
    const { database, egress, placeOrder } = application();
    await egress.ready();
    const tables = (database.prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name").all() as { name: string }[]).map((row) => row.name);
    expect(tables).toContain('orders');
    expect(tables).toContain('egress_events');
    const reader = new Database(database.name, { readonly: true });
    let seenBeforeCommit: number | undefined;
    placeOrder(1, () => {
      seenBeforeCommit = (reader.prepare('SELECT count(*) AS count FROM egress_events').get() as { count: number }).count;
    });
    reader.close();
    expect(seenBeforeCommit).toBe(0);
    await until(() => arrivals.get(1) === 1, 'order 1 delivered');
    expect(database.prepare('SELECT total FROM orders WHERE id = 1').get()).toEqual({ total: 10 });
  });

  test('a rolled-back transaction enqueues nothing, delivers nothing and holds no capacity', async () => {
    const { database, egress, placeOrder } = application({ maxEvents: 2 });
    await egress.ready();
    for (const order of [11, 12, 13]) {
      expect(() =>
        placeOrder(order, () => {
          throw new Error('payment declined');
        }),
      ).toThrow('payment declined');
    }
    expect(database.prepare('SELECT count(*) AS count FROM egress_events').get()).toEqual({ count: 0 });
    expect(database.prepare('SELECT count(*) AS count FROM orders').get()).toEqual({ count: 0 });
    // Three rolled-back events did not fill a store that holds two: the next two fit.
    placeOrder(14);
    placeOrder(15);
    await until(() => arrivals.has(14) && arrivals.has(15), 'orders 14 and 15 delivered');
    expect([11, 12, 13].some((order) => arrivals.has(order))).toBe(false);
    const [stats] = await egress.stats();
    expect(stats!.buffered).toBe(0);
  });

  test('a full store refuses inside the transaction, which then rolls back with the order', async () => {
    // A producer only: nothing is delivered, so what is committed stays and fills the store.
    const { database, egress, placeOrder } = application({ maxEvents: 1, role: 'producer' });
    await egress.ready();
    let refused: unknown;
    // Committed events count once the store has looked at its tables again after the commit.
    for (let order = 21; refused === undefined; order += 1) {
      try {
        placeOrder(order);
      } catch (error) {
        refused = error;
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(EgressCapacityError.isInstance(refused)).toBe(true);
    const orders = (database.prepare('SELECT count(*) AS count FROM orders').get() as { count: number }).count;
    expect(orders).toBeGreaterThan(0);
    // Every committed order has its event, and the refused one left neither.
    expect(database.prepare('SELECT count(*) AS count FROM egress_events').get()).toEqual({ count: orders });
  });

  test('50 transactions in one burst each wake the worker at their commit: every event is delivered once', async () => {
    const { egress, placeOrder } = application();
    await egress.ready();
    // Once the first order is out and the worker has found nothing more, only a wake-up brings it back.
    placeOrder(99);
    await until(() => arrivals.has(99), 'order 99 delivered');
    await new Promise((resolve) => setTimeout(resolve, 200));
    const orders = Array.from({ length: 50 }, (_, index) => 100 + index);
    for (const order of orders) placeOrder(order);
    await until(() => orders.every((order) => arrivals.has(order)), 'all 50 orders delivered');
    expect(orders.map((order) => arrivals.get(order))).toEqual(orders.map(() => 1));
  });

  test('a process SIGKILLed right after its commit has its events delivered by the next process', async () => {
    const path = join(directory.path, 'dying.db');
    const child = fork(join(here, 'fixtures', 'outbox-application.ts'), [], {
      cwd: packageRoot,
      execArgv: ['--import', 'tsx'],
      env: { ...process.env, TSX_TSCONFIG_PATH: rootTsconfig, DATABASE_PATH: path, SINK_URL: sinkUrl, COMMIT_THEN_DIE: '31' },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const signal = await new Promise<NodeJS.Signals | null>((done) => child.once('exit', (_code, exitSignal) => done(exitSignal)));
    expect(signal).toBe('SIGKILL');
    expect(arrivals.has(31)).toBe(false);
    const next = openApplication(path, sinkUrl);
    opened.push(next);
    expect(next.database.prepare('SELECT id FROM orders').all()).toEqual([{ id: 31 }]);
    await next.egress.ready();
    await until(() => arrivals.get(31) === 1, 'order 31 delivered by the next process');
  });

  test('bad input: another database, no open transaction, an asynchronous function, a store without transactions', async () => {
    const { database, egress } = application();
    await egress.ready();
    const other = new Database(':memory:');
    const within = (transaction: unknown, fn: () => unknown = () => {}) => () => egress.runSync(fn, { transaction });
    expect(database.transaction(within(other))).toThrow(/the better-sqlite3 database given to sqliteStore/);
    expect(within(database)).toThrow(/expected an open transaction/);
    expect(database.transaction(within(database, async () => {}))).toThrow(/expected a synchronous function/);
    other.close();
    const inMemory = createEgress({ destinations: [orderDestination(sinkUrl)], store: memoryStore(), logger: silentLogger });
    expect(() => inMemory.runSync(() => {}, { transaction: database })).toThrow(EgressConfigurationError);
    await inMemory.close();
    expect(() => sqliteStore({ database, path: join(directory.path, 'x.db') })).toThrow(/give either "database" or "path"/);
    expect(() => sqliteStore({ database: {} as Database.Database })).toThrow(/expected a better-sqlite3 Database/);
    // A queue file of its own is not an application's database.
    const queueFile = join(directory.path, 'queue.db');
    const ownFile = createEgress({ destinations: [orderDestination(sinkUrl)], store: sqliteStore({ path: queueFile }), logger: silentLogger });
    await ownFile.ready();
    await ownFile.close();
    const reopened = new Database(queueFile);
    const misused = createEgress({ destinations: [orderDestination(sinkUrl)], store: sqliteStore({ database: reopened }), logger: silentLogger, startup: 'fail-fast' });
    await expect(misused.ready()).rejects.toThrow(/queue file of its own/);
    await misused.close();
    reopened.close();
  });
});
