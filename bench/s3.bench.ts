// 1,000,000 events of about 200 bytes through Egress (memory store) into gzip NDJSON objects on
// s3rver, beside the bound of gzip-compressing the same NDJSON, batch by batch, in the same run.
//
// The server is s3rver itself, in this process: with 10,000 events per object it receives about a
// hundred PutObject requests of a few hundred KiB, which it stores in well under a tenth of the run,
// so it is not what limits the rate. Every object is read back and counted at the end.
//
// Beside them, three figures that locate the cost: a hand-written loop that only serializes,
// compresses and uploads the same events (no queue, validation or ids: the ceiling for anything
// that takes events one by one, since the gzip bound leaves serialization out), the adapter alone
// (`deliver()` on ready-made batches, no engine) and the engine alone (the same sends into a
// destination that does nothing).
//
// Two gzip bounds are measured: one thread compressing batch after batch (gzipSync, the strict
// bound the target is set against), and every batch handed to zlib's thread pool at once (the most
// the machine's cores can compress).
//
// Egress is fed as a busy application feeds it: the events exist before the clock starts (as the
// gzip bound's NDJSON does), and are sent in slices of 1,000 with a turn of the event loop between
// slices, so batches are compressed and uploaded while sending goes on. The producer waits while
// more than 100,000 events are undelivered, which keeps the memory store under its capacity.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gunzipSync, gzip, gzipSync } from 'node:zlib';
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';
import { createBatchId, createEgress, createEventId, defineDestination, memoryStore, silentLogger, type Batch, type Egress } from '@egress/core';
import { z } from 'zod';
import { s3, type S3QueuedPayload } from '@egress/s3';
import S3rver from 's3rver';

const events = Number(process.env.EVENTS ?? 1_000_000);
const wave = Number(process.env.WAVE ?? 100_000);
/** Events sent between two turns of the event loop. */
const slice = 1_000;
const batchSize = 10_000;
const compressionLevel = 6;
const gzipAsync = promisify(gzip);

const actions = ['login', 'logout', 'purchase', 'refund', 'view', 'search', 'share', 'comment'];
const regions = ['eu-west-1', 'us-east-1', 'ap-south-1'];
const agents = ['Mozilla/5.0 (X11; Linux x86_64)', 'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4)', 'curl/8.5.0', 'okhttp/4.12.0'];
/** About 200 bytes of JSON, like an access-log or audit event. */
function payload(index: number) {
  return {
    seq: index,
    user: `user-${(index * 7919) % 100_000}`,
    action: actions[index % actions.length]!,
    path: `/api/v1/items/${(index * 31) % 5000}`,
    status: index % 50 === 0 ? 500 : 200,
    durationMs: (index * 13) % 1000,
    at: new Date(1_700_000_000_000 + index * 37).toISOString(),
    agent: agents[index % agents.length]!,
    region: regions[index % regions.length]!,
  };
}

const averageLine = Buffer.byteLength(JSON.stringify(payload(123_456))) + 1;

async function startServer() {
  const directory = mkdtempSync(join(tmpdir(), 'egress-s3-bench-'));
  const server = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory, configureBuckets: [{ name: 'bench-bucket', configs: [] }] });
  const { port } = await server.run();
  const clientOptions = { endpoint: `http://127.0.0.1:${port}`, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } };
  return {
    clientOptions,
    async close() {
      await server.close();
      rmSync(directory, { recursive: true, force: true });
    },
  };
}

/** Counts the events in every object of the bucket, so a run that lost or doubled events fails. */
async function countStored(clientOptions: S3ClientConfig, prefix: string): Promise<{ objects: number; events: number; compressedBytes: number }> {
  const client = new S3Client(clientOptions);
  let objects = 0;
  let stored = 0;
  let compressedBytes = 0;
  const seen = new Set<number>();
  let token: string | undefined;
  do {
    const page = await client.send(new ListObjectsV2Command({ Bucket: 'bench-bucket', Prefix: prefix, ContinuationToken: token }));
    for (const entry of page.Contents ?? []) {
      const object = await client.send(new GetObjectCommand({ Bucket: 'bench-bucket', Key: entry.Key }));
      const body = Buffer.from(await object.Body!.transformToByteArray());
      compressedBytes += body.length;
      const text = gunzipSync(body).toString('utf8');
      for (const line of text.split('\n')) {
        if (line.length === 0) continue;
        seen.add((JSON.parse(line) as { seq: number }).seq);
        stored += 1;
      }
      objects += 1;
    }
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  client.destroy();
  if (stored !== events || seen.size !== events) throw new Error(`stored ${stored} lines, ${seen.size} distinct, of ${events} events`);
  return { objects, events: stored, compressedBytes };
}

/** Every event as the application holds it before sending it; made once, before any clock starts. */
let preparedPayloads: ReturnType<typeof payload>[] | undefined;
function allPayloads(): ReturnType<typeof payload>[] {
  preparedPayloads ??= Array.from({ length: events }, (_, index) => payload(index));
  return preparedPayloads;
}

/**
 * Sends every event in slices with a turn of the event loop between them, waiting while more than
 * `wave` events are undelivered; resolves when all are delivered, with the time it took.
 */
async function produce(egress: { on: Egress['on']; flush: Egress['flush'] }, send: (event: ReturnType<typeof payload>) => void): Promise<number> {
  const payloads = allPayloads();
  let delivered = 0;
  let wakeProducer: (() => void) | undefined;
  const unsubscribe = egress.on('delivered', (event) => {
    delivered += event.eventIds.length;
    wakeProducer?.();
  });
  const started = performance.now();
  for (let start = 0; start < events; start += slice) {
    while (start - delivered > wave) await new Promise<void>((resolve) => (wakeProducer = resolve));
    const end = Math.min(events, start + slice);
    for (let index = start; index < end; index++) send(payloads[index]!);
    await new Promise((resolve) => setImmediate(resolve));
  }
  await egress.flush();
  const elapsed = performance.now() - started;
  unsubscribe();
  return elapsed;
}

/** The same NDJSON Egress writes, batch by batch; built before the clock starts. */
function buildBatches(): Buffer[] {
  const batches: Buffer[] = [];
  for (let start = 0; start < events; start += batchSize) {
    let text = '';
    for (let index = start; index < Math.min(events, start + batchSize); index++) text += JSON.stringify(payload(index)) + '\n';
    batches.push(Buffer.from(text, 'utf8'));
  }
  return batches;
}

function gzipOneThread(batches: readonly Buffer[]): number {
  const started = performance.now();
  let bytes = 0;
  for (const batch of batches) bytes += gzipSync(batch, { level: compressionLevel }).length;
  if (bytes === 0) throw new Error('nothing compressed');
  return performance.now() - started;
}

async function gzipThreadPool(batches: readonly Buffer[]): Promise<number> {
  const started = performance.now();
  const compressed = await Promise.all(batches.map((batch) => gzipAsync(batch, { level: compressionLevel })));
  if (compressed.length !== batches.length) throw new Error('nothing compressed');
  return performance.now() - started;
}

/**
 * The adapter alone: `deliver()` on batches built before the clock starts (as the gzip bound's
 * NDJSON is), four at a time as core's concurrency would run them, one wave at a time so the heap
 * holds what the engine would. It still serializes every payload to NDJSON, which the gzip bound
 * does not have to.
 */
async function adapterAlone(clientOptions: Record<string, unknown>, prefix: string): Promise<number> {
  const destination = s3({ ...clientOptions, compressionLevel });
  const context = { signal: new AbortController().signal, logger: silentLogger };
  let elapsed = 0;
  for (let waveStart = 0; waveStart < events; waveStart += wave) {
    const ready: Batch<S3QueuedPayload>[] = [];
    for (let start = waveStart; start < Math.min(events, waveStart + wave); start += batchSize) {
      const batchEvents = [];
      for (let index = start; index < Math.min(events, start + batchSize); index++) {
        batchEvents.push({ id: createEventId(), payload: { bucket: 'bench-bucket', prefix, payload: payload(index) }, attempt: 1, sentAt: Date.now() });
      }
      const id = createBatchId('s3', batchEvents.map((event) => event.id));
      ready.push({ id, destination: 's3', partition: `bench-bucket/${prefix}`, attempt: 1, events: batchEvents });
    }
    const started = performance.now();
    let next = 0;
    const worker = async () => {
      while (next < ready.length) await destination.deliver(ready[next++]!, context);
    };
    await Promise.all([worker(), worker(), worker(), worker()]);
    elapsed += performance.now() - started;
  }
  await destination.stop?.();
  return elapsed;
}

/**
 * What a hand-written loop does with no queue, validation or ids: the same events, sent the same
 * way, each JSON.stringify'd onto the current NDJSON text; every 10,000 go to zlib's thread pool
 * and then up by PutObject, four objects at most in flight. It is the most any library that takes
 * events one by one can do here, since serializing each event is work the gzip bound leaves out.
 */
async function handWritten(clientOptions: S3ClientConfig, prefix: string): Promise<number> {
  const client = new S3Client(clientOptions);
  const payloads = allPayloads();
  const uploading = new Set<Promise<void>>();
  let text = '';
  let lines = 0;
  let objects = 0;
  const upload = async (ndjson: string, index: number) => {
    const body = await gzipAsync(Buffer.from(ndjson, 'utf8'), { level: compressionLevel });
    await client.send(new PutObjectCommand({ Bucket: 'bench-bucket', Key: `${prefix}/${String(index).padStart(6, '0')}.gz`, Body: body, ContentType: 'application/x-ndjson', ContentEncoding: 'gzip' }));
  };
  const ship = async () => {
    while (uploading.size >= 4) await Promise.race(uploading);
    const pending = upload(text, objects++);
    uploading.add(pending);
    void pending.finally(() => uploading.delete(pending));
    text = '';
    lines = 0;
  };
  const started = performance.now();
  for (let start = 0; start < events; start += slice) {
    const end = Math.min(events, start + slice);
    for (let index = start; index < end; index++) {
      text += JSON.stringify(payloads[index]) + '\n';
      if (++lines === batchSize) await ship();
    }
    await new Promise((resolve) => setImmediate(resolve));
  }
  if (lines > 0) await ship();
  await Promise.all(uploading);
  const elapsed = performance.now() - started;
  client.destroy();
  return elapsed;
}

/** The engine alone: the same sends and batches into a destination that does nothing. */
async function engineAlone(): Promise<number> {
  let delivered = 0;
  const noop = defineDestination({
    name: 'noop',
    input: z.strictObject({ bucket: z.string(), prefix: z.string(), payload: z.record(z.string(), z.unknown()) }),
    partition: (input) => `${input.bucket}/${input.prefix}`,
    async deliver(batch) {
      delivered += batch.events.length;
    },
  });
  const egress = createEgress({ destinations: [noop], store: memoryStore({ maxEvents: wave + 2 * slice }), logger: silentLogger, policies: { noop: { batch: { maxEvents: batchSize, maxBytes: '8MiB', maxDelay: '60s' } } } });
  await egress.ready();
  const elapsed = await produce(egress, (event) => egress.send.noop({ bucket: 'bench-bucket', prefix: 'noop', payload: event }));
  await egress.close();
  if (delivered !== events) throw new Error(`delivered ${delivered} of ${events}`);
  return elapsed;
}

async function throughEgress(clientOptions: Record<string, unknown>, prefix: string): Promise<number> {
  const egress = createEgress({
    destinations: [s3({ ...clientOptions, compressionLevel })],
    store: memoryStore({ maxEvents: wave + 2 * slice }),
    logger: silentLogger,
    policies: { s3: { batch: { maxEvents: batchSize, maxBytes: '8MiB' } } },
  });
  await egress.ready();
  const elapsed = await produce(egress, (event) => egress.send.s3({ bucket: 'bench-bucket', prefix, payload: event }));
  const [stats] = await egress.stats();
  await egress.close();
  if (stats!.dead > 0) throw new Error(`${stats!.dead} events were dead-lettered`);
  return elapsed;
}

const server = await startServer();
try {
  const batches = buildBatches();
  allPayloads();
  const uncompressedBytes = batches.reduce((sum, batch) => sum + batch.length, 0);
  // A warm-up of each, then the measured runs.
  gzipOneThread(batches.slice(0, 5));
  await gzipThreadPool(batches.slice(0, 5));
  const oneThreadMs = gzipOneThread(batches);
  const threadPoolMs = await gzipThreadPool(batches);
  (globalThis as { gc?: () => void }).gc?.();
  const egressMs = await throughEgress(server.clientOptions, 'bench/run');
  const stored = await countStored(server.clientOptions, 'bench/run/');
  (globalThis as { gc?: () => void }).gc?.();
  const handWrittenMs = await handWritten(server.clientOptions, 'bench/hand-written');
  await countStored(server.clientOptions, 'bench/hand-written/');
  (globalThis as { gc?: () => void }).gc?.();
  const adapterMs = await adapterAlone(server.clientOptions, 'bench/adapter');
  await countStored(server.clientOptions, 'bench/adapter/');
  (globalThis as { gc?: () => void }).gc?.();
  const engineMs = await engineAlone();

  const rate = (milliseconds: number) => Math.round(events / (milliseconds / 1000));
  const result = {
    events,
    averageEventBytes: averageLine,
    uncompressedBytes,
    eventsPerObject: batchSize,
    compressionLevel,
    server: 's3rver (in process)',
    gzipOneThread: { milliseconds: Math.round(oneThreadMs), eventsPerSecond: rate(oneThreadMs) },
    gzipThreadPool: { milliseconds: Math.round(threadPoolMs), eventsPerSecond: rate(threadPoolMs) },
    egress: { milliseconds: Math.round(egressMs), eventsPerSecond: rate(egressMs), objects: stored.objects, compressedBytes: stored.compressedBytes },
    handWritten: { milliseconds: Math.round(handWrittenMs), eventsPerSecond: rate(handWrittenMs) },
    adapterAlone: { milliseconds: Math.round(adapterMs), eventsPerSecond: rate(adapterMs) },
    engineAlone: { milliseconds: Math.round(engineMs), eventsPerSecond: rate(engineMs) },
    ratio: Number((rate(egressMs) / rate(oneThreadMs)).toFixed(4)),
    handWrittenRatio: Number((rate(handWrittenMs) / rate(oneThreadMs)).toFixed(4)),
    ratioToHandWritten: Number((rate(egressMs) / rate(handWrittenMs)).toFixed(4)),
    adapterRatio: Number((rate(adapterMs) / rate(oneThreadMs)).toFixed(4)),
    ratioToThreadPool: Number((rate(egressMs) / rate(threadPoolMs)).toFixed(4)),
  };
  console.table({
    'gzip only, one thread (bound)': result.gzipOneThread,
    'gzip only, zlib thread pool': result.gzipThreadPool,
    'egress send → s3rver objects': { milliseconds: result.egress.milliseconds, eventsPerSecond: result.egress.eventsPerSecond },
    'hand-written stringify + gzip + PutObject': result.handWritten,
    's3 deliver() alone → s3rver': result.adapterAlone,
    'egress → no-op destination': result.engineAlone,
  });
  console.log(
    `egress writes ${result.egress.eventsPerSecond} events/s into ${stored.objects} objects (${(stored.compressedBytes / 1048576).toFixed(1)} MiB gzip of ${(uncompressedBytes / 1048576).toFixed(1)} MiB NDJSON): ` +
      `${(result.ratio * 100).toFixed(1)} % of the one-thread gzip bound, ${(result.ratioToThreadPool * 100).toFixed(1)} % of the thread-pool bound`,
  );
  console.log(
    `a hand-written loop (stringify, gzip, PutObject; no queue, validation or ids) reaches ${(result.handWrittenRatio * 100).toFixed(1)} % of the one-thread gzip bound; ` +
      `egress runs at ${(result.ratioToHandWritten * 100).toFixed(1)} % of the hand-written loop`,
  );
  console.log(
    `the adapter alone (deliver on ready batches) runs at ${(result.adapterRatio * 100).toFixed(1)} % of the one-thread gzip bound; ` +
      `the engine alone (same sends into a no-op destination) at ${result.engineAlone.eventsPerSecond} events/s`,
  );
  writeFileSync(new URL('./results/s3.json', import.meta.url), `${JSON.stringify(result, null, 2)}\n`);
} finally {
  await server.close();
}
