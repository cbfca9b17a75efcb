import * as v from 'valibot';
import { afterEach, describe, expect, test } from 'vitest';
import { createEgress, defineDestination, memoryStore, PermanentError } from '../src/index.js';
import { recordingDestination, waitFor, trackEngines } from './helpers.js';

const track = trackEngines(afterEach);

describe('roles', () => {
  test('a producer only enqueues and a worker delivers what it finds by polling', async () => {
    const store = memoryStore();
    const sink = recordingDestination();
    const producer = track(createEgress({ destinations: [sink.destination], store, role: 'producer' }));
    const receipt = producer.send.events({ n: 1 });
    await receipt.committed();
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(sink.calls()).toBe(0);
    const worker = track(createEgress({ destinations: [sink.destination], store, role: 'worker', pollInterval: 20 }));
    await worker.ready();
    producer.send.events({ n: 2 });
    await waitFor(() => sink.delivered().length === 2);
    expect(sink.delivered().sort()).toEqual([1, 2]);
  });

  test('refuses an unknown role', () => {
    const sink = recordingDestination();
    expect(() => createEgress({ destinations: [sink.destination], role: 'consumer' as never })).toThrowError(/role: expected one of 'both', 'producer', 'worker'/);
  });
});

describe('schemas other than zod', () => {
  test('accepts a valibot schema and reports its issues with paths', async () => {
    const received: unknown[] = [];
    const metrics = defineDestination({
      name: 'metrics',
      input: v.strictObject({ name: v.string(), value: v.number(), tags: v.optional(v.array(v.string())) }),
      async deliver(batch) {
        received.push(...batch.events.map((event) => event.payload));
      },
    });
    const egress = track(createEgress({ destinations: [metrics] }));
    egress.send.metrics({ name: 'latency', value: 12, tags: ['eu'] });
    // @ts-expect-error tags must be strings
    expect(() => egress.send.metrics({ name: 'latency', value: 12, tags: [3] })).toThrowError(/\$send\.metrics: tags\[0\]: /);
    await egress.flush();
    expect(received).toEqual([{ name: 'latency', value: 12, tags: ['eu'] }]);
  });

  test('refuses a schema that validates asynchronously, naming the destination', () => {
    const asynchronous = defineDestination({
      name: 'slowcheck',
      input: { '~standard': { version: 1, vendor: 'test', validate: async (value: unknown) => ({ value }) } },
      async deliver() {},
    });
    const egress = track(createEgress({ destinations: [asynchronous] }));
    expect(() => egress.send.slowcheck({})).toThrowError(/\[slowcheck\] input: the input schema validates asynchronously/);
  });
});

describe('redaction and health', () => {
  test('dead letters show the payload through the adapter redact hook', async () => {
    const sink = recordingDestination();
    const secretive = {
      ...sink.destination,
      redact: (payload: { n: number }) => ({ ...payload, n: '[redacted]' }),
      deliver: async () => {
        throw new PermanentError('401 unauthorized');
      },
    };
    const egress = track(createEgress({ destinations: [secretive] }));
    egress.send.events({ n: 12345 });
    await egress.flush();
    const [letter] = await egress.deadLetters.list();
    expect(letter!.payload).toEqual({ n: '[redacted]' });
    expect(JSON.stringify(letter)).not.toContain('12345');
  });

  test('health reports each destination, and a throwing check as not ok', async () => {
    const healthy = recordingDestination({ name: 'up' });
    const broken = recordingDestination({ name: 'down' });
    const egress = track(
      createEgress({
        destinations: [
          { ...healthy.destination, health: async () => ({ ok: true, message: 'reachable' }) },
          {
            ...broken.destination,
            health: async () => {
              throw new Error('connect ECONNREFUSED 127.0.0.1:9');
            },
          },
        ],
      }),
    );
    expect(await egress.health()).toEqual({ up: { ok: true, message: 'reachable' }, down: { ok: false, message: 'connect ECONNREFUSED 127.0.0.1:9' } });
  });
});
