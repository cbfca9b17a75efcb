import { createEgress, EgressValidationError, memoryStore, silentLogger } from '@egress/core';
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { fuzzDestinationInput } from '../../../packages/core/test/input-fuzz-harness.js';
import { sql } from '../src/index.js';

describe('sql: fuzzed $send input', () => {
  fuzzDestinationInput({
    destination: () => sql({ knex: { client: 'better-sqlite3', connection: { filename: ':memory:' }, useNullAsDefault: true } }),
    valid: fc.record({
      table: fc.stringMatching(/^[a-z][a-z0-9_]{0,30}$/),
      payload: fc.dictionary(fc.stringMatching(/^[a-z][a-z0-9_]{0,20}$/), fc.oneof(fc.string(), fc.integer(), fc.boolean(), fc.constant(null), fc.jsonValue({ maxDepth: 4 })), { maxKeys: 6 }),
    }),
  });
});

describe('sql: what is validated is what is queued', () => {
  test('a Proxy payload that lists reserved or forbidden column names only after validation gets none of them queued', async () => {
    const queued: string[] = [];
    const store = memoryStore();
    const enqueue = store.enqueue.bind(store);
    store.enqueue = (events) => {
      queued.push(...events.map((event) => event.payload));
      return enqueue(events);
    };
    const egress = createEgress({ destinations: [sql({ knex: { client: 'better-sqlite3', connection: { filename: ':memory:' }, useNullAsDefault: true } })], store, logger: silentLogger, role: 'producer' });
    try {
      let listings = 0;
      const payload = new Proxy({} as Record<string, unknown>, {
        ownKeys: () => (listings++ === 0 ? ['n'] : ['n', '_egress_event_id', 'b"; DROP TABLE t; --']),
        getOwnPropertyDescriptor: () => ({ value: 1, enumerable: true, configurable: true, writable: true }),
        get: (_target, key) => (key === 'toJSON' ? undefined : 1),
      });
      await egress.send.sql({ table: 'events', payload }).committed();
      expect(queued).toEqual(['{"table":"events","payload":{"n":1}}']);
      expect(() => egress.send.sql({ table: 'events', payload: { _egress_event_id: 'forged' } })).toThrow(EgressValidationError);
    } finally {
      await egress.close();
    }
  });
});
