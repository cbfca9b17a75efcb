import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { createEgress, defineDestination, RetryableError, silentLogger, type EgressEvents } from '@egress/core';
import { sqliteStore } from '@egress/store-sqlite';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { z } from 'zod';
import { temporaryDirectory } from './helpers.js';

const directory = temporaryDirectory();
let server: Server;
let url: string;
let up = false;
const received: number[] = [];

beforeAll(async () => {
  server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      received.push((JSON.parse(Buffer.concat(chunks).toString()) as { n: number }).n);
      response.statusCode = up ? 200 : 503;
      response.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
});
afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
  directory.remove();
});

const hook = defineDestination({
  name: 'hook',
  input: z.strictObject({ n: z.number().int() }),
  partition: () => 'receiver',
  async deliver(batch) {
    const response = await fetch(url, { method: 'POST', body: JSON.stringify({ n: batch.events[0]!.payload.n }) });
    await response.arrayBuffer();
    if (!response.ok) throw new RetryableError(`answered ${response.status}`);
  },
});

function open(path: string) {
  return createEgress({
    destinations: [hook],
    store: sqliteStore({ path }),
    logger: silentLogger,
    policies: { hook: { concurrency: 1, retry: { initialDelay: 1, maxDelay: 1 }, circuit: { failures: 2, probeInterval: 5, disableAfter: { failures: 4 } } } },
  });
}

describe('a partition disabled by the circuit breaker, kept in the SQLite file', () => {
  test('stays disabled across a restart, gets no delivery, and goes out once enabled', async () => {
    const path = join(directory.path, 'queue.db');
    const first = open(path);
    const disabled: EgressEvents['disabled'][] = [];
    first.on('disabled', (event) => disabled.push(event));
    first.send.hook({ n: 1 });
    first.send.hook({ n: 2 });
    while (disabled.length === 0) await new Promise((resolve) => setTimeout(resolve, 10));
    await first.close();
    expect(disabled).toEqual([expect.objectContaining({ destination: 'hook', partition: 'receiver', failures: 4, by: 'circuit' })]);

    up = true;
    const requestsBefore = received.length;
    const second = open(path);
    try {
      expect(await second.partitions()).toEqual([expect.objectContaining({ destination: 'hook', partition: 'receiver', state: 'disabled', failures: 4, reason: 'answered 503' })]);
      // A flush forces every open batch out; the disabled partition still sends nothing.
      await expect(second.flush({ timeout: 200 })).rejects.toThrow(/flush gave up/);
      expect(received.length).toBe(requestsBefore);
      expect(await second.enable('hook')).toBe(1);
      await second.flush();
      expect(received.slice(requestsBefore).sort()).toEqual([1, 2]);
      expect(await second.partitions()).toEqual([]);
    } finally {
      await second.close();
    }
  });
});
