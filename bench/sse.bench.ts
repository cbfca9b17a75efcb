// 1,000 SSE subscribers on loopback, 1,000 events/s published for 10 s: latency from send to
// receipt (p50, p99) and the server's memory. Two servers run one after the other, each in its own
// process so their memory is measured apart: Egress (`egress.send.sse` → engine → stream hub →
// subscribers) and a baseline written directly with node:http `res.write` (no queue, no replay,
// no auth). Subscribers live in two further processes, so their work does not count as server time.
// Every event carries its send time, and every subscriber takes every event: each one is counted
// and its latency recorded (no sampling). The subscribers share two cores with the server, so they
// read as cheaply as they can — a raw socket per subscriber, a hand-written GET, the bytes scanned
// where they arrive for `"t":` — lest their own parsing become the latency being measured.
// Egress runs as shipped but for `replay: 0` (a new subscriber gets no history, as with the
// baseline): `coalesce` keeps its default of 10 ms, i.e. at most 100 writes per subscriber per
// second. COALESCE=20ms (any duration) trades latency for server CPU; the run prints the setting.
import { fork, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createServer, type ServerResponse } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { cpus, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { createEgress, memoryStore, silentLogger, type Duration } from '@egress/core';
import { sse, type SseOptions } from '@egress/sse';

const subscribers = Number(process.env.SUBSCRIBERS ?? 1000);
const eventsPerSecond = Number(process.env.RATE ?? 1000);
const seconds = Number(process.env.SECONDS ?? 10);
const rounds = Number(process.env.ROUNDS ?? 3);
/** The Egress server's options; COALESCE overrides the default coalescing interval. */
// The adapter validates the value when it is constructed, so a malformed COALESCE fails loudly there.
const egressOptions: SseOptions = { replay: 0, ...(process.env.COALESCE === undefined ? {} : { coalesce: process.env.COALESCE as Duration }) };
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
if (role !== undefined) {
  // A child leaves when the run ends or fails, and leaves through exit() so that `--cpu-prof` writes its profile.
  process.once('SIGTERM', () => process.exit(0));
  process.once('disconnect', () => process.exit(0));
}
const self = fileURLToPath(import.meta.url);

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
    const destination = sse(egressOptions);
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
      for (; sent < due; sent += 1) events.push({ t: Math.round(now() * 1000), n: sent });
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
  const getRequest = Buffer.from(`GET / HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAccept: text/event-stream\r\n\r\n`);
  const record = (sentAtMicroseconds: number, arrivedAt: number) => {
    received += 1;
    const bucket = Math.floor((arrivedAt - sentAtMicroseconds / 1000) / bucketWidth);
    histogram[bucket < 0 ? 0 : bucket >= bucketCount ? bucketCount - 1 : bucket]! += 1;
  };
  // Reads are handled synchronously one at a time, so every socket can read into the same buffer.
  const readBuffer = Buffer.allocUnsafe(256 * 1024);
  for (let index = 0; index < count; index += 1) {
    const reader = new StreamReader(record, () => {
      connectedCount += 1;
      if (connectedCount === count) {
        cpuBefore = process.cpuUsage();
        process.send!({ kind: 'connected', count } satisfies SubscriberMessage);
      }
    });
    const onRead = (length: number) => {
      reader.read(readBuffer, length);
      return true;
    };
    const socket = connect({ host: '127.0.0.1', port, noDelay: true, onread: { buffer: readBuffer, callback: onRead } });
    socket.once('connect', () => socket.write(getRequest));
    socket.once('close', () => {
      disconnected += 1;
    });
    socket.on('error', () => {});
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

const byte = (character: string) => character.charCodeAt(0);
const carriageReturn = byte('\r');
const lineFeed = byte('\n');
const quote = byte('"');
const digitZero = byte('0');
const timestampKey = Buffer.from('"t":');

function hexValue(character: number): number {
  if (character >= digitZero && character <= digitZero + 9) return character - digitZero;
  const lower = character | 0x20;
  if (lower >= byte('a') && lower <= byte('f')) return lower - byte('a') + 10;
  throw new Error(`not a chunk size digit: ${String.fromCharCode(character)}`);
}

/**
 * One subscriber's side of the connection, decoded byte by byte as it arrives: the response head,
 * then the body's framing (HTTP/1.1 chunks, or none when the body ends with the connection), then
 * the SSE bytes, in which it finds each event's `"t":` send time. The states carry over between
 * reads, so a frame, a chunk header or a number split by TCP anywhere is still counted once. No
 * strings are built: the cost per event is one pass over its bytes.
 */
class StreamReader {
  /** `head` until the blank line after the headers, then `size`, `data` and `end` for each chunk, or `unframed`. */
  private phase: 'head' | 'size' | 'data' | 'end' | 'unframed' | 'closed' = 'head';
  private head = '';
  private chunkRemaining = 0;
  private chunkSize = 0;
  /** How many bytes of `"t":` have matched so far, then 4 while the number's digits are read. */
  private matched = 0;
  private number = 0;

  constructor(
    private readonly record: (sentAtMicroseconds: number, arrivedAt: number) => void,
    private readonly onHead: () => void,
  ) {}

  read(buffer: Buffer, length: number): void {
    const arrivedAt = now();
    let position = 0;
    while (position < length) {
      switch (this.phase) {
        case 'head':
          position = this.readHead(buffer, position, length);
          break;
        case 'size': {
          const value = buffer[position++]!;
          if (value === lineFeed) {
            this.phase = this.chunkSize === 0 ? 'closed' : 'data';
            this.chunkRemaining = this.chunkSize;
            this.chunkSize = 0;
          } else if (value !== carriageReturn) {
            this.chunkSize = this.chunkSize * 16 + hexValue(value);
          }
          break;
        }
        case 'data': {
          const until = Math.min(length, position + this.chunkRemaining);
          this.scan(buffer, position, until, arrivedAt);
          this.chunkRemaining -= until - position;
          position = until;
          if (this.chunkRemaining === 0) this.phase = 'end';
          break;
        }
        case 'end':
          if (buffer[position++] === lineFeed) this.phase = 'size';
          break;
        case 'unframed':
          this.scan(buffer, position, length, arrivedAt);
          position = length;
          break;
        case 'closed':
          return;
      }
    }
  }

  private readHead(buffer: Buffer, position: number, length: number): number {
    const before = this.head.length;
    this.head += buffer.toString('latin1', position, length);
    const end = this.head.indexOf('\r\n\r\n');
    if (end < 0) return length;
    const head = this.head.slice(0, end + 2);
    if (!head.startsWith('HTTP/1.1 200 ')) throw new Error(`unexpected response: ${head}`);
    this.phase = /\r\ntransfer-encoding: *chunked\r\n/i.test(head) ? 'size' : 'unframed';
    this.onHead();
    return position + end + 4 - before;
  }

  private scan(buffer: Buffer, from: number, to: number, arrivedAt: number): void {
    let matched = this.matched;
    let number = this.number;
    for (let position = from; position < to; position += 1) {
      const value = buffer[position]!;
      if (matched === 4) {
        const digit = value - digitZero;
        if (digit >= 0 && digit <= 9) {
          number = number * 10 + digit;
          continue;
        }
        this.record(number, arrivedAt);
        matched = 0;
        number = 0;
      }
      matched = value === timestampKey[matched] ? matched + 1 : value === quote ? 1 : 0;
    }
    this.matched = matched;
    this.number = number;
  }
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
  const processes: ChildProcess[] = [];
  try {
    return await measure(variant, processes);
  } finally {
    for (const child of processes) child.kill();
  }
}

async function measure(variant: Variant, processes: ChildProcess[]) {
  const server = spawn({ SSE_BENCH_ROLE: 'server', SSE_BENCH_VARIANT: variant });
  processes.push(server);
  const { port } = await nextMessage<{ port: number }>(server, 'listening');
  const children = Array.from({ length: subscriberProcesses }, (_, index) => {
    const count = Math.floor(subscribers / subscriberProcesses) + (index < subscribers % subscriberProcesses ? 1 : 0);
    return spawn({ SSE_BENCH_ROLE: 'subscribers', SSE_BENCH_PORT: String(port), SSE_BENCH_COUNT: String(count) });
  });
  processes.push(...children);
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
  console.log(`${subscribers} subscribers, ${eventsPerSecond} events/s for ${seconds} s, ${rounds} round(s) each, alternating; every event counted`);
  console.log(`egress options: ${JSON.stringify(egressOptions)} (coalesce: ${egressOptions.coalesce ?? "default, '10ms'"})`);
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
  for (const [name, variant] of [['egress', egress], ['baseline', baseline]] as const) {
    if (variant.received !== variant.expected) console.log(`WARNING: ${name} subscribers received ${variant.received} of ${variant.expected} events: the latencies leave out what was lost`);
  }
  console.log(`${cpus().length} CPU(s); load average is that of the whole machine, other work included`);
  const result = { subscribers, eventsPerSecond, seconds, rounds, egressOptions, egress, baseline, ratio, targetP99Ms: 50, runs: results };
  writeFileSync(new URL('./results/sse.json', import.meta.url), `${JSON.stringify(result, null, 2)}\n`);
}

// Last, so that every class above is initialised whichever role this process plays.
if (role === 'server') await runServer(process.env.SSE_BENCH_VARIANT as Variant);
else if (role === 'subscribers') runSubscribers(Number(process.env.SSE_BENCH_PORT), Number(process.env.SSE_BENCH_COUNT));
else await orchestrate();
