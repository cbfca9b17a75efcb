import { createEgress } from '@egress/core';
import { http } from '@egress/http';
import { postgresStore } from '@egress/store-postgres';
import { afterAll, describe, expect, test } from 'vitest';
import { TcpProxy } from '../../../store-postgres/test/faults/tcp-proxy.js';
import { dropSchemas, postgresUrl, randomSchema } from '../../../store-postgres/test/postgres-test-schema.js';
import { serveObservability } from '../../src/index.js';

const schemas = new Set<string>();

async function until(condition: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`${what}: not reached within 15 s`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe.skipIf(!postgresUrl)('/readyz with the PostgreSQL store behind a proxy that cuts it off', () => {
  afterAll(() => dropSchemas(schemas));

  test('turns unready with the reason while the store is unreachable, and ready again once it is back', async () => {
    const schema = randomSchema();
    schemas.add(schema);
    const target = new URL(postgresUrl!);
    const proxy = new TcpProxy(target.hostname, Number(target.port || 5432));
    const url = await proxy.start(postgresUrl!);
    const egress = createEgress({
      destinations: [http()],
      store: postgresStore({ connectionString: url, schema, connectTimeout: 500, queryTimeout: 1000, pollInterval: 100 }),
      pollInterval: 100,
    });
    const server = await serveObservability(egress, { listen: '127.0.0.1:0' });
    const readyz = async () => {
      const response = await fetch(`${server.url}/readyz`);
      return { status: response.status, body: (await response.json()) as { status: string; reasons: string[]; store: { state: string } } };
    };
    const storeUp = async () => (await (await fetch(`${server.url}/metrics`)).text()).match(/^egress_store_up\{egress_store_kind="postgres"\} (\d)$/m)?.[1];
    try {
      await egress.ready();
      expect(await readyz()).toMatchObject({ status: 200, body: { status: 'ready', store: { state: 'connected' } } });
      expect(await storeUp()).toBe('1');

      proxy.refuse();
      proxy.cut();
      await until(async () => (await readyz()).status === 503, 'unready');
      const unready = await readyz();
      expect(unready.body.status).toBe('unready');
      expect(unready.body.store.state).toBe('unreachable');
      expect(unready.body.reasons.join('\n')).toMatch(/the postgres store is unreachable/);
      expect(await storeUp()).toBe('0');

      proxy.restore();
      await until(async () => (await readyz()).status === 200, 'ready again');
      expect(await storeUp()).toBe('1');
    } finally {
      proxy.restore();
      await server.close();
      await egress.close({ timeout: 2000 });
      await proxy.close();
    }
  }, 60_000);
});
