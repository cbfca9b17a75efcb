import { fork } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createEventId, EgressStoreUnavailableError } from '@egress/core';
import { afterAll, describe, expect, test } from 'vitest';
import { postgresStore } from '../../src/index.js';
import { dropSchemas, postgresUrl, randomSchema } from '../postgres-test-schema.js';
import { proxiedDatabase, until } from './fault-harness.js';

const schemas = new Set<string>();
const here = dirname(fileURLToPath(import.meta.url));

async function failure(operation: Promise<unknown>): Promise<{ error: unknown; ms: number }> {
  const started = Date.now();
  try {
    await operation;
  } catch (error) {
    return { error, ms: Date.now() - started };
  }
  throw new Error('expected the operation to fail');
}

describe.skipIf(!postgresUrl)('postgres store when the database stops answering', () => {
  afterAll(() => dropSchemas(schemas));

  test('with the network blackholed, enqueue, claim and a fresh connection fail within their timeouts instead of hanging, and work again once it heals', async () => {
    const schema = randomSchema();
    schemas.add(schema);
    const { proxy, url } = await proxiedDatabase();
    const store = postgresStore({ connectionString: url, schema, connectTimeout: 500, queryTimeout: 1000 });
    try {
      await store.open();
      const event = () => ({ id: createEventId(), destination: 'd', partition: '', payload: '{}', size: 2, sentAt: Date.now(), attempts: 0 });
      const before = event();
      await store.enqueue([before]);
      proxy.blackhole();
      const lost = event();
      const request = { destination: 'd', now: Date.now(), owner: 'w', maxBatches: 1, maxEvents: 10, maxBytes: 1000, maxDelay: 0, force: true, fifo: false, leaseMs: 5000 };
      // Pooled connections hang (queryTimeout), new ones never finish their handshake (connectTimeout).
      const [enqueued, claimed, another] = await Promise.all([failure(store.enqueue([lost])), failure(store.claim(request)), failure(store.stats(Date.now()))]);
      for (const { error, ms } of [enqueued, claimed, another]) {
        expect(EgressStoreUnavailableError.isInstance(error), String(error)).toBe(true);
        expect(ms).toBeLessThan(2500);
      }
      expect(store.status!().state).toBe('unreachable');
      proxy.restore();
      await until(() => store.status!().state === 'connected', 5000, 'the store saw the database again');
      const after = event();
      await store.enqueue([after]);
      const ids = (await store.claim({ ...request, now: Date.now(), maxBatches: 5 })).batches.flatMap((batch) => batch.events.map((queued) => queued.id));
      expect(ids).toEqual(expect.arrayContaining([before.id, after.id]));
      // The enqueue sent into the blackhole was on its way when the route healed: the server may have
      // run it then (before the store fenced its write number) or never, but it is there once at most.
      expect(ids.filter((id) => id === lost.id).length).toBeLessThanOrEqual(1);
      expect(ids.length).toBeLessThanOrEqual(3);
      proxy.blackhole();
      // Closing does not wait on a database that does not answer.
      const closing = Date.now();
      await store.close();
      expect(Date.now() - closing).toBeLessThan(2500);
    } finally {
      proxy.restore();
      await proxy.close();
    }
  }, 30_000);

  test('a spool without better-sqlite3 installed is a configuration error that says what to install', async () => {
    const directory = mkdtempSync(join(tmpdir(), 'egress-spool-'));
    const spool = join(directory, 'spool.db');
    const schema = randomSchema();
    schemas.add(schema);
    const tsxLoader = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
    const child = fork(join(here, 'fixtures', 'open-with-spool.ts'), [postgresUrl!, schema, spool], {
      execArgv: ['--import', pathToFileURL(join(here, 'fixtures', 'hide-better-sqlite3.mjs')).href, '--import', tsxLoader],
      env: { ...process.env, TSX_TSCONFIG_PATH: resolve(here, '..', '..', '..', '..', 'tsconfig.json') },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const outcome = await new Promise<{ type: string; configuration?: boolean; message?: string }>((done, fail) => {
      child.once('message', done);
      child.once('exit', (code) => fail(new Error(`exited with ${code} before reporting`)));
    });
    rmSync(directory, { recursive: true, force: true });
    expect(outcome.type).toBe('failed');
    expect(outcome.configuration).toBe(true);
    expect(outcome.message).toContain('[postgres] option "spool"');
    expect(outcome.message).toContain('npm install better-sqlite3');
    expect(existsSync(spool)).toBe(false);
  }, 30_000);
});
