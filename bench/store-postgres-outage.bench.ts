// The PostgreSQL store through a 30 s outage at 1,000 events/s, without and with the local spool.
// A producer (this process) sends at a steady rate; a worker (a child process) delivers to a no-op
// destination that counts; both reach PostgreSQL through a TCP proxy that refuses and cuts every
// connection for the outage, as a stopped database does. Measured, per mode:
// - memory: the producer's RSS during the outage, against its RSS at the same rate before the
//   outage (the baseline, same run);
// - peak buffered: events held in the commit buffer (memory) or the spool (disk) at once;
// - recovery after the database returns: until the store reports `connected`, until nothing waits
//   in the buffer or the spool, and until every event accepted before the return was delivered.
// Needs EGRESS_BENCH_POSTGRES_URL or EGRESS_TEST_POSTGRES_URL; the schemas are dropped at the end.
import { fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createEgress, defineDestination, silentLogger } from '@egress/core';
import { postgresStore } from '@egress/store-postgres';
import pg from 'pg';
import { z } from 'zod';
import { TcpProxy } from '../packages/store-postgres/test/faults/tcp-proxy.js';

const url = process.env.EGRESS_BENCH_POSTGRES_URL ?? process.env.EGRESS_TEST_POSTGRES_URL;
if (!url) {
  console.error('set EGRESS_BENCH_POSTGRES_URL (or EGRESS_TEST_POSTGRES_URL), e.g. postgres://postgres@127.0.0.1:5432/test');
  process.exit(2);
}
const rate = Number(process.env.RATE ?? 1000);
const outageMs = Number(process.env.OUTAGE_MS ?? 30_000);
const warmupMs = 5000;
const sampleEvery = 250;

const destination = (onDelivered: (numbers: number[]) => void) =>
  defineDestination({
    name: 'sink',
    input: z.strictObject({ n: z.number().int(), user: z.string(), plan: z.string(), amount: z.number() }),
    defaults: { batch: { maxEvents: 500, maxDelay: 0 } },
    async deliver(batch) {
      onDelivered(batch.events.map((event) => event.payload.n));
    },
  });

const storeOptions = (connectionString: string, schema: string) => ({ connectionString, schema, pollInterval: 500, connectTimeout: 2000, queryTimeout: 5000 });

if (process.argv[2] === 'worker') {
  // The worker: reports how many events below a mark have arrived, when asked.
  const [connectionString, schema] = process.argv.slice(3) as [string, string];
  const delivered = new Set<number>();
  let mark: number | undefined;
  const check = () => {
    if (mark === undefined) return;
    for (let n = 0; n < mark; n++) if (!delivered.has(n)) return;
    process.send!({ type: 'caught-up', at: Date.now() });
    mark = undefined;
  };
  const egress = createEgress({
    role: 'worker',
    destinations: [
      destination((numbers) => {
        for (const n of numbers) delivered.add(n);
        check();
      }),
    ],
    store: postgresStore(storeOptions(connectionString, schema)),
    logger: silentLogger,
  });
  process.on('message', (message: { type: string; below?: number }) => {
    if (message.type === 'watch') {
      mark = message.below;
      check();
    }
    if (message.type === 'close') void egress.close().then(() => process.disconnect());
  });
  await egress.ready();
  process.send!({ type: 'ready' });
} else {
  const admin = new pg.Pool({ connectionString: url, max: 2 });
  const suffix = randomBytes(4).toString('hex');
  const schemas: string[] = [];
  const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? 0;
  const megabytes = (bytes: number) => Math.round((bytes / 1024 / 1024) * 10) / 10;

  async function outage(mode: 'buffer' | 'spool') {
    const schema = `egress_bench_outage_${mode}_${suffix}`;
    schemas.push(schema);
    const directory = mkdtempSync(join(tmpdir(), 'egress-outage-'));
    const target = new URL(url!);
    const proxy = new TcpProxy(target.hostname, Number(target.port || 5432));
    const proxied = await proxy.start(url!);
    const worker = fork(fileURLToPath(import.meta.url), ['worker', proxied, schema], { execArgv: process.execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const message = (type: string) => new Promise<{ at: number }>((done) => worker.on('message', (received: { type: string; at: number }) => received.type === type && done(received)));
    const egress = createEgress({
      role: 'producer',
      destinations: [destination(() => {})],
      store: postgresStore({ ...storeOptions(proxied, schema), ...(mode === 'spool' ? { spool: join(directory, 'spool.db') } : {}) }),
      logger: silentLogger,
    });
    await egress.ready();
    await message('ready');

    let next = 0;
    let refused = 0;
    let sending = true;
    const started = Date.now();
    const producer = (async () => {
      while (sending) {
        const due = Math.floor(((Date.now() - started) / 1000) * rate);
        for (; next < due; next++) {
          try {
            egress.send.sink({ n: next, user: `user-${next}`, plan: next % 3 ? 'pro' : 'free', amount: next * 1.5 });
          } catch {
            refused += 1;
          }
        }
        await new Promise((done) => setTimeout(done, 5));
      }
    })();
    const samples: { at: number; rss: number; buffered: number; spooled: number; state: string }[] = [];
    const sampler = setInterval(() => {
      const status = egress.storeStatus();
      samples.push({ at: Date.now(), rss: process.memoryUsage.rss(), buffered: status.buffered, spooled: status.spooled ?? 0, state: status.state });
    }, sampleEvery);
    const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms));

    await sleep(warmupMs);
    const before = samples.filter((sample) => sample.at >= started + 2000).map((sample) => sample.rss);
    const down = Date.now();
    proxy.refuse();
    await sleep(outageMs);
    const during = samples.filter((sample) => sample.at >= down);
    const up = Date.now();
    const acceptedBeforeUp = next - refused;
    proxy.restore();
    const caughtUp = message('caught-up');
    worker.send({ type: 'watch', below: next });
    const connected = (async () => {
      while (egress.storeStatus().state !== 'connected') await sleep(10);
      return Date.now();
    })();
    const drained = (async () => {
      await connected;
      for (;;) {
        const status = egress.storeStatus();
        // At a steady rate a few events always wait for the next commit: 50 ms worth counts as drained.
        if (status.buffered <= rate / 20 && (status.spooled ?? 0) === 0) return Date.now();
        await sleep(10);
      }
    })();
    const [connectedAt, drainedAt, { at: deliveredAt }] = await Promise.all([connected, drained, caughtUp]);
    sending = false;
    await producer;
    clearInterval(sampler);
    await egress.close();
    worker.send({ type: 'close' });
    await new Promise((done) => worker.once('exit', done));
    await proxy.close();
    rmSync(directory, { recursive: true, force: true });

    const baselineRss = median(before);
    const peakRss = Math.max(...during.map((sample) => sample.rss));
    return {
      mode,
      rate,
      outageMs,
      acceptedBeforeReturn: acceptedBeforeUp,
      refusedAtSend: refused,
      peakBuffered: Math.max(...during.map((sample) => sample.buffered)),
      peakSpooled: Math.max(...during.map((sample) => sample.spooled)),
      rssBeforeMiB: megabytes(baselineRss),
      rssPeakDuringMiB: megabytes(peakRss),
      rssPeakVsBefore: Number((peakRss / baselineRss).toFixed(2)),
      recovery: {
        connectedMs: connectedAt - up,
        drainedMs: drainedAt - up,
        backlogDeliveredMs: deliveredAt - up,
      },
    };
  }

  try {
    const server = (await admin.query<{ server_version: string }>('SHOW server_version')).rows[0]!;
    const buffer = await outage('buffer');
    const spool = await outage('spool');
    const result = { server: server.server_version, buffer, spool };
    console.log(`PostgreSQL ${server.server_version}; ${rate} events/s, outage ${outageMs / 1000} s (connections refused and cut)`);
    const row = ({ recovery, ...figures }: typeof buffer) => ({ ...figures, ...recovery });
    console.table({ 'commit buffer (memory)': row(buffer), 'spool (SQLite file)': row(spool) });
    mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
    writeFileSync(new URL('./results/store-postgres-outage.json', import.meta.url), `${JSON.stringify(result, null, 2)}\n`);
  } finally {
    for (const schema of schemas) await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await admin.end();
  }
}
