import { randomBytes } from 'node:crypto';
import { createEventId, EgressConfigurationError, type Store } from '@egress/core';
import { afterAll, describe, expect, test } from 'vitest';
import { postgresStore, type PostgresStoreOptions } from '../src/index.js';
import { dropSchemas, postgresUrl, query, randomSchema } from './postgres-test-schema.js';

const created = new Set<string>();
const open = new Set<Store>();
const t0 = 1_700_000_000_000;

/** A store whose connections can be told apart from everyone else's by their application name. */
async function openStore(options: Partial<PostgresStoreOptions> = {}): Promise<{ store: Store; backends: () => Promise<number[]>; listening: () => Promise<number> }> {
  const schema = randomSchema();
  created.add(schema);
  const applicationName = `egress_warm_${randomBytes(6).toString('hex')}`;
  const url = new URL(postgresUrl!);
  url.searchParams.set('application_name', applicationName);
  const store = postgresStore({ connectionString: url.toString(), schema, ...options });
  open.add(store);
  await store.open();
  const backends = async () =>
    (await query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE application_name = $1 ORDER BY pid', [applicationName])).map((row) => row.pid);
  const listening = async () =>
    (await query<{ count: string }>("SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND query LIKE 'LISTEN%'", [applicationName]))[0]!.count === '1' ? 1 : 0;
  return { store, backends, listening };
}

async function close(store: Store): Promise<void> {
  open.delete(store);
  await store.close();
}

async function until(condition: () => Promise<boolean>, timeout = 10_000): Promise<void> {
  const deadline = Date.now() + timeout;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe.skipIf(!postgresUrl)('postgres store connections opened at start and kept while idle', () => {
  afterAll(async () => {
    await Promise.all([...open].map((store) => store.close()));
    await dropSchemas(created);
  });

  test('once open, the store holds three connections, and the first write, claim and settlement open no other', async () => {
    const { store, backends } = await openStore();
    const warmed = await backends();
    expect(warmed).toHaveLength(3);

    await store.enqueue([{ id: createEventId(), destination: 'd', partition: 'p', payload: '{}', size: 2, sentAt: t0, attempts: 0 }]);
    const claimed = await store.claim({ destination: 'd', now: t0, owner: 'test', maxBatches: 1, maxEvents: 1, maxBytes: 1000, maxDelay: 0, force: false, fifo: false, leaseMs: 60_000 });
    expect(claimed.batches).toHaveLength(1);
    await store.settle(claimed.batches[0]!, { delivered: claimed.batches[0]!.events.map((event) => event.id), dead: [] });

    expect(await backends()).toEqual(warmed);
    await close(store);
    await until(async () => (await backends()).length === 0);
  });

  test('the warm-up writes nothing: no producer, partition or counter rows and no batches', async () => {
    const { store } = await openStore();
    const schema = [...created].at(-1)!;
    const [rows] = await query<{ producers: string; partitions: string; counters: string; batches: string }>(
      `SELECT (SELECT count(*) FROM "${schema}".producers) AS producers, (SELECT count(*) FROM "${schema}".partitions) AS partitions,
              (SELECT count(*) FROM "${schema}".counters) AS counters, (SELECT count(*) FROM "${schema}".batches) AS batches`,
    );
    expect(rows).toEqual({ producers: '0', partitions: '0', counters: '0', batches: '0' });
    await close(store);
  });

  test('the kept connections outlive the idle timeout; with none to keep, idle connections close after it', async () => {
    const kept = await openStore({ idleTimeout: 200 });
    const none = await openStore({ idleTimeout: 200, idleConnections: 0 });
    expect(await kept.backends()).toHaveLength(3);
    await until(async () => (await none.backends()).length === 0);
    await pause(600);
    expect(await kept.backends()).toHaveLength(3);
    await close(kept.store);
    await close(none.store);
    await until(async () => (await kept.backends()).length === 0);
  });

  test("a worker's LISTEN connection does not count among the kept ones", async () => {
    const worker = await openStore({ idleTimeout: 200 });
    const unsubscribe = worker.store.subscribe!(() => undefined);
    // LISTEN holds one of the three; three reads at once need a fourth.
    await until(async () => (await worker.listening()) === 1);
    await Promise.all([worker.store.stats(t0), worker.store.stats(t0), worker.store.stats(t0)]);
    expect(await worker.backends()).toHaveLength(4);
    await pause(600);
    expect(await worker.backends()).toHaveLength(4);
    unsubscribe();
    await close(worker.store);
  });

  test('idleConnections takes an integer from 0 to 10', () => {
    expect(() => postgresStore({ connectionString: postgresUrl!, idleConnections: 11 })).toThrow(EgressConfigurationError);
    expect(() => postgresStore({ connectionString: postgresUrl!, idleConnections: 1.5 })).toThrow(EgressConfigurationError);
    expect(() => postgresStore({ connectionString: postgresUrl!, idleConnections: -1 })).toThrow(EgressConfigurationError);
  });
});
