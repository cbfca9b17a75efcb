import { storeTestSuite } from '@egress/testkit';
import { afterAll, describe, test } from 'vitest';
import { postgresStore } from '../../src/index.js';
import { dropSchemas, postgresUrl, query, randomSchema } from '../postgres-test-schema.js';

// The whole store contract again, with the queue's tables beside an application's own in its schema.
const schemaOf = new WeakMap<object, string>();
const created = new Set<string>();
const tablePrefix = 'egress_';

async function applicationSchema(): Promise<string> {
  const schema = randomSchema();
  created.add(schema);
  await query(`CREATE SCHEMA "${schema}"`);
  // Names the store would use without a prefix: they must stay the application's.
  await query(`CREATE TABLE "${schema}".events (id integer PRIMARY KEY)`);
  await query(`CREATE TABLE "${schema}".migrations (id integer PRIMARY KEY)`);
  return schema;
}

describe.skipIf(!postgresUrl)('postgres store conformance with a table prefix in an application schema', () => {
  afterAll(() => dropSchemas(created));

  storeTestSuite(test, {
    async createStore(limits) {
      const schema = await applicationSchema();
      const store = postgresStore({ connectionString: postgresUrl!, schema, tablePrefix, maxEvents: limits?.maxEvents, maxBytes: limits?.maxBytes });
      schemaOf.set(store, schema);
      return store;
    },
    reopen(store) {
      const schema = schemaOf.get(store)!;
      const reopened = postgresStore({ connectionString: postgresUrl!, schema, tablePrefix });
      schemaOf.set(reopened, schema);
      return reopened;
    },
    async countQueued(store) {
      const [row] = await query<{ count: string }>(`SELECT count(*) AS count FROM "${schemaOf.get(store)!}".egress_events`);
      return Number(row!.count);
    },
  });
});
