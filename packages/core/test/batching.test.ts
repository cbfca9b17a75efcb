import { afterEach, describe, expect, test } from 'vitest';
import { createEgress, type Egress } from '../src/index.js';
import { recordingDestination, sleep, waitFor } from './helpers.js';

let egress: Egress | undefined;
afterEach(async () => {
  await egress?.close({ timeout: 1000 });
  egress = undefined;
});

describe('batching', () => {
  test('closes a batch when it holds maxEvents events', async () => {
    const sink = recordingDestination();
    const instance = createEgress({ destinations: [sink.destination], policies: { events: { batch: { maxEvents: 4, maxDelay: '1h' } } } });
    egress = instance;
    for (let n = 0; n < 8; n++) instance.send.events({ n });
    await waitFor(() => sink.batches.length === 2);
    expect(sink.batches.map((batch) => batch.events.map((event) => event.payload.n))).toEqual([
      [0, 1, 2, 3],
      [4, 5, 6, 7],
    ]);
  });

  test('closes a batch before its encoded bytes pass maxBytes', async () => {
    const sink = recordingDestination();
    const instance = createEgress({ destinations: [sink.destination], policies: { events: { batch: { maxEvents: 100, maxBytes: '250B', maxDelay: '1h' } } } });
    egress = instance;
    for (let n = 0; n < 6; n++) instance.send.events({ n, size: 100 });
    await waitFor(() => sink.batches.length === 2);
    expect(sink.batches.map((batch) => batch.events.length)).toEqual([2, 2]);
    // The last two (200 bytes) are not a full batch: they wait for maxDelay, or a flush.
    await instance.flush();
    expect(sink.batches.map((batch) => batch.events.length)).toEqual([2, 2, 2]);
  });

  test('closes a partial batch once its oldest event has waited maxDelay', async () => {
    const sink = recordingDestination();
    const instance = createEgress({ destinations: [sink.destination], policies: { events: { batch: { maxEvents: 100, maxDelay: '80ms' } } } });
    egress = instance;
    const sentAt = Date.now();
    instance.send.events({ n: 1 });
    instance.send.events({ n: 2 });
    await sleep(20);
    expect(sink.batches).toHaveLength(0);
    await waitFor(() => sink.batches.length === 1);
    expect(Date.now() - sentAt).toBeGreaterThanOrEqual(75);
    expect(sink.delivered()).toEqual([1, 2]);
  });

  test('never puts events of different partitions in one batch', async () => {
    const sink = recordingDestination({ partitionByGroup: true });
    const instance = createEgress({ destinations: [sink.destination], policies: { events: { batch: { maxEvents: 10, maxDelay: '1h' } } } });
    egress = instance;
    for (let n = 0; n < 6; n++) instance.send.events({ n, group: n % 2 ? 'odd' : 'even' });
    await instance.flush();
    for (const batch of sink.batches) {
      expect(new Set(batch.events.map((event) => event.payload.group)).size).toBe(1);
      expect(batch.partition).toBe(batch.events[0]!.payload.group);
    }
    expect(sink.delivered().sort()).toEqual([0, 1, 2, 3, 4, 5]);
  });

  test('partitionBy in the policy overrides the adapter partitioning', async () => {
    const sink = recordingDestination({ partitionByGroup: true });
    const instance = createEgress({
      destinations: [sink.destination],
      policies: { events: { batch: { maxEvents: 10, maxDelay: '1h', partitionBy: 'size' } } },
    });
    egress = instance;
    instance.send.events({ n: 1, group: 'a', size: 5 });
    instance.send.events({ n: 2, group: 'b', size: 5 });
    instance.send.events({ n: 3, group: 'a', size: 7 });
    await instance.flush();
    expect(sink.batches.map((batch) => [batch.partition, batch.events.map((event) => event.payload.n)])).toEqual([
      ['5', [1, 2]],
      ['7', [3]],
    ]);
  });

  test('clamps maxEvents to the adapter hard limit and warns', async () => {
    const warnings: string[] = [];
    const sink = recordingDestination({ limits: { maxEvents: 3 } });
    const instance = createEgress({
      destinations: [sink.destination],
      policies: { events: { batch: { maxEvents: 50, maxDelay: '1h' } } },
      logger: { debug() {}, info() {}, error() {}, warn: (_fields, message) => warnings.push(message) },
    });
    egress = instance;
    for (let n = 0; n < 7; n++) instance.send.events({ n });
    await instance.flush();
    expect(Math.max(...sink.batches.map((batch) => batch.events.length))).toBe(3);
    expect(warnings.join('\n')).toMatch(/policies\.events\.batch\.maxEvents is above what events accepts; clamped to 3/);
  });

  test('gives every batch a 64-hex id derived from its events', async () => {
    const sink = recordingDestination();
    const instance = createEgress({ destinations: [sink.destination], policies: { events: { batch: { maxEvents: 2, maxDelay: '1h' } } } });
    egress = instance;
    for (let n = 0; n < 4; n++) instance.send.events({ n });
    await instance.flush();
    const ids = sink.batches.map((batch) => batch.id);
    expect(ids.every((id) => /^[0-9a-f]{64}$/.test(id))).toBe(true);
    expect(new Set(ids).size).toBe(2);
  });

  test('flush delivers waiting events at once instead of after maxDelay', async () => {
    const sink = recordingDestination();
    const instance = createEgress({ destinations: [sink.destination], policies: { events: { batch: { maxEvents: 100, maxDelay: '1h' } } } });
    egress = instance;
    for (let n = 0; n < 5; n++) instance.send.events({ n });
    await instance.flush();
    expect(sink.delivered()).toEqual([0, 1, 2, 3, 4]);
    expect(sink.batches).toHaveLength(1);
  });
});
