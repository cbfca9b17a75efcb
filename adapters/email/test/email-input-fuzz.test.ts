import fc from 'fast-check';
import { describe } from 'vitest';
import { fuzzDestinationInput } from '../../../packages/core/test/input-fuzz-harness.js';
import { email } from '../src/index.js';

const address = fc.emailAddress().filter((value) => value.length <= 254);

describe('email: fuzzed $send input', () => {
  fuzzDestinationInput({
    destination: () => email({ smtp: 'smtp://127.0.0.1:9', from: 'alerts@egress.test', to: 'owner@egress.test' }),
    valid: fc.record(
      {
        subject: fc.stringMatching(/^[\x20-\x7e]{0,60}$/),
        text: fc.string(),
        html: fc.string(),
        to: fc.oneof(address, fc.array(address, { minLength: 1, maxLength: 3 }), fc.record({ name: fc.stringMatching(/^[\x20-\x7e]{0,30}$/), address })),
        cc: fc.array(address, { maxLength: 2 }),
        attachments: fc.array(fc.record({ filename: fc.stringMatching(/^[a-z0-9]{1,12}\.txt$/), content: fc.oneof(fc.string(), fc.uint8Array({ maxLength: 64 })) }), { maxLength: 2 }),
      },
      { requiredKeys: [] },
    ),
  });
});
