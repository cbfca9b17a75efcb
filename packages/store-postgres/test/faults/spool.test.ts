import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createEventId, EgressConfigurationError, type QueuedEvent, type StoreStatus } from '@egress/core';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, test } from 'vitest';
import { postgresStore } from '../../src/index.js';
import { dropSchemas, postgresUrl, query, randomSchema } from '../postgres-test-schema.js';
import { proxiedDatabase, startProcess, startSink, unexplainedDuplicates, until, type FaultProcess } from './fault-harness.js';

const schemas = new Set<string>();
const directories: string[] = [];

function spoolPath(): string {
  const directory = mkdtempSync(join(tmpdir(), 'egress-spool-'));
  directories.push(directory);
  return join(directory, 'spool', 'events.db');
}

function spooledRows(path: string): number {
  const database = new Database(path, { readonly: true, fileMustExist: true });
  try {
    return (database.prepare('SELECT count(*) AS count FROM spooled_events').get() as { count: number }).count;
  } finally {
    database.close();
  }
}

function events(count: number, from = 0): QueuedEvent[] {
  return Array.from({ length: count }, (_, index) => ({
    id: createEventId(),
    destination: 'sink',
    partition: '',
    payload: JSON.stringify({ n: from + index }),
    size: 10,
    sentAt: Date.now(),
    attempts: 0,
  }));
}

describe.skipIf(!postgresUrl)('postgres store with a local spool', () => {
  afterAll(async () => {
    await dropSchemas(schemas);
    for (const directory of directories) rmSync(directory, { recursive: true, force: true });
  });

  test('opened while PostgreSQL is down, it takes events into a private file and moves them over in order once it is back, later events behind them', async () => {
    const schema = randomSchema();
    schemas.add(schema);
    const path = spoolPath();
    const { proxy, url } = await proxiedDatabase();
    proxy.refuse();
    const store = postgresStore({ connectionString: url, schema, spool: { path }, connectTimeout: 500, queryTimeout: 2000 });
    const seen: StoreStatus[] = [];
    try {
      await store.open({ logger: { debug() {}, info() {}, warn() {}, error() {} }, statusChanged: (status) => seen.push(status) });
      const early = events(300);
      for (let offset = 0; offset < early.length; offset += 50) await store.enqueue(early.slice(offset, offset + 50));
      expect(store.status!()).toMatchObject({ state: 'unreachable', spooled: 300 });
      expect(store.status!().error).toContain('ECONNRESET');
      expect(statSync(path).mode & 0o777).toBe(0o600);
      expect(statSync(join(path, '..')).mode & 0o777).toBe(0o700);

      proxy.restore();
      // Sent right after PostgreSQL came back, while the spool may still hold events: they go behind.
      const late = events(100, 300);
      for (let offset = 0; offset < late.length; offset += 10) await store.enqueue(late.slice(offset, offset + 10));
      await until(() => store.status!().spooled === 0 && store.status!().state === 'connected', 10_000, 'the spool moved into PostgreSQL');
      const rows = await query<{ id: string }>(`SELECT id FROM "${schema}".events ORDER BY seq`);
      expect(rows.map((row) => row.id)).toEqual([...early, ...late].map((event) => event.id));
      expect(seen.some((status) => status.state === 'unreachable')).toBe(true);
      expect(seen.at(-1)).toMatchObject({ state: 'connected', spooled: 0 });
    } finally {
      await store.close();
      await proxy.close();
    }
    // Read on disk once the store let go of the file (it holds it exclusively while open).
    expect(spooledRows(path)).toBe(0);
  }, 30_000);

  test('a spool held by one process is refused to a second, which may take it once the first has closed', async () => {
    const schema = randomSchema();
    schemas.add(schema);
    const path = spoolPath();
    const { proxy, url } = await proxiedDatabase();
    proxy.refuse();
    const options = { connectionString: url, schema, spool: path, connectTimeout: 500 };
    const first = postgresStore(options);
    const second = postgresStore(options);
    try {
      await first.open();
      await first.enqueue(events(5));
      const refused = await second.open().then(
        () => undefined,
        (failure: unknown) => failure,
      );
      expect(EgressConfigurationError.isInstance(refused)).toBe(true);
      expect(String((refused as Error).message)).toContain('is in use by another process');
      expect(() => spooledRows(path)).toThrow();
      await first.close();
      expect(spooledRows(path)).toBe(5);
      await second.open();
      expect(second.status!()).toMatchObject({ spooled: 5 });
    } finally {
      await first.close();
      await second.close();
      await proxy.close();
    }
  }, 30_000);

  test('a producer SIGKILLed during an outage loses nothing it accepted: the next store on its spool moves the events over and the workers deliver them', async () => {
    const schema = randomSchema();
    schemas.add(schema);
    const path = spoolPath();
    const sink = await startSink();
    const { proxy, url } = await proxiedDatabase();
    const processes: FaultProcess[] = [];
    try {
      const base = { connectionString: url, schema, sinkUrl: sink.url, rate: 200, first: 0 };
      const worker = startProcess({ ...base, role: 'worker', name: 'worker-0' });
      processes.push(worker);
      await worker.next('ready');
      proxy.refuse();
      const producer = startProcess({ ...base, role: 'producer', name: 'producer', spool: path });
      processes.push(producer);
      await producer.next('ready');
      await until(() => producer.accepted.size >= 400, 30_000, 'the producer accepted events during the outage');
      producer.child.kill('SIGKILL');
      await producer.exited();
      const accepted = new Set(producer.accepted);
      expect(spooledRows(path)).toBeGreaterThanOrEqual(accepted.size);

      proxy.restore();
      // A new producer on the same spool sends nothing itself; opening the store moves the file over.
      const successor = startProcess({ ...base, role: 'producer', name: 'successor', rate: 0, spool: path });
      processes.push(successor);
      await until(
        () => {
          const delivered = sink.delivered();
          return [...accepted].every((n) => delivered.has(n));
        },
        30_000,
        'every event the killed producer accepted arrived',
      );
      expect(unexplainedDuplicates(sink.deliveries)).toEqual([]);
      expect(worker.alive()).toBe(true);
      const closed = successor.next('closed');
      successor.child.send({ type: 'stop' });
      await closed;
      await successor.exited();
      expect(spooledRows(path)).toBe(0);
      worker.child.send({ type: 'close' });
      expect(await worker.exited()).toBe(0);
    } finally {
      for (const child of processes) if (child.alive()) child.child.kill('SIGKILL');
      await proxy.close();
      await sink.close();
    }
  }, 90_000);

  test('refuses a spool file that is not an Egress spool, or that belongs to another schema, and changes nothing', async () => {
    const foreign = spoolPath();
    const store = postgresStore({ connectionString: postgresUrl!, schema: randomSchema(), spool: foreign });
    // A store that opened the spool creates it; a second store of another schema must not use it.
    const owner = randomSchema();
    schemas.add(owner);
    const first = postgresStore({ connectionString: postgresUrl!, schema: owner, spool: foreign });
    await first.open();
    await first.close();
    const error = await store.open().then(
      () => undefined,
      (failure: unknown) => failure,
    );
    await store.close();
    expect(EgressConfigurationError.isInstance(error)).toBe(true);
    expect(String((error as Error).message)).toContain(`holds events for the schema "${owner}"`);

    const other = spoolPath();
    const database = new Database(join(other, '..', '..', 'other.db'));
    database.exec('CREATE TABLE notes (body TEXT)');
    database.close();
    const misplaced = postgresStore({ connectionString: postgresUrl!, schema: owner, spool: join(other, '..', '..', 'other.db') });
    const refused = await misplaced.open().then(
      () => undefined,
      (failure: unknown) => failure,
    );
    await misplaced.close();
    expect(EgressConfigurationError.isInstance(refused)).toBe(true);
    expect(String((refused as Error).message)).toContain('not an Egress spool');

    expect(() => postgresStore({ connectionString: postgresUrl!, spool: 42 as unknown as string })).toThrow('option "spool"');
  });
});
