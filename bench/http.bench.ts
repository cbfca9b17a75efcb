// Delivers single-event HTTP requests to a loopback receiver three ways in one run: through Egress
// (memory store, the http adapter's default concurrency), a sequential `await fetch` loop, and a
// hand-written undici loop at the same concurrency (and, to tell the adapter's cost from the
// engine's, the adapter's deliver() called directly). The receiver runs in a child process (fork) so
// that its work does not share the sender's event loop and distort the figures.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createEgress, createEventId, memoryStore, silentLogger } from '@egress/core';
import { http } from '@egress/http';
import { Agent } from 'undici';
import { startCountingReceiver } from './counting-receiver.js';

const here = dirname(fileURLToPath(import.meta.url));
const requests = Number(process.env.EGRESS_BENCH_HTTP_REQUESTS ?? 50_000);
const rounds = Number(process.env.EGRESS_BENCH_HTTP_ROUNDS ?? 3);
const warmup = 2_000;

interface RoundResult {
  perSecond: number;
  cpuPerRequest: number;
}

async function main(): Promise<void> {
  const receiver = await startCountingReceiver();
  const { origin } = receiver;
  const url = `${origin}/hook`;
  const destination = http();
  const defaultConcurrency = destination.defaults?.concurrency ?? 16;
  // The hand-written loops run as many requests at once as Egress does, which needs a fixed number.
  if (typeof defaultConcurrency !== 'number') throw new Error(`the http adapter's default concurrency is ${JSON.stringify(defaultConcurrency)}, not a fixed number`);
  const concurrency = defaultConcurrency;
  const event = (n: number) => ({ n, type: 'order.created', customer: 'c_123', total: 4200 });

  /** Runs one round of a contender and checks that every request arrived. */
  async function round(name: string, count: number, run: (count: number) => Promise<void>): Promise<RoundResult> {
    (globalThis as { gc?: () => void }).gc?.();
    await receiver.reset();
    const cpuBefore = process.cpuUsage();
    const started = performance.now();
    await run(count);
    const seconds = (performance.now() - started) / 1000;
    const cpu = process.cpuUsage(cpuBefore);
    const { count: arrived, connections } = await receiver.counts();
    if (arrived !== count) throw new Error(`${name}: ${arrived} of ${count} requests arrived`);
    const perSecond = count / seconds;
    // Sender CPU per request is steadier than wall time on a shared machine, and shows the overhead.
    const cpuPerRequest = (cpu.user + cpu.system) / count;
    console.log(
      `  ${name.padEnd(28)} ${String(count).padStart(6)} requests ${seconds.toFixed(2).padStart(6)} s ${perSecond.toFixed(0).padStart(6)} req/s ${cpuPerRequest.toFixed(0).padStart(4)} µs CPU/request (${connections} connections)`,
    );
    return { perSecond, cpuPerRequest };
  }

  const sequentialFetch = async (count: number) => {
    for (let n = 0; n < count; n++) {
      const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', 'idempotency-key': String(n) }, body: JSON.stringify(event(n)) });
      await response.arrayBuffer();
    }
  };

  const agent = new Agent({ connections: concurrency });
  const handWritten = async (count: number) => {
    let next = 0;
    const worker = async () => {
      while (next < count) {
        const n = next++;
        const response = await agent.request({ origin, path: '/hook', method: 'POST', headers: { 'content-type': 'application/json', 'idempotency-key': String(n) }, body: JSON.stringify(event(n)) });
        await response.body.dump();
        if (response.statusCode !== 200) throw new Error(`status ${response.statusCode}`);
      }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
  };

  // The adapter alone, called as the engine calls it, separates the adapter's cost from the engine's.
  const bare = http();
  const adapterAlone = async (count: number) => {
    let next = 0;
    const worker = async () => {
      while (next < count) {
        const n = next++;
        const id = createEventId();
        const batch = { id, destination: 'http', partition: origin, attempt: 1, events: [{ id, payload: { url, data: event(n) }, attempt: 1, sentAt: Date.now() }] };
        await bare.deliver(batch, { signal: new AbortController().signal, logger: silentLogger });
      }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
  };

  const egress = createEgress({ destinations: [destination], store: memoryStore({ maxEvents: requests + warmup }), logger: silentLogger });
  await egress.ready();
  let dead = 0;
  egress.on('dead', (deadEvent) => (dead += deadEvent.eventIds.length));
  const throughEgress = async (count: number) => {
    for (let n = 0; n < count; n++) egress.send.http({ url, data: event(n) });
    await egress.flush();
  };

  const names = { egress: `Egress http() x${concurrency}`, fetch: 'sequential await fetch', undici: `hand-written undici x${concurrency}`, adapter: `http() deliver() alone x${concurrency}` } as const;
  type Contender = keyof typeof names;
  console.log(`warm-up, ${warmup} requests each:`);
  for (const [name, run] of [[names.fetch, sequentialFetch], [names.undici, handWritten], [names.adapter, adapterAlone], [names.egress, throughEgress]] as const) await round(name, warmup, run);

  // The machine is shared, so its load drifts: the two concurrent contenders alternate over several
  // rounds and each is judged by its median. The sequential loop is too slow to repeat.
  const results: Record<Contender, RoundResult[]> = { egress: [], fetch: [], undici: [], adapter: [] };
  console.log('measured:');
  results.fetch.push(await round(names.fetch, requests, sequentialFetch));
  for (let index = 0; index < rounds; index++) {
    results.undici.push(await round(names.undici, requests, handWritten));
    results.adapter.push(await round(names.adapter, requests, adapterAlone));
    results.egress.push(await round(names.egress, requests, throughEgress));
  }
  await agent.close();
  await bare.stop?.();
  await egress.close();
  if (dead > 0) throw new Error(`${dead} events were dead-lettered`);

  const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
  const contenders = ['egress', 'fetch', 'undici', 'adapter'] as const;
  const perSecond = Object.fromEntries(contenders.map((key) => [key, median(results[key].map((result) => result.perSecond))])) as Record<Contender, number>;
  const cpuPerRequest = Object.fromEntries(contenders.map((key) => [key, median(results[key].map((result) => result.cpuPerRequest))])) as Record<Contender, number>;
  const versusSequential = perSecond.egress / perSecond.fetch;
  const versusHandWritten = perSecond.egress / perSecond.undici;
  console.log('\nmedians:');
  for (const key of contenders) console.log(`  ${names[key].padEnd(28)} ${perSecond[key].toFixed(0).padStart(6)} req/s ${cpuPerRequest[key].toFixed(0).padStart(4)} µs CPU/request`);
  console.log(`\nEgress / sequential fetch:    ${versusSequential.toFixed(2)}x  (target >= 5)`);
  console.log(`Egress / hand-written undici: ${versusHandWritten.toFixed(2)}x  (target >= 0.8)`);
  console.log(`adapter alone / hand-written undici: ${(perSecond.adapter / perSecond.undici).toFixed(2)}x  (the rest of the gap is the engine's)`);

  mkdirSync(join(here, 'results'), { recursive: true });
  writeFileSync(
    join(here, 'results', 'http.json'),
    `${JSON.stringify(
      {
        benchmark: 'http',
        receiver: 'node:http in a forked child process, loopback',
        node: process.version,
        requestsPerRound: requests,
        concurrency,
        rounds: Object.fromEntries(contenders.map((key) => [names[key], results[key].map((result) => ({ requestsPerSecond: Math.round(result.perSecond), cpuMicrosecondsPerRequest: Math.round(result.cpuPerRequest) }))])),
        medianRequestsPerSecond: Object.fromEntries(contenders.map((key) => [names[key], Math.round(perSecond[key])])),
        medianCpuMicrosecondsPerRequest: Object.fromEntries(contenders.map((key) => [names[key], Math.round(cpuPerRequest[key])])),
        ratios: {
          versusSequentialFetch: Number(versusSequential.toFixed(2)),
          versusHandWrittenUndici: Number(versusHandWritten.toFixed(2)),
          adapterAloneVersusHandWrittenUndici: Number((perSecond.adapter / perSecond.undici).toFixed(2)),
        },
        targets: { versusSequentialFetch: 5, versusHandWrittenUndici: 0.8 },
        measuredAt: new Date().toISOString(),
      },
      null,
      2,
    )}\n`,
  );
  await receiver.stop();
}

await main();
