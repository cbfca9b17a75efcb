// The PostgreSQL store against naive queues on the same server, in the same run:
// 1. enqueue: committed events per second through `egress.send` (producer role), through
//    `store.enqueue` called by many concurrent callers and through concurrent `egress.run()` units of
//    work, beside one INSERT transaction per event (sequential, and from 16 connections at once);
// 2. enqueue to delivery: `send` until a no-op destination has everything, beside a naive queue
//    (one INSERT transaction per event, one DELETE ... FOR UPDATE SKIP LOCKED transaction per event).
// Needs EGRESS_BENCH_POSTGRES_URL or EGRESS_TEST_POSTGRES_URL; every table lives in a random schema
// that is dropped at the end.
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createEgress, createEventId, defineDestination, silentLogger, type QueuedEvent } from '@egress/core';
import { postgresStore } from '@egress/store-postgres';
import pg from 'pg';
import { z } from 'zod';

const url = process.env.EGRESS_BENCH_POSTGRES_URL ?? process.env.EGRESS_TEST_POSTGRES_URL;
if (!url) {
  console.error('set EGRESS_BENCH_POSTGRES_URL (or EGRESS_TEST_POSTGRES_URL), e.g. postgres://postgres@127.0.0.1:5432/test');
  process.exit(2);
}
const events = Number(process.env.EVENTS ?? 50_000);
const naiveEvents = Number(process.env.NAIVE_EVENTS ?? 5_000);
const concurrentUnits = 64;
const suffix = randomBytes(4).toString('hex');
const schemas: string[] = [];
const admin = new pg.Pool({ connectionString: url, max: 16 });

const payloadSchema = z.strictObject({ index: z.number(), name: z.string(), plan: z.enum(['free', 'pro']), amount: z.number() });
const payload = (index: number): z.input<typeof payloadSchema> => ({ index, name: `user-${index}`, plan: index % 3 ? 'pro' : 'free', amount: index * 1.5 });
const rate = (count: number, milliseconds: number) => Math.round(count / (milliseconds / 1000));

function freshSchema(label: string): string {
  const schema = `egress_bench_${label}_${suffix}`;
  schemas.push(schema);
  return schema;
}

function noopDestination(onDelivered: (count: number) => void) {
  return defineDestination({
    name: 'noop',
    input: payloadSchema,
    async deliver(batch) {
      onDelivered(batch.events.length);
    },
  });
}

/** `egress.send` outside units of work, in bursts as request handlers would, until every receipt is committed. */
async function enqueueThroughSend(): Promise<number> {
  const store = postgresStore({ connectionString: url!, schema: freshSchema('send') });
  const egress = createEgress({ role: 'producer', destinations: [noopDestination(() => {})], store, logger: silentLogger });
  await egress.ready();
  const started = performance.now();
  const receipts = [];
  for (let index = 0; index < events; index++) {
    receipts.push(egress.send.noop(payload(index)));
    if (index % 100 === 99) await new Promise((resolve) => setImmediate(resolve));
  }
  await Promise.all(receipts.map((receipt) => receipt.committed()));
  const elapsed = performance.now() - started;
  await egress.close();
  return elapsed;
}

/** `egress.run()` units of work of one event each, 64 at a time, as concurrent request handlers would. */
async function enqueueThroughRuns(): Promise<number> {
  const store = postgresStore({ connectionString: url!, schema: freshSchema('runs') });
  const egress = createEgress({ role: 'producer', destinations: [noopDestination(() => {})], store, logger: silentLogger });
  await egress.ready();
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrentUnits }, async () => {
      while (next < naiveEvents) {
        const index = next++;
        await egress.run(async (send) => {
          send.noop(payload(index));
        });
      }
    }),
  );
  const elapsed = performance.now() - started;
  await egress.close();
  return elapsed;
}

/** `store.enqueue` of one event per call from many concurrent callers: the store's own group commit. */
async function enqueueConcurrentCalls(): Promise<number> {
  const store = postgresStore({ connectionString: url!, schema: freshSchema('units') });
  await store.open();
  const queued: QueuedEvent[] = Array.from({ length: events }, (_, index) => {
    const text = JSON.stringify(payload(index));
    return { id: createEventId(), destination: 'noop', partition: '', payload: text, size: Buffer.byteLength(text), sentAt: Date.now(), attempts: 0 };
  });
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrentUnits }, async () => {
      while (next < queued.length) await store.enqueue([queued[next++]!]);
    }),
  );
  const elapsed = performance.now() - started;
  await store.close();
  return elapsed;
}

async function naiveTable(label: string): Promise<string> {
  const table = `"${freshSchema(label)}".queue`;
  await admin.query(`CREATE SCHEMA "${schemas.at(-1)}"`);
  await admin.query(`CREATE TABLE ${table} (seq bigserial PRIMARY KEY, id text UNIQUE NOT NULL, destination text NOT NULL, payload text NOT NULL, sent_at bigint NOT NULL)`);
  return table;
}

async function naiveInsert(client: pg.PoolClient | pg.Pool, table: string, index: number): Promise<void> {
  const connection = 'release' in client ? client : await client.connect();
  try {
    await connection.query('BEGIN');
    await connection.query(`INSERT INTO ${table} (id, destination, payload, sent_at) VALUES ($1, $2, $3, $4)`, [createEventId(), 'noop', JSON.stringify(payload(index)), Date.now()]);
    await connection.query('COMMIT');
  } finally {
    if (connection !== client) connection.release();
  }
}

/** One INSERT transaction per event on one connection. */
async function naiveEnqueueSequential(): Promise<number> {
  const table = await naiveTable('naive_seq');
  const client = await admin.connect();
  const started = performance.now();
  for (let index = 0; index < naiveEvents; index++) await naiveInsert(client, table, index);
  const elapsed = performance.now() - started;
  client.release();
  return elapsed;
}

/** One INSERT transaction per event from 16 connections at once. */
async function naiveEnqueueConcurrent(): Promise<number> {
  const table = await naiveTable('naive_par');
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      const client = await admin.connect();
      while (next < naiveEvents) await naiveInsert(client, table, next++);
      client.release();
    }),
  );
  return performance.now() - started;
}

/** Send until a no-op destination received every event (producer and worker in one process). */
async function sendToDelivery(): Promise<number> {
  let delivered = 0;
  const store = postgresStore({ connectionString: url!, schema: freshSchema('deliver') });
  const egress = createEgress({
    destinations: [noopDestination((count) => (delivered += count))],
    store,
    logger: silentLogger,
    policies: { noop: { batch: { maxEvents: 500, maxDelay: 0 }, concurrency: 4 } },
  });
  await egress.ready();
  const started = performance.now();
  for (let index = 0; index < events; index++) {
    egress.send.noop(payload(index));
    if (index % 100 === 99) await new Promise((resolve) => setImmediate(resolve));
  }
  await egress.flush();
  const elapsed = performance.now() - started;
  await egress.close();
  if (delivered < events) throw new Error(`delivered ${delivered} of ${events}`);
  return elapsed;
}

/** Naive queue: a producer inserts one event per transaction while 4 consumers each take one per transaction. */
async function naiveToDelivery(): Promise<number> {
  const table = await naiveTable('naive_deliver');
  let consumed = 0;
  let produced = false;
  const started = performance.now();
  const producer = (async () => {
    const client = await admin.connect();
    for (let index = 0; index < naiveEvents; index++) await naiveInsert(client, table, index);
    client.release();
    produced = true;
  })();
  const consumers = Array.from({ length: 4 }, async () => {
    const client = await admin.connect();
    while (consumed < naiveEvents) {
      const result = await client.query(`DELETE FROM ${table} WHERE seq = (SELECT seq FROM ${table} ORDER BY seq FOR UPDATE SKIP LOCKED LIMIT 1) RETURNING payload`);
      if (result.rowCount === 0) {
        if (produced && consumed >= naiveEvents) break;
        await new Promise((resolve) => setTimeout(resolve, 1));
        continue;
      }
      JSON.parse(result.rows[0].payload as string);
      consumed += 1;
    }
    client.release();
  });
  await Promise.all([producer, ...consumers]);
  return performance.now() - started;
}

try {
  const settings = await admin.query<{ name: string; setting: string }>(`SELECT name, setting FROM pg_settings WHERE name IN ('synchronous_commit', 'fsync', 'wal_sync_method', 'server_version')`);
  const server = Object.fromEntries(settings.rows.map((row) => [row.name, row.setting]));

  const naiveSequentialMs = await naiveEnqueueSequential();
  const naiveConcurrentMs = await naiveEnqueueConcurrent();
  const sendMs = await enqueueThroughSend();
  const unitsMs = await enqueueConcurrentCalls();
  const runsMs = await enqueueThroughRuns();
  const naiveDeliveryMs = await naiveToDelivery();
  const deliveryMs = await sendToDelivery();

  const enqueue = {
    naiveSequential: { events: naiveEvents, milliseconds: Math.round(naiveSequentialMs), eventsPerSecond: rate(naiveEvents, naiveSequentialMs) },
    naiveConcurrent16: { events: naiveEvents, milliseconds: Math.round(naiveConcurrentMs), eventsPerSecond: rate(naiveEvents, naiveConcurrentMs) },
    egressSend: { events, milliseconds: Math.round(sendMs), eventsPerSecond: rate(events, sendMs) },
    storeEnqueue64Callers: { events, milliseconds: Math.round(unitsMs), eventsPerSecond: rate(events, unitsMs) },
    egressRun64Units: { events: naiveEvents, milliseconds: Math.round(runsMs), eventsPerSecond: rate(naiveEvents, runsMs) },
  };
  const delivery = {
    naive: { events: naiveEvents, milliseconds: Math.round(naiveDeliveryMs), eventsPerSecond: rate(naiveEvents, naiveDeliveryMs) },
    egress: { events, milliseconds: Math.round(deliveryMs), eventsPerSecond: rate(events, deliveryMs) },
  };
  const ratio = (a: number, b: number) => Number((a / b).toFixed(2));
  const result = {
    server,
    enqueue,
    delivery,
    ratios: {
      sendVsNaiveSequential: ratio(enqueue.egressSend.eventsPerSecond, enqueue.naiveSequential.eventsPerSecond),
      storeEnqueueVsNaiveSequential: ratio(enqueue.storeEnqueue64Callers.eventsPerSecond, enqueue.naiveSequential.eventsPerSecond),
      sendVsNaiveConcurrent: ratio(enqueue.egressSend.eventsPerSecond, enqueue.naiveConcurrent16.eventsPerSecond),
      runUnitsVsNaiveSequential: ratio(enqueue.egressRun64Units.eventsPerSecond, enqueue.naiveSequential.eventsPerSecond),
      deliveryVsNaive: ratio(delivery.egress.eventsPerSecond, delivery.naive.eventsPerSecond),
    },
  };
  console.log(`PostgreSQL ${server.server_version}, synchronous_commit=${server.synchronous_commit}, fsync=${server.fsync}`);
  console.table({
    'naive enqueue: 1 INSERT tx per event, 1 connection (baseline)': enqueue.naiveSequential,
    'naive enqueue: 1 INSERT tx per event, 16 connections': enqueue.naiveConcurrent16,
    'egress send (producer role), committed': enqueue.egressSend,
    [`store.enqueue, ${concurrentUnits} concurrent callers of 1 event`]: enqueue.storeEnqueue64Callers,
    [`egress.run() of 1 event, ${concurrentUnits} units at once`]: enqueue.egressRun64Units,
    'naive queue: insert tx + delete tx per event (baseline)': delivery.naive,
    'egress send -> no-op destination (flush)': delivery.egress,
  });
  console.log(`enqueue: egress send ${result.ratios.sendVsNaiveSequential}x the naive baseline (target >= 10x); store.enqueue from ${concurrentUnits} callers ${result.ratios.storeEnqueueVsNaiveSequential}x; send vs 16-connection naive ${result.ratios.sendVsNaiveConcurrent}x`);
  console.log(`units of work: ${concurrentUnits} concurrent egress.run() of one event each commit ${result.ratios.runUnitsVsNaiveSequential}x the naive baseline (the engine hands overlapping units to the store together)`);
  console.log(`enqueue to delivery: ${result.ratios.deliveryVsNaive}x the naive queue`);
  mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
  writeFileSync(new URL('./results/store-postgres.json', import.meta.url), `${JSON.stringify(result, null, 2)}\n`);
} finally {
  for (const schema of schemas) await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await admin.end();
}
