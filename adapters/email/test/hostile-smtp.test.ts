import { createEgress, memoryStore, type Logger } from '@egress/core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { email } from '../src/index.js';
import { startSmtpServer, type TestSmtpServer } from './smtp-test-server.js';

const user = 'mailer@egress.test';
const wrongPassword = 'wr0ng-P@ss word!';

let server: TestSmtpServer;

beforeAll(async () => {
  server = await startSmtpServer({ credentials: { user, password: 'the-right-one' }, echoCredentials: true });
});
afterAll(async () => {
  await server.close();
});

function spellings(): string[] {
  const values = [wrongPassword, Buffer.from(`\u0000${user}\u0000${wrongPassword}`).toString('base64')];
  return values.flatMap((value) => [value, encodeURIComponent(value), Buffer.from(value).toString('base64')]);
}

describe('hostile SMTP server', () => {
  test('a 535 reply that echoes the password leaks it into no dead letter, event, settled(), health() or log', async () => {
    const texts: string[] = [];
    const keep = (fields: Record<string, unknown>, message: string) =>
      texts.push(JSON.stringify({ fields, message }, (_key, value: unknown) => (value instanceof Error ? { message: value.message, stack: value.stack } : value)));
    const logger: Logger = { debug: keep, info: keep, warn: keep, error: keep };
    const egress = createEgress({
      destinations: [email({ smtp: { host: '127.0.0.1', port: server.port, secure: false, ignoreTLS: true, auth: { user, pass: wrongPassword } }, from: 'alerts@egress.test', to: 'owner@egress.test' })],
      store: memoryStore(),
      logger,
      policies: { email: { retry: { maxAttempts: 1 } } },
    });
    try {
      egress.on('dead', (event) => texts.push(JSON.stringify(event)));
      const settled = await egress.send.email({ subject: 'hello', text: 'body' }).settled();
      expect(settled).toMatchObject({ status: 'dead' });
      texts.push(JSON.stringify(settled), JSON.stringify(await egress.deadLetters.list()), JSON.stringify(await egress.health()));
      const all = texts.join('\n');
      // The server did echo it: the reply is kept, the password in it is not.
      expect(all).toContain('535');
      expect(all).toContain('[redacted]');
      for (const spelling of spellings()) expect(all, `leaked ${spelling}`).not.toContain(spelling);
    } finally {
      await egress.close({ timeout: 1000 });
    }
  });
});
