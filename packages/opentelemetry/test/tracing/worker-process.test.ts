import { fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createEgress, silentLogger } from '@egress/core';
import { http } from '@egress/http';
import { pgTransaction, postgresStore } from '@egress/store-postgres';
import { testDatabaseUrl } from '@egress/testkit';
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import pg from 'pg';
import { afterAll, describe, expect, test } from 'vitest';
import { openTelemetryTracing } from '../../src/index.js';
import { recordSpans } from './span-recorder.js';

const postgresUrl = testDatabaseUrl('postgres');
const here = dirname(fileURLToPath(import.meta.url));
const tsxLoader = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
const rootTsconfig = resolve(here, '..', '..', '..', '..', 'tsconfig.json');

interface WorkerSpan {
  name: string;
  kind: SpanKind;
  traceId: string;
  spanId: string;
  traceFlags: number;
  parentSpanId: string | undefined;
  links: { traceId: string; spanId: string; messageId: unknown }[];
  attributes: Record<string, unknown>;
  status: SpanStatusCode;
}

const schema = `egress_test_${randomBytes(6).toString('hex')}`;
const outboxSchema = `egress_test_${randomBytes(6).toString('hex')}`;

async function dropSchema(): Promise<void> {
  const client = new pg.Client({ connectionString: postgresUrl });
  await client.connect();
  try {
    for (const name of [schema, outboxSchema]) await client.query(`DROP SCHEMA IF EXISTS "${name}" CASCADE`);
  } finally {
    await client.end();
  }
}

describe.skipIf(!postgresUrl)('traces across processes', () => {
  afterAll(dropSchema);

  test('a worker process continues the trace a producer process started: its delivery spans link to the sends, across a retry, and the receiver gets their context', async () => {
    const received: { path: string; headers: IncomingHttpHeaders }[] = [];
    let firstFlaky = true;
    const server: Server = createServer((request, response) => {
      request.resume();
      request.on('end', () => {
        received.push({ path: request.url ?? '', headers: request.headers });
        // The second event fails once, so the worker delivers it twice.
        const refuse = request.url === '/flaky' && firstFlaky;
        if (refuse) firstFlaky = false;
        response.statusCode = refuse ? 503 : 200;
        response.end();
      });
    });
    await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
    const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const recorder = recordSpans();
    try {
      // The producer: this process, with its own SDK, only enqueuing.
      const producer = createEgress({
        role: 'producer',
        destinations: [http()],
        store: postgresStore({ connectionString: postgresUrl!, schema }),
        logger: silentLogger,
        tracing: openTelemetryTracing({ tracerProvider: recorder.provider }),
      });
      await recorder.provider.getTracer('test').startActiveSpan('handle request', async (span) => {
        await producer.run((send) => {
          send.http({ url: `${origin}/steady`, data: { n: 1 } });
          send.http({ url: `${origin}/flaky`, data: { n: 2 } });
        });
        span.end();
      });
      await producer.close();
      const [request] = recorder.named('handle request');
      const sends = recorder.named('send http');
      expect(sends).toHaveLength(2);

      // The worker: another process, another SDK, the same PostgreSQL queue.
      const child = fork(join(here, 'fixtures', 'traced-worker.ts'), [JSON.stringify({ connectionString: postgresUrl, schema, events: 2 })], {
        execArgv: ['--import', tsxLoader],
        env: { ...process.env, TSX_TSCONFIG_PATH: rootTsconfig },
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      });
      const spans = await new Promise<WorkerSpan[]>((done, fail) => {
        child.on('message', (message: { type: string; spans?: WorkerSpan[] }) => {
          if (message.type === 'spans') done(message.spans!);
        });
        child.once('exit', (code) => fail(new Error(`the worker exited with ${code} before sending its spans`)));
      });

      const deliveries = spans.filter((span) => span.name === 'process http');
      expect(deliveries).toHaveLength(3);
      for (const delivery of deliveries) expect(delivery.kind).toBe(SpanKind.CONSUMER);
      for (const delivery of deliveries) {
        // Each delivery continues its event's trace, started by the request in the producer process.
        expect(delivery.traceId).toBe(request!.spanContext().traceId);
        expect(delivery.links).toHaveLength(1);
        const send = sends.find((candidate) => candidate.spanContext().spanId === delivery.links[0]!.spanId);
        expect(send, 'linked to a send span of the producer').toBeDefined();
        expect(delivery.parentSpanId).toBe(send!.spanContext().spanId);
        expect(delivery.links[0]!.messageId).toBe(send!.attributes['messaging.message.id']);
        expect(delivery.attributes['messaging.message.id']).toBe(send!.attributes['messaging.message.id']);
      }
      // Send spans end in the order of the sends: the second is the flaky one.
      const flaky = deliveries.filter((delivery) => delivery.links[0]!.spanId === sends[1]!.spanContext().spanId);
      expect(flaky.map((delivery) => delivery.attributes['egress.delivery.attempt']).sort()).toEqual([1, 2]);
      expect(flaky.find((delivery) => delivery.attributes['egress.delivery.attempt'] === 1)!.status).toBe(SpanStatusCode.ERROR);
      // Every request carried the context of the attempt that sent it.
      const traceparents = deliveries.map((delivery) => `00-${delivery.traceId}-${delivery.spanId}-${delivery.traceFlags.toString(16).padStart(2, '0')}`).sort();
      expect(received.map((entry) => entry.headers.traceparent).sort()).toEqual(traceparents);
    } finally {
      await new Promise<void>((done) => server.close(() => done()));
      await recorder.shutdown();
    }
  });

  test("events written through the application's transaction (the outbox) keep the send's trace context", async () => {
    const recorder = recordSpans();
    const store = postgresStore({ connectionString: postgresUrl!, schema: outboxSchema });
    const egress = createEgress({ role: 'producer', destinations: [http()], store, logger: silentLogger, tracing: openTelemetryTracing({ tracerProvider: recorder.provider }) });
    const client = new pg.Client({ connectionString: postgresUrl });
    await client.connect();
    try {
      await egress.ready();
      await client.query('BEGIN');
      await egress.run((send) => void send.http({ url: 'http://127.0.0.1:9/outbox' }), { transaction: pgTransaction(client) });
      await client.query('COMMIT');
      const rows = await client.query<{ trace: string | null }>(`SELECT trace FROM "${outboxSchema}".events`);
      const [send] = recorder.named('send http');
      expect(rows.rows.map((row) => row.trace)).toEqual([`00-${send!.spanContext().traceId}-${send!.spanContext().spanId}-01`]);
    } finally {
      await client.end();
      await egress.close();
      await recorder.shutdown();
    }
  });
});
