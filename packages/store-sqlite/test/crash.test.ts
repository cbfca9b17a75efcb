import { fork, type ChildProcess } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { temporaryDirectory } from './helpers.js';

const packageRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const worker = join(packageRoot, 'test', 'fixtures', 'crash-worker.ts');
const rootTsconfig = resolve(packageRoot, '..', '..', 'tsconfig.json');

interface Sink {
  server: Server;
  url: string;
  /** How many times each event number arrived. */
  arrivals: Map<number, number>;
  /** How many requests carried each batch id, and the event ids of its first one. */
  batches: Map<string, { count: number; ids: string }>;
  /** Batch ids whose request arrived but whose sender died before reading the answer. */
  unacknowledged: string[];
  /** Batch ids that came back with other events than the first time. */
  changed: string[];
  /** Answer after a random delay, so that kills land while batches are being delivered. */
  slow: boolean;
}

let directory: ReturnType<typeof temporaryDirectory>;
let sink: Sink;

beforeAll(async () => {
  directory = temporaryDirectory();
  sink = { arrivals: new Map(), batches: new Map(), unacknowledged: [], changed: [], slow: true } as unknown as Sink;
  sink.server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { batchId: string; events: { id: string; n: number }[] };
      for (const event of body.events) sink.arrivals.set(event.n, (sink.arrivals.get(event.n) ?? 0) + 1);
      const ids = body.events.map((event) => event.id).join(',');
      const seen = sink.batches.get(body.batchId);
      if (!seen) sink.batches.set(body.batchId, { count: 1, ids });
      else {
        seen.count += 1;
        if (seen.ids !== ids) sink.changed.push(body.batchId);
      }
      response.on('close', () => {
        if (!response.writableFinished) sink.unacknowledged.push(body.batchId);
      });
      const answer = () => {
        if (!response.destroyed) response.end('ok');
      };
      if (sink.slow) setTimeout(answer, Math.random() * 150);
      else answer();
    });
  });
  await new Promise<void>((ready) => sink.server.listen(0, '127.0.0.1', ready));
  sink.url = `http://127.0.0.1:${(sink.server.address() as AddressInfo).port}/events`;
});

afterAll(async () => {
  sink.server.closeAllConnections();
  await new Promise((closed) => sink.server.close(closed));
  directory.remove();
});

function startWorker(environment: Record<string, string>, committed: number[]): ChildProcess {
  const child = fork(worker, [], {
    cwd: packageRoot,
    execArgv: ['--import', 'tsx'],
    env: { ...process.env, TSX_TSCONFIG_PATH: rootTsconfig, QUEUE_PATH: join(directory.path, 'queue.db'), SINK_URL: sink.url, ...environment },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  child.on('message', (message: { committed?: number[] }) => {
    if (message.committed) committed.push(...message.committed);
  });
  return child;
}

function waitFor(child: ChildProcess, key: string, timeout: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`worker sent no "${key}" within ${timeout} ms`)), timeout);
    child.on('message', (message: Record<string, unknown>) => {
      if (message[key]) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`worker exited (${code ?? signal}) before sending "${key}"`));
    });
  });
}

function closed(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.on('close', () => resolve());
  });
}

test('a process killed at random moments loses no committed event, and a claimed batch comes back with its id and events', async () => {
  const committed: number[] = [];
  const deadline = Date.now() + 50_000;
  let rounds = 0;
  for (; rounds < 25 && (rounds < 8 || Date.now() < deadline); rounds += 1) {
    const child = startWorker({ BASE: String(rounds * 1_000_000) }, committed);
    await waitFor(child, 'ready', 30_000);
    await new Promise((resolve) => setTimeout(resolve, 20 + Math.random() * 600));
    child.kill('SIGKILL');
    await closed(child);
  }

  sink.slow = false;
  const drainer = startWorker({ DRAIN: '1', BASE: '0' }, committed);
  await waitFor(drainer, 'drained', 90_000);
  await closed(drainer);

  expect(rounds).toBeGreaterThanOrEqual(8);
  expect(committed.length).toBeGreaterThan(0);
  const lost = committed.filter((n) => !sink.arrivals.has(n));
  expect(lost).toEqual([]);
  // A batch keeps its id and its events across deliveries.
  expect(sink.changed).toEqual([]);
  // Every batch whose sender died waiting for the answer was delivered again under the same id.
  expect(sink.unacknowledged.length).toBeGreaterThan(0);
  const notRedelivered = sink.unacknowledged.filter((batchId) => sink.batches.get(batchId)!.count < 2);
  expect(notRedelivered).toEqual([]);
}, 180_000);
