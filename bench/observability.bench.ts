// What observability costs per event, metrics and traces together, as a ratio to the same workload
// without it in the same run (issue 19: under 10 %). Two workloads:
// - engine only: `send` + delivery through the memory store to a no-op destination, in batches of
//   100 and of 10. Nothing else costs anything here, so it is the upper bound;
// - delivery: what users run. @egress/http POSTs each event (single-event batches, 16 in flight) to
//   a node:http receiver in a child process, whose CPU is not counted, from the SQLite store on a
//   temp file, one `run()` per event (as bench/pipeline.bench.ts's SQLite contender).
// Variants: plain; metrics and tracing with no SDK (the API's no-op meter and tracer; the
// Prometheus registry still counts); metrics with an SDK MeterProvider; tracing with an SDK
// TracerProvider that records every span (a span processor that counts them and exports nothing, so
// the exporter's cost is left out; async context on, as NodeSDK sets it up); the same sampling 10 %
// of traces (ParentBased(TraceIdRatioBased(0.1)), the usual production setup); both with SDKs.
// Each variant runs in a process of its own, as an application runs one configuration, warmed up
// first; in every round each process runs the workload once, one process at a time, in an order that
// rotates from round to round, so that load from other processes falls on all alike; the overhead is
// the median over rounds of each round's ratio to its own plain run. The time measured is the CPU
// time the variant's process spent (process.cpuUsage), which a loaded machine disturbs far less than
// wall-clock time; wall-clock figures are reported beside it.
import { fork, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { createEgress, defineDestination, memoryStore, silentLogger, type Egress, type Tracing } from '@egress/core';
import { http } from '@egress/http';
import { createEgressMetrics, openTelemetryTracing } from '@egress/opentelemetry';
import { sqliteStore } from '@egress/store-sqlite';
import { context, createContextKey, trace, TraceFlags, type Context, type Span, type SpanOptions, type Tracer, type TracerProvider } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics';
import { ParentBasedSampler, TraceIdRatioBasedSampler, TracerProvider as SdkTracerProvider, type ReadableSpan, type SpanProcessor } from '@opentelemetry/sdk-trace';
import { startCountingReceiver } from './counting-receiver.js';

const engineEvents = Number(process.env.EGRESS_BENCH_OBSERVABILITY_ENGINE_EVENTS ?? 10_000);
// Many short rounds rather than a few long ones: the CPU time of the same code drifts by ±20 % over
// tens of seconds on this shared machine, and rounds that take about a second each, with each
// variant next to the others, let the drift fall on all of them alike. A run's fixed costs (a new
// queue file, an engine) are outside the measured time.
const deliveryEvents = Number(process.env.EGRESS_BENCH_OBSERVABILITY_DELIVERY_EVENTS ?? 2_000);
const rounds = Number(process.env.EGRESS_BENCH_OBSERVABILITY_ROUNDS ?? 25);
/**
 * Events each variant's process sends before it is measured, in passes of the workload's size, so
 * that its code is optimised: the first 10,000 deliveries cost twice the later ones, and the engine
 * alone needs some 100,000 events before its cost per event settles.
 */
const warmUpShare = Number(process.env.EGRESS_BENCH_OBSERVABILITY_WARM_UP ?? 1);
const warmUpEvents = { engine: 200_000 * warmUpShare, delivery: 10_000 * warmUpShare };
const concurrency = 16;

// ---- instrumentation ----------------------------------------------------------------------------

type Variant =
  | 'plain'
  | 'plain again'
  | 'OpenTelemetry set up, untraced'
  | 'no SDK'
  | 'metrics'
  | 'tracing, minimal tracer'
  | 'tracing'
  | 'tracing, sampled 10 %'
  | 'metrics and tracing';
// 'plain again' runs the plain workload a second time: its "overhead" is how far two runs of the
// same code differ on this machine, the floor below which no other figure means anything.
// 'OpenTelemetry set up, untraced' is the plain workload in a process whose OpenTelemetry SDK is
// registered as NodeSDK does it (AsyncLocalStorage context manager on), each request's work run in
// a context of its own as server instrumentation does, without Egress's tracing: what an
// application that already traces pays before it turns Egress's tracing on. On Node.js 20 that
// makes every promise of the process dearer.
// 'tracing, minimal tracer' is Egress's tracing on a tracer that gives each span a valid identity
// and does nothing else (MinimalTracerProvider): every context is stored, read back, sent as a header
// and made active as with an SDK, so it measures Egress's own share, apart from what the SDK does
// to make and record spans.
const variants: Variant[] = ['plain', 'plain again', 'OpenTelemetry set up, untraced', 'no SDK', 'metrics', 'tracing, minimal tracer', 'tracing', 'tracing, sampled 10 %', 'metrics and tracing'];
const sampledRatio = 0.1;
const requestKey = createContextKey('bench request');
/** The variants whose overhead is also given over 'OpenTelemetry set up, untraced'. */
const traced: Variant[] = ['tracing, minimal tracer', 'tracing', 'tracing, sampled 10 %', 'metrics and tracing'];

class PullReader extends MetricReader {
  protected override onShutdown(): Promise<void> {
    return Promise.resolve();
  }
  protected override onForceFlush(): Promise<void> {
    return Promise.resolve();
  }
}

/** Records nothing beyond a count, so what is measured is the SDK making the spans, not exporting them. */
class CountingSpanProcessor implements SpanProcessor {
  ended = new Map<string, number>();
  onStart(): void {}
  onEnd(span: ReadableSpan): void {
    const operation = span.name.slice(0, span.name.indexOf(' '));
    this.ended.set(operation, (this.ended.get(operation) ?? 0) + 1);
  }
  forceFlush(): Promise<void> {
    return Promise.resolve();
  }
  shutdown(): Promise<void> {
    return Promise.resolve();
  }
}

/** Hands out spans with valid, distinct ids that record nothing; counts them by operation. */
class MinimalTracerProvider implements TracerProvider {
  readonly started = new Map<string, number>();
  private spans = 0;

  getTracer(): Tracer {
    return {
      startSpan: (name: string, _options?: SpanOptions, parent?: Context): Span => {
        const operation = name.slice(0, name.indexOf(' '));
        this.started.set(operation, (this.started.get(operation) ?? 0) + 1);
        const spanId = (++this.spans).toString(16).padStart(16, '0');
        const traceId = (parent && trace.getSpanContext(parent)?.traceId) ?? spanId.padStart(32, '0');
        return trace.wrapSpanContext({ traceId, spanId, traceFlags: TraceFlags.SAMPLED });
      },
      startActiveSpan: () => {
        throw new Error('not used by Egress');
      },
    };
  }
}

interface Instrumentation {
  tracing?: Tracing;
  attach(egress: Egress): void;
  /**
   * Runs one request's work. With the context manager on, inside a context of its own, as an
   * application's HTTP server instrumentation runs each request: that is what turns Node.js 20's
   * promise hooks on for the whole process, a cost of using OpenTelemetry rather than of Egress.
   */
  handle<T>(request: () => T): T;
  /** Reads what was recorded, as a scrape or an export would, so that nothing is optimised away, and checks it. */
  finish(destination: string, events: number, batches: number): Promise<void>;
}

function instrument(variant: Variant): Instrumentation {
  const withMetrics = variant === 'no SDK' || variant === 'metrics' || variant === 'metrics and tracing';
  const sampled = variant === 'tracing, sampled 10 %';
  const minimal = variant === 'tracing, minimal tracer' ? new MinimalTracerProvider() : undefined;
  const withTracing = variant === 'no SDK' || minimal !== undefined || variant === 'tracing' || sampled || variant === 'metrics and tracing';
  const reader = new PullReader();
  const meterProvider = variant === 'metrics' || variant === 'metrics and tracing' ? new MeterProvider({ readers: [reader] }) : undefined;
  const spans = new CountingSpanProcessor();
  const sampler = sampled ? new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(sampledRatio) }) : undefined;
  const tracerProvider = withTracing && variant !== 'no SDK' && !minimal ? new SdkTracerProvider({ spanProcessors: [spans], ...(sampler ? { sampler } : {}) }) : undefined;
  const contextManager = tracerProvider !== undefined || minimal !== undefined || variant === 'OpenTelemetry set up, untraced';
  if (contextManager) context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  let metrics: ReturnType<typeof createEgressMetrics> | undefined;
  return {
    ...(withTracing ? { tracing: openTelemetryTracing({ ...(tracerProvider ? { tracerProvider } : {}), ...(minimal ? { tracerProvider: minimal } : {}) }) } : {}),
    handle: contextManager ? (request) => context.with(context.active().setValue(requestKey, true), request) : (request) => request(),
    attach(egress) {
      if (withMetrics) metrics = createEgressMetrics(egress, meterProvider ? { meterProvider } : {});
    },
    async finish(destination, events, batches) {
      if (metrics) {
        const text = await metrics.prometheus();
        const sent = `messaging_client_sent_messages_total{messaging_system="egress",messaging_operation_name="deliver",messaging_destination_name="${destination}"} ${events}\n`;
        if (!text.includes(sent)) throw new Error(`the exposition misses sent events (${variant})`);
        if (meterProvider) await reader.collect();
        metrics.close();
      }
      await meterProvider?.shutdown();
      if (tracerProvider) {
        const sends = spans.ended.get('send') ?? 0;
        const processes = spans.ended.get('process') ?? 0;
        const expected = sampled
          ? // Sends are sampled one in ten; a single event's delivery follows its send's decision.
            Math.abs(sends / events - sampledRatio) < sampledRatio / 2 && (batches === events ? processes === sends : processes <= batches)
          : sends === events && processes === batches;
        if (!expected) throw new Error(`${variant}: ${events} events in ${batches} batches, recorded ${JSON.stringify([...spans.ended])}`);
        await tracerProvider.shutdown();
      }
      if (minimal) {
        const started = JSON.stringify([...minimal.started]);
        if (started !== JSON.stringify([['send', events], ['process', batches]])) throw new Error(`${variant}: ${events} events in ${batches} batches, started ${started}`);
      }
      if (contextManager) context.disable();
    },
  };
}

// ---- workloads ----------------------------------------------------------------------------------

interface Measurement {
  cpu: number;
  wall: number;
}

/**
 * No forced garbage collection before a run: on Node.js 20 `gc()` also throws away compiled code,
 * and the 2,000 deliveries after it cost 2.3 times the CPU of the same deliveries without it (210
 * against 90 µs each), which would measure recompiling rather than the steady state.
 */
async function timed(work: () => Promise<void>): Promise<Measurement> {
  const started = performance.now();
  const cpuBefore = process.cpuUsage();
  await work();
  const cpuUsed = process.cpuUsage(cpuBefore);
  return { cpu: (cpuUsed.user + cpuUsed.system) / 1000, wall: performance.now() - started };
}

const enginePayloads = Array.from({ length: engineEvents }, (_, index) => ({ index, name: `user-${index}`, amount: index * 1.5 }));

async function engineOnly(variant: Variant, batchSize: number, events: number): Promise<Measurement> {
  let delivered = 0;
  const destination = defineDestination({
    name: 'noop',
    input: z.strictObject({ index: z.number(), name: z.string(), amount: z.number() }),
    async deliver(batch) {
      delivered += batch.events.length;
    },
  });
  const instrumentation = instrument(variant);
  const egress = createEgress({
    destinations: [destination],
    store: memoryStore({ maxEvents: events + 1 }),
    logger: silentLogger,
    policies: { noop: { batch: { maxEvents: batchSize, maxDelay: 0 }, concurrency: 4 } },
    ...(instrumentation.tracing ? { tracing: instrumentation.tracing } : {}),
  });
  instrumentation.attach(egress as unknown as Egress);
  await egress.ready();
  const measurement = await timed(async () => {
    for (let index = 0; index < events; index++) egress.send.noop(enginePayloads[index]!);
    await egress.flush();
  });
  await instrumentation.finish('noop', events, events / batchSize);
  await egress.close();
  if (delivered !== events) throw new Error(`delivered ${delivered} of ${events}`);
  return measurement;
}

// ---- processes ----------------------------------------------------------------------------------

interface Workload {
  readonly name: string;
  readonly events: number;
  /** Events sent before measuring. */
  readonly warmUp: number;
  /** Runs in the variant's own process; `url` is the receiver's. */
  run(variant: Variant, events: number, url: string): Promise<Measurement>;
}

const workloads: Workload[] = [
  { name: 'engine only, memory store, no-op destination, batches of 100', events: engineEvents, warmUp: warmUpEvents.engine, run: (variant, events) => engineOnly(variant, 100, events) },
  { name: 'engine only, memory store, no-op destination, batches of 10', events: engineEvents, warmUp: warmUpEvents.engine, run: (variant, events) => engineOnly(variant, 10, events) },
  { name: `delivery: @egress/http POST per event, ${concurrency} in flight, SQLite store, one run() per event`, events: deliveryEvents, warmUp: warmUpEvents.delivery, run: delivery },
];

let queues = 0;
async function delivery(variant: Variant, events: number, url: string): Promise<Measurement> {
  const instrumentation = instrument(variant);
  const egress = createEgress({
    destinations: [http()],
    store: sqliteStore({ path: join(process.env.EGRESS_BENCH_OBSERVABILITY_QUEUES!, `${process.pid}-${queues++}.db`) }),
    logger: silentLogger,
    ...(instrumentation.tracing ? { tracing: instrumentation.tracing } : {}),
  });
  instrumentation.attach(egress as unknown as Egress);
  await egress.ready();
  let delivered = 0;
  egress.on('delivered', (event) => (delivered += event.eventIds.length));
  const measurement = await timed(async () => {
    // As request handlers would: one unit of work per event, yielding now and then.
    const pending: Promise<void>[] = [];
    for (let n = 0; n < events; n++) {
      if (n % 100 === 99) await new Promise((resolve) => setImmediate(resolve));
      pending.push(instrumentation.handle(() => egress.run((send) => void send.http({ url, data: { n, type: 'order.created', customer: 'c_123', total: 4200 } }))));
      if (pending.length >= 256) await Promise.all(pending.splice(0));
    }
    await Promise.all(pending);
    await egress.flush();
  });
  if (delivered !== events) throw new Error(`delivered ${delivered} of ${events} (${variant})`);
  await instrumentation.finish('http', events, events);
  await egress.close();
  return measurement;
}

type ToVariant = { run: number };
type FromVariant = { measured: Measurement } | { failed: string };

/**
 * Each variant runs in a process of its own, as an application runs one configuration: in one
 * process, the variants would make the code they share slower for each other (call sites that see
 * spans and no spans, events with and without a trace, a context manager switched on and off) and
 * charge that to all of them. The processes take their turns one at a time, so only one works at once.
 */
class VariantProcess {
  private readonly child: ChildProcess;
  private readonly exited: Promise<unknown>;

  constructor(workload: number, variant: Variant, url: string, queues: string) {
    this.child = fork(fileURLToPath(import.meta.url), [], {
      execArgv: ['--expose-gc', '--import', 'tsx'],
      env: { ...process.env, EGRESS_BENCH_OBSERVABILITY_VARIANT: JSON.stringify({ workload, variant, url }), EGRESS_BENCH_OBSERVABILITY_QUEUES: queues },
      stdio: 'inherit',
    });
    this.exited = new Promise((resolve) => this.child.once('exit', resolve));
  }

  async run(events: number): Promise<Measurement> {
    const reply = new Promise<FromVariant>((resolve, reject) => {
      this.child.once('message', resolve);
      void this.exited.then(() => reject(new Error('a variant process exited')));
    });
    this.child.send({ run: events } satisfies ToVariant);
    const answer = await reply;
    if ('failed' in answer) throw new Error(answer.failed);
    return answer.measured;
  }

  async stop(): Promise<void> {
    this.child.kill();
    await this.exited;
  }
}

async function serveVariant(): Promise<void> {
  const { workload, variant, url } = JSON.parse(process.env.EGRESS_BENCH_OBSERVABILITY_VARIANT!) as { workload: number; variant: Variant; url: string };
  process.on('message', (message: ToVariant) => {
    workloads[workload]!.run(variant, message.run, url).then(
      (measured) => process.send!({ measured } satisfies FromVariant),
      (error: unknown) => process.send!({ failed: error instanceof Error ? (error.stack ?? error.message) : String(error) } satisfies FromVariant),
    );
  });
}

async function main(): Promise<void> {
  const receiver = await startCountingReceiver();
  const url = `${receiver.origin}/hook`;
  const sqliteRoot = mkdtempSync(join(tmpdir(), 'egress-bench-observability-'));
  const measured = workloads.map(() => new Map<Variant, Measurement[]>(variants.map((variant) => [variant, []])));
  const loadAverageAtStart = loadavg();
  try {
    for (const [index, workload] of workloads.entries()) {
      const processes = new Map(variants.map((variant) => [variant, new VariantProcess(index, variant, url, sqliteRoot)]));
      try {
        const run = async (variant: Variant) => {
          const before = (await receiver.counts()).count;
          const measurement = await processes.get(variant)!.run(workload.events);
          const arrived = (await receiver.counts()).count - before;
          const expected = workload.run === delivery ? workload.events : 0;
          if (arrived !== expected) throw new Error(`${arrived} of ${expected} requests arrived (${variant})`);
          return measurement;
        };
        for (let pass = 0; pass < Math.ceil(workload.warmUp / workload.events); pass++) for (const variant of variants) await run(variant);
        for (let round = 0; round < rounds; round++) {
          for (let offset = 0; offset < variants.length; offset++) {
            const variant = variants[(round + offset) % variants.length]!;
            measured[index]!.get(variant)!.push(await run(variant));
          }
        }
      } finally {
        await Promise.all([...processes.values()].map((child) => child.stop()));
      }
      console.log(`${workload.name}: ${rounds} rounds done`);
    }
  } finally {
    await receiver.stop();
    rmSync(sqliteRoot, { recursive: true, force: true });
  }
  const loadAverageAtEnd = loadavg();

  const quantile = (values: number[], share: number) => [...values].sort((a, b) => a - b)[Math.floor((values.length - 1) * share + 0.5)]!;
  const median = (values: number[]) => quantile(values, 0.5);
  const results = workloads.map((workload, index) => {
    const byVariant = measured[index]!;
    const plain = byVariant.get('plain')!;
    const ratios = (variant: Variant, field: keyof Measurement) => byVariant.get(variant)!.map((measurement, round) => measurement[field] / plain[round]![field] - 1);
    const overhead = (variant: Variant, field: keyof Measurement) => Number(median(ratios(variant, field)).toFixed(4));
    // Egress's tracing against the same process with the SDK already set up: its own share.
    const overheadOver = (variant: Variant, baseline: Variant) =>
      Number(median(byVariant.get(variant)!.map((measurement, round) => measurement.cpu / byVariant.get(baseline)![round]!.cpu - 1)).toFixed(4));
    const variantsMeasured = Object.fromEntries(
      variants.map((variant) => {
        const cpu = median(byVariant.get(variant)!.map((measurement) => measurement.cpu));
        const wall = median(byVariant.get(variant)!.map((measurement) => measurement.wall));
        return [
          variant,
          {
            cpuMicrosecondsPerEvent: Number(((cpu * 1000) / workload.events).toFixed(2)),
            wallMilliseconds: Math.round(wall),
            eventsPerSecond: Math.round(workload.events / (wall / 1000)),
            ...(variant === 'plain'
              ? {}
              : {
                  cpuOverhead: overhead(variant, 'cpu'),
                  // The same question asked another way; far from cpuOverhead, the rounds disagreed too much to trust either.
                  cpuOverheadOfMedians: Number((cpu / median(plain.map((measurement) => measurement.cpu)) - 1).toFixed(4)),
                  wallOverhead: overhead(variant, 'wall'),
                  ...(variant === 'plain again' || variant === 'OpenTelemetry set up, untraced' ? {} : { meetsTarget: overhead(variant, 'cpu') < 0.1 }),
                  ...(traced.includes(variant) ? { cpuOverheadOverOpenTelemetryApp: overheadOver(variant, 'OpenTelemetry set up, untraced') } : {}),
                  // Half the rounds' ratios fall between these two: how far one round can be trusted.
                  cpuOverheadMiddleHalf: [0.25, 0.75].map((share) => Number(quantile(ratios(variant, 'cpu'), share).toFixed(3))),
                }),
          },
        ];
      }),
    );
    console.log(`\n${workload.name}, ${workload.events} events:`);
    console.table(Object.fromEntries(Object.entries(variantsMeasured).map(([variant, { cpuOverheadMiddleHalf, ...figures }]) => [variant, { ...figures, ...(cpuOverheadMiddleHalf ? { middleHalf: cpuOverheadMiddleHalf.join(' … ') } : {}) }])));
    return { workload: workload.name, events: workload.events, variants: variantsMeasured };
  });

  const round2 = (values: number[]) => values.map((value) => Number(value.toFixed(2)));
  writeFileSync(
    new URL('./results/observability.json', import.meta.url),
    `${JSON.stringify(
      {
        benchmark: 'observability',
        rounds,
        measured: 'CPU time of this process per event (the receiver runs in a child process and is not counted); cpuOverhead is the median over rounds of each round\'s ratio to its own plain run, minus 1, and cpuOverheadMiddleHalf the quartiles of those ratios; cpuOverheadOfMedians the ratio of the variant\'s median to the plain median, minus 1; wallOverhead as cpuOverhead for wall-clock time',
        variants: {
          plain: 'no metrics, no tracing option',
          'plain again': 'the plain workload again: how far two runs of the same code differ',
          'OpenTelemetry set up, untraced': 'no metrics, no tracing option, in a process with the AsyncLocalStorage context manager enabled and each request run in a context of its own (delivery workload), as an application already using OpenTelemetry has it; tracing variants report cpuOverheadOverOpenTelemetryApp against it',
          'no SDK': 'createEgressMetrics() (Prometheus registry counting) and openTelemetryTracing(), no OpenTelemetry SDK registered',
          'tracing, minimal tracer': "openTelemetryTracing() on a tracer that gives every span a valid identity and records nothing, with the context manager on: Egress's own share of tracing (contexts stored, read back, sent and made active), apart from the SDK's work on spans",
          metrics: 'createEgressMetrics() with an SDK MeterProvider',
          tracing: 'openTelemetryTracing() with an SDK TracerProvider recording every span, no exporter, AsyncLocalStorage context manager',
          'tracing, sampled 10 %': 'the same with the sampler ParentBased(TraceIdRatioBased(0.1)): one trace in ten recorded, the rest propagated',
          'metrics and tracing': 'both, with their SDKs',
        },
        target: 'overhead under 0.10 of the plain run, in the same run',
        node: process.version,
        // The machine is shared: its load during the run says how far the absolute figures can be trusted.
        machine: { cores: cpus().length, loadAverageAtStart: round2(loadAverageAtStart), loadAverageAtEnd: round2(loadAverageAtEnd) },
        results,
        measuredAt: new Date().toISOString(),
      },
      null,
      2,
    )}\n`,
  );
}

if (process.env.EGRESS_BENCH_OBSERVABILITY_VARIANT) await serveVariant();
else await main();
