import { afterEach, describe, expect, test } from 'vitest';
import {
  createEgress,
  EgressCapacityError,
  EgressConfigurationError,
  EgressStoreError,
  EgressStoreUnavailableError,
  type Egress,
  type EgressEvents,
  type EgressStoreStatus,
  type Logger,
} from '../src/index.js';
import { recordingDestination, sleep, waitFor } from './helpers.js';
import { unreachableStore } from './unreachable-store.js';

let egress: Egress | undefined;
afterEach(async () => {
  await egress?.close({ timeout: 500 });
  egress = undefined;
});

/** A logger that keeps its lines, so tests can count how often something was said. */
function recordingLogger() {
  const lines: { level: string; message: string }[] = [];
  const logger: Logger = {
    debug: () => {},
    info: (_fields, message) => lines.push({ level: 'info', message }),
    warn: (_fields, message) => lines.push({ level: 'warn', message }),
    error: (_fields, message) => lines.push({ level: 'error', message }),
  };
  return { logger, lines };
}

describe('a store that is down at start', () => {
  test('accepts sends meanwhile, opens once the store is up, and delivers them in order without a restart', async () => {
    const { store, control, counts } = unreachableStore({ down: true });
    const sink = recordingDestination();
    const { logger, lines } = recordingLogger();
    const instance = createEgress({ destinations: [sink.destination], store, logger });
    egress = instance;
    const states: EgressStoreStatus[] = [];
    instance.on('store', (status) => states.push(status));
    let ready = false;
    void instance.ready().then(() => (ready = true));
    const receipts = [1, 2, 3].map((n) => instance.send.events({ n }));
    await waitFor(() => counts.open >= 3);
    expect(ready).toBe(false);
    const status = instance.storeStatus();
    expect(status).toMatchObject({ kind: 'test', state: 'unreachable', buffered: 3 });
    expect(status.error).toMatch(/connection refused/);
    await expect(instance.stats()).rejects.toSatisfy((error) => EgressStoreUnavailableError.isInstance(error));

    control.down = false;
    await instance.ready();
    await Promise.all(receipts.map((receipt) => receipt.committed()));
    await instance.flush();
    expect(sink.delivered()).toEqual([1, 2, 3]);
    expect(instance.storeStatus()).toMatchObject({ state: 'connected', buffered: 0 });
    expect(states.map((entry) => entry.state)).toEqual(['unreachable', 'connected']);
    // One line when the outage began and one when it ended, however many opens failed between.
    expect(counts.open).toBeGreaterThanOrEqual(3);
    expect(lines.filter((line) => /unreachable/.test(line.message))).toHaveLength(1);
    expect(lines.filter((line) => /reachable again/.test(line.message))).toHaveLength(1);
  });

  test("startup: 'fail-fast' rejects ready() at the first failure, and sends then throw a typed error", async () => {
    const { store, counts } = unreachableStore({ down: true });
    const sink = recordingDestination();
    const instance = createEgress({ destinations: [sink.destination], store, startup: 'fail-fast', logger: recordingLogger().logger });
    egress = instance;
    await expect(instance.ready()).rejects.toSatisfy((error) => EgressStoreUnavailableError.isInstance(error));
    await sleep(100);
    expect(counts.open).toBe(1);
    expect(instance.storeStatus()).toMatchObject({ state: 'failed' });
    expect(() => instance.send.events({ n: 1 })).toThrowError(EgressStoreError);
    expect(() => instance.send.events({ n: 1 })).toThrowError(/\[egress\] \[test\] the store could not be opened; no events are accepted: .*connection refused/);
  });

  test('an error from open that is not about reaching the database is final: no retries, sends refused, buffered events reported lost', async () => {
    const { store, counts } = unreachableStore({ openError: new EgressConfigurationError('the file is not a queue', 'store.path') });
    const sink = recordingDestination();
    const { logger, lines } = recordingLogger();
    const instance = createEgress({ destinations: [sink.destination], store, logger });
    egress = instance;
    const lost: EgressEvents['lost'][] = [];
    instance.on('lost', (event) => lost.push(event));
    const early = instance.send.events({ n: 1 });
    await expect(instance.ready()).rejects.toThrowError(/the file is not a queue/);
    await expect(early.committed()).rejects.toThrowError(/\[egress\] \[test\] the store could not be opened: .*not a queue/);
    expect(lost).toEqual([expect.objectContaining({ destination: 'events', count: 1, reason: 'store-failed' })]);
    expect(() => instance.send.events({ n: 2 })).toThrowError(EgressStoreError);
    await sleep(100);
    expect(counts.open).toBe(1);
    expect(lines.filter((line) => line.level === 'error' && /could not be opened/.test(line.message))).toHaveLength(1);
  });
});

describe('the commit buffer while the store is unreachable', () => {
  test('keeps commit order across failed writes: no event overtakes an earlier one', async () => {
    const { store, control, counts, taken } = unreachableStore();
    const sink = recordingDestination();
    const instance = createEgress({ destinations: [sink.destination], store, logger: recordingLogger().logger, policies: { events: { ordering: 'fifo' } } });
    egress = instance;
    await instance.ready();
    instance.send.events({ n: 0 });
    await instance.flush();
    control.down = true;
    const receipts = [];
    for (let n = 1; n <= 30; n += 1) {
      receipts.push(instance.send.events({ n }));
      // Spread over several ticks, so the sends form several commit groups and several retries.
      if (n % 5 === 0) await sleep(15);
    }
    await waitFor(() => counts.enqueue >= 6);
    expect(instance.storeStatus()).toMatchObject({ state: 'unreachable', buffered: 30 });
    expect((await Promise.race([receipts[0]!.committed().then(() => 'committed'), sleep(20).then(() => 'waiting')]))).toBe('waiting');
    control.down = false;
    await Promise.all(receipts.map((receipt) => receipt.committed()));
    await instance.flush();
    expect(taken).toEqual(Array.from({ length: 31 }, (_, n) => n));
    expect(sink.delivered()).toEqual(Array.from({ length: 31 }, (_, n) => n));
    expect((await instance.stats())[0]).toMatchObject({ buffered: 0, lost: 0, dropped: 0 });
  });

  test('a full buffer makes send throw EgressCapacityError at the call, and keeps what it accepted', async () => {
    const { store, control } = unreachableStore({ down: true });
    const sink = recordingDestination();
    const instance = createEgress({ destinations: [sink.destination], store, commitBuffer: { maxEvents: 5 }, logger: recordingLogger().logger });
    egress = instance;
    for (let n = 1; n <= 5; n += 1) instance.send.events({ n });
    expect(() => instance.send.events({ n: 6 })).toThrowError(EgressCapacityError);
    expect(() => instance.send.events({ n: 6 })).toThrowError(/the commit buffer is full \(5 events accepted and not yet taken by the test store; limit 5 events/);
    control.down = false;
    await instance.flush();
    expect(sink.delivered()).toEqual([1, 2, 3, 4, 5]);
    // Room again once the store took them.
    instance.send.events({ n: 6 });
    await instance.flush();
    expect(sink.delivered()).toEqual([1, 2, 3, 4, 5, 6]);
  });

  test('the byte bound counts too', async () => {
    const { store } = unreachableStore({ down: true });
    const sink = recordingDestination();
    const instance = createEgress({ destinations: [sink.destination], store, commitBuffer: { maxBytes: '1KiB' }, logger: recordingLogger().logger });
    egress = instance;
    instance.send.events({ n: 1, size: 1000 });
    expect(() => instance.send.events({ n: 2, size: 100 })).toThrowError(/commit buffer is full/);
  });

  test("with overflow: 'drop' a full buffer drops and counts the event, as a full store does", async () => {
    const { store, control } = unreachableStore({ down: true });
    const sink = recordingDestination();
    const instance = createEgress({ destinations: [sink.destination], store, overflow: 'drop', commitBuffer: { maxEvents: 2 }, logger: recordingLogger().logger });
    egress = instance;
    const dropped: EgressEvents['dropped'][] = [];
    instance.on('dropped', (event) => dropped.push(event));
    const receipts = [1, 2, 3].map((n) => instance.send.events({ n }));
    expect(receipts.map((receipt) => receipt.accepted)).toEqual([true, true, false]);
    expect(await receipts[2]!.settled()).toEqual({ status: 'dropped' });
    await expect(receipts[2]!.committed()).rejects.toThrowError(/commit buffer is full/);
    expect(dropped).toEqual([expect.objectContaining({ destination: 'events', count: 1, reason: 'capacity' })]);
    control.down = false;
    await instance.flush();
    expect(sink.delivered()).toEqual([1, 2]);
    expect((await instance.stats())[0]).toMatchObject({ dropped: 1, buffered: 0 });
  });

  test('run() rejects at once with a typed error naming the store and the cause, and its events are not kept', async () => {
    const { store, control } = unreachableStore();
    const sink = recordingDestination();
    const instance = createEgress({ destinations: [sink.destination], store, logger: recordingLogger().logger });
    egress = instance;
    await instance.ready();
    control.down = true;
    const started = Date.now();
    const failure = await instance.run(async ($send) => void $send.events({ n: 1 })).catch((error: unknown) => error);
    expect(Date.now() - started).toBeLessThan(1000);
    expect(EgressStoreError.isInstance(failure)).toBe(true);
    expect((failure as EgressStoreError).store).toBe('test');
    expect(EgressStoreUnavailableError.isInstance((failure as Error).cause)).toBe(true);
    expect((failure as Error).message).toMatch(/^\[egress\] \[test\] the unit of work was not committed; its 1 event was not kept: .*enqueue: connection refused/);
    // A send waiting for a retry makes later units fail at once, without asking the store.
    instance.send.events({ n: 2 });
    await sleep(10);
    await expect(instance.run(async ($send) => void $send.events({ n: 3 }))).rejects.toSatisfy((error) => EgressStoreError.isInstance(error));
    control.down = false;
    await instance.flush();
    expect(sink.delivered()).toEqual([2]);
  });

  test('close() waits for the buffer up to its timeout, then reports what is still in it as lost, loudly', async () => {
    const { store } = unreachableStore({ down: true });
    const sink = recordingDestination();
    const { logger, lines } = recordingLogger();
    const instance = createEgress({ destinations: [sink.destination], store, logger });
    const lost: EgressEvents['lost'][] = [];
    instance.on('lost', (event) => lost.push(event));
    const receipts = [1, 2].map((n) => instance.send.events({ n }));
    const started = Date.now();
    await instance.close({ timeout: 200 });
    expect(Date.now() - started).toBeGreaterThanOrEqual(190);
    expect(lost).toEqual([expect.objectContaining({ destination: 'events', count: 2, reason: 'close-timeout' })]);
    expect(lost[0]!.message).toMatch(/close gave up after 200 ms with 2 accepted events still waiting for the test store/);
    await expect(receipts[0]!.committed()).rejects.toThrowError(/close gave up/);
    expect(lines.filter((line) => line.level === 'error' && /2 accepted events never reached the test store/.test(line.message))).toHaveLength(1);
  });

  test('flush() waits for the buffer, and gives up at its timeout', async () => {
    const { store, control } = unreachableStore({ down: true });
    const sink = recordingDestination();
    const instance = createEgress({ destinations: [sink.destination], store, logger: recordingLogger().logger });
    egress = instance;
    instance.send.events({ n: 1 });
    await expect(instance.flush({ timeout: 100 })).rejects.toThrowError(/flush gave up after 100 ms/);
    setTimeout(() => (control.down = false), 50);
    await instance.flush();
    expect(sink.delivered()).toEqual([1]);
  });

  test('rejects a bad commitBuffer option, naming it', () => {
    const sink = recordingDestination();
    expect(() => createEgress({ destinations: [sink.destination], commitBuffer: { maxEvents: 0 } })).toThrowError(/commitBuffer\.maxEvents: expected a whole number/);
    expect(() => createEgress({ destinations: [sink.destination], commitBuffer: { maxBytes: 'lots' as never } })).toThrowError(/commitBuffer\.maxBytes/);
    expect(() => createEgress({ destinations: [sink.destination], startup: 'later' as never })).toThrowError(/startup: expected one of 'retry', 'fail-fast'/);
  });
});

describe('delivery while the store blinks', () => {
  test('a settle that cannot reach the store is retried while the lease holds: the batch is delivered once', async () => {
    const { store, control, counts } = unreachableStore();
    const sink = recordingDestination();
    const instance = createEgress({ destinations: [sink.destination], store, logger: recordingLogger().logger });
    egress = instance;
    await instance.ready();
    control.failSettles = 4;
    const receipt = instance.send.events({ n: 1 });
    expect(await receipt.settled()).toEqual({ status: 'delivered' });
    expect(counts.failedSettles).toBe(4);
    expect(sink.calls()).toBe(1);
    expect((await instance.stats())[0]).toMatchObject({ delivered: 1, waiting: 0, inFlight: 0 });
  });

  test('receipt.settled() asked during an outage waits for the store instead of rejecting', async () => {
    const { store, control } = unreachableStore();
    const sink = recordingDestination();
    const instance = createEgress({ destinations: [sink.destination], store, logger: recordingLogger().logger });
    egress = instance;
    const receipt = instance.send.events({ n: 1 });
    await instance.flush();
    control.down = true;
    let outcome: unknown;
    const settled = receipt.settled().then((value) => (outcome = value));
    await sleep(150);
    expect(outcome).toBeUndefined();
    control.down = false;
    await settled;
    expect(outcome).toEqual({ status: 'delivered' });
  });

  test('claims that fail during an outage are logged once, and delivery resumes when the store returns', async () => {
    const { store, control, counts } = unreachableStore();
    const sink = recordingDestination();
    const { logger, lines } = recordingLogger();
    const instance = createEgress({ destinations: [sink.destination], store, logger });
    egress = instance;
    await instance.ready();
    const states: string[] = [];
    instance.on('store', (status) => states.push(status.state));
    // Let the first claim, made when the lane started, come back before the outage begins.
    await sleep(20);
    control.down = true;
    const receipt = instance.send.events({ n: 1 });
    // Retrying dead letters wakes the lane; every claim fails, and it keeps asking with backoff.
    const claimsBefore = counts.claim;
    await instance.deadLetters.retry();
    await waitFor(() => counts.claim >= claimsBefore + 4);
    control.down = false;
    await receipt.committed();
    await instance.flush();
    expect(sink.delivered()).toEqual([1]);
    expect(states).toEqual(['unreachable', 'connected']);
    expect(lines.filter((line) => line.level !== 'info')).toHaveLength(1);
    expect(lines.filter((line) => line.level === 'info' && /reachable again/.test(line.message))).toHaveLength(1);
  });
});
