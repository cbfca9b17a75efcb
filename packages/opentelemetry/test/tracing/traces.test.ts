import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createEgress, defineDestination, memoryStore, silentLogger, type Store } from '@egress/core';
import { http } from '@egress/http';
import { sqliteStore } from '@egress/store-sqlite';
import { SpanKind, SpanStatusCode, type Attributes } from '@opentelemetry/api';
import { InMemorySpanExporter, SamplingDecision, SimpleSpanProcessor, TracerProvider, type Sampler } from '@opentelemetry/sdk-trace';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { z } from 'zod';
import { openTelemetryTracing } from '../../src/index.js';
import { recordSpans, traceparentOf } from './span-recorder.js';

interface Received {
  path: string;
  headers: IncomingHttpHeaders;
}

const recorder = recordSpans();
const received: Received[] = [];
/** Status codes to answer with, one per request, then 200. */
const answers: number[] = [];
let server: Server;
let origin: string;

beforeAll(async () => {
  server = createServer((request, response) => {
    request.resume();
    request.on('end', () => {
      received.push({ path: request.url ?? '', headers: request.headers });
      response.statusCode = answers.shift() ?? 200;
      response.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterEach(() => {
  recorder.reset();
  received.length = 0;
  answers.length = 0;
});

afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await recorder.shutdown();
});

function tracedEgress(options: { batch?: boolean; store?: Store; role?: 'producer' | 'worker' } = {}) {
  return createEgress({
    role: options.role ?? 'both',
    destinations: [http({ batch: options.batch ?? false })],
    store: options.store ?? memoryStore(),
    logger: silentLogger,
    policies: { http: { batch: { maxEvents: options.batch ? 10 : 1, maxDelay: options.batch ? 60_000 : 0 }, retry: { initialDelay: 1, maxDelay: 5, maxAttempts: 3 } } },
    tracing: openTelemetryTracing({ tracerProvider: recorder.provider }),
  });
}

const tracer = () => recorder.provider.getTracer('test');

describe('traces of sends and deliveries', () => {
  test("a send inside the caller's span is a PRODUCER span under it; its delivery a CONSUMER span that the receiver continues", async () => {
    const egress = tracedEgress();
    try {
      await tracer().startActiveSpan('handle request', async (span) => {
        egress.send.http({ url: `${origin}/single`, data: { n: 1 } });
        span.end();
      });
      await egress.flush();
    } finally {
      await egress.close();
    }
    const [request] = recorder.named('handle request');
    const [send] = recorder.named('send http');
    const [process] = recorder.named('process http');
    expect(send!.kind).toBe(SpanKind.PRODUCER);
    expect(send!.parentSpanContext?.spanId).toBe(request!.spanContext().spanId);
    expect(send!.attributes).toMatchObject({ 'messaging.system': 'egress', 'messaging.operation.type': 'send', 'messaging.destination.name': 'http' });
    const eventId = send!.attributes['messaging.message.id'];
    expect(eventId).toMatch(/^[0-9a-f-]{36}$/);

    expect(process!.kind).toBe(SpanKind.CONSUMER);
    expect(process!.links.map((link) => link.context.spanId)).toEqual([send!.spanContext().spanId]);
    // One event: the delivery continues the request's trace, under the send span.
    expect(process!.spanContext().traceId).toBe(request!.spanContext().traceId);
    expect(process!.parentSpanContext?.spanId).toBe(send!.spanContext().spanId);
    expect(process!.attributes).toMatchObject({
      'messaging.system': 'egress',
      'messaging.operation.type': 'process',
      'messaging.destination.name': 'http',
      'messaging.message.id': eventId,
      'egress.delivery.attempt': 1,
      'egress.delivery.delivered': 1,
    });
    expect(process!.status.code).not.toBe(SpanStatusCode.ERROR);
    expect(received.map((entry) => entry.headers.traceparent)).toEqual([traceparentOf(process!)]);
  });

  test('a batch of many is one span in a trace of its own, linked to the send span of every event, and one traceparent on its request', async () => {
    const egress = tracedEgress({ batch: true });
    try {
      await tracer().startActiveSpan('handle request', async (span) => {
        await egress.run((send) => {
          for (let n = 0; n < 3; n++) send.http({ url: `${origin}/batch`, data: { n } });
        });
        span.end();
      });
      await egress.flush();
    } finally {
      await egress.close();
    }
    const sends = recorder.named('send http');
    const [process] = recorder.named('process http');
    expect(sends).toHaveLength(3);
    expect(process!.parentSpanContext).toBeUndefined();
    expect(process!.spanContext().traceId).not.toBe(sends[0]!.spanContext().traceId);
    expect(process!.links.map((link) => link.context.spanId).sort()).toEqual(sends.map((send) => send.spanContext().spanId).sort());
    expect(process!.links.map((link) => link.attributes?.['messaging.message.id']).sort()).toEqual(sends.map((send) => send.attributes['messaging.message.id']).sort());
    expect(process!.attributes['messaging.batch.message_count']).toBe(3);
    expect(process!.attributes['messaging.message.id']).toBeUndefined();
    expect(received).toHaveLength(1);
    expect(received[0]!.headers.traceparent).toBe(traceparentOf(process!));
  });

  test('each retry is a span of its own, linked to the same send; a failed attempt carries error.type and an error status', async () => {
    answers.push(503, 503);
    const egress = tracedEgress();
    try {
      egress.send.http({ url: `${origin}/flaky` });
      await egress.flush();
    } finally {
      await egress.close();
    }
    const [send] = recorder.named('send http');
    const attempts = recorder.named('process http').sort((a, b) => Number(a.attributes['egress.delivery.attempt']) - Number(b.attributes['egress.delivery.attempt']));
    expect(attempts.map((span) => span.attributes['egress.delivery.attempt'])).toEqual([1, 2, 3]);
    for (const attempt of attempts) expect(attempt.links.map((link) => link.context.spanId)).toEqual([send!.spanContext().spanId]);
    for (const failed of attempts.slice(0, 2)) {
      expect(failed.status.code).toBe(SpanStatusCode.ERROR);
      expect(failed.attributes['error.type']).toEqual(expect.any(String));
      expect(failed.attributes['egress.delivery.retrying']).toBe(1);
    }
    expect(attempts[2]!.status.code).not.toBe(SpanStatusCode.ERROR);
    expect(attempts[2]!.attributes['egress.delivery.delivered']).toBe(1);
    // Each request carried its own attempt's context.
    expect(received.map((entry) => entry.headers.traceparent)).toEqual(attempts.map(traceparentOf));
  });

  test("a dead letter's span says so, and replaying the dead letter links the new delivery to the original send", async () => {
    answers.push(400);
    const egress = tracedEgress();
    try {
      egress.send.http({ url: `${origin}/refused` });
      await egress.flush();
      const [dead] = recorder.named('process http');
      expect(dead!.status.code).toBe(SpanStatusCode.ERROR);
      expect(dead!.attributes).toMatchObject({ 'egress.delivery.dead': 1, 'egress.delivery.delivered': 0, 'error.type': 'PermanentError' });
      expect(await egress.deadLetters.retry()).toBe(1);
      await egress.flush();
    } finally {
      await egress.close();
    }
    const [send] = recorder.named('send http');
    const [, replay] = recorder.named('process http');
    expect(replay!.links.map((link) => link.context.spanId)).toEqual([send!.spanContext().spanId]);
    expect(replay!.attributes['egress.delivery.delivered']).toBe(1);
    expect(received[1]!.headers.traceparent).toBe(traceparentOf(replay!));
  });

  test('the context outlives the process that sent: a worker opening the same SQLite queue later links its delivery to the send', async () => {
    const directory = mkdtempSync(join(tmpdir(), 'egress-traces-'));
    const path = join(directory, 'queue.db');
    try {
      const producer = tracedEgress({ store: sqliteStore({ path }), role: 'producer' });
      await tracer().startActiveSpan('handle request', async (span) => {
        await producer.run((send) => send.http({ url: `${origin}/later`, data: { n: 1 } }));
        span.end();
      });
      await producer.close();
      expect(received).toEqual([]);

      const worker = tracedEgress({ store: sqliteStore({ path }), role: 'worker' });
      try {
        await worker.flush();
      } finally {
        await worker.close();
      }
    } finally {
      rmSync(directory, { recursive: true, force: true });
    }
    const [request] = recorder.named('handle request');
    const [send] = recorder.named('send http');
    const [process] = recorder.named('process http');
    expect(process!.links.map((link) => link.context.spanId)).toEqual([send!.spanContext().spanId]);
    expect(process!.spanContext().traceId).toBe(request!.spanContext().traceId);
    expect(received.map((entry) => entry.headers.traceparent)).toEqual([traceparentOf(process!)]);
  });

  test('a dead letter routed to another destination is sent within the attempt that dead-lettered it, so its trace goes on', async () => {
    answers.push(400);
    const alerts = defineDestination({ name: 'alerts', input: z.looseObject({}), async deliver() {} });
    const egress = createEgress({
      destinations: [http(), alerts],
      logger: silentLogger,
      policies: { http: { deadLetters: { routeTo: 'alerts' } } },
      tracing: openTelemetryTracing({ tracerProvider: recorder.provider }),
    });
    try {
      egress.send.http({ url: `${origin}/refused` });
      await egress.flush();
    } finally {
      await egress.close();
    }
    const [dead] = recorder.named('process http');
    const [routed] = recorder.named('send alerts');
    const [alerted] = recorder.named('process alerts');
    expect(routed!.parentSpanContext?.spanId).toBe(dead!.spanContext().spanId);
    expect(alerted!.links.map((link) => link.context.spanId)).toEqual([routed!.spanContext().spanId]);
    expect(alerted!.spanContext().traceId).toBe(dead!.spanContext().traceId);
  });

  test('with no SDK registered nothing is recorded and no traceparent is sent', async () => {
    const egress = createEgress({ destinations: [http()], logger: silentLogger, tracing: openTelemetryTracing() });
    try {
      egress.send.http({ url: `${origin}/untraced` });
      await egress.flush();
    } finally {
      await egress.close();
    }
    expect(recorder.spans()).toEqual([]);
    expect(received[0]!.headers.traceparent).toBeUndefined();
  });

  test('a sampler sees the messaging attributes as each span starts; a trace it drops records nothing, yet its context is stored and sent on', async () => {
    const seen: { name: string; attributes: Attributes }[] = [];
    const dropEverything: Sampler = {
      shouldSample(_context, _traceId, name, _kind, attributes) {
        seen.push({ name, attributes: { ...attributes } });
        return { decision: SamplingDecision.NOT_RECORD };
      },
    };
    const exporter = new InMemorySpanExporter();
    const provider = new TracerProvider({ sampler: dropEverything, spanProcessors: [new SimpleSpanProcessor({ exporter })] });
    const egress = createEgress({ destinations: [http()], logger: silentLogger, tracing: openTelemetryTracing({ tracerProvider: provider }) });
    try {
      egress.send.http({ url: `${origin}/unsampled` });
      await egress.flush();
    } finally {
      await egress.close();
      await provider.shutdown();
    }
    const expected = (operation: string) => ({ 'messaging.system': 'egress', 'messaging.operation.type': operation, 'messaging.operation.name': operation, 'messaging.destination.name': 'http' });
    expect(seen).toEqual([
      { name: 'send http', attributes: expected('send') },
      { name: 'process http', attributes: expected('process') },
    ]);
    expect(exporter.getFinishedSpans()).toEqual([]);
    // Not sampled (flags 00), but propagated, so the receiver makes the same decision.
    expect(received[0]!.headers.traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/);
  });

  test('the delivery span is active while the adapter runs, so spans the adapter or its client make nest under it', async () => {
    const probe = defineDestination({
      name: 'probe',
      input: z.strictObject({ n: z.number() }),
      async deliver() {
        tracer().startSpan('inside deliver').end();
      },
    });
    const egress = createEgress({ destinations: [probe], logger: silentLogger, tracing: openTelemetryTracing({ tracerProvider: recorder.provider }) });
    try {
      egress.send.probe({ n: 1 });
      await egress.flush();
    } finally {
      await egress.close();
    }
    const [inside] = recorder.named('inside deliver');
    const [process] = recorder.named('process probe');
    expect(inside!.parentSpanContext?.spanId).toBe(process!.spanContext().spanId);
  });
});
