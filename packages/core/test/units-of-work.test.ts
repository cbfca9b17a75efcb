import { afterEach, describe, expect, expectTypeOf, test } from 'vitest';
import { createEgress, EgressClosedError, EgressError, EgressValidationError, memoryStore, type Egress, type QueuedEvent, type Receipt, type Store } from '../src/index.js';
import { recordingDestination, sleep } from './helpers.js';

let egress: Egress | undefined;
afterEach(async () => {
  await egress?.close({ timeout: 1000 });
  egress = undefined;
});

describe('run: units of work', () => {
  test('commits the sends of a unit when it resolves, including those made by helpers it calls', async () => {
    const sink = recordingDestination();
    const instance = createEgress({ destinations: [sink.destination] });
    egress = instance;
    // A helper that never receives $send: inside run, instance.send joins the unit of work.
    const notify = (n: number) => instance.send.events({ n });
    const receipts: Receipt[] = [];
    const result = await instance.run(async ($send) => {
      receipts.push($send.events({ n: 1 }));
      await sleep(5);
      receipts.push(notify(2));
      return 'handled';
    });
    expect(result).toBe('handled');
    await Promise.all(receipts.map((receipt) => receipt.committed()));
    await instance.flush();
    expect(sink.delivered().sort()).toEqual([1, 2]);
  });

  test('a helper joins its own unit whichever units began or ended around it, and a timer left behind by an ended unit sends on its own', async () => {
    const sink = recordingDestination();
    const instance = createEgress({ destinations: [sink.destination] });
    egress = instance;
    const notify = (n: number) => instance.send.events({ n });
    let fireTimer!: () => void;
    const timerFired = new Promise<void>((resolve) => (fireTimer = resolve));
    // The first unit ends with every other unit ended too; its timer fires later, inside another unit.
    await instance.run(async () => {
      await sleep(1);
      notify(1);
      setTimeout(() => {
        notify(2);
        fireTimer();
      }, 20);
    });
    let releaseOuter!: () => void;
    const outer = instance.run(async () => {
      await new Promise<void>((resolve) => (releaseOuter = resolve));
      // Joins this unit although another one began and ended meanwhile: discarded with it.
      notify(3);
      throw new Error('outer failed');
    });
    await instance.run(async () => {
      await sleep(1);
      notify(4);
    });
    await timerFired;
    releaseOuter();
    await expect(outer).rejects.toThrow('outer failed');
    await instance.flush();
    expect(sink.delivered().sort()).toEqual([1, 2, 4]);
  });

  test('holds the sends back until the unit finishes', async () => {
    const sink = recordingDestination();
    const instance = createEgress({ destinations: [sink.destination] });
    egress = instance;
    let release!: () => void;
    const running = instance.run(async ($send) => {
      $send.events({ n: 1 });
      await new Promise<void>((resolve) => (release = resolve));
    });
    await sleep(30);
    expect(sink.calls()).toBe(0);
    release();
    await running;
    await instance.flush();
    expect(sink.delivered()).toEqual([1]);
  });

  test('discards the sends of a unit that throws, and rejects their receipts', async () => {
    const sink = recordingDestination();
    const instance = createEgress({ destinations: [sink.destination] });
    egress = instance;
    let receipt: Receipt | undefined;
    await expect(
      instance.run(async ($send) => {
        receipt = $send.events({ n: 1 });
        throw new Error('handler failed');
      }),
    ).rejects.toThrow('handler failed');
    await expect(receipt!.committed()).rejects.toSatisfy((error) => EgressError.isInstance(error) && /discarded/.test((error as Error).message));
    instance.send.events({ n: 2 });
    await instance.flush();
    expect(sink.delivered()).toEqual([2]);
  });

  test("keeps the sends of a unit that throws with onError: 'deliver'", async () => {
    const sink = recordingDestination();
    const instance = createEgress({ destinations: [sink.destination] });
    egress = instance;
    await expect(
      instance.run(
        async ($send) => {
          $send.events({ n: 1 });
          throw new Error('handler failed');
        },
        { onError: 'deliver' },
      ),
    ).rejects.toThrow('handler failed');
    await instance.flush();
    expect(sink.delivered()).toEqual([1]);
  });

  test('hands concurrent units to the store in order without waiting for earlier writes', async () => {
    const store = memoryStore();
    const calls: string[] = [];
    let releaseFirst!: () => void;
    const firstWrite = new Promise<void>((resolve) => (releaseFirst = resolve));
    const slowStore: Store = {
      ...store,
      kind: store.kind,
      durable: store.durable,
      open: () => store.open(),
      admit: (events, bytes) => store.admit(events, bytes),
      enqueue: async (events: readonly QueuedEvent[]) => {
        const label = events.map((event) => JSON.parse(event.payload).n).join(',');
        calls.push(`start ${label}`);
        if (label === '1') await firstWrite;
        await store.enqueue(events);
        calls.push(`end ${label}`);
      },
      claim: (request) => store.claim(request),
      settle: (batch, settlement) => store.settle(batch, settlement),
      watermark: () => store.watermark(),
      pendingAtOrBelow: (mark) => store.pendingAtOrBelow(mark),
      stats: (now) => store.stats(now),
      close: () => store.close(),
    };
    const sink = recordingDestination();
    const instance = createEgress({ destinations: [sink.destination], store: slowStore });
    egress = instance;
    const first = instance.run(async ($send) => void $send.events({ n: 1 }));
    const second = instance.run(async ($send) => void $send.events({ n: 2 }));
    await second;
    expect(calls).toEqual(['start 1', 'start 2', 'end 2']);
    releaseFirst();
    await first;
    await instance.flush();
    expect(sink.delivered().sort()).toEqual([1, 2]);
  });

  test('receipts carry time-ordered ids and report the delivery outcome', async () => {
    const sink = recordingDestination();
    const instance = createEgress({ destinations: [sink.destination] });
    egress = instance;
    const receipts = [0, 1, 2].map((n) => instance.send.events({ n }));
    const ids = receipts.map((receipt) => receipt.id);
    expect([...ids].sort()).toEqual(ids);
    expect(ids.every((id) => /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/.test(id))).toBe(true);
    expect(await receipts[0]!.settled()).toEqual({ status: 'delivered' });
    await instance.flush();
    // Asked after the fact, the outcome is still known.
    expect(await receipts[2]!.settled()).toEqual({ status: 'delivered' });
    expect(sink.batches[0]!.events[0]!.id).toBe(ids[0]);
  });

  test('what the caller changes after send does not change what is delivered', async () => {
    const sink = recordingDestination();
    const instance = createEgress({ destinations: [sink.destination] });
    egress = instance;
    const input = { n: 1 };
    instance.send.events(input);
    input.n = 99;
    await instance.flush();
    expect(sink.delivered()).toEqual([1]);
  });
});

describe('validation at send time', () => {
  test('rejects an unknown field, naming destination and field, and enqueues nothing', async () => {
    const sink = recordingDestination();
    const instance = createEgress({ destinations: [sink.destination] });
    egress = instance;
    // @ts-expect-error `body` is not a field of this destination
    expect(() => instance.send.events({ n: 1, body: 'x' })).toThrowError(EgressValidationError);
    try {
      // @ts-expect-error same mistake, to read the error
      instance.send.events({ n: 1, body: 'x' });
    } catch (error) {
      expect(EgressValidationError.isInstance(error)).toBe(true);
      const validation = error as EgressValidationError;
      expect(validation.destination).toBe('events');
      expect(validation.message).toMatch(/^\$send\.events: .*body/);
    }
    await instance.flush();
    expect(sink.calls()).toBe(0);
    expect((await instance.stats())[0]!.waiting).toBe(0);
  });

  test('names the field path and what was expected', () => {
    const sink = recordingDestination();
    const instance = createEgress({ destinations: [sink.destination] });
    egress = instance;
    // @ts-expect-error n must be a number
    const attempt = () => instance.send.events({ n: 'seven' });
    expect(attempt).toThrowError(/\$send\.events: n: .*number/);
    try {
      attempt();
    } catch (error) {
      expect((error as EgressValidationError).issues[0]!.path).toBe('n');
    }
  });

  test('an unregistered destination name is a compile error and a clear runtime error', () => {
    const sink = recordingDestination();
    const instance = createEgress({ destinations: [sink.destination] });
    egress = instance;
    // @ts-expect-error no destination named "s3" is registered
    expect(() => instance.send.s3({ bucket: 'b' })).toThrowError(/\$send\.s3: no destination is registered under this name \(registered: events\)/);
  });

  test('send functions are typed from the registered destinations', () => {
    const sink = recordingDestination();
    const other = recordingDestination({ name: 'audit' });
    const instance = createEgress({ destinations: [sink.destination, other.destination] });
    egress = instance;
    expectTypeOf(instance.send.events).parameter(0).toEqualTypeOf<{ n: number; group?: string | undefined; size?: number | undefined }>();
    expectTypeOf(instance.send).toHaveProperty('audit');
    expectTypeOf(instance.send.audit).returns.toEqualTypeOf<Receipt>();
  });

  test('rejects an event larger than the destination accepts in one delivery', () => {
    const sink = recordingDestination({ limits: { maxBytes: 100 } });
    const instance = createEgress({ destinations: [sink.destination] });
    egress = instance;
    expect(() => instance.send.events({ n: 1, size: 101 })).toThrowError(/the event is 101 bytes; events accepts at most 100 bytes/);
  });
});

describe('close', () => {
  test('delivers open batches, stops intake, and is harmless to call twice', async () => {
    const sink = recordingDestination();
    const instance = createEgress({ destinations: [sink.destination], policies: { events: { batch: { maxEvents: 100, maxDelay: '1h' } } } });
    for (let n = 0; n < 3; n++) instance.send.events({ n });
    const first = instance.close();
    const second = instance.close();
    expect(second).toBe(first);
    await first;
    expect(sink.delivered()).toEqual([0, 1, 2]);
    expect(() => instance.send.events({ n: 4 })).toThrowError(EgressClosedError);
    await expect(instance.run(async () => {})).rejects.toThrowError(EgressClosedError);
  });

  test('gives up on a delivery that outlasts the timeout, aborting it', async () => {
    let signal: AbortSignal | undefined;
    const sink = recordingDestination();
    const slow = {
      ...sink.destination,
      deliver: (_batch: unknown, context: { signal: AbortSignal }) => {
        signal = context.signal;
        return new Promise<void>(() => {});
      },
    };
    const instance = createEgress({ destinations: [slow] });
    instance.send.events({ n: 1 });
    await sleep(20);
    const started = Date.now();
    await instance.close({ timeout: 100 });
    expect(Date.now() - started).toBeLessThan(3000);
    expect(signal?.aborted).toBe(true);
  });

  test('calls the destination start and stop hooks once', async () => {
    const calls: string[] = [];
    const sink = recordingDestination();
    const hooked = { ...sink.destination, start: () => void calls.push('start'), stop: () => void calls.push('stop') };
    const instance = createEgress({ destinations: [hooked] });
    await instance.ready();
    await instance.close();
    await instance.close();
    expect(calls).toEqual(['start', 'stop']);
  });
});
