import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { importOptional } from '../src/optional-import.js';
import { eventually, exited, folderWith, repositoryRoot, spawnEgress } from './helpers.js';

const spanSetup = pathToFileURL(resolve(import.meta.dirname, 'fixtures/otel-span-file.mjs')).href;
const producerScript = resolve(import.meta.dirname, 'fixtures/traced-producer.ts');
const tsxLoader = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;

interface RecordedSpan {
  pid: number;
  name: string;
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  links: { traceId: string; spanId: string }[];
  attributes: Record<string, unknown>;
}

function spansIn(file: string): RecordedSpan[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as RecordedSpan);
}

/** Runs the producer fixture to its end, with the span-recording SDK set up through NODE_OPTIONS. */
async function produce(config: string, url: string, count: number, spanFile: string): Promise<void> {
  const child = spawn(process.execPath, ['--import', tsxLoader, producerScript, config, url, String(count)], {
    cwd: repositoryRoot,
    env: { ...process.env, TSX_TSCONFIG_PATH: resolve(repositoryRoot, 'tsconfig.json'), NODE_OPTIONS: `--import=${spanSetup}`, EGRESS_TEST_SPAN_FILE: spanFile },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  expect(await exited(child)).toBe(0);
}

describe('egress worker with tracing: true in the config', () => {
  let server: Server;
  let received: { traceparent: string | undefined }[];
  let url: string;

  beforeEach(async () => {
    received = [];
    server = createServer((request, response) => {
      request.resume();
      request.on('end', () => {
        const header = request.headers.traceparent;
        received.push({ traceparent: typeof header === 'string' ? header : undefined });
        response.end();
      });
    });
    await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks`;
  });

  afterEach(async () => {
    await new Promise<void>((done) => server.close(() => done()));
  });

  /** Producer, then worker, each with the SDK setup file; returns the spans each recorded. */
  async function deliverTraced(tracing: string): Promise<{ producerSpans: RecordedSpan[]; workerSpans: RecordedSpan[]; stderr: string }> {
    const folder = folderWith({});
    const config = join(folder, 'egress.config.yaml');
    writeFileSync(config, `store: { kind: sqlite, path: ${join(folder, 'queue.db')} }\n${tracing}destinations:\n  http: {}\n`);
    const producerSpanFile = join(folder, 'producer-spans.jsonl');
    const workerSpanFile = join(folder, 'worker-spans.jsonl');
    await produce(config, url, 3, producerSpanFile);
    const worker = spawnEgress(['worker', '-c', config], { environment: { NODE_OPTIONS: `--import=${spanSetup}`, EGRESS_TEST_SPAN_FILE: workerSpanFile } });
    try {
      await eventually(() => received.length >= 3, 20_000, () => JSON.stringify(worker.output()));
      worker.kill('SIGTERM');
      expect(await exited(worker)).toBe(0);
    } finally {
      worker.kill('SIGKILL');
    }
    return { producerSpans: spansIn(producerSpanFile), workerSpans: spansIn(workerSpanFile), stderr: worker.output().stderr };
  }

  test("each delivery continues its send's trace: the receiver gets a traceparent of the send's trace, from a process span linked to the send", async () => {
    const { producerSpans, workerSpans, stderr } = await deliverTraced('tracing: true\n');
    expect(stderr).toContain('egress worker: tracing deliveries');
    const sends = producerSpans.filter((span) => span.name === 'send http');
    expect(sends).toHaveLength(3);
    expect(received).toHaveLength(3);
    const deliveries = workerSpans.filter((span) => span.name === 'process http');
    expect(deliveries).toHaveLength(3);
    for (const { traceparent } of received) {
      const [, traceId, spanId] = /^00-([0-9a-f]{32})-([0-9a-f]{16})-0[01]$/.exec(traceparent ?? '') ?? [];
      const send = sends.find((candidate) => candidate.traceId === traceId);
      expect(send, `a send span with the trace id of ${traceparent}`).toBeDefined();
      // The request was made inside the worker's delivery span, which the send parents and links.
      const delivery = deliveries.find((candidate) => candidate.spanId === spanId);
      expect(delivery, `a process span with the span id of ${traceparent}`).toBeDefined();
      expect(delivery!.traceId).toBe(send!.traceId);
      expect(delivery!.parentSpanId).toBe(send!.spanId);
      expect(delivery!.links).toEqual([{ traceId: send!.traceId, spanId: send!.spanId }]);
      expect(delivery!.pid).not.toBe(send!.pid);
    }
  }, 60_000);

  test('without tracing in the config the worker sends no traceparent, although its events were sent traced', async () => {
    const { producerSpans, workerSpans } = await deliverTraced('');
    expect(producerSpans.filter((span) => span.name === 'send http')).toHaveLength(3);
    expect(received).toHaveLength(3);
    expect(received.map((request) => request.traceparent)).toEqual([undefined, undefined, undefined]);
    expect(workerSpans.filter((span) => span.name.startsWith('process'))).toEqual([]);
  }, 60_000);
});

test('tracing with a value other than true or false is a configuration problem that says what was expected', async () => {
  const folder = folderWith({ 'egress.config.yaml': 'store: { kind: memory }\ntracing: yes please\ndestinations:\n  http: {}\n' });
  const worker = spawnEgress(['worker', '-c', join(folder, 'egress.config.yaml')]);
  expect(await exited(worker)).toBe(2);
  expect(worker.output().stderr).toMatch(/egress\.config\.yaml:2 +tracing: expected true or false/);
});

test('a package whose own dependency is missing is named with what to install, not as missing itself', async () => {
  const folder = folderWith({ 'needs-otel.mjs': "import 'egress-test-absent-package/sub';\nexport const loaded = true;\n" });
  const imported = await importOptional(pathToFileURL(join(folder, 'needs-otel.mjs')).href);
  expect(imported).toEqual({ ok: false, message: `${join(folder, 'needs-otel.mjs')} needs package egress-test-absent-package, which is not installed (npm install egress-test-absent-package)` });
  expect(await importOptional('@egress/not-a-package')).toEqual({ ok: false, message: 'package @egress/not-a-package is not installed (npm install @egress/not-a-package)' });
});

test('tracing: true without @egress/opentelemetry installed stops the worker with exit code 2, naming what to install', async () => {
  const folder = folderWith({ 'egress.config.yaml': 'store: { kind: memory }\ntracing: true\ndestinations:\n  http: {}\n' });
  const hidden = pathToFileURL(resolve(import.meta.dirname, 'fixtures/without-opentelemetry.mjs')).href;
  const worker = spawnEgress(['worker', '-c', join(folder, 'egress.config.yaml')], { environment: { NODE_OPTIONS: `--import=${hidden}` } });
  expect(await exited(worker)).toBe(2);
  expect(worker.output().stderr).toContain('egress worker: tracing: true: package @egress/opentelemetry is not installed (npm install @egress/opentelemetry); tracing needs @egress/opentelemetry and @opentelemetry/api');
  expect(worker.output().stderr).not.toContain('delivering to');
});
