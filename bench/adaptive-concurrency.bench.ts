// Delivers a steady stream of HTTP events to a receiver whose capacity changes during the run, with
// adaptive concurrency and with fixed concurrency 1, 16 and 64, one after the other in the same run.
// The receiver (a node:http server in a forked child process) serves N requests at once, each after
// a fixed service time; up to N more wait in its queue and any beyond get 503. N goes 4 → 32 → 8 in
// three phases. Reported per phase and overall: events served per second and the p99 of the time
// from `$send` to the receiver serving the event, and for each fixed contender the ratios against
// adaptive concurrency.
import { fork, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createServer, type ServerResponse } from 'node:http';
import { loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createEgress, memoryStore, silentLogger, type ConcurrencyChange, type PolicyOptions } from '@egress/core';
import { http } from '@egress/http';

const here = dirname(fileURLToPath(import.meta.url));
const serviceMs = Number(process.env.EGRESS_BENCH_ARC_SERVICE_MS ?? 20);
const phaseMs = Number(process.env.EGRESS_BENCH_ARC_PHASE_MS ?? 5000);
const offeredPerSecond = Number(process.env.EGRESS_BENCH_ARC_RATE ?? 1000);
const capacities = [4, 32, 8];

interface PhaseFigures {
  served: number;
  refused: number;
  latencies: number[];
}

type ReceiverMessage = { port: number } | { phases: PhaseFigures[] } | { ok: true };

if (process.argv[2] === 'receiver') {
  let capacity = capacities[0]!;
  let phase = 0;
  let active = 0;
  let phases: PhaseFigures[] = [];
  const waiting: { sentAt: number; response: ServerResponse }[] = [];
  const figures = () => (phases[phase] ??= { served: 0, refused: 0, latencies: [] });
  const serve = (sentAt: number, response: ServerResponse) => {
    active += 1;
    setTimeout(() => {
      active -= 1;
      const current = figures();
      current.served += 1;
      current.latencies.push(Date.now() - sentAt);
      response.end('ok');
      while (active < capacity && waiting.length > 0) {
        const next = waiting.shift()!;
        serve(next.sentAt, next.response);
      }
    }, serviceMs);
  };
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const { sentAt } = JSON.parse(Buffer.concat(chunks).toString()) as { sentAt: number };
      if (active < capacity) serve(sentAt, response);
      else if (waiting.length < capacity) waiting.push({ sentAt, response });
      else {
        figures().refused += 1;
        response.writeHead(503).end('busy');
      }
    });
  });
  server.keepAliveTimeout = 60_000;
  server.listen(0, '127.0.0.1', () => {
    const address = server.address();
    process.send!({ port: typeof address === 'object' && address ? address.port : 0 } satisfies ReceiverMessage);
  });
  process.on('message', (message: { phase?: number; collect?: true; stop?: true }) => {
    if (message.phase !== undefined) {
      phase = message.phase;
      capacity = capacities[phase]!;
      while (active < capacity && waiting.length > 0) {
        const next = waiting.shift()!;
        serve(next.sentAt, next.response);
      }
      process.send!({ ok: true } satisfies ReceiverMessage);
    }
    if (message.collect) {
      process.send!({ phases } satisfies ReceiverMessage);
      phases = [];
    }
    if (message.stop) server.close(() => process.exit(0));
  });
} else {
  await main();
}

function ask(child: ChildProcess, message: object): Promise<ReceiverMessage> {
  return new Promise((resolve) => {
    child.once('message', (reply: ReceiverMessage) => resolve(reply));
    child.send(message);
  });
}

function p99(values: number[]): number | undefined {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((first, second) => first - second);
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.99))];
}

interface Summary {
  perSecond: number;
  p99Ms: number | undefined;
  served: number;
  refused: number;
}

interface ContenderResult {
  phases: Summary[];
  overall: Summary;
  sent: number;
  /** Events sent and not served when the last phase ended. */
  backlog: number;
  /** For adaptive: the limit at the end of each phase. */
  limits?: number[];
}

async function main(): Promise<void> {
  const child = fork(fileURLToPath(import.meta.url), ['receiver'], { execArgv: ['--import', 'tsx'], stdio: 'inherit' });
  const { port } = (await new Promise<ReceiverMessage>((resolve) => child.once('message', resolve))) as { port: number };
  const url = `http://127.0.0.1:${port}/events`;
  const contenders: { name: string; concurrency: PolicyOptions['concurrency'] }[] = [
    { name: 'adaptive', concurrency: 'adaptive' },
    { name: 'fixed 1', concurrency: 1 },
    { name: 'fixed 16', concurrency: 16 },
    { name: 'fixed 64', concurrency: 64 },
  ];
  const load = loadavg().map((value) => Math.round(value * 100) / 100);
  const results: Record<string, ContenderResult> = {};

  for (const contender of contenders) {
    (globalThis as { gc?: () => void }).gc?.();
    const egress = createEgress({
      destinations: [http()],
      store: memoryStore(),
      logger: silentLogger,
      // The same short retry schedule for every contender, so a refused request comes back within the run.
      policies: { http: { concurrency: contender.concurrency, retry: { initialDelay: 100, maxDelay: 1000, maxAttempts: 1000 } } },
    });
    await egress.ready();
    let limit = 1;
    egress.on('concurrency', (change: ConcurrencyChange) => (limit = change.limit));
    const limits: number[] = [];
    let sent = 0;
    const started = Date.now();
    // An open-loop producer: events go out at the offered rate whatever the receiver does.
    const producer = setInterval(() => {
      const due = Math.floor(((Date.now() - started) * offeredPerSecond) / 1000) - sent;
      for (let index = 0; index < due; index += 1) {
        egress.send.http({ url, data: { sentAt: Date.now() } });
        sent += 1;
      }
    }, 5);
    for (let phase = 0; phase < capacities.length; phase += 1) {
      await ask(child, { phase });
      await new Promise((resolve) => setTimeout(resolve, phaseMs));
      limits.push(limit);
    }
    clearInterval(producer);
    const { phases } = (await ask(child, { collect: true })) as { phases: PhaseFigures[] };
    await egress.close({ timeout: 100 });
    // What the close left in flight lands in no phase: collect it away before the next contender.
    await new Promise((resolve) => setTimeout(resolve, 500));
    await ask(child, { phase: 0 });
    await ask(child, { collect: true });

    const summaries = capacities.map((_capacity, index): Summary => {
      const figures = phases[index] ?? { served: 0, refused: 0, latencies: [] };
      return { perSecond: Math.round((figures.served * 1000) / phaseMs), p99Ms: p99(figures.latencies), served: figures.served, refused: figures.refused };
    });
    const all = phases.flatMap((figures) => figures.latencies);
    const served = summaries.reduce((total, summary) => total + summary.served, 0);
    results[contender.name] = {
      phases: summaries,
      overall: { perSecond: Math.round((served * 1000) / (phaseMs * capacities.length)), p99Ms: p99(all), served, refused: summaries.reduce((total, summary) => total + summary.refused, 0) },
      sent,
      backlog: sent - served,
      ...(contender.concurrency === 'adaptive' ? { limits } : {}),
    };
    const row = results[contender.name]!;
    console.log(
      `${contender.name.padEnd(9)} ${row.phases.map((summary, index) => `N=${capacities[index]}: ${summary.perSecond}/s p99 ${summary.p99Ms} ms, ${summary.refused} refused`).join(' | ')} | overall ${row.overall.perSecond}/s p99 ${row.overall.p99Ms} ms, backlog ${row.backlog}${row.limits ? `, limits ${row.limits.join(' → ')}` : ''}`,
    );
  }
  child.send({ stop: true });

  const adaptive = results.adaptive!;
  const ratio = (value: number | undefined, against: number | undefined) => (value === undefined || against === undefined || against === 0 ? null : Math.round((value / against) * 100) / 100);
  const versus = Object.fromEntries(
    contenders
      .filter((contender) => contender.name !== 'adaptive')
      .map(({ name }) => {
        const fixed = results[name]!;
        return [
          name,
          {
            throughput: { phases: adaptive.phases.map((summary, index) => ratio(summary.perSecond, fixed.phases[index]!.perSecond)), overall: ratio(adaptive.overall.perSecond, fixed.overall.perSecond) },
            p99: { phases: adaptive.phases.map((summary, index) => ratio(summary.p99Ms, fixed.phases[index]!.p99Ms)), overall: ratio(adaptive.overall.p99Ms, fixed.overall.p99Ms) },
          },
        ];
      }),
  );
  console.log('adaptive ÷ fixed (throughput above 1 and p99 below 1 favour adaptive):');
  for (const [name, figures] of Object.entries(versus)) {
    console.log(`  vs ${name.padEnd(8)} throughput ${figures.throughput.phases.join(' / ')} (overall ${figures.throughput.overall}), p99 ${figures.p99.phases.join(' / ')} (overall ${figures.p99.overall})`);
  }
  mkdirSync(join(here, 'results'), { recursive: true });
  writeFileSync(
    join(here, 'results', 'adaptive-concurrency.json'),
    `${JSON.stringify(
      {
        benchmark: 'adaptive-concurrency',
        receiver: `node:http in a forked child process, loopback: serves N at once in ${serviceMs} ms each, queues up to N more, 503 beyond`,
        node: process.version,
        loadAverage: load,
        offeredEventsPerSecond: offeredPerSecond,
        phaseMs,
        capacities,
        retry: { initialDelay: 100, maxDelay: 1000 },
        contenders: results,
        adaptiveOverFixed: versus,
      },
      null,
      2,
    )}\n`,
  );
}
