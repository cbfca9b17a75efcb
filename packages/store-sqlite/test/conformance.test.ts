import { join } from 'node:path';
import type { Store } from '@egress/core';
import { sqliteStore } from '@egress/store-sqlite';
import { storeTestSuite } from '@egress/testkit';
import Database from 'better-sqlite3';
import { afterAll, describe, test } from 'vitest';
import { temporaryDirectory } from './helpers.js';

const directory = temporaryDirectory();
const paths = new WeakMap<Store, string>();
let files = 0;

afterAll(() => directory.remove());

describe('the store conformance suite', () => {
  storeTestSuite(test, {
    createStore: (limits) => {
      const path = join(directory.path, `queue-${(files += 1)}.db`);
      const store = sqliteStore({ path, ...limits });
      paths.set(store, path);
      return store;
    },
    reopen: (store) => {
      const path = paths.get(store)!;
      const reopened = sqliteStore({ path });
      paths.set(reopened, path);
      return reopened;
    },
    countQueued: async (store) => {
      // A connection of its own: what the file holds, not what the store says.
      const reader = new Database(paths.get(store)!, { readonly: true });
      try {
        return (reader.prepare('SELECT count(*) AS count FROM egress_events').get() as { count: number }).count;
      } finally {
        reader.close();
      }
    },
  });
});
