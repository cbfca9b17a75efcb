import { createEgress, defineDestination, PermanentError, RetryableError, silentLogger, type Batch } from '@egress/core';
import { afterAll, describe, expect, test } from 'vitest';
import { z } from 'zod';
import { postgresStore } from '../src/index.js';
import { dropSchemas, postgresUrl, query, randomSchema } from './postgres-test-schema.js';

const created = new Set<string>();

function store(schema: string, pollInterval = 200) {
  created.add(schema);
  return postgresStore({ connectionString: postgresUrl!, schema, pollInterval });
}

const input = z.strictObject({ n: z.number().int() });

describe.skipIf(!postgresUrl)('createEgress on the postgres store', () => {
  afterAll(() => dropSchemas(created));

  test('delivers, retries with the same batch id, dead-letters, and replays dead letters', async () => {
    const batches: Batch<{ n: number }>[] = [];
    const destination = defineDestination({
      name: 'sink',
      input,
      async deliver(batch) {
        batches.push(batch);
        const attempt = batch.attempt;
        return {
          failures: batch.events.flatMap((event): { eventId: string; error: Error }[] => {
            if (event.payload.n === 1 && attempt === 1) return [{ eventId: event.id, error: new RetryableError('busy') }];
            if (event.payload.n === 2 && batches.filter((other) => other.events.some((candidate) => candidate.payload.n === 2)).length === 1) {
              return [{ eventId: event.id, error: new PermanentError('rejected') }];
            }
            return [];
          }),
        };
      },
    });
    const schema = randomSchema();
    const egress = createEgress({
      destinations: [destination],
      store: store(schema),
      logger: silentLogger,
      policies: { sink: { batch: { maxEvents: 1 }, retry: { initialDelay: 10, maxDelay: 20 } } },
    });
    const receipts = await egress.run(async (send) => [0, 1, 2].map((n) => send.sink({ n })));
    const outcomes = await Promise.all(receipts.map((receipt) => receipt.settled()));
    expect(outcomes.map((outcome) => outcome.status)).toEqual(['delivered', 'delivered', 'dead']);

    const retried = batches.filter((batch) => batch.events[0]!.payload.n === 1);
    expect(retried.map((batch) => batch.attempt)).toEqual([1, 2]);
    expect(new Set(retried.map((batch) => batch.id)).size).toBe(1);

    const [letter] = await egress.deadLetters.list();
    expect(letter).toMatchObject({ payload: { n: 2 }, attempts: 1, error: { name: 'PermanentError', message: 'rejected' } });
    expect(await egress.deadLetters.retry()).toBe(1);
    await egress.flush();
    expect(await egress.deadLetters.list()).toEqual([]);
    expect(batches.filter((batch) => batch.events[0]!.payload.n === 2)).toHaveLength(2);
    const [{ count }] = (await query<{ count: string }>(`SELECT count(*) AS count FROM "${schema}".events`)) as [{ count: string }];
    expect(Number(count)).toBe(0);
    await egress.close();
  });

  test('a worker leases its free slots plus three times its concurrency ahead, as the batches table shows, and delivers them all', async () => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const started: number[] = [];
    const destination = defineDestination({
      name: 'sink',
      input,
      async deliver(batch) {
        started.push(...batch.events.map((event) => event.payload.n));
        await gate;
      },
    });
    const schema = randomSchema();
    const producer = createEgress({ role: 'producer', destinations: [destination], store: store(schema), logger: silentLogger });
    await producer.run(async (send) => {
      for (let n = 0; n < 20; n++) send.sink({ n });
    });
    const worker = createEgress({ role: 'worker', destinations: [destination], store: store(schema), logger: silentLogger, policies: { sink: { batch: { maxEvents: 1 }, concurrency: 2 } } });
    await worker.ready();
    const leased = async () => Number((await query<{ count: string }>(`SELECT count(*) AS count FROM "${schema}".batches WHERE lease_until IS NOT NULL`))[0]!.count);
    for (let tries = 0; tries < 200 && (await leased()) < 8; tries++) await new Promise((resolve) => setTimeout(resolve, 10));
    await new Promise((resolve) => setTimeout(resolve, 100));
    // Two delivering, six held ahead; the other twelve wait for a slot.
    expect(await leased()).toBe(8);
    expect(started).toHaveLength(2);
    release();
    await worker.flush();
    expect(started.sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, n) => n));
    expect(await leased()).toBe(0);
    await worker.close();
    await producer.close();
  });

  test('a worker that shuts down mid-delivery gives its batch back and another worker delivers it at once', async () => {
    const schema = randomSchema();
    let started!: () => void;
    const deliveryStarted = new Promise<void>((resolve) => (started = resolve));
    const stuck = defineDestination({
      name: 'sink',
      input,
      deliver(_batch, { signal }) {
        started();
        return new Promise<void>((_resolve, reject) => signal.addEventListener('abort', () => reject(signal.reason)));
      },
    });
    const arrived: { batchId: string; n: number[] }[] = [];
    const healthy = defineDestination({
      name: 'sink',
      input,
      async deliver(batch) {
        arrived.push({ batchId: batch.id, n: batch.events.map((event) => event.payload.n) });
      },
    });
    const policies = { sink: { batch: { maxEvents: 10 } } };
    // Polls are an hour apart here, so only the NOTIFY sent by the release can wake the other worker.
    const leaving = createEgress({ role: 'both', destinations: [stuck], store: store(schema, 3_600_000), logger: silentLogger, policies });
    await leaving.run(async (send) => {
      for (let n = 0; n < 3; n++) send.sink({ n });
    });
    await deliveryStarted;
    const staying = createEgress({ role: 'worker', destinations: [healthy], store: store(schema, 3_600_000), logger: silentLogger, policies, pollInterval: 3_600_000 });
    await staying.ready();
    // Both engines listen (LISTEN is issued in the background) before the release is announced.
    for (let listening = 0; listening < 2; ) {
      const rows = await query<{ count: string }>(`SELECT count(*) AS count FROM pg_stat_activity WHERE query LIKE 'LISTEN "egress_work:${schema}"%'`);
      listening = Number(rows[0]!.count);
    }
    await leaving.close({ timeout: 50 });

    const deadline = Date.now() + 10_000;
    while (arrived.length === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    expect(arrived.map((delivery) => delivery.n)).toEqual([[0, 1, 2]]);
    await staying.close();
  });
});
