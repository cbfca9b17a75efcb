import { destinationTestSuite } from '@egress/testkit';
import { afterAll, describe, test } from 'vitest';
import { sql } from '../src/index.js';
import { testDatabases, uniqueTable } from './databases.js';

describe.each(testDatabases())('destination conformance on $name', (database) => {
  const table = uniqueTable('conformance');
  afterAll(async () => {
    await database.dropTable(table);
    await database.close();
  });

  destinationTestSuite(test, {
    createDestination: () => sql({ knex: database.config() }),
    input: (index) => ({ table, payload: { index, note: `event ${index}` } }),
    async arrived() {
      const exists = await database.columnTypes(table);
      if (Object.keys(exists).length === 0) return [];
      return (await database.rows(table)).map((row) => Number(row.index));
    },
    invalidInputs: [
      { input: { table: '_hidden', payload: {} }, path: 'table' },
      { input: { table: 'events', payload: 'not an object' }, path: 'payload' },
      { input: { table: 'events', payload: { _egress_event_id: 'mine' } }, path: 'payload' },
    ],
    policy: { batch: { maxDelay: 20 } },
  });
});
