import { afterEach, expect, test } from 'vitest';
import { createEgress, type Egress, type EgressEvents } from '../src/index.js';
import { permanent, recordingDestination, retryable, sleep } from './helpers.js';

let egress: Egress | undefined;
afterEach(async () => {
  await egress?.close({ timeout: 1000 });
  egress = undefined;
});

test('delivered, retrying and dead events carry how long their attempt held the adapter', async () => {
  // First call: 40 ms then a retryable failure; second: 60 ms then success. Event 2 fails for good after 20 ms.
  const sink = recordingDestination({
    behaviour: async (batch, call) => {
      const permanentFailure = batch.events.some((event) => (event.payload as { n: number }).n === 2);
      await sleep(permanentFailure ? 20 : call === 1 ? 40 : 60);
      if (permanentFailure) throw permanent();
      if (call === 1) throw retryable();
    },
  });
  const instance = createEgress({ destinations: [sink.destination], policies: { events: { batch: { maxEvents: 1 }, concurrency: 1, retry: { initialDelay: 5, maxDelay: 10 } } } });
  egress = instance;
  const seen: { name: string; duration: number }[] = [];
  const record = (name: string) => (event: EgressEvents['delivered' | 'retrying' | 'dead']) => seen.push({ name, duration: event.duration });
  instance.on('delivered', record('delivered'));
  instance.on('retrying', record('retrying'));
  instance.on('dead', record('dead'));
  instance.send.events({ n: 1 });
  await instance.flush();
  instance.send.events({ n: 2 });
  await instance.flush();
  expect(seen.map((event) => event.name)).toEqual(['retrying', 'delivered', 'dead']);
  // At least as long as the adapter held each attempt; timers may fire a little early, hence the margin.
  expect(seen[0]!.duration).toBeGreaterThanOrEqual(38);
  expect(seen[1]!.duration).toBeGreaterThanOrEqual(58);
  expect(seen[2]!.duration).toBeGreaterThanOrEqual(18);
});

test("delivered carries each event's own latency, in the order of its eventIds, when part of the batch failed", async () => {
  // The clock moves only when the test moves it, so each event's latency is known exactly.
  const start = 1_800_000_000_000;
  let now = start;
  const realNow = Date.now;
  Date.now = () => now;
  try {
    const sink = recordingDestination({
      behaviour: (batch, call) => (call === 1 ? { failures: batch.events.filter((event) => (event.payload as { n: number }).n === 2).map((event) => ({ eventId: event.id, error: permanent() })) } : undefined),
    });
    const instance = createEgress({ destinations: [sink.destination], policies: { events: { batch: { maxEvents: 4, maxDelay: '1h' }, concurrency: 1 } } });
    egress = instance;
    const delivered: EgressEvents['delivered'][] = [];
    instance.on('delivered', (event) => delivered.push(event));
    await instance.ready();
    for (const [n, at] of [[1, 0], [2, 100], [3, 250], [4, 400]] as const) {
      now = start + at;
      instance.send.events({ n });
    }
    await instance.flush();
    expect(delivered).toHaveLength(1);
    const [event] = delivered;
    const ids = sink.batches[0]!.events.map((queued) => queued.id);
    // Event 2 was dead-lettered: the other three arrived 400, 150 and 0 ms after their sends.
    expect(event!.eventIds).toEqual([ids[0], ids[2], ids[3]]);
    expect(event!.latencies).toEqual([400, 150, 0]);
    expect(event!.latency).toBe(400);
  } finally {
    Date.now = realNow;
  }
});
