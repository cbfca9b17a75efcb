// Delivers single-event HTTP requests to a loopback receiver three ways in one run: through Egress
// (memory store, the http adapter's default concurrency), a sequential `await fetch` loop, and a
// hand-written undici loop at the same concurrency. The receiver runs in a child process (fork) so
// that its work does not share the sender's event loop and distort the figures.
import { fork, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createEgress, memoryStore, silentLogger } from '@egress/core';
import { http } from '@egress/http';
import { Agent } from 'undici';

const here = dirname(fileURLToPath(import.meta.url));
const requests = Number(process.env.EGRESS_BENCH_HTTP_REQUESTS ?? 50_000);
const warmup = 2_000;

interface ReceiverMessage {
  port?: number;
  count?: number;
}

if (process.argv[2] === 'receiver') {
  let count = 0;
  const server = createServer((request, response) => {
    request.resume();
    request.on('end', () => {
      count++;
      response.end('ok');
    });
  });
  server.keepAliveTimeout = 60_000;
  server.listen(0, '127.0.0.1', () => {
    const address = server.address();
    process.send!({ port: typeof address === 'object' && address ? address.port : 0 } satisfies ReceiverMessage);
  });
  process.on('message', (message: string) => {
    if (message === 'count') process.send!({ count } satisfies ReceiverMessage);
    if (message === 'reset') {
      count = 0;
      process.send!({ count } satisfies ReceiverMessage);
    }
    if (message === 'stop') server.close(() => process.exit(0));
  });
} else {
  await main();
}

function ask(child: ChildProcess, message: string): Promise<ReceiverMessage> {
  return new Promise((resolve) => {
    child.once('message', (reply: ReceiverMessage) => resolve(reply));
    child.send(message);
  });
}

async function main(): Promise<void> {
  const child = fork(fileURLToPath(import.meta.url), ['receiver'], { execArgv: ['--import', 'tsx'], stdio: 'inherit' });
  const { port } = await new Promise<ReceiverMessage>((resolve) => child.once('message', resolve));
  const url = `http://127.0.0.1:${port}/hook`;
  const destination = http();
  const concurrency = destination.defaults?.concurrency ?? 16;

  /** Runs one contender, checks that every request arrived, and returns requests per second. */
  async function measure(name: string, count: number, run: (count: number) => Promise<void>): Promise<{ name: string; requests: number; seconds: number; perSecond: number }> {
    await run(Math.min(warmup, count));
    (globalThis as { gc?: () => void }).gc?.();
    await ask(child, 'reset');
    const started = performance.now();
    await run(count);
    const seconds = (performance.now() - started) / 1000;
    const { count: arrived } = await ask(child, 'count');
    if (arrived !== count) throw new Error(`${name}: ${arrived} of ${count} requests arrived`);
    const perSecond = count / seconds;
    console.log(`${name.padEnd(34)} ${String(count).padStart(7)} requests  ${seconds.toFixed(2).padStart(7)} s  ${perSecond.toFixed(0).padStart(7)} req/s`);
    return { name, requests: count, seconds, perSecond };
  }

  const body = (n: number) => JSON.stringify({ n, type: 'order.created', customer: 'c_123', total: 4200 });

  const sequentialFetch = await measure('sequential await fetch', requests, async (count) => {
    for (let n = 0; n < count; n++) {
      const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', 'idempotency-key': String(n) }, body: body(n) });
      await response.arrayBuffer();
    }
  });

  const agent = new Agent({ connections: concurrency });
  const handWritten = await measure(`hand-written undici x${concurrency}`, requests, async (count) => {
    let next = 0;
    const worker = async () => {
      while (next < count) {
        const n = next++;
        const response = await agent.request({ origin: `http://127.0.0.1:${port}`, path: '/hook', method: 'POST', headers: { 'content-type': 'application/json', 'idempotency-key': String(n) }, body: body(n) });
        await response.body.dump();
        if (response.statusCode !== 200) throw new Error(`status ${response.statusCode}`);
      }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
  });
  await agent.close();

  const egress = createEgress({ destinations: [destination], store: memoryStore({ maxEvents: requests + warmup }), logger: silentLogger });
  await egress.ready();
  let dead = 0;
  egress.on('dead', (event) => (dead += event.eventIds.length));
  const throughEgress = await measure(`Egress http() x${concurrency}`, requests, async (count) => {
    for (let n = 0; n < count; n++) egress.send.http({ url, data: { n, type: 'order.created', customer: 'c_123', total: 4200 } });
    await egress.flush();
  });
  await egress.close();
  if (dead > 0) throw new Error(`${dead} events were dead-lettered`);

  const versusSequential = throughEgress.perSecond / sequentialFetch.perSecond;
  const versusHandWritten = throughEgress.perSecond / handWritten.perSecond;
  console.log(`\nEgress / sequential fetch:  ${versusSequential.toFixed(2)}x  (target >= 5)`);
  console.log(`Egress / hand-written undici: ${versusHandWritten.toFixed(2)}x  (target >= 0.8)`);

  mkdirSync(join(here, 'results'), { recursive: true });
  writeFileSync(
    join(here, 'results', 'http.json'),
    `${JSON.stringify(
      {
        benchmark: 'http',
        receiver: 'node:http in a forked child process, loopback',
        node: process.version,
        concurrency,
        results: [throughEgress, sequentialFetch, handWritten],
        ratios: { versusSequentialFetch: versusSequential, versusHandWrittenUndici: versusHandWritten },
        targets: { versusSequentialFetch: 5, versusHandWrittenUndici: 0.8 },
        measuredAt: new Date().toISOString(),
      },
      null,
      2,
    )}\n`,
  );
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.send('stop');
  await exited;
}
