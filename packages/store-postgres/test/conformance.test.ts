import { storeTestSuite } from '@egress/testkit';
import { afterAll, describe, test } from 'vitest';
import { postgresStore } from '../src/index.js';
import { dropSchemas, postgresUrl, query, randomSchema } from './postgres-test-schema.js';

const schemaOf = new WeakMap<object, string>();
const created = new Set<string>();

describe.skipIf(!postgresUrl)('postgres store conformance', () => {
  afterAll(() => dropSchemas(created));

  storeTestSuite(test, {
    createStore(limits) {
      const schema = randomSchema();
      created.add(schema);
      const store = postgresStore({ connectionString: postgresUrl!, schema, maxEvents: limits?.maxEvents, maxBytes: limits?.maxBytes });
      schemaOf.set(store, schema);
      return store;
    },
    reopen(store) {
      const schema = schemaOf.get(store)!;
      const reopened = postgresStore({ connectionString: postgresUrl!, schema });
      schemaOf.set(reopened, schema);
      return reopened;
    },
    async countQueued(store) {
      const [row] = await query<{ count: string }>(`SELECT count(*) AS count FROM "${schemaOf.get(store)!}".events`);
      return Number(row!.count);
    },
  });
});
