import { PermanentError, RetryableError } from '@egress/core';
import knexFactory from 'knex';
import { afterAll, afterEach, describe, expect, test } from 'vitest';
import { sql } from '../src/index.js';
import { testDatabases, uniqueTable, type TestDatabase } from './databases.js';
import { batchOf, caught, deliver, type SqlDestination } from './helpers.js';
import { TcpProxy } from './tcp-proxy.js';

const expectedTypes: Record<TestDatabase['name'], Record<string, string | RegExp>> = {
  postgresql: {
    _egress_event_id: 'uuid',
    _egress_sent_at: 'timestamp with time zone',
    amount: 'double precision',
    paid: 'boolean',
    day: 'date',
    at: 'timestamp without time zone',
    zoned: 'timestamp with time zone',
    tags: 'jsonb',
    customer: 'jsonb',
    name: 'text',
  },
  mysql: {
    _egress_event_id: 'char(36)',
    _egress_sent_at: 'datetime(3)',
    amount: 'double',
    paid: 'tinyint(1)',
    day: 'date',
    at: 'datetime(6)',
    zoned: 'datetime(6)',
    // MariaDB's JSON is LONGTEXT checked by json_valid; MySQL 8 reports json.
    tags: /^(json|longtext)$/,
    customer: /^(json|longtext)$/,
    name: 'longtext',
  },
  sqlite: {
    _egress_event_id: 'text',
    _egress_sent_at: 'text',
    amount: 'real',
    paid: 'boolean',
    day: 'date',
    at: 'datetime',
    zoned: 'datetime',
    tags: 'json',
    customer: 'json',
    name: 'text',
  },
};

const textType: Record<TestDatabase['name'], string> = { postgresql: 'text', mysql: 'longtext', sqlite: 'text' };

function parseJson(value: unknown): unknown {
  return typeof value === 'string' ? JSON.parse(value) : value;
}

function dateText(value: unknown): string {
  if (value instanceof Date) return `${value.getFullYear()}-${String(value.getMonth() + 1).padStart(2, '0')}-${String(value.getDate()).padStart(2, '0')}`;
  return String(value);
}

describe.each(testDatabases())('sql destination on $name', (database) => {
  const tables: string[] = [];
  const destinations: SqlDestination[] = [];
  const table = (label: string) => {
    const name = uniqueTable(label);
    tables.push(name);
    return name;
  };
  const destination = (overrides = {}) => {
    const created = sql({ knex: database.config(overrides) });
    destinations.push(created);
    return created;
  };

  afterEach(async () => {
    await Promise.all(destinations.splice(0).map((created) => created.stop?.()));
  });
  afterAll(async () => {
    for (const name of tables) await database.dropTable(name);
    await database.close();
  });

  test('creates the table on first use, one column per field typed from its values, plus event id and sent time', async () => {
    const target = table('create');
    const events = destination();
    const before = Date.now();
    const batch = batchOf(events, [
      {
        table: target,
        payload: {
          amount: 12.5,
          paid: true,
          day: '2024-05-01',
          at: '2024-05-01 10:00:00.123456',
          zoned: '2024-05-01T10:00:00Z',
          tags: ['a', 'b'],
          customer: { id: 7, name: 'Luke' },
          name: 'first',
          nothing: null,
        },
      },
      { table: target, payload: { amount: 3, paid: false, name: 'second' } },
    ]);
    expect(await deliver(events, batch)).toBeUndefined();

    const types = await database.columnTypes(target);
    expect(Object.keys(types).sort()).toEqual(Object.keys(expectedTypes[database.name]).sort());
    for (const [column, type] of Object.entries(expectedTypes[database.name])) expect(types[column]).toMatch(type);

    const rows = await database.rows(target);
    expect(rows.map((row) => row._egress_event_id)).toEqual(batch.events.map((event) => event.id));
    const [first, second] = rows as [Record<string, unknown>, Record<string, unknown>];
    expect(first.name).toBe('first');
    expect(Number(first.amount)).toBe(12.5);
    expect(Boolean(first.paid)).toBe(true);
    expect(dateText(first.day)).toBe('2024-05-01');
    expect(parseJson(first.tags)).toEqual(['a', 'b']);
    expect(parseJson(first.customer)).toEqual({ id: 7, name: 'Luke' });
    expect(Boolean(second.paid)).toBe(false);
    expect(second.tags).toBeNull();
    expect(second.day).toBeNull();
    const sentAt = new Date(database.name === 'mysql' ? `${String(first._egress_sent_at).replace(' ', 'T')}Z` : (first._egress_sent_at as string)).getTime();
    if (database.name !== 'mysql') expect(Math.abs(sentAt - batch.events[0]!.sentAt)).toBeLessThan(1000);
    expect(first._egress_sent_at).not.toBeNull();
    expect(before).toBeLessThanOrEqual(batch.events[0]!.sentAt);
  });

  test('adds columns when new fields appear; earlier rows read NULL there', async () => {
    const target = table('widen');
    const events = destination();
    await deliver(events, batchOf(events, [{ table: target, payload: { a: 1 } }]));
    await deliver(events, batchOf(events, [{ table: target, payload: { a: 2, b: 'new', c: true } }]));
    const rows = await database.rows(target);
    expect(rows.map((row) => [Number(row.a), row.b ?? null, row.c === null ? null : Boolean(row.c)])).toEqual([
      [1, null, null],
      [2, 'new', true],
    ]);
  });

  test('a field only ever null gets no column until a value arrives, then takes that value’s type', async () => {
    const target = table('nulls');
    const events = destination();
    await deliver(events, batchOf(events, [{ table: target, payload: { a: 1, later: null } }]));
    expect(Object.keys(await database.columnTypes(target))).not.toContain('later');
    await deliver(events, batchOf(events, [{ table: target, payload: { a: 2, later: 4.5 } }]));
    expect((await database.columnTypes(target)).later).toBe(expectedTypes[database.name].amount);
    expect((await database.rows(target)).map((row) => (row.later === null ? null : Number(row.later)))).toEqual([null, 4.5]);
  });

  test('a field seen with mixed types is stored as text', async () => {
    const target = table('mixed');
    const events = destination();
    await deliver(events, batchOf(events, [{ table: target, payload: { v: 1.5, same: [1] } }, { table: target, payload: { v: 'abc', same: { a: 1 } } }]));
    await deliver(events, batchOf(events, [{ table: target, payload: { v: true } }]));
    const types = await database.columnTypes(target);
    expect(types.v).toBe(textType[database.name]);
    expect(types.same).toMatch(expectedTypes[database.name].tags!);
    const values = (await database.rows(target)).map((row) => row.v);
    expect(values).toEqual(['1.5', 'abc', 'true']);
  });

  if (database.name !== 'sqlite') {
    test('turns an existing column into text when a value of another type arrives, keeping earlier values as text', async () => {
      const target = table('retype');
      const events = destination();
      await deliver(events, batchOf(events, [{ table: target, payload: { v: 2.5, when: '2024-01-02', doc: { k: 1 } } }]));
      await deliver(events, batchOf(events, [{ table: target, payload: { v: 'two', when: 'soon', doc: 'plain' } }]));
      const types = await database.columnTypes(target);
      expect([types.v, types.when, types.doc]).toEqual([textType[database.name], textType[database.name], textType[database.name]]);
      const rows = await database.rows(target);
      expect(rows.map((row) => row.v)).toEqual(['2.5', 'two']);
      expect(rows.map((row) => row.when)).toEqual(['2024-01-02', 'soon']);
      expect(parseJson(rows[0]!.doc)).toEqual({ k: 1 });
      expect(rows[1]!.doc).toBe('plain');
    });
  } else {
    test('keeps a SQLite column as created and stores a value of another type as it is (SQLite types values, not columns)', async () => {
      const target = table('retype');
      const events = destination();
      await deliver(events, batchOf(events, [{ table: target, payload: { v: 2.5 } }]));
      await deliver(events, batchOf(events, [{ table: target, payload: { v: 'two' } }]));
      expect((await database.columnTypes(target)).v).toBe('real');
      const typed = await database.reader.raw(`SELECT v, typeof(v) AS type FROM ?? ORDER BY "_egress_event_id"`, [target]);
      expect(typed).toEqual([
        { v: 2.5, type: 'real' },
        { v: 'two', type: 'text' },
      ]);
    });
  }

  test('a batch delivered twice with the same event ids stores each row once', async () => {
    const target = table('redeliver');
    const events = destination();
    const batch = batchOf(events, [1, 2, 3].map((n) => ({ table: target, payload: { n } })));
    await deliver(events, batch);
    await deliver(events, { ...batch, attempt: 2 });
    const partlyNew = batchOf(events, [{ table: target, payload: { n: 4 } }]);
    await deliver(events, { ...partlyNew, events: [...batch.events, ...partlyNew.events] });
    expect((await database.rows(target)).map((row) => Number(row.n))).toEqual([1, 2, 3, 4]);
  });

  test('splits a batch above the parameter limit into several inserts and stores every row', async () => {
    const target = table('split');
    const events = destination();
    // 40 fields + 2 system columns × 2000 rows = 84,000 parameters: over PostgreSQL's and MySQL's 65,535 and SQLite's 32,766.
    const payload = (n: number) => Object.fromEntries([['n', n], ...Array.from({ length: 39 }, (_, field) => [`f${field}`, `v${n}-${field}`])]);
    const batch = batchOf(events, Array.from({ length: 2000 }, (_, n) => ({ table: target, payload: payload(n) })));
    expect(await deliver(events, batch)).toBeUndefined();
    const rows = await database.rows(target);
    expect(rows).toHaveLength(2000);
    expect(rows.map((row) => Number(row.n))).toEqual(Array.from({ length: 2000 }, (_, n) => n));
    expect(rows[1999]!.f38).toBe('v1999-38');
  });

  if (database.name === 'postgresql') {
    test('writes a table with an array column of its own through VALUES lists split under 65,535 parameters', async () => {
      const target = table('array_column');
      await database.reader.raw('CREATE TABLE ?? ("_egress_event_id" uuid PRIMARY KEY, "_egress_sent_at" timestamptz NOT NULL, labels text[])', [target]);
      const events = destination();
      const payload = (n: number) => Object.fromEntries([['n', n], ['labels', [`a${n}`, 'b']], ...Array.from({ length: 38 }, (_, field) => [`f${field}`, `v${n}-${field}`])]);
      const batch = batchOf(events, Array.from({ length: 2000 }, (_, n) => ({ table: target, payload: payload(n) })));
      expect(await deliver(events, batch)).toBeUndefined();
      await deliver(events, batch);
      const rows = await database.rows(target);
      expect(rows.map((row) => Number(row.n))).toEqual(Array.from({ length: 2000 }, (_, n) => n));
      expect(rows[1999]!.labels).toEqual(['a1999', 'b']);
    });
  }

  test('stores a batch larger than MySQL’s 16 MiB packet limit by splitting it by size', async () => {
    const target = table('large');
    const events = destination();
    const big = (n: number) => `${n}:`.padEnd(1536 * 1024, 'x');
    const batch = batchOf(events, Array.from({ length: 12 }, (_, n) => ({ table: target, payload: { n, body: big(n) } })));
    expect(await deliver(events, batch)).toBeUndefined();
    const rows = await database.rows(target);
    expect(rows.map((row) => [Number(row.n), (row.body as string).length, (row.body as string).startsWith(`${row.n}:x`)])).toEqual(
      Array.from({ length: 12 }, (_, n) => [n, 1536 * 1024, true]),
    );
  });

  test('fails only the rows the database refuses, each with the database’s message, and stores the others', async () => {
    const target = table('refused');
    const check = database.name === 'postgresql' ? 'double precision' : database.name === 'mysql' ? 'DOUBLE' : 'REAL';
    const idType = database.name === 'postgresql' ? 'uuid' : database.name === 'mysql' ? 'CHAR(36)' : 'TEXT';
    const sentType = database.name === 'postgresql' ? 'timestamptz' : database.name === 'mysql' ? 'DATETIME(3)' : 'TEXT';
    await database.reader.raw(
      `CREATE TABLE ?? (??  ${idType} PRIMARY KEY, ?? ${sentType} NOT NULL, ?? ${check}, CONSTRAINT ?? CHECK (?? < 100))`,
      [target, '_egress_event_id', '_egress_sent_at', 'n', `${target}_small`, 'n'],
    );
    const events = destination();
    const batch = batchOf(events, [5, 500, 7, 8, 900, 9].map((n) => ({ table: target, payload: { n } })));
    const report = await deliver(events, batch);
    expect(report?.failures.map((failure) => failure.eventId)).toEqual([batch.events[1]!.id, batch.events[4]!.id]);
    for (const failure of report!.failures) {
      expect(PermanentError.isInstance(failure.error)).toBe(true);
      expect((failure.error as Error).message).toMatch(/check|constraint/i);
      expect((failure.error as Error).message).not.toMatch(/insert into/i);
    }
    expect((await database.rows(target)).map((row) => Number(row.n)).sort((a, b) => a - b)).toEqual([5, 7, 8, 9]);
  });

  test('quotes every identifier and binds every value', async () => {
    const target = table('quoting');
    const events = destination();
    const hostile = `'); DROP TABLE ${target}; --`;
    const payload = { 'user-id': 1, 'First Name': hostile, order: 'select', 'ünïcödé': 'ok', 'a;b': 2 };
    await deliver(events, batchOf(events, [{ table: target, payload }]));
    const [row] = await database.rows(target);
    expect(row).toMatchObject({ 'First Name': hostile, order: 'select', 'ünïcödé': 'ok' });
    expect(Number(row!['user-id'])).toBe(1);
    expect(Number(row!['a;b'])).toBe(2);
  });

  test('stores awkward strings, JSON and bytes exactly as sent', async () => {
    const target = table('exact');
    const events = destination();
    const strings = ['', 'NULL', 'null', 'say "hi"', 'back\\slash \\"both\\"', '{braces, commas}', 'tab\tnew\nline', 'emoji 🚀 ünïcode', ' spaced '];
    const inputs = strings.map((text, n) => ({ table: target, payload: { n, text, doc: { text, list: [text, null, 1.5] }, bytes: new Uint8Array([0, n, 255, 92, 34]) } }));
    await deliver(events, batchOf(events, inputs));
    const rows = await database.rows(target);
    expect(rows.map((row) => row.text)).toEqual(strings);
    expect(rows.map((row) => parseJson(row.doc))).toEqual(strings.map((text) => ({ text, list: [text, null, 1.5] })));
    expect(rows.map((row) => [...(row.bytes as Uint8Array)])).toEqual(strings.map((_, n) => [0, n, 255, 92, 34]));
  });

  test('reads the schema again when the table or a column vanished behind its back', async () => {
    const target = table('vanished');
    const events = destination();
    await deliver(events, batchOf(events, [{ table: target, payload: { a: 1, b: 'x' } }]));
    await database.dropTable(target);
    await deliver(events, batchOf(events, [{ table: target, payload: { a: 2, b: 'y' } }]));
    expect((await database.rows(target)).map((row) => [Number(row.a), row.b])).toEqual([[2, 'y']]);
  });

  test('reports health: reachable, and the driver’s message when not', async () => {
    expect(await destination().health?.()).toMatchObject({ ok: true });
    const unreachable =
      database.name === 'sqlite'
        ? destination({ connection: { filename: '/nonexistent-directory/events.db' } })
        : destination({ connection: database.name === 'postgresql' ? 'postgres://postgres@127.0.0.1:1/test' : 'mysql://root@127.0.0.1:1/test', acquireConnectionTimeout: 5000 });
    const report = await unreachable.health?.();
    expect(report?.ok).toBe(false);
    expect(report?.message).toBeTruthy();
  });

  test('keeps the instant of a timestamp with a zone (MySQL stores it as UTC wall time)', async () => {
    const target = table('zones');
    const events = destination();
    await deliver(events, batchOf(events, [{ table: target, payload: { at: '2024-05-01T10:00:00.250+02:00' } }, { table: target, payload: { at: '2024-05-01T08:30:00Z' } }]));
    const query = {
      postgresql: `SELECT to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.MS') AS at FROM ?? ORDER BY "_egress_event_id"`,
      mysql: 'SELECT DATE_FORMAT(at, "%Y-%m-%d %H:%i:%s.%f") AS at FROM ?? ORDER BY `_egress_event_id`',
      sqlite: 'SELECT at FROM ?? ORDER BY "_egress_event_id"',
    }[database.name];
    const result = await database.reader.raw(query, [target]);
    const values = (database.name === 'postgresql' ? result.rows : database.name === 'mysql' ? result[0] : result).map((row: { at: string }) => row.at);
    expect(values).toEqual(
      {
        postgresql: ['2024-05-01 08:00:00.250', '2024-05-01 08:30:00.000'],
        mysql: ['2024-05-01 08:00:00.250000', '2024-05-01 08:30:00.000000'],
        sqlite: ['2024-05-01T10:00:00.250+02:00', '2024-05-01T08:30:00Z'],
      }[database.name],
    );
  });

  if (database.name !== 'postgresql') {
    test('fields that differ in case across events share one column, as MySQL and SQLite name columns', async () => {
      const target = table('case');
      const events = destination();
      await deliver(events, batchOf(events, [{ table: target, payload: { Name: 'first' } }]));
      await deliver(events, batchOf(events, [{ table: target, payload: { NAME: 'second' } }]));
      expect(Object.keys(await database.columnTypes(target)).filter((column) => column.toLowerCase() === 'name')).toEqual(['Name']);
      expect((await database.rows(target)).map((row) => row.Name)).toEqual(['first', 'second']);
    });
  }

  test('two writers widening the same table at once both arrive whole', async () => {
    const target = table('concurrent');
    const left = destination();
    const right = destination();
    const rounds = 4;
    const work = (writer: SqlDestination, side: string) => async () => {
      for (let round = 0; round < rounds; round += 1) {
        const payload = { side, round, [`${side}_${round}`]: round, shared: round % 2 === 0 ? round : `r${round}` };
        expect(await deliver(writer, batchOf(writer, [{ table: target, payload }, { table: target, payload }]))).toBeUndefined();
      }
    };
    await Promise.all([work(left, 'left')(), work(right, 'right')()]);
    const rows = await database.rows(target);
    expect(rows).toHaveLength(rounds * 4);
    const columns = Object.keys(await database.columnTypes(target));
    for (let round = 0; round < rounds; round += 1) expect(columns).toEqual(expect.arrayContaining([`left_${round}`, `right_${round}`]));
    expect(rows.filter((row) => row.side === 'left' && Number(row.left_3) === 3)).toHaveLength(2);
  });

  test('answers a lock held too long by another session with a RetryableError, then delivers once it is released', async () => {
    const target = table('locked');
    type Done = (error: Error | null, connection: unknown) => void;
    const shortLockWait = {
      postgresql: (connection: { query(sql: string, callback: (error: Error | null) => void): void }, done: Done) =>
        connection.query("SET lock_timeout = '200ms'", (error) => done(error, connection)),
      mysql: (connection: { query(sql: string, callback: (error: Error | null) => void): void }, done: Done) =>
        connection.query('SET SESSION lock_wait_timeout = 1, innodb_lock_wait_timeout = 1', (error) => done(error, connection)),
      sqlite: (connection: { pragma(sql: string): unknown }, done: Done) => {
        connection.pragma('busy_timeout = 100');
        done(null, connection);
      },
    }[database.name];
    const events = destination({ pool: { min: 0, max: 2, afterCreate: shortLockWait } });
    await deliver(events, batchOf(events, [{ table: target, payload: { n: 1 } }]));
    const held = batchOf(events, [{ table: target, payload: { n: 2 } }]);
    await database.reader.transaction(async (transaction) => {
      if (database.name === 'postgresql') await transaction.raw('LOCK TABLE ?? IN ACCESS EXCLUSIVE MODE', [target]);
      else if (database.name === 'mysql') await transaction.raw('SELECT * FROM ?? FOR UPDATE', [target]).then(() => transaction.raw('LOCK TABLES ?? WRITE', [target]));
      else await transaction.raw('DELETE FROM ?? WHERE 0', [target]);
      const error = await caught(deliver(events, held));
      expect(RetryableError.isInstance(error)).toBe(true);
      expect((error as Error).message).toMatch(/lock|busy/i);
      if (database.name === 'mysql') await transaction.raw('UNLOCK TABLES');
    });
    await deliver(events, held);
    expect((await database.rows(target)).map((row) => Number(row.n))).toEqual([1, 2]);
  });

  if (database.name === 'sqlite') {
    test('answers a database file that cannot be opened with a RetryableError, then delivers once it can', async () => {
      const { mkdtempSync, rmSync, mkdirSync } = await import('node:fs');
      const { join } = await import('node:path');
      const { tmpdir } = await import('node:os');
      const directory = join(mkdtempSync(join(tmpdir(), 'egress-sql-down-')), 'not-yet');
      const events = sql({ knex: { client: 'better-sqlite3', connection: { filename: join(directory, 'events.db') } } });
      destinations.push(events);
      const target = uniqueTable('down');
      const batch = batchOf(events, [{ table: target, payload: { n: 1 } }]);
      expect(RetryableError.isInstance(await caught(deliver(events, batch)))).toBe(true);
      mkdirSync(directory);
      await deliver(events, batch);
      await events.stop?.();
      const reader = knexFactory({ client: 'better-sqlite3', connection: { filename: join(directory, 'events.db') }, useNullAsDefault: true });
      expect(await reader.raw('SELECT n FROM ??', [target])).toEqual([{ n: 1 }]);
      await reader.destroy();
      rmSync(directory, { recursive: true, force: true });
    });
  } else {
    test('answers a database that cannot be reached with a RetryableError, then delivers once it is back', async () => {
      const url = new URL(database.config().connection as string);
      const proxy = new TcpProxy('127.0.0.1', Number(url.port));
      await proxy.open();
      await proxy.shut();
      url.port = String(proxy.port);
      const target = table('down');
      const events = destination({ connection: url.toString(), acquireConnectionTimeout: 5000 });
      const batch = batchOf(events, [{ table: target, payload: { n: 1 } }]);
      const refused = await caught(deliver(events, batch));
      expect(RetryableError.isInstance(refused)).toBe(true);
      await proxy.open();
      await deliver(events, batch);
      // Cut the open connection: the pool notices and the next delivery reconnects.
      await proxy.shut();
      const cut = await caught(deliver(events, batchOf(events, [{ table: target, payload: { n: 2 } }])));
      expect(RetryableError.isInstance(cut)).toBe(true);
      await proxy.open();
      await deliver(events, batchOf(events, [{ table: target, payload: { n: 3 } }]));
      await proxy.shut();
      expect((await database.rows(target)).map((row) => Number(row.n))).toEqual([1, 3]);
    });
  }
});
