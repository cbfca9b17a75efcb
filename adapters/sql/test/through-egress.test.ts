import { createEgress, EgressConfigurationError, EgressValidationError, memoryStore, silentLogger } from '@egress/core';
import knexFactory from 'knex';
import { afterAll, describe, expect, test } from 'vitest';
import { sql } from '../src/index.js';
import { sqliteDatabase, testDatabases, uniqueTable } from './databases.js';
import { TcpProxy } from './tcp-proxy.js';

describe.each(testDatabases())('sql through createEgress on $name', (database) => {
  const tables: string[] = [];
  const table = (label: string) => {
    const name = uniqueTable(label);
    tables.push(name);
    return name;
  };
  afterAll(async () => {
    for (const name of tables) await database.dropTable(name);
    await database.close();
  });

  test('rows sent with $send.sql arrive in batches per table', async () => {
    const orders = table('orders');
    const visits = table('visits');
    const egress = createEgress({ destinations: [sql({ knex: database.config() })], logger: silentLogger, policies: { sql: { batch: { maxDelay: 20 } } } });
    await egress.run(async ($send) => {
      for (let n = 0; n < 50; n += 1) $send.sql({ table: n % 2 === 0 ? orders : visits, payload: { n, label: `row ${n}` } });
    });
    const receipt = egress.send.sql({ table: orders, payload: { n: 100 } });
    expect(await receipt.settled()).toEqual({ status: 'delivered' });
    await egress.flush();
    await egress.close();
    expect((await database.rows(orders)).map((row) => Number(row.n)).sort((a, b) => a - b)).toEqual([...Array.from({ length: 25 }, (_, k) => k * 2), 100]);
    expect(await database.rows(visits)).toHaveLength(25);
    const [row] = await database.rows(orders);
    expect(row!._egress_event_id).toMatch(/^[0-9a-f-]{36}$/);
  });

  test('a row the database refuses is dead-lettered with the database’s message; the rest of its batch arrives', async () => {
    const target = table('dead');
    const egress = createEgress({ destinations: [sql({ knex: database.config() })], logger: silentLogger, policies: { sql: { batch: { maxDelay: 20 } } } });
    // First batch types `n` as a number; a user-added check then refuses large values.
    await egress.send.sql({ table: target, payload: { n: 1 } }).settled();
    await database.reader.raw('ALTER TABLE ?? ADD CONSTRAINT ?? CHECK (?? < 100)', [target, `${target}_small`, 'n']).catch(async (error: unknown) => {
      // SQLite cannot add a constraint to a table: rebuild it with one.
      if (database.name !== 'sqlite') throw error;
      await database.reader.raw(`DROP TABLE ??`, [target]);
      await database.reader.raw(`CREATE TABLE ?? ("_egress_event_id" TEXT PRIMARY KEY, "_egress_sent_at" TEXT NOT NULL, "n" REAL CHECK ("n" < 100))`, [target]);
    });
    const receipts = await egress.run(async ($send) => [5, 500, 7].map((n) => $send.sql({ table: target, payload: { n } })));
    const outcomes = await Promise.all(receipts.map((receipt) => receipt.settled()));
    expect(outcomes.map((outcome) => outcome.status)).toEqual(['delivered', 'dead', 'delivered']);
    const [dead] = await egress.deadLetters.list();
    expect(dead!.id).toBe(receipts[1]!.id);
    expect(dead!.attempts).toBe(1);
    expect(dead!.error.name).toBe('PermanentError');
    expect(dead!.error.message).toMatch(/check|constraint/i);
    await egress.close();
    expect((await database.rows(target)).map((row) => Number(row.n))).toEqual(expect.arrayContaining([5, 7]));
  });

  if (database.name !== 'sqlite') {
    test('a database down for a while loses nothing and catches up once it is back', async () => {
      const url = new URL(database.config().connection as string);
      const proxy = new TcpProxy('127.0.0.1', Number(url.port));
      await proxy.open();
      url.port = String(proxy.port);
      const target = table('outage');
      const egress = createEgress({
        destinations: [sql({ knex: database.config({ connection: url.toString(), acquireConnectionTimeout: 5000 }) })],
        logger: silentLogger,
        policies: { sql: { batch: { maxDelay: 10, maxEvents: 20 }, retry: { initialDelay: 20, maxDelay: 100 } } },
      });
      egress.send.sql({ table: target, payload: { n: -1 } });
      await egress.flush();
      await proxy.shut();
      let retries = 0;
      egress.on('retrying', () => {
        retries += 1;
      });
      const receipts = Array.from({ length: 100 }, (_, n) => egress.send.sql({ table: target, payload: { n } }));
      await expect.poll(() => retries, { timeout: 20_000 }).toBeGreaterThanOrEqual(3);
      expect((await database.rows(target)).map((row) => Number(row.n))).toEqual([-1]);
      await proxy.open();
      const outcomes = await Promise.all(receipts.map((receipt) => receipt.settled()));
      expect(outcomes.every((outcome) => outcome.status === 'delivered')).toBe(true);
      await egress.close();
      await proxy.shut();
      const arrived = (await database.rows(target)).map((row) => Number(row.n)).sort((a, b) => a - b);
      expect(arrived).toEqual([-1, ...Array.from({ length: 100 }, (_, n) => n)]);
    });
  }
});

describe('sql $send validation and options', () => {
  const database = sqliteDatabase();
  afterAll(() => database.close());

  const refusal = (input: unknown): EgressValidationError => {
    const egress = createEgress({ destinations: [sql({ knex: database.config() })], store: memoryStore(), logger: silentLogger });
    try {
      (egress.send.sql as (input: unknown) => unknown)(input);
    } catch (error) {
      if (EgressValidationError.isInstance(error)) return error;
      throw error;
    } finally {
      void egress.close();
    }
    throw new Error(`accepted ${JSON.stringify(input)}`);
  };

  test('refuses table names outside letters, digits and underscore, or starting with an underscore', () => {
    for (const name of ['_private', 'with-dash', 'semi;colon', 'sp ace', '', 'a'.repeat(64)]) {
      expect(refusal({ table: name, payload: {} }).issues.map((issue) => issue.path)).toEqual(['table']);
    }
  });

  test('refuses a payload that is not an object', () => {
    for (const payload of ['text', 42, [1, 2], null, undefined]) {
      expect(refusal({ table: 'events', payload }).issues.map((issue) => issue.path)).toEqual(['payload']);
    }
  });

  test('refuses unknown keys and missing ones, naming them', () => {
    expect(refusal({ table: 'events', payload: {}, data: {} }).message).toMatch(/data/);
    expect(refusal({ payload: {} }).issues.map((issue) => issue.path)).toEqual(['table']);
  });

  test('refuses field names that cannot be a column: reserved prefix, placeholders, quotes, case twins, too long', () => {
    for (const field of ['_egress_event_id', '_EGRESS_x', 'what?', 'say "hi"', 'back`tick', 'trailing ', 'x'.repeat(64), '']) {
      const error = refusal({ table: 'events', payload: { [field]: 1 } });
      expect(error.issues[0]!.path).toMatch(/^payload/);
    }
    expect(refusal({ table: 'events', payload: { Name: 1, name: 2 } }).message).toMatch(/differ only in case/);
  });

  test('refuses options without a knex instance or configuration, or with an unsupported client', () => {
    expect(() => sql({} as never)).toThrow(EgressConfigurationError);
    expect(() => sql({ knex: { client: 'sqlite3', connection: {} } })).toThrow(/\[sql\] option "knex".*"client" must be "pg", "mysql2" or "better-sqlite3"/);
    expect(() => sql({ knex: { client: 'oracledb' } })).toThrow(EgressConfigurationError);
  });

  test('writes through the application’s own knex instance and leaves it open at close', async () => {
    const target = uniqueTable('instance');
    const knex = knexFactory(database.config());
    const egress = createEgress({ destinations: [sql({ knex })], logger: silentLogger, policies: { sql: { batch: { maxDelay: 1 } } } });
    expect(await egress.send.sql({ table: target, payload: { n: 1 } }).settled()).toEqual({ status: 'delivered' });
    await egress.close();
    expect(await knex.raw('SELECT n FROM ??', [target])).toEqual([{ n: 1 }]);
    await knex.destroy();
  });

  test('answers to another $send name when given one', async () => {
    const target = uniqueTable('named');
    const egress = createEgress({ destinations: [sql({ name: 'warehouse', knex: database.config() })], logger: silentLogger, policies: { warehouse: { batch: { maxDelay: 1 } } } });
    expect(await egress.send.warehouse({ table: target, payload: { n: 1 } }).settled()).toEqual({ status: 'delivered' });
    await egress.close();
    expect(await database.rows(target)).toHaveLength(1);
  });
});
