import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { createEgress } from '@egress/core';
import { describe, expect, test } from 'vitest';
import { checkConfig, loadConfig } from '../src/index.js';
import { auditModule, folderWith } from './helpers.js';

describe('adaptive concurrency and dead-letter routing in the config file', () => {
  test("takes concurrency: adaptive and { adaptive: { ... } }, and refuses a bad value with its line", async () => {
    const folder = folderWith({
      'egress.config.yaml': `store: { kind: memory }
destinations:
  orders: { module: ${auditModule}, type: audit, file: a }
  refunds: { module: ${auditModule}, type: audit, file: b }
policies:
  orders: { concurrency: adaptive }
  refunds: { concurrency: { adaptive: { initial: 2, max: 8 } } }
`,
      'bad.yaml': `store: { kind: memory }
destinations:
  orders: { module: ${auditModule}, type: audit, file: a }
policies:
  orders: { concurrency: { adaptive: { decrease: 1.5 } } }
`,
    });
    const egress = createEgress(await loadConfig(join(folder, 'egress.config.yaml')));
    await egress.ready();
    expect((await egress.stats()).map((stats) => stats.concurrencyLimit)).toEqual([1, 2]);
    await egress.close();
    const check = await checkConfig(join(folder, 'bad.yaml'));
    expect(check.problems).toEqual([expect.objectContaining({ path: 'policies.orders.concurrency.adaptive.decrease', line: 5 })]);
  });

  test('routes dead letters of one http destination to another, the record under recordField', async () => {
    const arrived: string[] = [];
    const server = createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => {
        if (request.url === '/orders') return void response.writeHead(400).end('no such customer');
        arrived.push(Buffer.concat(chunks).toString());
        response.end('ok');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const folder = folderWith({
      'egress.config.yaml': `store: { kind: memory }
destinations:
  orders: { type: http }
  ops_webhook: { type: http }
policies:
  orders:
    deadLetters: { routeTo: ops_webhook, fields: { url: ${origin}/alerts }, recordField: data }
`,
    });
    const egress = createEgress(await loadConfig(join(folder, 'egress.config.yaml')));
    try {
      const send = egress.send as Record<string, (input: unknown) => { id: string }>;
      const receipt = send.orders!({ url: `${origin}/orders`, data: { order: 1 } });
      await egress.flush();
      expect(arrived).toHaveLength(1);
      expect(JSON.parse(arrived[0]!)).toMatchObject({ destination: 'orders', eventId: receipt.id, error: { name: 'PermanentError' }, payload: { data: { order: 1 } } });
    } finally {
      await egress.close();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  test.each([
    ['nowhere', 'no destination is named "nowhere" (registered: orders, refunds)'],
    ['orders', '"orders" cannot receive its own dead letters'],
  ])('checkConfig names a route to %s as a problem of deadLetters.routeTo', async (target, message) => {
    const folder = folderWith({
      'egress.config.yaml': `store: { kind: memory }
destinations:
  orders: { module: ${auditModule}, type: audit, file: a }
  refunds: { module: ${auditModule}, type: audit, file: b }
policies:
  orders:
    deadLetters: { routeTo: ${target} }
`,
    });
    const check = await checkConfig(join(folder, 'egress.config.yaml'));
    expect(check.config).toBeUndefined();
    expect(check.problems).toEqual([expect.objectContaining({ path: 'policies.orders.deadLetters.routeTo', message })]);
  });
});
