import fc from 'fast-check';
import { describe } from 'vitest';
import { fuzzDestinationInput } from '../../../packages/core/test/input-fuzz-harness.js';
import { sse } from '../src/index.js';

describe('sse: fuzzed $send input', () => {
  fuzzDestinationInput({
    destination: () => sse(),
    valid: fc.record({ channel: fc.stringMatching(/^[a-z0-9][a-z0-9_.:/-]{0,20}$/), payload: fc.jsonValue({ maxDepth: 6 }) }),
  });
});
