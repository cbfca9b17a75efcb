import { memoryStore } from '@egress/core';
import { describe, test } from 'vitest';
import { storeTestSuite } from '../src/index.js';

describe('memory store conformance', () => {
  storeTestSuite(test, { createStore: (limits) => memoryStore(limits) });
});
