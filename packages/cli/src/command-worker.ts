import { parseDuration, type Egress } from '@egress/core';
import type { ObservabilityServer, serveObservability } from '@egress/opentelemetry';
import { configOption, type Command } from './command.js';
import type { ConfigMetrics } from './config-loader.js';
import { openEngine } from './open-config.js';
import { importOptional } from './optional-import.js';
import { UsageError, exitCodes } from './terminal-output.js';

export const workerCommand: Command = {
  name: 'worker',
  summary: 'Deliver from the configured durable store until SIGTERM or SIGINT, then shut down gracefully.',
  usage: '[-c file] [--shutdown-timeout 10s] [--report-every 10s] [--metrics host:port]',
  help: `
Delivers what producers enqueued in the configured store (SQLite or PostgreSQL). Several workers may
share one PostgreSQL store: each claims batches with a lease, and a crashed worker's batches are
claimed again when its lease expires.

A worker started while its database is unreachable waits for it, trying again with backoff, and
starts delivering once it is reachable, without a restart; it says so once when it starts waiting
and once when the store is back, also when the database goes away later.

On SIGTERM or SIGINT the worker stops claiming, delivers the batches it holds, waits for in-flight
deliveries up to --shutdown-timeout and leaves everything else in the store; a second signal exits
at once (exit code 1).

With --metrics (or \`metrics.listen\` in the config) the worker serves /metrics in the Prometheus
text format, /healthz (200 while the process runs) and /readyz (200 once started, with the store
connected and every destination healthy; 503 and the reasons as JSON otherwise, also while shutting
down). It needs the @egress/opentelemetry package.

With \`tracing: true\` in the config the worker traces each delivery as a span linked to its
events' send spans, and passes its context to the destination (traceparent). Spans go to
the OpenTelemetry SDK that a setup file registers before the worker starts, e.g.
  NODE_OPTIONS='--import ./otel-setup.mjs' egress worker -c egress.config.yaml
It needs the @egress/opentelemetry and @opentelemetry/api packages.

Options:
  -c, --config <file>          config file (default: egress.config.yaml)
  --shutdown-timeout <time>    how long to wait for in-flight deliveries (default 10s)
  --report-every <time>        print delivered/retrying/dead counts this often when they change (default 10s)
  --metrics <host:port>        serve /metrics, /healthz and /readyz here, e.g. 0.0.0.0:9464

Examples:
  egress worker -c egress.config.yaml
  EGRESS_PG_PASSWORD=... egress worker -c production.yaml --shutdown-timeout 30s
  egress worker -c egress.config.yaml --metrics 0.0.0.0:9464`,
  options: { ...configOption, 'shutdown-timeout': { type: 'string' }, 'report-every': { type: 'string' }, metrics: { type: 'string' } },
  async run({ values, io }) {
    const shutdownTimeout = durationOption(values['shutdown-timeout'], '--shutdown-timeout', 10_000);
    const reportEvery = durationOption(values['report-every'], '--report-every', 10_000);
    const { file, config, listeners, metrics, tracing, egress } = await openEngine(values.config, io, 'worker', 'everything', { waitForStore: false, traced: true });
    // Heard from here on, so that a signal while the store is still away (or while anything else
    // starts) stops the worker gracefully rather than killing it.
    const stop = stopSignal();
    // Served before the store opens: /healthz answers and /readyz says what it waits for.
    let observability: ObservabilityServer | undefined;
    try {
      observability = await serveMetrics(egress, typeof values.metrics === 'string' ? values.metrics : undefined, metrics);
    } catch (error) {
      stop.dispose();
      await egress.close({ timeout: shutdownTimeout });
      throw error;
    }
    if (observability) io.stderr.write(`egress worker: metrics at ${observability.url}/metrics, health at /healthz and /readyz\n`);
    // The wait itself is reported by the engine's warning, once per outage; the recovery here.
    let unreachableSince: number | undefined;
    const stopWatchingStore = egress.on('store', (status) => {
      if (status.state === 'unreachable') unreachableSince ??= status.since;
      if (status.state !== 'connected' || unreachableSince === undefined) return;
      const seconds = ((status.since - unreachableSince) / 1000).toFixed(1);
      unreachableSince = undefined;
      io.stderr.write(`egress worker: the ${status.kind} store is reachable again after ${seconds} s; delivering\n`);
    });
    let signalledBeforeReady: NodeJS.Signals | undefined;
    try {
      signalledBeforeReady = await Promise.race([egress.ready().then(() => undefined), stop.signal]);
    } catch (error) {
      stop.dispose();
      stopWatchingStore();
      await egress.close({ timeout: shutdownTimeout });
      await observability?.close();
      throw error;
    }
    if (signalledBeforeReady) {
      stopWatchingStore();
      io.stderr.write(`egress worker: ${signalledBeforeReady} before the store opened: stopping (up to ${shutdownTimeout} ms)\n`);
      observability?.health.stopping();
      try {
        await egress.close({ timeout: shutdownTimeout });
      } finally {
        await observability?.close();
      }
      io.stderr.write('egress worker: stopped\n');
      return exitCodes.ok;
    }
    const names = config.destinations.map((destination) => destination.name).join(', ');
    if (!config.store.durable) io.stderr.write(`warning: the ${config.store.kind} store is not durable: a worker process sees only what it enqueues itself\n`);
    io.stderr.write(`egress worker: delivering to ${names} from the ${config.store.kind} store (${file}); SIGTERM or Ctrl-C stops\n`);
    if (tracing) io.stderr.write('egress worker: tracing deliveries with the OpenTelemetry tracer provider registered in this process\n');
    for (const listener of listeners) {
      const destination = config.destinations.find((candidate) => candidate.name === listener.destination) as { listen(port: number, host?: string): Promise<{ url: string }> } | undefined;
      const address = await destination!.listen(listener.port, listener.host).catch(async (error: unknown) => {
        stop.dispose();
        await egress.close({ timeout: shutdownTimeout });
        await observability?.close();
        throw error;
      });
      io.stderr.write(`egress worker: ${listener.destination} serves subscribers at ${address.url}\n`);
    }

    const counts = { delivered: 0, retrying: 0, dead: 0 };
    let reported = '';
    const unsubscribe = [
      stopWatchingStore,
      egress.on('delivered', (event) => (counts.delivered += event.eventIds.length)),
      egress.on('retrying', (event) => (counts.retrying += event.eventIds.length)),
      egress.on('dead', (event) => {
        counts.dead += event.eventIds.length;
        io.stderr.write(`dead [${event.destination}] ${event.eventIds.length} event${event.eventIds.length === 1 ? '' : 's'} after ${event.attempt} attempt${event.attempt === 1 ? '' : 's'}: ${event.error.name}: ${event.error.message}\n`);
      }),
    ];
    const summary = () => `delivered ${counts.delivered}, retried ${counts.retrying}, dead ${counts.dead}`;
    const timer = setInterval(() => {
      const text = summary();
      if (text !== reported) io.stderr.write(`${new Date().toISOString()} ${text}\n`);
      reported = text;
    }, reportEvery);

    const signal = await stop.signal;
    clearInterval(timer);
    io.stderr.write(`egress worker: ${signal}: finishing in-flight deliveries (up to ${shutdownTimeout} ms); the rest stays in the store\n`);
    const forced = () => {
      io.stderr.write('egress worker: second signal: exiting without waiting\n');
      process.exit(exitCodes.failure);
    };
    process.once('SIGTERM', forced);
    process.once('SIGINT', forced);
    observability?.health.stopping();
    try {
      await egress.close({ timeout: shutdownTimeout });
    } finally {
      await observability?.close();
      for (const stop of unsubscribe) stop();
      process.off('SIGTERM', forced);
      process.off('SIGINT', forced);
    }
    io.stderr.write(`egress worker: stopped (${summary()})\n`);
    return exitCodes.ok;
  },
};

/** Serves the metrics and health endpoints when `--metrics` or the config's `metrics.listen` asks for them. */
async function serveMetrics(egress: Egress, flag: string | undefined, configured: ConfigMetrics | undefined): Promise<ObservabilityServer | undefined> {
  const listen = flag ?? configured?.listen;
  if (listen === undefined) return undefined;
  const imported = await importOptional('@egress/opentelemetry');
  if (!imported.ok) throw new UsageError(`--metrics: ${imported.message}`);
  const serve = imported.module.serveObservability as typeof serveObservability;
  try {
    return await serve(egress, { ...configured, listen });
  } catch (error) {
    throw new UsageError(`--metrics: ${error instanceof Error ? error.message : String(error)}`);
  }
}

function durationOption(value: unknown, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  const parsed = parseDuration(value);
  if (typeof parsed !== 'number') throw new UsageError(`${name}: ${parsed.error}`);
  return parsed;
}

/** The first SIGTERM or SIGINT, once it comes; `dispose` stops listening for it. */
function stopSignal(): { signal: Promise<NodeJS.Signals>; dispose(): void } {
  let onTerm: () => void = () => undefined;
  let onInt: () => void = () => undefined;
  const dispose = () => {
    process.off('SIGTERM', onTerm);
    process.off('SIGINT', onInt);
  };
  const signal = new Promise<NodeJS.Signals>((resolve) => {
    onTerm = () => {
      dispose();
      resolve('SIGTERM');
    };
    onInt = () => {
      dispose();
      resolve('SIGINT');
    };
    process.on('SIGTERM', onTerm);
    process.on('SIGINT', onInt);
  });
  return { signal, dispose };
}
