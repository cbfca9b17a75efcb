import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { join } from 'node:path';
import { EgressCapacityError, EgressStoreUnavailableError, createEgress, silentLogger } from '@egress/core';
import { testDatabaseUrl } from '@egress/testkit';
import { describe, expect, test } from 'vitest';
import { checkConfig, loadConfig } from '../src/index.js';
import { auditModule, closedPort, eventually, folderWith, postgresSchemaForFile, relay, runEgress } from './helpers.js';

const postgresUrl = testDatabaseUrl('postgres');

type Send = Record<string, (input: unknown) => { committed(): Promise<void> }>;

/** A PostgreSQL URL whose host and port are `port` on 127.0.0.1, keeping the user and database. */
function urlAt(port: number): string {
  const url = new URL(postgresUrl ?? 'postgres://postgres@127.0.0.1:5432/test');
  url.hostname = '127.0.0.1';
  url.port = String(port);
  return url.href;
}

/**
 * A TCP relay to PostgreSQL that can freeze: connections stay open and nothing more crosses them,
 * and new ones get no answer, as with a frozen server or a dead route.
 */
async function freezableRelay(target: { host: string; port: number }) {
  const sockets = new Set<Socket>();
  let frozen = false;
  const server = createServer((client) => {
    sockets.add(client);
    client.on('error', () => client.destroy());
    client.on('close', () => sockets.delete(client));
    if (frozen) return;
    const upstream = connect(target.port, target.host);
    sockets.add(upstream);
    upstream.on('error', () => upstream.destroy());
    upstream.on('close', () => sockets.delete(upstream));
    client.pipe(upstream).pipe(client);
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    freeze() {
      frozen = true;
      for (const socket of sockets) {
        socket.unpipe();
        socket.pause();
      }
    },
    thaw() {
      if (!frozen) return;
      frozen = false;
      // What froze is given up by the store by now; new connections pass again.
      for (const socket of sockets) socket.destroy();
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

const lines = (file: string) => (existsSync(file) ? readFileSync(file, 'utf8').trim().split('\n').filter(Boolean).map((line) => JSON.parse(line) as { n: number }) : []);

describe('engine options in the config file reach the engine', () => {
  test('commitBuffer bounds what send accepts before the store has it', async () => {
    const folder = folderWith({});
    writeFileSync(
      join(folder, 'egress.config.yaml'),
      `store: { kind: memory }\ncommitBuffer:\n  maxEvents: 3\n  maxBytes: 4KiB\ndestinations:\n  audit: { module: ${auditModule}, file: ${join(folder, 'audit.jsonl')} }\n`,
    );
    const config = await loadConfig(join(folder, 'egress.config.yaml'));
    expect(config.commitBuffer).toEqual({ maxEvents: 3, maxBytes: '4KiB' });
    const egress = createEgress({ ...config, logger: silentLogger });
    try {
      const send = egress.send as Send;
      // Sends of one tick are all uncommitted until the loop yields: the fourth finds the buffer full.
      for (let n = 0; n < 3; n += 1) send.audit!({ message: 'fits', n });
      expect(() => send.audit!({ message: 'one too many', n: 3 })).toThrow(EgressCapacityError);
      await new Promise((resolve) => setTimeout(resolve, 20));
      expect(() => send.audit!({ message: 'x'.repeat(5000) })).toThrow(EgressCapacityError);
      await send.audit!({ message: 'fits again', n: 4 }).committed();
    } finally {
      await egress.close({ timeout: 1000 });
    }
  });

  test("startup: fail-fast makes ready() reject when the database is down; without it the engine keeps trying", async () => {
    const port = await closedPort();
    const yaml = (extra: string) => `store:\n  kind: postgres\n  connectionString: ${urlAt(port)}\n${extra}destinations:\n  audit: { module: ${auditModule}, file: audit.jsonl }\n`;
    const folder = folderWith({ 'fail-fast.yaml': yaml('startup: fail-fast\n'), 'retry.yaml': yaml('') });

    const failFastConfig = await loadConfig(join(folder, 'fail-fast.yaml'));
    expect(failFastConfig.startup).toBe('fail-fast');
    const failFast = createEgress({ ...failFastConfig, logger: silentLogger });
    await expect(failFast.ready()).rejects.toSatisfy((error) => EgressStoreUnavailableError.isInstance(error));
    await failFast.close({ timeout: 1000 });

    const retryConfig = await loadConfig(join(folder, 'retry.yaml'));
    expect(retryConfig).not.toHaveProperty('startup');
    const retrying = createEgress({ ...retryConfig, logger: silentLogger });
    let settled = false;
    const ready = retrying.ready().then(
      () => (settled = true),
      () => (settled = true),
    );
    await eventually(() => retrying.storeStatus().state === 'unreachable', 10_000, () => `unreachable, got ${retrying.storeStatus().state}`);
    // Several attempts have failed by now (backoff from 50 ms), and ready() still waits for the store.
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(settled).toBe(false);
    await retrying.close({ timeout: 1000 });
    await ready;
  });

  test('connectTimeout bounds the wait for a database that accepts connections and never answers', async () => {
    const held = new Set<Socket>();
    const blackhole = createServer((socket) => {
      held.add(socket);
      socket.on('error', () => socket.destroy());
    });
    await new Promise<void>((resolve) => blackhole.listen(0, '127.0.0.1', resolve));
    const { port } = blackhole.address() as AddressInfo;
    const folder = folderWith({
      'egress.config.yaml': `store:\n  kind: postgres\n  connectionString: ${urlAt(port)}\n  connectTimeout: 200ms\n  queryTimeout: 1s\ndestinations:\n  audit: { module: ${auditModule}, file: audit.jsonl }\n`,
    });
    const egress = createEgress({ ...(await loadConfig(join(folder, 'egress.config.yaml'))), logger: silentLogger });
    try {
      // The default (10 s) would keep it connecting for longer than this waits.
      await eventually(() => egress.storeStatus().state === 'unreachable', 5000, () => `unreachable, got ${JSON.stringify(egress.storeStatus())}`);
      expect(egress.storeStatus().error).toMatch(/timeout|within 200 ms/i);
    } finally {
      await egress.close({ timeout: 1000 });
      for (const socket of held) socket.destroy();
      await new Promise<void>((resolve) => blackhole.close(() => resolve()));
    }
  });

  test('egress validate checks a config with a spool without creating the spool file', async () => {
    const folder = folderWith({});
    const file = join(folder, 'egress.config.yaml');
    writeFileSync(file, `store:\n  kind: postgres\n  connectionString: ${urlAt(await closedPort())}\n  spool: spool.db\ndestinations:\n  audit: { module: ${auditModule}, file: audit.jsonl }\n`);
    const result = await runEgress(['validate', '-c', file]);
    expect(result).toMatchObject({ code: 0, stdout: expect.stringContaining('is valid: audit with the postgres store') });
    expect(existsSync(join(folder, 'spool.db'))).toBe(false);
  });

  test('a spool given as { path } is created relative to the config file, private', async () => {
    const folder = folderWith({});
    writeFileSync(
      join(folder, 'egress.config.yaml'),
      `store:\n  kind: postgres\n  connectionString: ${urlAt(await closedPort())}\n  spool: { path: spools/producer.db }\ndestinations:\n  audit: { module: ${auditModule}, file: audit.jsonl }\n`,
    );
    const egress = createEgress({ ...(await loadConfig(join(folder, 'egress.config.yaml'))), role: 'producer', logger: silentLogger });
    try {
      await (egress.send as Send).audit!({ message: 'kept on disk', n: 0 }).committed();
      const spool = join(folder, 'spools/producer.db');
      expect(statSync(spool).mode & 0o777).toBe(0o600);
      expect(statSync(join(folder, 'spools')).mode & 0o777).toBe(0o700);
      expect(existsSync(join(process.cwd(), 'spools'))).toBe(false);
      expect(egress.storeStatus().spooled).toBe(1);
    } finally {
      await egress.close({ timeout: 1000 });
    }
  });
});

describe('bad engine options in the config file are refused, naming their path', () => {
  test('commitBuffer, startup and the PostgreSQL store options', async () => {
    const folder = folderWith({
      'egress.config.yaml': `store:
  kind: postgres
  connectionString: postgres://egress@127.0.0.1:5432/app
  spool: 5
  connectTimeout: 1 week
  queryTimeout: true
commitBuffer:
  maxEvents: 0
  maxBytes: lots
  maxItems: 3
startup: sometimes
destinations:
  audit: { module: ${auditModule}, file: audit.jsonl }
`,
    });
    const check = await checkConfig(join(folder, 'egress.config.yaml'));
    expect(check.config).toBeUndefined();
    expect(check.problems).toEqual([
      { path: 'store.spool', message: "expected the path of a spool file, e.g. '.egress/spool.db', or { path }, got 5", line: 4 },
      { path: 'store.connectTimeout', message: "expected a duration like '500ms', '60s', '5m', '2h'", line: 5 },
      { path: 'store.queryTimeout', message: "expected a duration: milliseconds, or a string like '500ms', '60s', '5m', '2h', got true", line: 6 },
      { path: 'commitBuffer.maxEvents', message: 'expected a number greater than 0, got 0', line: 8 },
      { path: 'commitBuffer.maxBytes', message: "expected a size like '512KiB', '8MiB', '10MB'", line: 9 },
      { path: 'commitBuffer.maxItems', message: 'unknown key (expected one of maxEvents, maxBytes)', line: 10 },
      { path: 'startup', message: 'expected one of retry, fail-fast, got the string "sometimes"', line: 11 },
    ]);
    await expect(loadConfig(join(folder, 'egress.config.yaml'))).rejects.toThrow(/egress\.config\.yaml:4 +store\.spool: expected the path of a spool file/);
  });

  test('a spool mapping without a path or with another key, a zero-byte buffer, and a timeout the store refuses', async () => {
    const folder = folderWith({
      'extra-key.yaml': `store:\n  kind: postgres\n  connectionString: postgres://egress@127.0.0.1:5432/app\n  spool:\n    path: spool.db\n    mode: 600\ndestinations:\n  audit: { module: ${auditModule}, file: audit.jsonl }\n`,
      'spool.yaml': `store:\n  kind: postgres\n  connectionString: postgres://egress@127.0.0.1:5432/app\n  spool: { file: spool.db }\ncommitBuffer: { maxBytes: 0KiB, maxEvents: 1.5 }\ndestinations:\n  audit: { module: ${auditModule}, file: audit.jsonl }\n`,
      'timeout.yaml': `store:\n  kind: postgres\n  connectionString: postgres://egress@127.0.0.1:5432/app\n  connectTimeout: 0\ncommitBuffer: 100\ndestinations:\n  audit: { module: ${auditModule}, file: audit.jsonl }\n`,
    });
    const spool = await checkConfig(join(folder, 'spool.yaml'));
    expect(spool.problems).toEqual([
      { path: 'store.spool', message: "expected the path of a spool file, e.g. '.egress/spool.db', or { path }, got a mapping", line: 4 },
      { path: 'commitBuffer.maxEvents', message: 'expected a whole number, got 1.5', line: 5 },
      { path: 'commitBuffer.maxBytes', message: 'expected at least 1 byte', line: 5 },
    ]);
    const extraKey = await checkConfig(join(folder, 'extra-key.yaml'));
    expect(extraKey.problems).toEqual([{ path: 'store.spool.mode', message: 'unknown key (expected path)', line: 6 }]);
    const timeout = await checkConfig(join(folder, 'timeout.yaml'));
    expect(timeout.problems).toEqual([
      { path: 'store.connectTimeout', message: '[postgres] option "connectTimeout": expected at least 1, got 0', line: 4 },
      { path: 'commitBuffer', message: 'expected a mapping of keys to values, got 100', line: 5 },
    ]);
  });
});

describe.skipIf(!postgresUrl)('a spool set in the config file, with PostgreSQL down', () => {
  const schema = postgresSchemaForFile(postgresUrl!, 'egress_cli_spool_config');

  test('send works, the spool file is created next to the config file with mode 0600, and its events are delivered once the database is up', async () => {
    const folder = folderWith({});
    const auditFile = join(folder, 'audit.jsonl');
    const file = join(folder, 'egress.config.yaml');
    const port = await closedPort();
    writeFileSync(
      file,
      `store:
  kind: postgres
  connectionString: \${env:EGRESS_PG_URL}
  schema: ${schema}
  spool: producer-spool.db
  connectTimeout: 2s
  queryTimeout: 10s
destinations:
  audit: { module: ${auditModule}, file: ${auditFile} }
policies:
  audit: { batch: { maxEvents: 10, maxDelay: 10ms } }
`,
    );
    const config = await loadConfig(file, { environment: { EGRESS_PG_URL: urlAt(port) } });
    const egress = createEgress({ ...config, logger: silentLogger });
    let database: { close(): Promise<void> } | undefined;
    try {
      const send = egress.send as Send;
      await Promise.all(Array.from({ length: 20 }, (_, n) => send.audit!({ message: `event ${n}`, n }).committed()));
      const spool = join(folder, 'producer-spool.db');
      expect(statSync(spool).mode & 0o777).toBe(0o600);
      expect(existsSync(join(process.cwd(), 'producer-spool.db'))).toBe(false);
      expect(egress.storeStatus()).toMatchObject({ state: 'unreachable', spooled: 20 });

      // The database comes up on the address the config names: the spool is moved over and delivered.
      const target = new URL(postgresUrl!);
      database = await relay(port, { host: target.hostname, port: Number(target.port || 5432) });
      await eventually(() => new Set(lines(auditFile).map((line) => line.n)).size === 20, 30_000, () => `20 deliveries, got ${lines(auditFile).length}: ${JSON.stringify(egress.storeStatus())}`);
      expect(egress.storeStatus()).toMatchObject({ state: 'connected', spooled: 0 });
    } finally {
      await egress.close({ timeout: 2000 });
      await database?.close();
    }
  }, 60_000);

  test('queryTimeout gives up a statement that gets no answer, and the events wait and arrive once the database answers again', async () => {
    const folder = folderWith({});
    const auditFile = join(folder, 'audit.jsonl');
    const file = join(folder, 'egress.config.yaml');
    const target = new URL(postgresUrl!);
    const database = await freezableRelay({ host: target.hostname, port: Number(target.port || 5432) });
    writeFileSync(
      file,
      `store:
  kind: postgres
  connectionString: \${env:EGRESS_PG_URL}
  schema: ${schema}
  connectTimeout: 300ms
  queryTimeout: 500ms
destinations:
  audit: { module: ${auditModule}, file: ${auditFile} }
policies:
  audit: { batch: { maxEvents: 10, maxDelay: 10ms } }
`,
    );
    const egress = createEgress({ ...(await loadConfig(file, { environment: { EGRESS_PG_URL: urlAt(database.port) } })), logger: silentLogger });
    try {
      await egress.ready();
      const send = egress.send as Send;
      await send.audit!({ message: 'before', n: 0 }).committed();
      await eventually(() => lines(auditFile).length === 1, 10_000, () => `the first delivery: ${JSON.stringify(egress.storeStatus())}`);

      database.freeze();
      const receipts = Array.from({ length: 5 }, (_, index) => send.audit!({ message: 'while frozen', n: index + 1 }));
      // With the default (30 s) the commit would still be waiting for its answer.
      await eventually(() => egress.storeStatus().state === 'unreachable', 5000, () => `unreachable, got ${JSON.stringify(egress.storeStatus())}`);
      expect(egress.storeStatus().error).toMatch(/no answer within 500 ms|no connection within 300 ms|timeout/i);
      expect(egress.storeStatus().buffered).toBeGreaterThan(0);

      database.thaw();
      await Promise.all(receipts.map((receipt) => receipt.committed()));
      await eventually(() => new Set(lines(auditFile).map((line) => line.n)).size === 6, 30_000, () => `6 distinct deliveries, got ${lines(auditFile).length}: ${JSON.stringify(egress.storeStatus())}`);
      expect(egress.storeStatus().state).toBe('connected');
    } finally {
      // A failed assertion while frozen: let the store's connections go before it closes.
      database.thaw();
      await egress.close({ timeout: 2000 });
      await database.close();
    }
  }, 60_000);
});
