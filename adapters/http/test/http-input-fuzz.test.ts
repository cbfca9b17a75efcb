import fc from 'fast-check';
import { describe } from 'vitest';
import { fuzzDestinationInput } from '../../../packages/core/test/input-fuzz-harness.js';
import { http } from '../src/index.js';

const headerValue = fc.stringMatching(/^[\t\x20-\x7e]{0,20}$/);

describe('http: fuzzed $send input', () => {
  fuzzDestinationInput({
    destination: () => http(),
    valid: fc.record(
      {
        method: fc.constantFrom('GET', 'POST', 'PUT', 'PATCH', 'DELETE'),
        url: fc.webUrl({ withQueryParameters: true }),
        data: fc.oneof(fc.jsonValue({ maxDepth: 6 }), fc.string(), fc.uint8Array({ maxLength: 64 })),
        headers: fc.dictionary(fc.stringMatching(/^x-[a-z0-9-]{1,12}$/), headerValue, { maxKeys: 3 }),
        params: fc.dictionary(fc.string({ maxLength: 8 }), fc.oneof(fc.string(), fc.integer(), fc.boolean()), { maxKeys: 3 }),
        auth: fc.oneof(fc.record({ username: fc.string(), password: fc.string() }), fc.record({ bearer: fc.string({ minLength: 1 }) })),
        timeout: fc.constantFrom('5s', 1000, '250ms'),
      },
      { requiredKeys: ['url'] },
    ),
  });
});
