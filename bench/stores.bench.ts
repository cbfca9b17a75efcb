// Stores: committed enqueue and enqueue-to-delivery for the memory and SQLite stores, each beside a
// naive baseline measured in the same run:
// - SQLite baseline: one transaction per event with synchronous=FULL (WAL), in plain better-sqlite3,
//   and for delivery a one-row-at-a-time queue (select the oldest, deliver, delete, each committed).
// - memory baseline: one `enqueue` call per event; for delivery, an array pushed and looped over.
// Then a backlog of 1,000,000 events waits in SQLite while the process's memory is watched.
// Rates are wall-clock on a shared machine, each the best of REPEATS runs (default 3); the CPU rate
// (events per CPU-second of this process) is printed beside them because it moves less when other
// work competes for the cores. The batch-of-one delivery rows run once (they are long).
import { mkdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { createEgress, createEventId, defineDestination, memoryStore, silentLogger, type QueuedEvent, type Store } from '@egress/core';
import { sqliteStore } from '@egress/store-sqlite';

// better-sqlite3 is a dependency of the SQLite store, not of the bench package: load it from there.
interface Statement {
  run(...parameters: unknown[]): unknown;
  get(...parameters: unknown[]): unknown;
}
interface Connection {
  pragma(source: string): unknown;
  exec(source: string): void;
  prepare(source: string): Statement;
  close(): void;
}
const Database = createRequire(new URL('../packages/store-sqlite/package.json', import.meta.url))('better-sqlite3') as new (path: string) => Connection;

const events = Number(process.env.EVENTS ?? 200_000);
const backlogEvents = Number(process.env.BACKLOG ?? 1_000_000);
const naiveSeconds = Number(process.env.NAIVE_SECONDS ?? 2);
/** Each figure is the best of this many runs: other work on a shared machine only ever slows a run down. */
const repeats = Number(process.env.REPEATS ?? 3);
const root = join(tmpdir(), `egress-bench-stores-${process.pid}`);
rmSync(root, { recursive: true, force: true });
mkdirSync(root, { recursive: true });
let files = 0;
const freshPath = () => join(root, `queue-${(files += 1)}.db`);

const payloadOf = (index: number) => ({ index, name: `user-${index}`, plan: index % 3 ? ('pro' as const) : ('free' as const), amount: index * 1.5 });
const input = z.strictObject({ index: z.number(), name: z.string(), plan: z.enum(['free', 'pro']), amount: z.number() });

function queued(count: number): QueuedEvent[] {
  const now = Date.now();
  return Array.from({ length: count }, (_, index) => {
    const payload = JSON.stringify(payloadOf(index));
    return { id: createEventId(now), destination: 'noop', partition: '', payload, size: payload.length, sentAt: now, attempts: 0 };
  });
}

interface Measure {
  events: number;
  milliseconds: number;
  eventsPerSecond: number;
  eventsPerCpuSecond: number;
}

async function best(run: () => Promise<Measure>): Promise<Measure> {
  let fastest: Measure | undefined;
  for (let attempt = 0; attempt < repeats; attempt += 1) {
    const result = await run();
    if (!fastest || result.eventsPerSecond > fastest.eventsPerSecond) fastest = result;
  }
  return fastest!;
}

async function measure(count: number, body: () => Promise<number | void>): Promise<Measure> {
  const cpu = process.cpuUsage();
  const started = performance.now();
  const done = (await body()) ?? count;
  const milliseconds = performance.now() - started;
  const used = process.cpuUsage(cpu);
  return {
    events: done,
    milliseconds: Math.round(milliseconds),
    eventsPerSecond: Math.round(done / (milliseconds / 1000)),
    eventsPerCpuSecond: Math.round(done / ((used.user + used.system) / 1e6)),
  };
}

// ---- committed enqueue ------------------------------------------------------------------------

async function storeEnqueue(store: Store, chunk: number): Promise<Measure> {
  await store.open();
  const all = queued(events);
  const result = await measure(events, async () => {
    for (let offset = 0; offset < all.length; offset += chunk) await store.enqueue(all.slice(offset, offset + chunk));
  });
  await store.close();
  return result;
}

async function memoryOneByOne(): Promise<Measure> {
  const store = memoryStore({ maxEvents: events + 1 });
  await store.open();
  const all = queued(events);
  return measure(events, async () => {
    for (const event of all) await store.enqueue([event]);
  });
}

function naiveDatabase(path: string) {
  const database = new Database(path);
  database.pragma('journal_mode = WAL');
  database.pragma('synchronous = FULL');
  database.exec('CREATE TABLE queue (seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, destination TEXT NOT NULL, partition TEXT NOT NULL, payload TEXT NOT NULL, size INTEGER NOT NULL, sent_at INTEGER NOT NULL)');
  const insert = database.prepare('INSERT INTO queue (id, destination, partition, payload, size, sent_at) VALUES (?, ?, ?, ?, ?, ?)');
  return { database, insert };
}

/** One transaction (and one fsync) per event, for `naiveSeconds`. */
async function sqliteNaiveEnqueue(): Promise<Measure> {
  const { database, insert } = naiveDatabase(freshPath());
  const all = queued(events);
  const result = await measure(0, async () => {
    const until = performance.now() + naiveSeconds * 1000;
    let count = 0;
    for (const event of all) {
      insert.run(event.id, event.destination, event.partition, event.payload, event.size, event.sentAt);
      count += 1;
      if (performance.now() > until) break;
    }
    return count;
  });
  database.close();
  return result;
}

// ---- through the engine -------------------------------------------------------------------------

function noopDestination(counter: { delivered: number }) {
  return defineDestination({
    name: 'noop',
    input,
    async deliver(batch) {
      counter.delivered += batch.events.length;
    },
  });
}

/** `egress.send` in bursts of 100 per turn of the event loop, waiting for each burst's commit. */
async function sendCommitted(store: Store): Promise<Measure> {
  const counter = { delivered: 0 };
  // Delivery is held back (a day of maxDelay) so that only the enqueue path is measured.
  const egress = createEgress({ destinations: [noopDestination(counter)], store, logger: silentLogger, policies: { noop: { batch: { maxEvents: 1000, maxDelay: '1d' } } } });
  await egress.ready();
  const result = await measure(events, async () => {
    for (let index = 0; index < events; index += 100) {
      let last;
      for (let offset = 0; offset < 100; offset += 1) last = egress.send.noop(payloadOf(index + offset));
      await last!.committed();
    }
  });
  await egress.close({ timeout: 1 });
  return result;
}

/** 64 concurrent units of work of 2 sends each, as a server handling many requests at once. */
async function concurrentUnits(store: Store): Promise<Measure> {
  const counter = { delivered: 0 };
  const egress = createEgress({ destinations: [noopDestination(counter)], store, logger: silentLogger, policies: { noop: { batch: { maxEvents: 1000, maxDelay: '1d' } } } });
  await egress.ready();
  const total = Math.min(events, 40_000);
  let next = 0;
  const result = await measure(total, async () => {
    await Promise.all(
      Array.from({ length: 64 }, async () => {
        while (next < total) {
          const index = (next += 2);
          await egress.run(async ($send) => {
            $send.noop(payloadOf(index));
            $send.noop(payloadOf(index + 1));
          });
        }
      }),
    );
  });
  await egress.close({ timeout: 1 });
  return result;
}

/** Sends in bursts of 1000, then `flush()`: from the first send to the last delivery. */
async function sendToDelivery(store: Store, maxEvents: number, count = events): Promise<Measure> {
  const counter = { delivered: 0 };
  const egress = createEgress({
    destinations: [noopDestination(counter)],
    store,
    logger: silentLogger,
    policies: { noop: { batch: { maxEvents, maxDelay: 0 }, concurrency: 4 } },
  });
  await egress.ready();
  const result = await measure(count, async () => {
    for (let index = 0; index < count; index += 1000) {
      for (let offset = 0; offset < 1000 && index + offset < count; offset += 1) egress.send.noop(payloadOf(index + offset));
      await new Promise((resolve) => setImmediate(resolve));
    }
    await egress.flush();
  });
  await egress.close();
  if (counter.delivered !== count) throw new Error(`delivered ${counter.delivered} of ${count}`);
  return result;
}

/** A queue table used one row at a time: insert (committed), then select the oldest, deliver, delete (committed). */
async function sqliteNaiveDelivery(): Promise<Measure> {
  const { database, insert } = naiveDatabase(freshPath());
  const oldest = database.prepare('SELECT seq, payload FROM queue ORDER BY seq LIMIT 1');
  const remove = database.prepare('DELETE FROM queue WHERE seq = ?');
  const all = queued(events);
  let delivered = 0;
  const result = await measure(0, async () => {
    // Half the time enqueuing, then as long as it takes to deliver what was enqueued.
    const until = performance.now() + (naiveSeconds * 1000) / 2;
    let count = 0;
    for (const event of all) {
      insert.run(event.id, event.destination, event.partition, event.payload, event.size, event.sentAt);
      count += 1;
      if (performance.now() > until) break;
    }
    for (;;) {
      const row = oldest.get() as { seq: number; payload: string } | undefined;
      if (!row) break;
      JSON.parse(row.payload);
      delivered += 1;
      remove.run(row.seq);
    }
    return count;
  });
  database.close();
  if (delivered !== result.events) throw new Error('naive queue lost events');
  return result;
}

async function memoryNaiveDelivery(): Promise<Measure> {
  return measure(events, async () => {
    const queue: unknown[] = [];
    for (let index = 0; index < events; index += 1) queue.push(payloadOf(index));
    for (let offset = 0; offset < queue.length; offset += 100) await Promise.resolve(queue.slice(offset, offset + 100));
  });
}

// ---- backlog ----------------------------------------------------------------------------------

function memory() {
  globalThis.gc?.();
  const usage = process.memoryUsage();
  return { rssMiB: Math.round(usage.rss / 2 ** 20), heapUsedMiB: Math.round(usage.heapUsed / 2 ** 20) };
}

async function backlog() {
  const path = freshPath();
  const before = memory();
  const store = sqliteStore({ path, maxEvents: backlogEvents * 2 });
  await store.open();
  const chunk = 5000;
  let peakRss = 0;
  const fill = await measure(backlogEvents, async () => {
    for (let offset = 0; offset < backlogEvents; offset += chunk) {
      await store.enqueue(queued(Math.min(chunk, backlogEvents - offset)));
      if (offset % 100_000 === 0) peakRss = Math.max(peakRss, process.memoryUsage().rss);
    }
  });
  await store.close();
  const afterFill = memory();

  const reopened = sqliteStore({ path, maxEvents: backlogEvents * 2 });
  const openStarted = performance.now();
  await reopened.open();
  const openMilliseconds = Math.round(performance.now() - openStarted);
  const claimStarted = performance.now();
  const claimed = await reopened.claim({ destination: 'noop', now: Date.now(), owner: 'bench', maxBatches: 4, maxEvents: 100, maxBytes: 8 * 2 ** 20, maxDelay: 0, force: false, fifo: false, leaseMs: 60_000 });
  const claimMilliseconds = Math.round((performance.now() - claimStarted) * 100) / 100;
  for (const batch of claimed.batches) await reopened.release(batch);
  const statsStarted = performance.now();
  const stats = await reopened.stats(Date.now());
  const statsMilliseconds = Math.round(performance.now() - statsStarted);
  await reopened.close();

  // The engine on top of the backlog: delivering for a few seconds while memory is sampled.
  const counter = { delivered: 0 };
  const egress = createEgress({
    destinations: [noopDestination(counter)],
    store: sqliteStore({ path, maxEvents: backlogEvents * 2 }),
    logger: silentLogger,
    policies: { noop: { batch: { maxEvents: 100 }, concurrency: 4 } },
  });
  await egress.ready();
  const samples: { rssMiB: number; heapUsedMiB: number }[] = [];
  const deliveringStarted = performance.now();
  for (let sample = 0; sample < 10; sample += 1) {
    await new Promise((resolve) => setTimeout(resolve, 500));
    const usage = process.memoryUsage();
    samples.push({ rssMiB: Math.round(usage.rss / 2 ** 20), heapUsedMiB: Math.round(usage.heapUsed / 2 ** 20) });
  }
  const deliveringSeconds = (performance.now() - deliveringStarted) / 1000;
  const deliveredWhileSampling = counter.delivered;
  await egress.close({ timeout: 1000 });
  const fileMiB = Math.round(statSync(path).size / 2 ** 20);

  // For contrast: the same backlog held by the memory store.
  const beforeMemoryStore = memory();
  const inMemory = memoryStore({ maxEvents: backlogEvents * 2, maxBytes: 2 ** 40 });
  await inMemory.open();
  for (let offset = 0; offset < backlogEvents; offset += chunk) await inMemory.enqueue(queued(Math.min(chunk, backlogEvents - offset)));
  const withMemoryStore = memory();
  await inMemory.close();

  return {
    events: backlogEvents,
    fileMiB,
    fill,
    memoryBefore: before,
    memoryAfterFill: afterFill,
    peakRssWhileFillingMiB: Math.round(peakRss / 2 ** 20),
    openMilliseconds,
    claimMilliseconds,
    statsMilliseconds,
    waitingReported: stats.reduce((sum, row) => sum + row.waiting, 0),
    whileDelivering: {
      seconds: Math.round(deliveringSeconds * 10) / 10,
      delivered: deliveredWhileSampling,
      maxRssMiB: Math.max(...samples.map((sample) => sample.rssMiB)),
      maxHeapUsedMiB: Math.max(...samples.map((sample) => sample.heapUsedMiB)),
    },
    memoryStoreForContrast: { heapUsedMiB: withMemoryStore.heapUsedMiB - beforeMemoryStore.heapUsedMiB, rssMiB: withMemoryStore.rssMiB - beforeMemoryStore.rssMiB },
  };
}

// ---- run --------------------------------------------------------------------------------------

const ratio = (numerator: Measure, denominator: Measure) => Number((numerator.eventsPerSecond / denominator.eventsPerSecond).toFixed(2));

// The backlog first, while the process holds nothing else, so its memory figures are its own.
const waiting = await backlog();

// Warm-up: compile the paths once before measuring.
await storeEnqueue(sqliteStore({ path: freshPath() }), 1000);
await sendToDelivery(sqliteStore({ path: freshPath() }), 100, 20_000);

const enqueue = {
  memoryStore: await best(() => storeEnqueue(memoryStore({ maxEvents: events + 1 }), 1000)),
  memoryNaive: await best(() => memoryOneByOne()),
  sqliteStore: await best(() => storeEnqueue(sqliteStore({ path: freshPath() }), 1000)),
  sqliteStoreFull: await best(() => storeEnqueue(sqliteStore({ path: freshPath(), synchronous: 'full' }), 1000)),
  sqliteNaive: await best(() => sqliteNaiveEnqueue()),
};
const engine = {
  memorySend: await best(() => sendCommitted(memoryStore({ maxEvents: events + 1 }))),
  sqliteSend: await best(() => sendCommitted(sqliteStore({ path: freshPath() }))),
  memoryUnits: await best(() => concurrentUnits(memoryStore({ maxEvents: events + 1 }))),
  sqliteUnits: await best(() => concurrentUnits(sqliteStore({ path: freshPath() }))),
};
const delivery = {
  memoryBatch100: await best(() => sendToDelivery(memoryStore({ maxEvents: events + 1 }), 100)),
  memoryNaive: await best(() => memoryNaiveDelivery()),
  sqliteBatch100: await best(() => sendToDelivery(sqliteStore({ path: freshPath() }), 100)),
  sqliteNaive: await best(() => sqliteNaiveDelivery()),
  memoryBatch1: await sendToDelivery(memoryStore({ maxEvents: events + 1 }), 1, Math.min(events, 50_000)),
  sqliteBatch1: await sendToDelivery(sqliteStore({ path: freshPath() }), 1, Math.min(events, 50_000)),
};

console.table({
  'enqueue: memory store, 1000 per call': enqueue.memoryStore,
  'enqueue: memory store, 1 per call (naive)': enqueue.memoryNaive,
  'enqueue: sqlite store, 1000 per call (NORMAL)': enqueue.sqliteStore,
  'enqueue: sqlite store, 1000 per call (FULL)': enqueue.sqliteStoreFull,
  'enqueue: sqlite, 1 transaction per event, FULL (naive)': enqueue.sqliteNaive,
  'egress.send, bursts of 100, committed: memory': engine.memorySend,
  'egress.send, bursts of 100, committed: sqlite': engine.sqliteSend,
  'egress.run x64 concurrent, 2 sends each: memory': engine.memoryUnits,
  'egress.run x64 concurrent, 2 sends each: sqlite': engine.sqliteUnits,
  'send to delivery, batches of 100: memory': delivery.memoryBatch100,
  'send to delivery: array push + loop (naive)': delivery.memoryNaive,
  'send to delivery, batches of 100: sqlite': delivery.sqliteBatch100,
  'send to delivery: sqlite row at a time, FULL (naive)': delivery.sqliteNaive,
  'send to delivery, batches of 1: memory': delivery.memoryBatch1,
  'send to delivery, batches of 1: sqlite': delivery.sqliteBatch1,
});
const ratios = {
  sqliteEnqueueVsNaive: ratio(enqueue.sqliteStore, enqueue.sqliteNaive),
  sqliteFullEnqueueVsNaive: ratio(enqueue.sqliteStoreFull, enqueue.sqliteNaive),
  memoryEnqueueVsNaive: ratio(enqueue.memoryStore, enqueue.memoryNaive),
  sqliteDeliveryVsNaive: ratio(delivery.sqliteBatch100, delivery.sqliteNaive),
  memoryDeliveryVsNaive: ratio(delivery.memoryBatch100, delivery.memoryNaive),
  sqliteSendVsMemorySend: ratio(engine.sqliteSend, engine.memorySend),
  sqliteDeliveryVsMemoryDelivery: ratio(delivery.sqliteBatch100, delivery.memoryBatch100),
};
console.log(
  `sqlite committed enqueue: ${enqueue.sqliteStore.eventsPerSecond} events/s (target >= 200,000), ${ratios.sqliteEnqueueVsNaive}x the naive baseline (target >= 12x); with FULL: ${ratios.sqliteFullEnqueueVsNaive}x`,
);
console.log(`sqlite send to delivery: ${ratios.sqliteDeliveryVsNaive}x its naive baseline; memory: ${ratios.memoryDeliveryVsNaive}x its naive baseline`);

console.table({
  'before filling': waiting.memoryBefore,
  [`after enqueuing ${waiting.events} events (${waiting.fill.eventsPerSecond} events/s)`]: waiting.memoryAfterFill,
  'while the engine delivers from the backlog (max)': { rssMiB: waiting.whileDelivering.maxRssMiB, heapUsedMiB: waiting.whileDelivering.maxHeapUsedMiB },
  'memory store holding the same backlog (growth)': waiting.memoryStoreForContrast,
});
console.log(
  `backlog of ${waiting.events} events (${waiting.fileMiB} MiB file): open ${waiting.openMilliseconds} ms, claim ${waiting.claimMilliseconds} ms, stats ${waiting.statsMilliseconds} ms; delivered ${waiting.whileDelivering.delivered} in ${waiting.whileDelivering.seconds} s while sampling`,
);

const result = { events, naiveSeconds, repeats, enqueue, engine, delivery, ratios, backlog: waiting };
mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
writeFileSync(new URL('./results/stores.json', import.meta.url), `${JSON.stringify(result, null, 2)}\n`);
rmSync(root, { recursive: true, force: true });
