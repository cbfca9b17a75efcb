import { afterEach, expect, test } from 'vitest';
import { createEgress, memoryStore, type ClaimRequest, type ClaimedBatch, type Egress, type Settlement, type Store } from '../src/index.js';
import { recordingDestination, sleep } from './helpers.js';

let egress: Egress | undefined;
afterEach(async () => {
  await egress?.close({ timeout: 1000 });
  egress = undefined;
});

/** A memory store whose settlements wait until the test lets them through; `claimAhead` as a shared store would declare it. */
function gatedStore(claimAhead?: number): { store: Store; pending: () => number; open: () => void } {
  const inner = memoryStore();
  const waiting: (() => void)[] = [];
  let gateOpen = false;
  const settle = async (batch: ClaimedBatch, settlement: Settlement) => {
    if (!gateOpen) await new Promise<void>((resolve) => waiting.push(resolve));
    return inner.settle(batch, settlement);
  };
  const store = new Proxy(inner, {
    get(target, property) {
      if (property === 'settle') return settle;
      if (property === 'claimAhead') return claimAhead;
      const value = Reflect.get(target, property) as unknown;
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  return {
    store,
    pending: () => waiting.length,
    open: () => {
      gateOpen = true;
      for (const resolve of waiting.splice(0)) resolve();
    },
  };
}

test('a delivery slot frees when the receiver answers, while the store is still writing the outcome', async () => {
  const gate = gatedStore();
  const sink = recordingDestination();
  const instance = createEgress({ destinations: [sink.destination], store: gate.store, policies: { events: { batch: { maxEvents: 1 }, concurrency: 1 } } });
  egress = instance;
  for (let n = 0; n < 3; n += 1) instance.send.events({ n });
  // With one slot, the second delivery starts while the first one's outcome is not written yet.
  for (let tries = 0; tries < 200 && sink.batches.length < 2; tries += 1) await sleep(5);
  expect(sink.batches.length).toBe(2);
  expect(gate.pending()).toBe(2);
  gate.open();
  await instance.flush();
  expect(sink.batches.length).toBe(3);
});

test('settlements that pile up past the concurrency hold slots, so a store that stops answering stops deliveries', async () => {
  const gate = gatedStore();
  const sink = recordingDestination();
  const instance = createEgress({ destinations: [sink.destination], store: gate.store, policies: { events: { batch: { maxEvents: 1 }, concurrency: 2 } } });
  egress = instance;
  for (let n = 0; n < 10; n += 1) instance.send.events({ n });
  for (let tries = 0; tries < 200 && gate.pending() < 4; tries += 1) await sleep(5);
  await sleep(50);
  // Two settlements may trail two deliveries; then the lane waits for the store.
  expect(sink.batches.length).toBe(4);
  gate.open();
  await instance.flush();
  expect(sink.batches.length).toBe(10);
});

test('a store that asks for a deeper pipeline lets that many times the concurrency of settlements trail the deliveries', async () => {
  const gate = gatedStore(3);
  const sink = recordingDestination();
  const instance = createEgress({ destinations: [sink.destination], store: gate.store, policies: { events: { batch: { maxEvents: 1 }, concurrency: 2 } } });
  egress = instance;
  for (let n = 0; n < 12; n += 1) instance.send.events({ n });
  for (let tries = 0; tries < 200 && gate.pending() < 8; tries += 1) await sleep(5);
  await sleep(50);
  // Six settlements (three times the concurrency) trail two deliveries; then the lane waits for the store.
  expect(gate.pending()).toBe(8);
  expect(sink.batches.length).toBe(8);
  gate.open();
  await instance.flush();
  expect(sink.batches.length).toBe(12);
});

test('a store that asks for a deeper pipeline gets claims for that many times the concurrency ahead', async () => {
  const inner = memoryStore();
  const asked: number[] = [];
  const store = new Proxy(inner, {
    get(target, property) {
      if (property === 'claimAhead') return 3;
      if (property === 'claim') return (request: ClaimRequest) => (asked.push(request.maxBatches), target.claim(request));
      const value = Reflect.get(target, property) as unknown;
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  const sink = recordingDestination({ behaviour: () => gate });
  const instance = createEgress({ destinations: [sink.destination], store, policies: { events: { batch: { maxEvents: 1 }, concurrency: 2 } } });
  egress = instance;
  for (let n = 0; n < 20; n += 1) instance.send.events({ n });
  for (let tries = 0; tries < 200 && sink.batches.length < 2; tries += 1) await sleep(5);
  await sleep(20);
  // Two slots free and three times two batches ahead: eight in the first claim, two delivering.
  expect(asked[0]).toBe(8);
  expect(sink.batches.length).toBe(2);
  expect((await instance.stats())[0]).toMatchObject({ inFlight: 8, waiting: 12 });
  release();
  await instance.flush();
  expect(sink.batches.length).toBe(20);
});

test('a FIFO lane starts a partition’s next batch only once the previous outcome is written', async () => {
  const gate = gatedStore();
  const sink = recordingDestination();
  const instance = createEgress({
    destinations: [sink.destination],
    store: gate.store,
    policies: { events: { batch: { maxEvents: 1 }, concurrency: 4, ordering: 'fifo' } },
  });
  egress = instance;
  for (let n = 0; n < 3; n += 1) instance.send.events({ n });
  for (let tries = 0; tries < 200 && gate.pending() < 1; tries += 1) await sleep(5);
  await sleep(50);
  expect(sink.batches.length).toBe(1);
  gate.open();
  await instance.flush();
  expect(sink.batches.map((batch) => (batch.events[0]!.payload as { n: number }).n)).toEqual([0, 1, 2]);
});
