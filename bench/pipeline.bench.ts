// Webhooks end to end, the queues users would pick instead side by side in one run: N events, each
// delivered as one HTTP POST to a loopback receiver in a child process, 16 requests in flight, the
// same receiver and payloads for every contender.
// - hand-written undici loop from memory (no queue);
// - Egress on SQLite, one `run()` per event, producer and worker in one process;
// - Egress on PostgreSQL: a producer process and 1 or 2 worker processes;
// - BullMQ 5 on the machine's Redis: a producer process calling `add`, a worker process posting
//   with undici at concurrency 16 (the baseline).
// Throughput: three interleaved rounds, medians. Per-event database cost: commits (pg_stat_database
// xact_commit of a database of the benchmark's own) and server CPU (/proc/<pid>/stat of the
// PostgreSQL backends serving that database; Redis: the redis-server process). Latency: `send` to
// arrival at a steady 200 and 1,000 events/s, p50 and p99 after the first second (and the p99 with it).
// Needs EGRESS_BENCH_POSTGRES_URL or EGRESS_TEST_POSTGRES_URL (a role that may CREATE DATABASE) and
// Redis at EGRESS_BENCH_REDIS_URL (default redis://127.0.0.1:6379).
import { execFileSync, fork, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createEgress, silentLogger } from '@egress/core';
import { http } from '@egress/http';
import { postgresStore } from '@egress/store-postgres';
import { sqliteStore } from '@egress/store-sqlite';
import { Queue, Worker } from 'bullmq';
import pg from 'pg';
import { Agent } from 'undici';

const here = dirname(fileURLToPath(import.meta.url));
const self = fileURLToPath(import.meta.url);
const events = Number(process.env.EGRESS_BENCH_PIPELINE_EVENTS ?? 20_000);
const rounds = Number(process.env.EGRESS_BENCH_PIPELINE_ROUNDS ?? 3);
const latencySeconds = Number(process.env.EGRESS_BENCH_PIPELINE_LATENCY_SECONDS ?? 10);
const concurrency = 16;
const redisUrl = new URL(process.env.EGRESS_BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379');
const redis = { host: redisUrl.hostname, port: Number(redisUrl.port || 6379), maxRetriesPerRequest: null };

type Hook = {
  n: number;
  type: string;
  customer: string;
  total: number;
  /** When the producer sent it, wall-clock milliseconds with sub-millisecond precision. */
  sentAt: number;
};

const now = () => performance.timeOrigin + performance.now();
const hook = (n: number): Hook => ({ n, type: 'order.created', customer: 'c_123', total: 4200, sentAt: now() });

/**
 * Calls `send` for events 0..count-1, as fast as it goes (rate 0: yielding now and then, as request
 * handlers would) or at a steady rate per second; waits for what `send` returned.
 */
async function produce(count: number, rate: number, send: (n: number) => Promise<unknown> | undefined): Promise<void> {
  const pending: Promise<unknown>[] = [];
  const started = performance.now();
  for (let n = 0; n < count; n++) {
    if (rate > 0) {
      const due = started + (n / rate) * 1000;
      const wait = due - performance.now();
      if (wait > 1) await new Promise((resolve) => setTimeout(resolve, wait));
    } else if (n % 100 === 99) {
      await new Promise((resolve) => setImmediate(resolve));
    }
    const result = send(n);
    if (result) pending.push(result);
    if (pending.length >= 256) await Promise.all(pending.splice(0));
  }
  await Promise.all(pending);
}

// ---- child processes ----------------------------------------------------------------------------

interface ChildOptions {
  role: 'receiver' | 'egress-producer' | 'egress-worker' | 'bullmq-producer' | 'bullmq-worker';
  connectionString?: string;
  schema?: string;
  queue?: string;
  url?: string;
  count?: number;
  rate?: number;
}

async function child(options: ChildOptions): Promise<void> {
  const on = (type: string, handler: () => Promise<void> | void) =>
    process.on('message', (message: { type: string }) => {
      if (message.type === type) void handler();
    });
  const done = () => {
    process.send!({ type: 'closed' });
    process.disconnect();
  };
  if (options.role === 'receiver') {
    let count = 0;
    /** Send-to-arrival time of each request, with the event's number. */
    let latencies: { n: number; ms: number }[] = [];
    const server = createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => {
        const arrived = now();
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Hook;
        latencies.push({ n: body.n, ms: arrived - body.sentAt });
        count++;
        response.end('ok');
      });
    });
    server.keepAliveTimeout = 60_000;
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      process.send!({ type: 'listening', port: typeof address === 'object' && address ? address.port : 0 });
    });
    process.on('message', (message: { type: string; steadyFrom?: number }) => {
      if (message.type === 'count') process.send!({ type: 'count', count });
      if (message.type === 'reset') {
        count = 0;
        latencies = [];
        process.send!({ type: 'count', count });
      }
      if (message.type === 'latencies') {
        const quantiles = (values: number[]) => {
          const sorted = values.sort((a, b) => a - b);
          return (quantile: number) => sorted[Math.min(sorted.length - 1, Math.floor(quantile * sorted.length))] ?? Number.NaN;
        };
        const all = quantiles(latencies.map(({ ms }) => ms));
        const steady = quantiles(latencies.filter(({ n }) => n >= (message.steadyFrom ?? 0)).map(({ ms }) => ms));
        process.send!({ type: 'latencies', count: latencies.length, p50: steady(0.5), p99: steady(0.99), p99WithFirstSecond: all(0.99), max: all(1) });
      }
      if (message.type === 'stop') server.close(() => process.exit(0));
    });
    return;
  }
  const url = options.url!;
  if (options.role === 'egress-producer' || options.role === 'egress-worker') {
    const egress = createEgress({
      role: options.role === 'egress-producer' ? 'producer' : 'worker',
      destinations: [http()],
      store: postgresStore({ connectionString: options.connectionString!, schema: options.schema! }),
      logger: silentLogger,
    });
    await egress.ready();
    on('close', async () => {
      await egress.close();
      done();
    });
    if (options.role === 'egress-worker') {
      process.send!({ type: 'ready' });
      return;
    }
    on('produce', async () => {
      await produce(options.count!, options.rate!, (n) => egress.send.http({ url, data: hook(n) }).committed());
      process.send!({ type: 'produced' });
    });
    process.send!({ type: 'ready' });
    return;
  }
  const queue = options.queue!;
  if (options.role === 'bullmq-worker') {
    const origin = new URL(url).origin;
    const agent = new Agent({ connections: concurrency });
    const worker = new Worker(
      queue,
      async (job) => {
        const response = await agent.request({ origin, path: '/hook', method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(job.data) });
        await response.body.dump();
        if (response.statusCode !== 200) throw new Error(`status ${response.statusCode}`);
      },
      { connection: redis, concurrency },
    );
    await worker.waitUntilReady();
    on('close', async () => {
      await worker.close();
      await agent.close();
      done();
    });
    process.send!({ type: 'ready' });
    return;
  }
  const producer = new Queue(queue, { connection: redis });
  await producer.waitUntilReady();
  on('close', async () => {
    await producer.obliterate({ force: true });
    await producer.close();
    done();
  });
  on('produce', async () => {
    await produce(options.count!, options.rate!, (n) => producer.add('hook', hook(n), { removeOnComplete: true, removeOnFail: true }));
    process.send!({ type: 'produced' });
  });
  process.send!({ type: 'ready' });
}

// ---- the run ------------------------------------------------------------------------------------

// EGRESS_BENCH_CPU_PROF=<dir> writes a V8 CPU profile of every child process into <dir>.
const cpuProfileDirectory = process.env.EGRESS_BENCH_CPU_PROF;

function start(options: ChildOptions): ChildProcess {
  const profile = cpuProfileDirectory ? ['--cpu-prof', '--cpu-prof-dir', cpuProfileDirectory, '--cpu-prof-name', `${options.role}-${randomBytes(3).toString('hex')}.cpuprofile`] : [];
  return fork(self, [JSON.stringify(options)], { execArgv: ['--import', 'tsx', ...profile], stdio: 'inherit' });
}

function message<T = Record<string, unknown>>(process: ChildProcess, type: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const onMessage = (received: { type: string }) => {
      if (received.type !== type) return;
      process.off('message', onMessage);
      process.off('exit', onExit);
      resolve(received as T);
    };
    const onExit = (code: number | null) => reject(new Error(`child exited (${code}) before "${type}"`));
    process.on('message', onMessage);
    process.once('exit', onExit);
  });
}

function ask<T = Record<string, unknown>>(process: ChildProcess, type: string, reply = type, fields: Record<string, unknown> = {}): Promise<T> {
  const answer = message<T>(process, reply);
  process.send({ type, ...fields });
  return answer;
}

/** utime + stime of a process, in milliseconds, or undefined once it is gone. */
function cpuMilliseconds(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / ticksPerSecond;
  } catch {
    return undefined;
  }
}

const ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;

interface Outcome {
  perSecond: number;
  /** Server commits per 1,000 events (PostgreSQL only). */
  commitsPer1000?: number;
  /** Server CPU milliseconds per 1,000 events (PostgreSQL backends or redis-server). */
  serverCpuPer1000?: number;
  /** Latency at a steady rate, after the first second. */
  p50?: number;
  p99?: number;
  /** p99 over every event, the first second included. */
  p99WithFirstSecond?: number;
  /** CPU milliseconds per 1,000 events of the producer process, the worker process(es), the receiver. */
  producerCpuPer1000?: number;
  workerCpuPer1000?: number;
  receiverCpuPer1000?: number;
  /** Share of all the machine's cores busy during the stretch, any process. */
  machineBusyPercent?: number;
}

/** Busy and total CPU time of the whole machine so far, in clock ticks over all cores (/proc/stat). */
function machineTicks(): { busy: number; total: number } {
  const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const total = fields.reduce((sum, value) => sum + value, 0);
  // idle and iowait
  return { busy: total - fields[3]! - fields[4]!, total };
}

/**
 * CPU of the client processes (producer, workers, receiver) per 1,000 events and how busy the
 * machine's cores were, over one measured stretch: it says whether the pipeline is CPU-bound.
 */
function clientCpu(processes: { producer: ChildProcess; workers: ChildProcess[]; receiver: ChildProcess }) {
  const read = () => ({
    producer: cpuMilliseconds(processes.producer.pid!) ?? 0,
    workers: processes.workers.reduce((sum, worker) => sum + (cpuMilliseconds(worker.pid!) ?? 0), 0),
    receiver: cpuMilliseconds(processes.receiver.pid!) ?? 0,
    machine: machineTicks(),
  });
  const before = read();
  return (count: number): Pick<Outcome, 'producerCpuPer1000' | 'workerCpuPer1000' | 'receiverCpuPer1000' | 'machineBusyPercent'> => {
    const after = read();
    const per1000 = (ms: number) => (ms / count) * 1000;
    return {
      producerCpuPer1000: per1000(after.producer - before.producer),
      workerCpuPer1000: per1000(after.workers - before.workers),
      receiverCpuPer1000: per1000(after.receiver - before.receiver),
      machineBusyPercent: ((after.machine.busy - before.machine.busy) / (after.machine.total - before.machine.total)) * 100,
    };
  };
}

async function main(): Promise<void> {
  const baseUrl = process.env.EGRESS_BENCH_POSTGRES_URL ?? process.env.EGRESS_TEST_POSTGRES_URL;
  if (!baseUrl) {
    console.error('set EGRESS_BENCH_POSTGRES_URL (or EGRESS_TEST_POSTGRES_URL), e.g. postgres://postgres@127.0.0.1:5432/test');
    process.exit(2);
  }
  const loadAverageAtStart = loadavg().map((value) => Math.round(value * 100) / 100);
  const suffix = randomBytes(4).toString('hex');
  // A database of its own, so that its commit count and its backends are this benchmark's alone.
  const database = `egress_bench_pipeline_${suffix}`;
  const admin = new pg.Pool({ connectionString: baseUrl, max: 2 });
  await admin.query(`CREATE DATABASE ${database}`);
  const benchUrl = new URL(baseUrl);
  benchUrl.pathname = `/${database}`;
  const connectionString = benchUrl.toString();
  const redisPid = Number(execFileSync('pgrep', ['-x', 'redis-server']).toString().trim().split('\n')[0]);
  const sqliteRoot = join(tmpdir(), `egress-bench-pipeline-${process.pid}`);
  mkdirSync(sqliteRoot, { recursive: true });

  const receiver = start({ role: 'receiver' });
  const { port } = await message<{ port: number }>(receiver, 'listening');
  const origin = `http://127.0.0.1:${port}`;
  const url = `${origin}/hook`;

  /** CPU of the backends serving the benchmark's database, sampled while the round runs (a backend that exits keeps its last sample). */
  const backendCpu = () => {
    const seen = new Map<number, { first: number; last: number }>();
    let baseline = true;
    const sample = async () => {
      const { rows } = await admin.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE datname = $1', [database]);
      for (const { pid } of rows) {
        const cpu = cpuMilliseconds(pid);
        if (cpu === undefined) continue;
        const known = seen.get(pid);
        if (known) known.last = cpu;
        // A connection opened during the round counts from its start.
        else seen.set(pid, { first: baseline ? cpu : 0, last: cpu });
      }
      baseline = false;
    };
    return { sample, total: () => [...seen.values()].reduce((sum, { first, last }) => sum + last - first, 0) };
  };
  const commits = async () => Number((await admin.query<{ commits: string }>('SELECT xact_commit AS commits FROM pg_stat_database WHERE datname = $1', [database])).rows[0]?.commits ?? 0);

  async function arrived(count: number, onTick?: () => Promise<void>): Promise<void> {
    let ticks = 0;
    for (;;) {
      const { count: got } = await ask<{ count: number }>(receiver, 'count');
      if (got >= count) return;
      if (onTick && ticks++ % 10 === 0) await onTick();
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }


  /**
   * Runs `run` and returns its rate; with `rate` > 0 also the latency the receiver saw. Every run
   * starts fresh processes, so its first second (connections opened, statements prepared and
   * planned, code compiled) is not the steady state the p50 and p99 describe; the p99 with that
   * second included is reported beside them.
   */
  async function measure(count: number, rate: number, run: () => Promise<void>): Promise<Pick<Outcome, 'perSecond' | 'p50' | 'p99' | 'p99WithFirstSecond'>> {
    await ask(receiver, 'reset', 'count');
    // No forced garbage collection here: on Node.js 20 `gc()` also throws away compiled code, and
    // the contenders that run in this process (the undici loop, Egress on SQLite) then spent their
    // first thousands of events recompiling.
    const started = performance.now();
    await run();
    const seconds = (performance.now() - started) / 1000;
    const latency = await ask<{ count: number; p50: number; p99: number; p99WithFirstSecond: number }>(receiver, 'latencies', 'latencies', { steadyFrom: rate });
    if (latency.count !== count) throw new Error(`${latency.count} of ${count} requests arrived`);
    return { perSecond: count / seconds, ...(rate > 0 ? { p50: latency.p50, p99: latency.p99, p99WithFirstSecond: latency.p99WithFirstSecond } : {}) };
  }

  const agent = new Agent({ connections: concurrency });
  async function handWritten(count: number, rate: number): Promise<Outcome> {
    return measure(count, rate, async () => {
      if (rate === 0) {
        let next = 0;
        const worker = async () => {
          while (next < count) {
            const response = await agent.request({ origin, path: '/hook', method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(hook(next++)) });
            await response.body.dump();
            if (response.statusCode !== 200) throw new Error(`status ${response.statusCode}`);
          }
        };
        await Promise.all(Array.from({ length: concurrency }, worker));
        return;
      }
      // At a steady rate the loop sends each event when it comes, up to 16 at once.
      let inFlight = 0;
      const waiting: (() => void)[] = [];
      await produce(count, rate, (n) => {
        const post = async () => {
          while (inFlight >= concurrency) await new Promise<void>((resolve) => waiting.push(resolve));
          inFlight++;
          try {
            const response = await agent.request({ origin, path: '/hook', method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(hook(n)) });
            await response.body.dump();
          } finally {
            inFlight--;
            waiting.shift()?.();
          }
        };
        void post();
        return undefined;
      });
      await arrived(count);
    });
  }

  let sqliteRounds = 0;
  async function egressSqlite(count: number, rate: number): Promise<Outcome> {
    const egress = createEgress({ destinations: [http()], store: sqliteStore({ path: join(sqliteRoot, `queue-${sqliteRounds++}.db`) }), logger: silentLogger });
    await egress.ready();
    const outcome = await measure(count, rate, async () => {
      await produce(count, rate, (n) =>
        egress.run(async (send) => {
          send.http({ url, data: hook(n) });
        }),
      );
      await arrived(count);
    });
    await egress.close();
    return outcome;
  }

  let postgresRounds = 0;
  async function egressPostgres(workers: number, count: number, rate: number): Promise<Outcome> {
    const schema = `pipeline_${postgresRounds++}`;
    const base = { connectionString, schema, url, count, rate };
    // The first process creates the schema; the others open it once it is there.
    const producer = start({ ...base, role: 'egress-producer' });
    await message(producer, 'ready');
    const workerProcesses = Array.from({ length: workers }, () => start({ ...base, role: 'egress-worker' }));
    await Promise.all(workerProcesses.map((worker) => message(worker, 'ready')));
    const cpu = backendCpu();
    await cpu.sample();
    const commitsBefore = await commits();
    const clients = clientCpu({ producer, workers: workerProcesses, receiver });
    const outcome = await measure(count, rate, async () => {
      producer.send({ type: 'produce' });
      await arrived(count, cpu.sample);
      await cpu.sample();
    });
    const clientOutcome = clients(count);
    const serverCpu = cpu.total();
    await Promise.all([producer, ...workerProcesses].map((child) => ask(child, 'close', 'closed')));
    // Backends report their counts when they end; wait until every one of ours has.
    for (let tries = 0; tries < 100; tries++) {
      const { rows } = await admin.query<{ count: string }>('SELECT count(*) AS count FROM pg_stat_activity WHERE datname = $1', [database]);
      if (Number(rows[0]!.count) === 0) break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const committed = (await commits()) - commitsBefore;
    return { ...outcome, commitsPer1000: (committed / count) * 1000, serverCpuPer1000: (serverCpu / count) * 1000, ...clientOutcome };
  }

  let bullRounds = 0;
  async function bullmq(count: number, rate: number): Promise<Outcome> {
    const queue = `egress-bench-${suffix}-${bullRounds++}`;
    const base = { queue, url, count, rate };
    const producer = start({ ...base, role: 'bullmq-producer' });
    const worker = start({ ...base, role: 'bullmq-worker' });
    await Promise.all([message(producer, 'ready'), message(worker, 'ready')]);
    const before = cpuMilliseconds(redisPid)!;
    const clients = clientCpu({ producer, workers: [worker], receiver });
    const outcome = await measure(count, rate, async () => {
      producer.send({ type: 'produce' });
      await arrived(count);
    });
    const clientOutcome = clients(count);
    const redisCpu = cpuMilliseconds(redisPid)! - before;
    await ask(worker, 'close', 'closed');
    await ask(producer, 'close', 'closed');
    return { ...outcome, serverCpuPer1000: (redisCpu / count) * 1000, ...clientOutcome };
  }

  const contenders = {
    undici: { name: 'hand-written undici loop, no queue', run: handWritten },
    sqlite: { name: 'Egress, SQLite store, one run() per event', run: egressSqlite },
    bullmq: { name: 'BullMQ 5 on Redis, add + worker with undici', run: bullmq },
    postgres1: { name: 'Egress, PostgreSQL, producer + 1 worker process', run: (count: number, rate: number) => egressPostgres(1, count, rate) },
    postgres2: { name: 'Egress, PostgreSQL, producer + 2 worker processes', run: (count: number, rate: number) => egressPostgres(2, count, rate) },
  } as const;
  type Contender = keyof typeof contenders;
  // EGRESS_BENCH_PIPELINE_CONTENDERS=postgres1,bullmq runs some only, in the order given (no ratios then).
  const only = process.env.EGRESS_BENCH_PIPELINE_CONTENDERS?.split(',');
  const keys = only ? (only.filter((key) => key in contenders) as Contender[]) : (Object.keys(contenders) as Contender[]);
  const show = (name: string, outcome: Outcome) =>
    console.log(
      `  ${name.padEnd(52)} ${outcome.perSecond.toFixed(0).padStart(6)} events/s` +
        (outcome.p50 !== undefined ? `  p50 ${outcome.p50.toFixed(1)} ms p99 ${outcome.p99!.toFixed(1)} ms (with the first second ${outcome.p99WithFirstSecond!.toFixed(1)})` : '') +
        (outcome.commitsPer1000 !== undefined ? `  ${outcome.commitsPer1000.toFixed(0)} commits/1k` : '') +
        (outcome.serverCpuPer1000 !== undefined ? `  ${outcome.serverCpuPer1000.toFixed(0)} ms server CPU/1k` : '') +
        (outcome.workerCpuPer1000 !== undefined
          ? `  CPU ms/1k producer ${outcome.producerCpuPer1000!.toFixed(0)} worker ${outcome.workerCpuPer1000.toFixed(0)} receiver ${outcome.receiverCpuPer1000!.toFixed(0)}, cores ${outcome.machineBusyPercent!.toFixed(0)}% busy`
          : ''),
    );

  if (only) {
    for (const rate of [200, 1000]) {
      console.log(`latency at ${rate} events/s for ${latencySeconds} s:`);
      for (const key of keys) show(contenders[key].name, await contenders[key].run(rate * latencySeconds, rate));
    }
    for (const key of keys) show(contenders[key].name, await contenders[key].run(events, 0));
    await agent.close();
    receiver.send({ type: 'stop' });
    await admin.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
    await admin.end();
    return;
  }

  try {
    console.log('warm-up, 2,000 events each:');
    for (const key of keys) show(contenders[key].name, await contenders[key].run(2_000, 0));

    const throughput: Record<Contender, Outcome[]> = { undici: [], sqlite: [], bullmq: [], postgres1: [], postgres2: [] };
    for (let round = 1; round <= rounds; round++) {
      console.log(`round ${round} of ${rounds}, ${events} events:`);
      for (const key of keys) {
        const outcome = await contenders[key].run(events, 0);
        throughput[key].push(outcome);
        show(contenders[key].name, outcome);
      }
    }

    const latency: Record<string, Record<Contender, Outcome>> = {};
    for (const rate of [200, 1000]) {
      console.log(`latency at ${rate} events/s for ${latencySeconds} s:`);
      latency[rate] = {} as Record<Contender, Outcome>;
      for (const key of keys) {
        const outcome = await contenders[key].run(rate * latencySeconds, rate);
        latency[rate]![key] = outcome;
        show(contenders[key].name, outcome);
      }
    }

    const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
    const medianOf = (key: Contender, field: keyof Outcome) => {
      const values = throughput[key].map((outcome) => outcome[field]).filter((value): value is number => value !== undefined);
      return values.length > 0 ? median(values) : undefined;
    };
    const medianOutcome = (key: Contender): Outcome => ({
      perSecond: medianOf(key, 'perSecond')!,
      commitsPer1000: medianOf(key, 'commitsPer1000'),
      serverCpuPer1000: medianOf(key, 'serverCpuPer1000'),
      producerCpuPer1000: medianOf(key, 'producerCpuPer1000'),
      workerCpuPer1000: medianOf(key, 'workerCpuPer1000'),
      receiverCpuPer1000: medianOf(key, 'receiverCpuPer1000'),
      machineBusyPercent: medianOf(key, 'machineBusyPercent'),
    });
    const medians = Object.fromEntries(keys.map((key) => [key, medianOutcome(key)])) as Record<Contender, Outcome>;
    const ratios = {
      postgresVersusBullmq: medians.postgres1.perSecond / medians.bullmq.perSecond,
      postgres2VersusBullmq: medians.postgres2.perSecond / medians.bullmq.perSecond,
      postgresCpuVersusRedisCpu: medians.postgres1.serverCpuPer1000! / medians.bullmq.serverCpuPer1000!,
      postgres2CpuVersusRedisCpu: medians.postgres2.serverCpuPer1000! / medians.bullmq.serverCpuPer1000!,
      twoWorkersVersusOne: medians.postgres2.perSecond / medians.postgres1.perSecond,
      sqliteVersusHandWritten: medians.sqlite.perSecond / medians.undici.perSecond,
    };
    const targets = { postgresVersusBullmq: 1, postgresCpuVersusRedisCpuAtMost: 2, twoWorkersVersusOne: 1.3, sqliteVersusHandWritten: 0.7, p99At1000PerSecondBelowMs: 25 };

    console.log('\nmedians:');
    for (const key of keys) show(contenders[key].name, medians[key]);
    console.log(`\nEgress PostgreSQL (1 worker) / BullMQ:        ${ratios.postgresVersusBullmq.toFixed(2)}x  (target >= 1)`);
    console.log(`Egress PostgreSQL (2 workers) / BullMQ:       ${ratios.postgres2VersusBullmq.toFixed(2)}x`);
    console.log(`PostgreSQL CPU / Redis CPU per event (1 w):   ${ratios.postgresCpuVersusRedisCpu.toFixed(2)}x  (target <= 2)`);
    console.log(`PostgreSQL CPU / Redis CPU per event (2 w):   ${ratios.postgres2CpuVersusRedisCpu.toFixed(2)}x`);
    console.log(`2 workers / 1 worker:                         ${ratios.twoWorkersVersusOne.toFixed(2)}x  (target >= 1.3)`);
    console.log(`Egress SQLite / hand-written undici:          ${ratios.sqliteVersusHandWritten.toFixed(2)}x  (target >= 0.7)`);
    console.log(`PostgreSQL p99 at 1,000 events/s:             ${latency[1000]!.postgres1.p99!.toFixed(1)} ms (1 worker), ${latency[1000]!.postgres2.p99!.toFixed(1)} ms (2 workers)  (target < 25)`);

    const round2 = (value: number | undefined) => (value === undefined ? undefined : Math.round(value * 100) / 100);
    mkdirSync(join(here, 'results'), { recursive: true });
    writeFileSync(
      join(here, 'results', 'pipeline.json'),
      `${JSON.stringify(
        {
          benchmark: 'pipeline',
          workload: `${events} events, one HTTP POST each to a node:http receiver in a child process, ${concurrency} requests in flight`,
          node: process.version,
          // The machine is shared: its load during the run says how far the absolute figures can be trusted.
          machine: { cores: cpus().length, loadAverageAtStart, loadAverageAtEnd: loadavg().map((value) => round2(value)) },
          rounds: Object.fromEntries(keys.map((key) => [contenders[key].name, throughput[key].map((outcome) => Object.fromEntries(Object.entries(outcome).map(([field, value]) => [field, round2(value)])))])),
          medians: Object.fromEntries(
            keys.map((key) => [
              contenders[key].name,
              {
                eventsPerSecond: Math.round(medians[key].perSecond),
                commitsPer1000Events: round2(medians[key].commitsPer1000),
                serverCpuMsPer1000Events: round2(medians[key].serverCpuPer1000),
                producerCpuMsPer1000Events: round2(medians[key].producerCpuPer1000),
                workerCpuMsPer1000Events: round2(medians[key].workerCpuPer1000),
                receiverCpuMsPer1000Events: round2(medians[key].receiverCpuPer1000),
                coresBusyPercent: round2(medians[key].machineBusyPercent),
              },
            ]),
          ),
          latencyMs: Object.fromEntries(
            Object.entries(latency).map(([rate, byKey]) => [
              `${rate} events/s`,
              Object.fromEntries(
                keys.map((key) => [
                  contenders[key].name,
                  {
                    eventsPerSecond: Math.round(byKey[key].perSecond),
                    p50: round2(byKey[key].p50),
                    p99: round2(byKey[key].p99),
                    p99WithFirstSecond: round2(byKey[key].p99WithFirstSecond),
                    commitsPer1000Events: round2(byKey[key].commitsPer1000),
                    serverCpuMsPer1000Events: round2(byKey[key].serverCpuPer1000),
                  },
                ]),
              ),
            ]),
          ),
          ratios: Object.fromEntries(Object.entries(ratios).map(([name, value]) => [name, round2(value)])),
          targets,
          measuredAt: new Date().toISOString(),
        },
        null,
        2,
      )}\n`,
    );
  } finally {
    await agent.close();
    receiver.send({ type: 'stop' });
    await admin.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`);
    await admin.end();
    rmSync(sqliteRoot, { recursive: true, force: true });
  }
}

const role = process.argv[2] ? (JSON.parse(process.argv[2]) as ChildOptions) : undefined;
if (role) await child(role);
else await main();
