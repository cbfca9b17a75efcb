import fc from 'fast-check';
import { describe } from 'vitest';
import { fuzzDestinationInput } from '../../../packages/core/test/input-fuzz-harness.js';
import { s3 } from '../src/index.js';

describe('s3: fuzzed $send input', () => {
  fuzzDestinationInput({
    destination: () => s3({ region: 'us-east-1', endpoint: 'http://127.0.0.1:9', forcePathStyle: true, credentials: { accessKeyId: 'fuzz', secretAccessKey: 'fuzz-secret' } }),
    valid: fc.record({
      bucket: fc.stringMatching(/^[a-z0-9][a-z0-9-]{2,20}[a-z0-9]$/),
      prefix: fc.string({ maxLength: 40 }),
      payload: fc.oneof(fc.string(), fc.array(fc.jsonValue({ maxDepth: 5 }), { maxLength: 5 }), fc.dictionary(fc.string(), fc.jsonValue({ maxDepth: 5 }), { maxKeys: 5 })),
    }),
  });
});
