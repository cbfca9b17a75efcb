// 1,000 SSE subscribers on loopback, 1,000 events/s published for 10 s: latency from send to
// receipt (p50, p99) and the server's memory. Two servers run one after the other, each in its own
// process so their memory is measured apart: Egress (`egress.send.sse` → engine → stream hub →
// subscribers) and a baseline written directly with node:http `res.write` (no queue, no replay,
// no auth). Subscribers live in two further processes, reading raw HTTP, so their parsing does not
// count as server time. Every event carries its send time; each subscriber measures on receipt.
import { fork, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createServer, request, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { cpus, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { createEgress, memoryStore, silentLogger } from '@egress/core';
import { sse } from '@egress/sse';

const subscribers = Number(process.env.SUBSCRIBERS ?? 1000);
const eventsPerSecond = Number(process.env.RATE ?? 1000);
const seconds = Number(process.env.SECONDS ?? 10);
const rounds = Number(process.env.ROUNDS ?? 3);
const subscriberProcesses = 2;
/** Latency histogram: 0.1 ms buckets up to 10 s. */
const bucketWidth = 0.1;
const bucketCount = 100_000;

type Variant = 'egress' | 'baseline';
type ServerMessage = { kind: 'listening'; port: number } | { kind: 'done'; sent: number; memory: MemorySnapshot[]; cpuSeconds: number };
type SubscriberMessage = { kind: 'connected'; count: number } | { kind: 'report'; buckets: [number, number][]; received: number; disconnected: number; cpuSeconds: number };
interface MemorySnapshot {
  label: string;
  rssMiB: number;
  heapUsedMiB: number;
}

const now = () => performance.timeOrigin + performance.now();
const role = process.env.SSE_BENCH_ROLE;
const self = fileURLToPath(import.meta.url);

if (role === 'server') await runServer(process.env.SSE_BENCH_VARIANT as Variant);
else if (role === 'subscribers') runSubscribers(Number(process.env.SSE_BENCH_PORT), Number(process.env.SSE_BENCH_COUNT));
else await orchestrate();

function memory(label: string): MemorySnapshot {
  (globalThis as { gc?: () => void }).gc?.();
  const usage = process.memoryUsage();
  return { label, rssMiB: Number((usage.rss / 2 ** 20).toFixed(1)), heapUsedMiB: Number((usage.heapUsed / 2 ** 20).toFixed(1)) };
}

async function runServer(variant: Variant): Promise<void> {
  const snapshots: MemorySnapshot[] = [memory('idle')];
  let publish: (events: readonly { t: number; n: number }[]) => void;
  let connected: () => number;
  let finish: () => Promise<void>;
  let port: number;
  if (variant === 'egress') {
    const destination = sse({ replay: 0 });
    const egress = createEgress({ destinations: [destination], store: memoryStore(), logger: silentLogger });
    await egress.ready();
    port = (await destination.listen(0, '127.0.0.1')).port;
    publish = (events) => {
      for (const payload of events) egress.send.sse({ channel: 'bench', payload });
    };
    connected = () => destination.subscriberCount;
    finish = async () => {
      await egress.flush();
      await egress.close();
    };
  } else {
    const responses = new Set<ServerResponse>();
    let sequence = 0;
    const server = createServer((_request, response) => {
      response.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      response.socket?.setNoDelay(true);
      response.flushHeaders();
      responses.add(response);
      response.on('close', () => responses.delete(response));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
    publish = (events) => {
      let text = '';
      for (const payload of events) text += `id: ${++sequence}\nevent: bench\ndata: ${JSON.stringify(payload)}\n\n`;
      const chunk = Buffer.from(text);
      for (const response of responses) response.write(chunk);
    };
    connected = () => responses.size;
    finish = async () => {
      for (const response of responses) response.end();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    };
  }
  process.send!({ kind: 'listening', port } satisfies ServerMessage);
  await new Promise<void>((resolve) => process.once('message', () => resolve()));
  snapshots.push(memory(`${connected()} subscribers connected`));

  // Sends are spread over each second in 1 ms steps, as events would arrive from an application.
  const total = eventsPerSecond * seconds;
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  let sent = 0;
  while (sent < total) {
    const due = Math.min(total, Math.floor(((performance.now() - started) / 1000) * eventsPerSecond));
    if (due > sent) {
      const events = [];
      for (; sent < due; sent += 1) events.push({ t: now(), n: sent });
      publish(events);
    }
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  snapshots.push(memory('after publishing'));
  await new Promise((resolve) => setTimeout(resolve, 1000));
  const cpu = process.cpuUsage(cpuBefore);
  await finish();
  snapshots.push(memory('after close'));
  process.send!({ kind: 'done', sent, memory: snapshots, cpuSeconds: (cpu.user + cpu.system) / 1e6 } satisfies ServerMessage);
}

function runSubscribers(port: number, count: number): void {
  const histogram = new Uint32Array(bucketCount);
  let received = 0;
  let connectedCount = 0;
  let disconnected = 0;
  let cpuBefore: NodeJS.CpuUsage | undefined;
  for (let index = 0; index < count; index += 1) {
    const outgoing = request({ host: '127.0.0.1', port, path: '/', agent: false, headers: { accept: 'text/event-stream' } }, (response) => {
      connectedCount += 1;
      if (connectedCount === count) {
        cpuBefore = process.cpuUsage();
        process.send!({ kind: 'connected', count } satisfies SubscriberMessage);
      }
      response.setEncoding('utf8');
      let pending = '';
      response.on('data', (chunk: string) => {
        const arrivedAt = now();
        pending += chunk;
        const end = pending.lastIndexOf('\n\n');
        if (end < 0) return;
        const complete = pending.slice(0, end);
        pending = pending.slice(end + 2);
        for (const match of complete.matchAll(/"t":([\d.]+)/g)) {
          received += 1;
          const bucket = Math.min(bucketCount - 1, Math.max(0, Math.floor((arrivedAt - Number(match[1])) / bucketWidth)));
          histogram[bucket]! += 1;
        }
      });
      response.on('close', () => {
        disconnected += 1;
      });
    });
    outgoing.on('error', () => {
      disconnected += 1;
    });
    outgoing.end();
  }
  process.on('message', () => {
    const buckets: [number, number][] = [];
    histogram.forEach((value, index) => {
      if (value > 0) buckets.push([index, value]);
    });
    const cpu = process.cpuUsage(cpuBefore);
    process.send!({ kind: 'report', buckets, received, disconnected, cpuSeconds: (cpu.user + cpu.system) / 1e6 } satisfies SubscriberMessage);
  });
}

function nextMessage<T>(child: ChildProcess, kind: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const onMessage = (message: { kind: string }) => {
      if (message.kind !== kind) return;
      child.off('message', onMessage);
      resolve(message as T);
    };
    child.on('message', onMessage);
    child.once('exit', (code) => reject(new Error(`child exited with ${code} while waiting for "${kind}"`)));
  });
}

function spawn(environment: Record<string, string>): ChildProcess {
  return fork(self, [], { env: { ...process.env, ...environment }, execArgv: process.execArgv, stdio: 'inherit' });
}

function percentile(histogram: readonly number[], fraction: number): number {
  const total = histogram.reduce((sum, value) => sum + value, 0);
  let seen = 0;
  for (let index = 0; index < histogram.length; index += 1) {
    seen += histogram[index]!;
    if (seen >= total * fraction) return Number(((index + 1) * bucketWidth).toFixed(1));
  }
  return Number.NaN;
}

async function scenario(variant: Variant) {
  const server = spawn({ SSE_BENCH_ROLE: 'server', SSE_BENCH_VARIANT: variant });
  const { port } = await nextMessage<{ port: number }>(server, 'listening');
  const children = Array.from({ length: subscriberProcesses }, (_, index) => {
    const count = Math.floor(subscribers / subscriberProcesses) + (index < subscribers % subscriberProcesses ? 1 : 0);
    return spawn({ SSE_BENCH_ROLE: 'subscribers', SSE_BENCH_PORT: String(port), SSE_BENCH_COUNT: String(count) });
  });
  await Promise.all(children.map((child) => nextMessage(child, 'connected')));
  const done = nextMessage<{ sent: number; memory: MemorySnapshot[]; cpuSeconds: number }>(server, 'done');
  const loadBefore = loadavg()[0]!;
  server.send('start');
  const { sent, memory: serverMemory, cpuSeconds: serverCpuSeconds } = await done;
  const loadAfter = loadavg()[0]!;
  const reports = await Promise.all(
    children.map((child) => {
      const report = nextMessage<{ buckets: [number, number][]; received: number; disconnected: number; cpuSeconds: number }>(child, 'report');
      child.send('report');
      return report;
    }),
  );
  for (const child of [server, ...children]) child.kill();
  const histogram = new Array<number>(bucketCount).fill(0);
  for (const report of reports) for (const [index, value] of report.buckets) histogram[index]! += value;
  const received = reports.reduce((sum, report) => sum + report.received, 0);
  const lastBucket = histogram.findLastIndex((value) => value > 0);
  return {
    sent,
    expected: sent * subscribers,
    received,
    p50Ms: percentile(histogram, 0.5),
    p99Ms: percentile(histogram, 0.99),
    maxMs: Number(((lastBucket + 1) * bucketWidth).toFixed(1)),
    disconnected: reports.reduce((sum, report) => sum + report.disconnected, 0),
    serverCpuSeconds: Number(serverCpuSeconds.toFixed(2)),
    subscriberCpuSeconds: Number(reports.reduce((sum, report) => sum + report.cpuSeconds, 0).toFixed(2)),
    machineLoad: { before: Number(loadBefore.toFixed(2)), after: Number(loadAfter.toFixed(2)) },
    memory: serverMemory,
  };
}

async function orchestrate(): Promise<void> {
  console.log(`${subscribers} subscribers, ${eventsPerSecond} events/s for ${seconds} s, ${rounds} round(s) each, alternating`);
  type Result = Awaited<ReturnType<typeof scenario>>;
  const results: Record<Variant, Result[]> = { egress: [], baseline: [] };
  // Alternating (E B, B E, E B...) spreads the drift of a shared machine's load over both variants.
  for (let round = 0; round < rounds; round += 1) {
    const order: Variant[] = round % 2 === 0 ? ['egress', 'baseline'] : ['baseline', 'egress'];
    for (const variant of order) results[variant].push(await scenario(variant));
  }
  const median = (values: number[]) => {
    const sorted = [...values].sort((a, b) => a - b);
    return sorted[Math.floor((sorted.length - 1) / 2)]!;
  };
  const summary = (variant: Variant) => ({
    p50Ms: median(results[variant].map((result) => result.p50Ms)),
    p99Ms: median(results[variant].map((result) => result.p99Ms)),
    serverCpuSeconds: median(results[variant].map((result) => result.serverCpuSeconds)),
    received: results[variant].reduce((sum, result) => sum + result.received, 0),
    expected: results[variant].reduce((sum, result) => sum + result.expected, 0),
  });
  const row = (result: Result) => ({
    'p50 ms': result.p50Ms,
    'p99 ms': result.p99Ms,
    'max ms': result.maxMs,
    received: `${result.received}/${result.expected}`,
    'server CPU s': result.serverCpuSeconds,
    'subscribers CPU s': result.subscriberCpuSeconds,
    'load avg': `${result.machineLoad.before} → ${result.machineLoad.after}`,
    'server RSS MiB: idle, connected, after publishing, after close': result.memory.map((snapshot) => snapshot.rssMiB).join(', '),
    'server heap MiB: idle, connected, after publishing, after close': result.memory.map((snapshot) => snapshot.heapUsedMiB).join(', '),
  });
  const table: Record<string, ReturnType<typeof row>> = {};
  for (let round = 0; round < rounds; round += 1) {
    table[`round ${round + 1}: node:http res.write (baseline)`] = row(results.baseline[round]!);
    table[`round ${round + 1}: egress send → sse subscribers`] = row(results.egress[round]!);
  }
  console.table(table);
  const egress = summary('egress');
  const baseline = summary('baseline');
  const ratio = {
    p50: Number((egress.p50Ms / baseline.p50Ms).toFixed(2)),
    p99: Number((egress.p99Ms / baseline.p99Ms).toFixed(2)),
    serverCpu: Number((egress.serverCpuSeconds / baseline.serverCpuSeconds).toFixed(2)),
  };
  console.table({ 'baseline (median of rounds)': baseline, 'egress (median of rounds)': egress });
  console.log(`egress latency is ${ratio.p50}× the baseline's at p50 and ${ratio.p99}× at p99; server CPU ${ratio.serverCpu}×; target p99 < 50 ms: ${egress.p99Ms < 50 ? 'met' : 'NOT met'}`);
  console.log(`${cpus().length} CPU(s); load average is that of the whole machine, other work included`);
  const result = { subscribers, eventsPerSecond, seconds, rounds, egress, baseline, ratio, targetP99Ms: 50, runs: results };
  writeFileSync(new URL('./results/sse.json', import.meta.url), `${JSON.stringify(result, null, 2)}\n`);
}
