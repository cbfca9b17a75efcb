import type { ChildProcess } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createEgress, defineDestination, silentLogger } from '@egress/core';
import { postgresStore } from '@egress/store-postgres';
import { afterAll, describe, expect, test } from 'vitest';
import { z } from 'zod';
import { exited, nextMessage, startFixture, until } from './child-processes.js';
import { dropSchemas, postgresUrl, query, randomSchema } from './postgres-test-schema.js';


interface Request {
  worker: string;
  n: number;
  /** Order of arrival, and how many requests were open at the sink when it arrived (itself included). */
  index: number;
  openAtArrival: number;
  answered: number;
}

/** A real receiver that is down (503) or up (200), recording every request and how many were open at once. */
function startSink() {
  const requests: Request[] = [];
  let open = 0;
  let up = false;
  const server: Server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      open += 1;
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { worker: string; events: { n: number }[] };
      const status = up ? 200 : 503;
      requests.push({ worker: body.worker, n: body.events[0]!.n, index: requests.length, openAtArrival: open, answered: status });
      // A short wait keeps each request open long enough for a second one to overlap it, if any were sent.
      setTimeout(() => {
        open -= 1;
        response.statusCode = status;
        response.end(up ? 'ok' : 'down');
      }, 20);
    });
  });
  return {
    requests,
    setUp: (value: boolean) => (up = value),
    listen: () => new Promise<string>((done) => server.listen(0, '127.0.0.1', () => done(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`))),
    close: () => new Promise<void>((done) => server.close(() => done())),
  };
}

const children: ChildProcess[] = [];
const schemas = new Set<string>();

describe.skipIf(!postgresUrl)('circuit breaking shared by worker processes on one PostgreSQL queue', () => {
  afterAll(async () => {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await dropSchemas(schemas);
  });

  test(
    'one pause for both workers; while paused only one probe at a time reaches the receiver, no event spends its attempts, and one answered probe resumes both; a partition disabled by a third process is delivered by neither until enabled',
    async () => {
      const schema = randomSchema();
      schemas.add(schema);
      const sink = startSink();
      const sinkUrl = await sink.listen();
      const workers = ['worker-0', 'worker-1'].map((name) => startFixture('circuit-worker.ts', { name, connectionString: postgresUrl, schema, sinkUrl }));
      children.push(...workers);
      const events: { name: string; worker: string }[] = [];
      for (const worker of workers) worker.on('message', (message: { type: string; name: string; worker: string }) => message.type === 'event' && events.push(message));
      await Promise.all(workers.map((worker) => nextMessage(worker, 'ready')));

      const total = 30;
      workers[0]!.send({ type: 'send', count: total });
      await nextMessage(workers[0]!, 'sent');
      await until(() => events.some((event) => event.name === 'paused'), 30_000, 'the partition paused');
      const pausedAt = sink.requests.length;
      const stateRows = await query<{ state: string }>(`SELECT state FROM "${schema}".partition_states`);
      expect(stateRows).toEqual([{ state: 'paused' }]);

      // Deliveries both workers had claimed before the pause land first (two slots and two claimed
      // ahead each); every request after them is a probe, and ten probes fail while it is down.
      const inFlightAtPause = 8;
      await until(() => sink.requests.length >= pausedAt + inFlightAtPause + 10, 30_000, 'ten probes while down');
      sink.setUp(true);
      await until(() => events.some((event) => event.name === 'resumed'), 30_000, 'the partition resumed');
      const delivered = () => new Set(sink.requests.filter((request) => request.answered === 200).map((request) => request.n));
      await until(() => delivered().size === total, 60_000, `all ${total} events delivered`);

      const probes = sink.requests.slice(pausedAt + inFlightAtPause).filter((request) => request.answered === 503);
      expect(probes.length).toBeGreaterThanOrEqual(10);
      expect(probes.filter((request) => request.openAtArrival > 1)).toEqual([]);
      // Probes given back spend no attempt: with three attempts each, nothing was dead-lettered.
      expect(await query(`SELECT id FROM "${schema}".dead_letters`)).toEqual([]);
      expect(await query(`SELECT * FROM "${schema}".partition_states`)).toEqual([]);
      expect(events.filter((event) => event.name === 'paused')).toHaveLength(1);
      expect(events.filter((event) => event.name === 'resumed')).toHaveLength(1);

      // Disabled from a third process, through the store: neither worker delivers the partition.
      const admin = createEgress({
        role: 'producer',
        destinations: [defineDestination({ name: 'sink', input: z.strictObject({ n: z.number().int() }), partition: (payload) => (payload.n >= 1000 ? 'other' : ''), deliver: async () => {} })],
        store: postgresStore({ connectionString: postgresUrl!, schema }),
        logger: silentLogger,
      });
      await admin.ready();
      expect(await admin.disable('sink', '', 'receiver migrating')).toBe(true);
      expect(await query(`SELECT partition, state FROM "${schema}".partition_states`)).toEqual([{ partition: '', state: 'disabled' }]);
      // One commit: a claim that delivers the second partition's events saw the disabled ones too.
      await admin.run((send) => {
        for (let n = 100; n < 105; n++) send.sink({ n });
        for (let n = 1000; n < 1005; n++) send.sink({ n });
      });
      await until(() => [1000, 1001, 1002, 1003, 1004].every((n) => delivered().has(n)), 30_000, 'the other partition delivered');
      expect(sink.requests.filter((request) => request.n >= 100 && request.n < 105)).toEqual([]);
      expect(await admin.enable('sink')).toBe(1);
      await until(() => [100, 101, 102, 103, 104].every((n) => delivered().has(n)), 30_000, 'the enabled partition delivered');
      await admin.close();

      for (const worker of workers) worker.send({ type: 'close' });
      await Promise.all(workers.map(exited));
      await sink.close();
    },
    180_000,
  );
});
