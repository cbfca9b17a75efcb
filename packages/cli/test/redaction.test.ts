import { writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { createEgress, silentLogger } from '@egress/core';
import { sqliteStore } from '@egress/store-sqlite';
import { expect, test } from 'vitest';
import { loadConfig } from '../src/index.js';
import { folderWith, runEgress } from './helpers.js';

const adapterKey = 'adapter-key-0b7e41d9';
const queryToken = 'query-token-58c1aa20';
const bearer = 'bearer-token-c3d2e1f0';

test('egress dead list, dead show and the queue file\'s error records hold none of the secrets a receiver echoed in a 401', async () => {
  const receiver = createServer((request, response) => {
    request.resume();
    response.writeHead(401, { 'content-type': 'application/json' });
    response.end(JSON.stringify({ error: 'bad token', url: request.url, headers: request.headers }));
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  const origin = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
  try {
    const folder = folderWith({});
    const file = join(folder, 'egress.config.yaml');
    writeFileSync(
      file,
      `store: { kind: sqlite, path: queue.db }
destinations:
  http: { headers: { x-api-key: ${adapterKey} } }
policies:
  http: { retry: { maxAttempts: 1 } }
`,
    );
    const config = await loadConfig(file, { environment: {} });
    const egress = createEgress({ ...config, logger: silentLogger });
    const settled = await egress.send.http!({ url: `${origin}/hook?access_token=${queryToken}`, auth: { bearer }, data: { n: 1 } } as never).settled();
    await egress.close();
    expect(settled).toMatchObject({ status: 'dead' });

    const list = await runEgress(['dead', 'list', '-c', file, '--json']);
    const letters = JSON.parse(list.stdout) as { id: string; error: { message: string } }[];
    expect(letters).toHaveLength(1);
    expect(letters[0]!.error.message).toContain('401');
    const shown = await runEgress(['dead', 'show', letters[0]!.id, '-c', file]);
    const table = await runEgress(['dead', 'list', '-c', file]);
    // What the store itself keeps as the error, read without the API's redaction.
    const store = sqliteStore({ path: join(folder, 'queue.db') });
    await store.open({ logger: silentLogger });
    const stored = JSON.stringify((await store.listDead({})).map((letter) => letter.error));
    await store.close();

    for (const text of [list.stdout, shown.stdout, table.stdout, stored]) {
      for (const secret of [adapterKey, queryToken, bearer, Buffer.from(bearer).toString('base64')]) expect(text).not.toContain(secret);
    }
    expect(stored).toContain('[redacted]');
  } finally {
    await new Promise<void>((resolve) => receiver.close(() => resolve()));
  }
});
