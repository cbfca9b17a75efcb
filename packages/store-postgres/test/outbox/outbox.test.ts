import { fork } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { dropSchemas, postgresUrl, query, randomSchema } from '../postgres-test-schema.js';
import { createApplicationSchema, libraryNames, openApplicationDatabase, type ApplicationDatabase } from './application-libraries.js';
import { outboxEgress, startSink, until } from './outbox-harness.js';

const here = dirname(fileURLToPath(import.meta.url));
const tsxLoader = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
const rootTsconfig = resolve(here, '..', '..', '..', '..', 'tsconfig.json');
const connectionString = postgresUrl!;

describe.skipIf(!postgresUrl).each(libraryNames)('transactional outbox with %s', (library) => {
  const appSchema = randomSchema();
  const sink = startSink();
  let sinkUrl: string;
  let app: ApplicationDatabase;
  let producer: ReturnType<typeof outboxEgress>;

  const waitingEvents = async () => Number((await query<{ count: string }>(`SELECT count(*) AS count FROM "${appSchema}".egress_events`))[0]!.count);
  const orderRows = async (id: number) => (await query(`SELECT 1 FROM "${appSchema}".orders WHERE id = $1`, [id])).length;
  const withWorker = async (work: () => Promise<void>) => {
    const worker = outboxEgress({ connectionString, schema: appSchema, sinkUrl, role: 'worker' });
    await worker.ready();
    try {
      await work();
    } finally {
      await worker.close();
    }
  };

  beforeAll(async () => {
    sinkUrl = await sink.listen();
    await createApplicationSchema(connectionString, appSchema);
    app = await openApplicationDatabase(library, connectionString, appSchema);
    producer = outboxEgress({ connectionString, schema: appSchema, sinkUrl, role: 'producer' });
    await producer.ready();
  }, 120_000);

  afterAll(async () => {
    await producer?.close();
    await app?.close();
    await sink.close();
    await dropSchemas([appSchema]);
  });

  test('events of a committed transaction are invisible until the commit, then delivered with the order row in place', async () => {
    await withWorker(async () => {
      let seenBeforeCommit: number | undefined;
      await app.transaction(async (transaction, insertOrder) => {
        await insertOrder(1);
        await producer.run((send) => void send.orders({ order: 1 }), { transaction });
        seenBeforeCommit = await waitingEvents();
      });
      expect(seenBeforeCommit).toBe(0);
      await until(() => sink.arrivals.get(1) === 1, 'order 1 delivered');
      expect(await orderRows(1)).toBe(1);
    });
  });

  test('a rolled-back transaction enqueues nothing and delivers nothing, and holds no capacity', async () => {
    await withWorker(async () => {
      await expect(
        app.transaction(async (transaction, insertOrder) => {
          await insertOrder(2);
          await producer.run((send) => void send.orders({ order: 2 }), { transaction });
          throw new Error('payment declined');
        }),
      ).rejects.toThrow('payment declined');
      expect(await waitingEvents()).toBe(0);
      expect(await orderRows(2)).toBe(0);
      // A transaction committed after the rollback is delivered; by then order 2 would have been too.
      await app.transaction(async (transaction, insertOrder) => {
        await insertOrder(3);
        await producer.run((send) => void send.orders({ order: 3 }), { transaction });
      });
      await until(() => sink.arrivals.has(3), 'order 3 delivered');
      expect(sink.arrivals.has(2)).toBe(false);
      const [stats] = await producer.stats();
      expect(stats!.buffered).toBe(0);
    });
  });

  test('a unit of work that throws writes nothing through the transaction', async () => {
    await app.transaction(async (transaction, insertOrder) => {
      await insertOrder(4);
      await expect(
        producer.run(
          (send) => {
            send.orders({ order: 4 });
            throw new Error('changed my mind');
          },
          { transaction },
        ),
      ).rejects.toThrow('changed my mind');
    });
    expect(await orderRows(4)).toBe(1);
    expect(await waitingEvents()).toBe(0);
  });

  test('a process SIGKILLed right after its commit has its events delivered by the next worker', async () => {
    const child = fork(join(here, 'fixtures', 'commit-then-die.ts'), [JSON.stringify({ library, connectionString, appSchema, sinkUrl, order: 5 })], {
      execArgv: ['--import', tsxLoader],
      env: { ...process.env, TSX_TSCONFIG_PATH: rootTsconfig },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const signal = await new Promise<NodeJS.Signals | null>((done) => child.once('exit', (_code, exitSignal) => done(exitSignal)));
    expect(signal).toBe('SIGKILL');
    expect(await orderRows(5)).toBe(1);
    expect(sink.arrivals.has(5)).toBe(false);
    await withWorker(() => until(() => sink.arrivals.get(5) === 1, 'order 5 delivered by the next worker'));
    expect(await waitingEvents()).toBe(0);
  }, 120_000);

  test('50 concurrent transactions each wake a worker that only listens: every event is delivered once', async () => {
    await withWorker(async () => {
      const orders = Array.from({ length: 50 }, (_, index) => 100 + index);
      await Promise.all(
        orders.map((order) =>
          app.transaction(async (transaction, insertOrder) => {
            await insertOrder(order);
            await producer.run((send) => void send.orders({ order }), { transaction });
          }),
        ),
      );
      await until(() => orders.every((order) => sink.arrivals.has(order)), 'all 50 orders delivered');
      expect(orders.map((order) => sink.arrivals.get(order))).toEqual(orders.map(() => 1));
    });
  }, 120_000);
});
