import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import parsePrometheusTextFormat, { type ParsedFamily, type ParsedSample } from 'parse-prometheus-text-format';
import { createEgress, defineDestination } from '@egress/core';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { z } from 'zod';
import { createEgressHealth, createEgressMetrics, createObservabilityFetchHandler, createObservabilityHandler, parseListenAddress, serveObservability, type ObservabilityServer } from '../../src/index.js';
import { runKnownWorkload, startReceiver, webhookEgress } from './delivery-workload.js';

function family(families: ParsedFamily[], name: string): ParsedFamily {
  const found = families.find((candidate) => candidate.name === name);
  expect(found, `${name} in the exposition`).toBeDefined();
  return found!;
}

function sample(found: ParsedFamily, labels: Record<string, string>): ParsedSample | undefined {
  return found.metrics.find((metric) => {
    const given = metric.labels ?? {};
    return Object.keys(given).length === Object.keys(labels).length && Object.entries(labels).every(([key, value]) => given[key] === value);
  });
}

describe('the Prometheus endpoint, scraped over HTTP', () => {
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  let egress: ReturnType<typeof webhookEgress>;
  let server: ObservabilityServer;

  beforeEach(async () => {
    receiver = await startReceiver();
    egress = webhookEgress();
    server = await serveObservability(egress, { listen: '127.0.0.1:0' });
  });

  afterEach(async () => {
    await server.close();
    await egress.close({ timeout: 1000 });
    await receiver.close();
  });

  test('serves names, labels and values of a known workload, retries and dead letters included, in the text format', async () => {
    await runKnownWorkload(egress, receiver.url);
    const response = await fetch(`${server.url}/metrics`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
    const text = await response.text();
    const families = parsePrometheusTextFormat(text);
    const [letter] = await egress.deadLetters.list();
    const errorType = letter!.error.name;
    const deliver = { messaging_system: 'egress', messaging_operation_name: 'deliver', messaging_destination_name: 'http' };

    const sent = family(families, 'messaging_client_sent_messages_total');
    expect(sent.type).toBe('COUNTER');
    expect(sample(sent, deliver)?.value).toBe('4');
    expect(sample(sent, { ...deliver, error_type: errorType })?.value).toBe('1');
    expect(sent.metrics.reduce((total, metric) => total + Number(metric.value), 0)).toBe(6);

    // The parser keeps the buckets of a histogram's last series only and drops labelled _sum and
    // _count lines, so histograms are checked where they hold one series, through the +Inf bucket.
    for (const name of ['messaging_client_operation_duration_seconds', 'messaging_process_duration_seconds', 'egress_delivery_latency_seconds']) {
      expect(family(families, name).type).toBe('HISTOGRAM');
    }
    const latency = family(families, 'egress_delivery_latency_seconds').metrics[0]!.buckets!;
    expect(latency['+Inf']).toBe('4');
    const byBound = Object.entries(latency).sort(([a], [b]) => (a === '+Inf' ? 1 : b === '+Inf' ? -1 : Number(a) - Number(b)));
    const cumulative = byBound.map(([, count]) => Number(count));
    expect(cumulative).toEqual([...cumulative].sort((a, b) => a - b));
    expect(Object.keys(latency)).toContain('0.005');
    // Six attempts in all, four of them successful, read from the _count lines themselves.
    const counts = [...text.matchAll(/^messaging_client_operation_duration_seconds_count\{(.*)\} (\d+)$/gm)];
    expect(counts.reduce((total, match) => total + Number(match[2]), 0)).toBe(6);
    expect(counts.find((match) => !match[1]!.includes('error_type'))?.[2]).toBe('4');

    expect(sample(family(families, 'egress_events_retried_total'), { messaging_destination_name: 'http', error_type: family(families, 'egress_events_retried_total').metrics[0]!.labels!.error_type! })?.value).toBe('1');
    expect(sample(family(families, 'egress_events_dead_lettered_total'), { messaging_destination_name: 'http', error_type: errorType })?.value).toBe('1');

    const partition = { messaging_destination_name: 'http', messaging_destination_partition_id: new URL(receiver.url).origin };
    const deadLetters = family(families, 'egress_dead_letters');
    expect(deadLetters.type).toBe('GAUGE');
    expect(sample(deadLetters, partition)?.value).toBe('1');
    expect(sample(family(families, 'egress_events_waiting'), partition)?.value).toBe('0');
    expect(sample(family(families, 'egress_events_in_flight'), partition)?.value).toBe('0');
    expect(sample(family(families, 'egress_events_oldest_age_seconds'), partition)?.value).toBe('0');
    expect(sample(family(families, 'egress_events_buffered'), { messaging_destination_name: 'http' })?.value).toBe('0');
    expect(sample(family(families, 'egress_store_up'), { egress_store_kind: 'memory' })?.value).toBe('1');
  });

  test('every metric the Grafana dashboard in docs queries is one the endpoint serves', async () => {
    await runKnownWorkload(egress, receiver.url);
    const families = parsePrometheusTextFormat(await (await fetch(`${server.url}/metrics`)).text());
    const served = new Set(families.map((found) => found.name));
    const labels = new Set(families.flatMap((found) => found.metrics.flatMap((metric) => Object.keys(metric.labels ?? {}))));
    const dashboard = readFileSync(new URL('../../../../docs/grafana/egress-dashboard.json', import.meta.url), 'utf8');
    const names = [...dashboard.matchAll(/\b((?:egress|messaging)_[a-z_]+)\b/g)].map((match) => match[1]!);
    const queried = new Set(names.filter((name) => !labels.has(name)).map((name) => name.replace(/_bucket$/, '')));
    expect(queried.size).toBeGreaterThan(8);
    for (const name of queried) expect(served, name).toContain(name);
  });

  test('/healthz answers alive, /readyz ready once started; other paths 404 and other methods 405', async () => {
    await egress.ready();
    const health = await fetch(`${server.url}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: 'alive' });
    const ready = await fetch(`${server.url}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({ status: 'ready', ready: true, reasons: [], store: { kind: 'memory', state: 'connected' }, destinations: { http: { ok: true } } });
    expect((await fetch(`${server.url}/nothing-here`)).status).toBe(404);
    expect((await fetch(`${server.url}/metrics`, { method: 'POST' })).status).toBe(405);
  });

  test('/readyz turns unready with a reason once the engine is stopping', async () => {
    await egress.ready();
    server.health.stopping();
    const response = await fetch(`${server.url}/readyz`);
    expect(response.status).toBe(503);
    expect(await response.json()).toMatchObject({ status: 'unready', reasons: ['the engine is shutting down'] });
  });

  test('refuses a listen address that is not host:port, saying what it expected', async () => {
    expect(parseListenAddress('[::1]:9464')).toEqual({ host: '::1', port: 9464 });
    expect(parseListenAddress('0.0.0.0:9464')).toEqual({ host: '0.0.0.0', port: 9464 });
    for (const bad of ['9464', 'localhost', 'localhost:99999', 'http://localhost:9464']) {
      expect(() => parseListenAddress(bad)).toThrow(/expected host:port/);
    }
    const taken = new URL(server.url);
    await expect(serveObservability(egress, { listen: `${taken.hostname}:${taken.port}` })).rejects.toThrow(/cannot listen on/);
  });
});

describe('the handlers mounted in a server of your own', () => {
  test('the node:http handler serves the endpoints and passes other paths on to next', async () => {
    const receiver = await startReceiver();
    const egress = webhookEgress();
    const metrics = createEgressMetrics(egress);
    const handler = createObservabilityHandler({ metrics, health: createEgressHealth(egress) });
    const own = createServer((request, response) => handler(request, response, () => response.writeHead(200).end('app')));
    await new Promise<void>((resolve) => own.listen(0, '127.0.0.1', resolve));
    const base = `http://127.0.0.1:${(own.address() as AddressInfo).port}`;
    try {
      await runKnownWorkload(egress, receiver.url);
      const families = parsePrometheusTextFormat(await (await fetch(`${base}/metrics`)).text());
      expect(sample(family(families, 'egress_events_dead_lettered_total'), { messaging_destination_name: 'http', error_type: (await egress.deadLetters.list())[0]!.error.name })?.value).toBe('1');
      expect((await fetch(`${base}/readyz`)).status).toBe(200);
      expect(await (await fetch(`${base}/orders`)).text()).toBe('app');
    } finally {
      metrics.close();
      own.close();
      own.closeAllConnections();
      await egress.close({ timeout: 1000 });
      await receiver.close();
    }
  });

  test('the fetch-style handler answers Requests with Responses, and undefined for other paths', async () => {
    const receiver = await startReceiver();
    const egress = webhookEgress();
    const metrics = createEgressMetrics(egress);
    const handle = createObservabilityFetchHandler({ metrics, health: createEgressHealth(egress) });
    try {
      await runKnownWorkload(egress, receiver.url);
      const response = (await handle(new Request('http://app.example/metrics')))!;
      expect(response.status).toBe(200);
      const families = parsePrometheusTextFormat(await response.text());
      expect(sample(family(families, 'messaging_client_sent_messages_total'), { messaging_system: 'egress', messaging_operation_name: 'deliver', messaging_destination_name: 'http' })?.value).toBe('4');
      expect((await handle(new Request('http://app.example/healthz')))!.status).toBe(200);
      expect(await handle(new Request('http://app.example/orders'))).toBeUndefined();
    } finally {
      metrics.close();
      await egress.close({ timeout: 1000 });
      await receiver.close();
    }
  });
});

describe('readiness and the destinations', () => {
  test('/readyz is unready while a destination reports itself unhealthy, naming it and why, and ready once it recovers', async () => {
    let healthy = false;
    const warehouse = defineDestination({
      name: 'warehouse',
      input: z.object({ n: z.number() }),
      async deliver() {},
      async health() {
        return healthy ? { ok: true } : { ok: false, message: 'bucket not reachable' };
      },
    });
    const egress = createEgress({ destinations: [warehouse] });
    const handle = createObservabilityFetchHandler({ health: createEgressHealth(egress) });
    try {
      await egress.ready();
      const unready = (await handle(new Request('http://app.example/readyz')))!;
      expect(unready.status).toBe(503);
      expect(await unready.json()).toMatchObject({ status: 'unready', reasons: ['destination warehouse is unhealthy: bucket not reachable'], destinations: { warehouse: { ok: false } } });
      healthy = true;
      expect((await handle(new Request('http://app.example/readyz')))!.status).toBe(200);
      // Without metrics given, /metrics is not served.
      expect(await handle(new Request('http://app.example/metrics'))).toBeUndefined();
    } finally {
      await egress.close({ timeout: 1000 });
    }
  });
});
