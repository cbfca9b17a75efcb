import { destinationTestSuite } from '@egress/testkit';
import { afterAll, beforeAll, describe, test } from 'vitest';
import { email, type EmailInput } from '../src/index.js';
import { startSmtpServer, uniqueByMessageId, type TestSmtpServer } from './smtp-test-server.js';

let server: TestSmtpServer;

beforeAll(async () => {
  server = await startSmtpServer();
});

afterAll(async () => {
  await server.close();
});

const marker = /egress-index:(\d+)/g;

/**
 * The indices in the text parts of what the server accepted, counting each Message-ID once as a
 * receiver that deduplicates would. A digest lists several indices in one message.
 */
async function arrived(): Promise<number[]> {
  return uniqueByMessageId(server.received).flatMap((message) => [...(message.parsed.text ?? '').matchAll(marker)].map((match) => Number(match[1])));
}

const input = (index: number): EmailInput => ({ subject: `event ${index}`, text: `egress-index:${index}` });

const invalidInputs = [
  { input: { subject: 'line one\r\nBcc: someone@example.com' }, path: 'subject' },
  { input: { to: 'not-an-address' }, path: 'to' },
  { input: { cc: ['ok@example.com', 'x@example.com\nBcc: y@example.com'] }, path: 'cc' },
  { input: { attachments: [{ filename: 'a\r\nb', content: 'x' }] }, path: 'attachments' },
  { input: { text: 42 }, path: 'text' },
];

describe('one message per event', () => {
  destinationTestSuite(test, {
    createDestination: () => email({ smtp: server.url, from: 'alerts@egress.test', to: 'owner@egress.test' }),
    input,
    arrived,
    invalidInputs,
  });
});

describe('digest mode', () => {
  destinationTestSuite(test, {
    createDestination: () => email({ smtp: server.url, from: 'alerts@egress.test', to: 'owner@egress.test', digest: true }),
    input,
    arrived,
    invalidInputs,
    policy: { batch: { maxDelay: 50 } },
  });
});
