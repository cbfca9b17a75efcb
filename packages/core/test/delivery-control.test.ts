import { describe, expect, test } from 'vitest';
import { createEgress, memoryStore, silentLogger, type Store } from '../src/index.js';
import { permanent, recordingDestination, waitFor } from './helpers.js';

/** A store written before partition states existed: the optional methods are absent. */
function storeWithoutPartitionStates(): Store {
  const store = memoryStore();
  return {
    kind: 'legacy',
    durable: false,
    open: () => store.open(),
    admit: (events, bytes) => store.admit(events, bytes),
    enqueue: (events) => store.enqueue(events),
    claim: (request) => store.claim(request),
    settle: (batch, settlement) => store.settle(batch, settlement),
    release: (batch) => store.release(batch),
    watermark: () => store.watermark(),
    pendingAtOrBelow: (mark) => store.pendingAtOrBelow(mark),
    eventState: (id) => store.eventState(id),
    listDead: (query) => store.listDead(query),
    retryDead: (ids, query) => store.retryDead(ids, query),
    purgeDead: (ids, query) => store.purgeDead(ids, query),
    stats: (now) => store.stats(now),
    close: () => store.close(),
  };
}

describe('delivery control with a store that keeps no partition states', () => {
  test('a circuit policy is refused at createEgress, naming the policy and the store', () => {
    const { destination } = recordingDestination();
    expect(() => createEgress({ destinations: [destination], store: storeWithoutPartitionStates(), policies: { events: { circuit: {} } } })).toThrow(
      /policies\.events\.circuit.*the legacy store keeps no partition states/,
    );
  });

  test('disable and enable say why they cannot work; partitions lists none', async () => {
    const { destination } = recordingDestination();
    const egress = createEgress({ destinations: [destination], store: storeWithoutPartitionStates(), logger: silentLogger });
    try {
      await expect(egress.disable('events', 'a')).rejects.toThrow(/the legacy store keeps no partition states, so partitions cannot be disabled or enabled/);
      await expect(egress.enable('events')).rejects.toThrow(/keeps no partition states/);
      expect(await egress.partitions()).toEqual([]);
    } finally {
      await egress.close();
    }
  });
});

describe('alerts through a registered destination', () => {
  test('fills the alert into the input template and sends it as an event of its own', async () => {
    const events = recordingDestination({ name: 'events', behaviour: () => Promise.reject(permanent('no such customer')) });
    const alerts = recordingDestination({ name: 'alerts' });
    const egress = createEgress({
      destinations: [events.destination, alerts.destination],
      logger: silentLogger,
      alerts: [{ on: 'dead', destinations: ['events'], send: { destination: 'alerts', input: { n: 0, group: '{{kind}}: {{summary}} / {{reason}} / {{count}}' } } }],
    });
    try {
      await egress.run((send) => {
        send.events({ n: 1 });
      });
      await waitFor(() => alerts.batches.length > 0);
      expect(alerts.batches[0]!.events[0]!.payload).toEqual({ n: 0, group: 'dead: 1 event of events dead-lettered / no such customer / 1' });
    } finally {
      await egress.close();
    }
  });
});
