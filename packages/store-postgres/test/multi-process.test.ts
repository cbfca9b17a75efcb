import type { ChildProcess } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, describe, expect, test } from 'vitest';
import { exited, nextMessage, startFixture, until } from './child-processes.js';
import { dropSchemas, postgresUrl, query, randomSchema } from './postgres-test-schema.js';

const startProcess = (options: Record<string, unknown>) => startFixture('egress-process.ts', options);

interface Delivery {
  worker: string;
  batchId: string;
  events: { id: string; n: number }[];
  start: number;
  end: number | undefined;
  /** The sink answered 200 and the response went out whole. */
  completed: boolean;
}

/** The HTTP sink the workers deliver to: it records every request's batch, worker and open interval. */
function startSink(hold: (delivery: Delivery, deliveries: readonly Delivery[]) => boolean) {
  const deliveries: Delivery[] = [];
  const server: Server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { worker: string; batchId: string; events: { id: string; n: number }[] };
      const delivery: Delivery = { ...body, start: performance.now(), end: undefined, completed: false };
      deliveries.push(delivery);
      response.on('close', () => {
        delivery.end = performance.now();
        delivery.completed = response.writableFinished;
      });
      // A held request stays open until its worker dies: that is the delivery cut short mid-way.
      if (hold(delivery, deliveries)) return;
      setTimeout(() => response.end('ok'), 5 + Math.random() * 25);
    });
  });
  return {
    deliveries,
    listen: () => new Promise<string>((done) => server.listen(0, '127.0.0.1', () => done(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`))),
    close: () => new Promise<void>((done) => server.close(() => done())),
  };
}

const children: ChildProcess[] = [];
const schemas = new Set<string>();

describe.skipIf(!postgresUrl)('postgres store with producer and worker processes', () => {
  afterAll(async () => {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await dropSchemas(schemas);
  });

  test(
    'several workers deliver everything a separate producer sent, a worker killed mid-delivery loses nothing, and no batch is delivered by two workers at once',
    async () => {
      const schema = randomSchema();
      schemas.add(schema);
      const total = 400;
      const victim = 'worker-0';
      let held: Delivery | undefined;
      const sink = startSink((delivery, deliveries) => {
        if (held || delivery.worker !== victim) return false;
        if (deliveries.filter((other) => other.worker === victim).length < 2) return false;
        held = delivery;
        return true;
      });
      const sinkUrl = await sink.listen();
      const base = { connectionString: postgresUrl, schema, sinkUrl, count: 0, first: 0 };

      // Workers start together, so their concurrent open() migrates the fresh schema once.
      const workers = ['worker-0', 'worker-1', 'worker-2'].map((name) => startProcess({ ...base, role: 'worker', name }));
      children.push(...workers);
      await Promise.all(workers.map((worker) => nextMessage(worker, 'ready')));

      const producer = startProcess({ ...base, role: 'producer', name: 'producer', count: total });
      children.push(producer);
      await nextMessage(producer, 'produced');

      await until(() => held !== undefined, 60_000, 'the victim worker holds a batch mid-delivery');
      workers[0]!.kill('SIGKILL');
      await exited(workers[0]!);

      const delivered = () => new Set(sink.deliveries.filter((delivery) => delivery.completed).flatMap((delivery) => delivery.events.map((event) => event.n)));
      await until(() => delivered().size === total, 90_000, `all ${total} events delivered`);
      await until(
        async () => Number((await query<{ count: string }>(`SELECT count(*) AS count FROM "${schema}".events`))[0]!.count) === 0,
        30_000,
        'the queue drained',
      );

      for (const worker of workers.slice(1)) worker.send({ type: 'close' });
      await Promise.all(workers.slice(1).map(exited));
      await sink.close();

      expect([...delivered()].sort((a, b) => a - b)).toEqual(Array.from({ length: total }, (_, n) => n));
      // One event id per number: nothing was enqueued twice.
      const idsByNumber = new Map<number, Set<string>>();
      for (const delivery of sink.deliveries) for (const event of delivery.events) idsByNumber.set(event.n, (idsByNumber.get(event.n) ?? new Set()).add(event.id));
      expect([...idsByNumber.values()].every((ids) => ids.size === 1)).toBe(true);

      // The batch cut short was delivered again, by another worker, under the same batch id.
      const retaken = sink.deliveries.filter((delivery) => delivery.batchId === held!.batchId && delivery !== held);
      expect(retaken.some((delivery) => delivery.completed && delivery.worker !== victim)).toBe(true);
      expect(retaken[0]!.events.map((event) => event.id)).toEqual(held!.events.map((event) => event.id));

      // No batch was ever open at the sink twice at the same time.
      const byBatch = new Map<string, Delivery[]>();
      for (const delivery of sink.deliveries) byBatch.set(delivery.batchId, [...(byBatch.get(delivery.batchId) ?? []), delivery]);
      const overlaps: string[] = [];
      for (const [batchId, attempts] of byBatch) {
        attempts.sort((a, b) => a.start - b.start);
        for (let index = 1; index < attempts.length; index++) {
          const previous = attempts[index - 1]!;
          if (previous.end === undefined || attempts[index]!.start < previous.end) overlaps.push(`${batchId} by ${previous.worker} and ${attempts[index]!.worker}`);
        }
      }
      expect(overlaps).toEqual([]);
      expect(new Set(sink.deliveries.map((delivery) => delivery.worker)).size).toBe(3);
      const dead = await query<{ count: string }>(`SELECT count(*) AS count FROM "${schema}".dead_letters`);
      expect(Number(dead[0]!.count)).toBe(0);
    },
    180_000,
  );

  test(
    'four workers share one partition of single-event batches; after one is killed every event arrives, and only its in-flight batches arrive twice',
    async () => {
      const schema = randomSchema();
      schemas.add(schema);
      const total = 600;
      const concurrency = 4;
      const victim = 'worker-0';
      let killedAt: number | undefined;
      let held: Delivery | undefined;
      const sink = startSink((delivery, deliveries) => {
        if (held || delivery.worker !== victim) return false;
        if (deliveries.filter((other) => other.worker === victim).length < 20) return false;
        held = delivery;
        return true;
      });
      const sinkUrl = await sink.listen();
      const base = { connectionString: postgresUrl, schema, sinkUrl, count: 0, first: 0, maxEvents: 1, concurrency };

      const workers = ['worker-0', 'worker-1', 'worker-2', 'worker-3'].map((name) => startProcess({ ...base, role: 'worker', name }));
      children.push(...workers);
      await Promise.all(workers.map((worker) => nextMessage(worker, 'ready')));
      const producer = startProcess({ ...base, role: 'producer', name: 'producer', count: total });
      children.push(producer);
      const produced = nextMessage(producer, 'produced');

      await until(() => held !== undefined, 60_000, 'the victim worker holds a delivery open');
      workers[0]!.kill('SIGKILL');
      await exited(workers[0]!);
      killedAt = performance.now();
      await produced;

      const completed = () => sink.deliveries.filter((delivery) => delivery.completed);
      await until(() => new Set(completed().flatMap((delivery) => delivery.events.map((event) => event.n))).size === total, 90_000, `all ${total} events delivered`);
      await until(
        async () => Number((await query<{ count: string }>(`SELECT count(*) AS count FROM "${schema}".events`))[0]!.count) === 0,
        30_000,
        'the queue drained',
      );
      for (const worker of workers.slice(1)) worker.send({ type: 'close' });
      await Promise.all(workers.slice(1).map(exited));
      await sink.close();

      // Every batch held one event, and all events were of one partition.
      expect(sink.deliveries.every((delivery) => delivery.events.length === 1)).toBe(true);
      const arrivals = new Map<number, Delivery[]>();
      for (const delivery of completed()) arrivals.set(delivery.events[0]!.n, [...(arrivals.get(delivery.events[0]!.n) ?? []), delivery]);
      expect([...arrivals.keys()].sort((a, b) => a - b)).toEqual(Array.from({ length: total }, (_, n) => n));
      // Exactly once, except events the victim had in flight when it died (started at the sink
      // before the kill, possibly arrived without being settled): those arrive once more, from another worker.
      const twice = [...arrivals.entries()].filter(([, deliveries]) => deliveries.length > 1);
      for (const [n, deliveries] of twice) {
        expect(deliveries, `event ${n}`).toHaveLength(2);
        const [first, second] = deliveries.sort((a, b) => a.start - b.start);
        expect(first!.worker, `event ${n}`).toBe(victim);
        expect(first!.start, `event ${n}`).toBeLessThan(killedAt!);
        expect(second!.worker, `event ${n}`).not.toBe(victim);
      }
      expect(twice.length).toBeLessThanOrEqual(concurrency);
      // The held delivery was cut short and delivered again by another worker.
      expect(arrivals.get(held!.events[0]!.n)!.some((delivery) => delivery.worker !== victim)).toBe(true);

      // The workers worked side by side on the one partition: deliveries of different workers overlapped.
      const byStart = [...sink.deliveries].sort((a, b) => a.start - b.start);
      let overlapping = 0;
      for (let index = 1; index < byStart.length; index++) {
        const previous = byStart[index - 1]!;
        if (previous.worker !== byStart[index]!.worker && previous.end !== undefined && byStart[index]!.start < previous.end) overlapping++;
      }
      expect(overlapping).toBeGreaterThan(total / 10);
      expect(new Set(sink.deliveries.map((delivery) => delivery.worker)).size).toBe(4);
      const dead = await query<{ count: string }>(`SELECT count(*) AS count FROM "${schema}".dead_letters`);
      expect(Number(dead[0]!.count)).toBe(0);
    },
    180_000,
  );
});
