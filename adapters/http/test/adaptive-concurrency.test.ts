import { createEgress, memoryStore, silentLogger, type ConcurrencyChange, type PolicyOptions } from '@egress/core';
import { afterEach, describe, expect, test } from 'vitest';
import { http } from '../src/index.js';
import { startReceiver, type Receiver } from './receiver.js';

/**
 * A receiver that serves `capacity` requests at a time, each after `serviceMs`, and answers 503 to
 * any request beyond that: what it can take, and how many it turned away.
 */
async function limitedReceiver(capacity: number, serviceMs: number) {
  const counts = { active: 0, mostActive: 0, served: new Set<string>(), refused: 0 };
  const receiver = await startReceiver(async (request, response) => {
    if (counts.active >= capacity) {
      counts.refused += 1;
      response.writeHead(503).end('busy');
      return;
    }
    counts.active += 1;
    counts.mostActive = Math.max(counts.mostActive, counts.active);
    await new Promise((resolve) => setTimeout(resolve, serviceMs));
    counts.active -= 1;
    counts.served.add(String(request.headers['idempotency-key']));
    response.end('ok');
  });
  return { receiver, counts };
}

const receivers: Receiver[] = [];
afterEach(async () => {
  await Promise.all(receivers.splice(0).map((receiver) => receiver.close()));
});

const retry = { initialDelay: 5, maxDelay: 50, maxAttempts: 1000 };

async function deliverAll(origins: string[], perOrigin: number, concurrency: PolicyOptions['concurrency']) {
  const changes: ConcurrencyChange[] = [];
  const egress = createEgress({ destinations: [http()], store: memoryStore(), logger: silentLogger, policies: { http: { concurrency, retry } } });
  egress.on('concurrency', (change) => changes.push(change));
  for (let index = 0; index < perOrigin; index += 1) for (const origin of origins) egress.send.http({ url: `${origin}/events`, data: { index } });
  await egress.flush();
  const stats = await egress.stats();
  await egress.close();
  return { changes, stats: stats[0]! };
}

describe('adaptive concurrency against real receivers', () => {
  test('finds what a receiver can take: far fewer refusals than a fixed 64, every event delivered', async () => {
    const adaptiveRun = await limitedReceiver(4, 10);
    const fixedRun = await limitedReceiver(4, 10);
    receivers.push(adaptiveRun.receiver, fixedRun.receiver);

    const adaptive = await deliverAll([adaptiveRun.receiver.origin], 200, { adaptive: { max: 64 } });
    await deliverAll([fixedRun.receiver.origin], 200, 64);

    expect(adaptiveRun.counts.served.size).toBe(200);
    expect(fixedRun.counts.served.size).toBe(200);
    expect(adaptiveRun.counts.refused * 3).toBeLessThan(fixedRun.counts.refused);
    // It grew from 1, was pushed back, and never came near the ceiling.
    expect(adaptive.changes.some((change) => change.reason === 'increase')).toBe(true);
    expect(adaptive.changes.some((change) => change.reason === 'back-pressure')).toBe(true);
    expect(Math.max(...adaptive.changes.map((change) => change.limit))).toBeLessThan(16);
  });

  test('a slow origin does not hold back a fast one: each partition has its own limit', async () => {
    const slow = await limitedReceiver(2, 10);
    const fast = await limitedReceiver(1000, 2);
    receivers.push(slow.receiver, fast.receiver);

    const { stats, changes } = await deliverAll([slow.receiver.origin, fast.receiver.origin], 300, 'adaptive');

    expect(slow.counts.served.size).toBe(300);
    expect(fast.counts.served.size).toBe(300);
    const highest = (origin: string) => Math.max(1, ...changes.filter((change) => change.partition === origin).map((change) => change.limit));
    expect(highest(fast.receiver.origin)).toBeGreaterThan(highest(slow.receiver.origin));
    expect(fast.counts.mostActive).toBeGreaterThan(slow.counts.mostActive);
    expect(changes.filter((change) => change.partition === fast.receiver.origin).every((change) => change.reason !== 'back-pressure')).toBe(true);
    expect(stats.concurrencyLimit).toBeGreaterThanOrEqual(2);
  });
});
