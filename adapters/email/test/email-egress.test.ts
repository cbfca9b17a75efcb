import { createEgress, EgressTimeoutError, EgressValidationError, memoryStore, silentLogger, type PolicyOptions } from '@egress/core';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { email, type EmailOptions } from '../src/index.js';
import { startSmtpServer, uniqueByMessageId, type TestSmtpServer } from './smtp-test-server.js';

let server: TestSmtpServer;
const open: { close(options?: { timeout?: number }): Promise<void> }[] = [];

beforeAll(async () => {
  server = await startSmtpServer();
});

afterEach(async () => {
  for (const egress of open.splice(0)) await egress.close({ timeout: 200 });
  server.reset();
});

afterAll(async () => {
  await server.close();
});

const fastRetries: PolicyOptions = { retry: { initialDelay: 5, maxDelay: 20 } };

function start(options: Partial<EmailOptions> = {}, policy: PolicyOptions = fastRetries) {
  const egress = createEgress({
    destinations: [email({ smtp: server.url, from: 'alerts@egress.test', to: 'owner@egress.test', collaborators: ['ana@egress.test'], ...options })],
    store: memoryStore(),
    logger: silentLogger,
    policies: { email: policy },
  });
  open.push(egress);
  return egress;
}

describe('email through createEgress', () => {
  test('delivers a send to the owner and settles it as delivered', async () => {
    const egress = start();
    const receipt = egress.send.email({ subject: 'Deployed', text: 'v1.2.3 is live', html: '<p>v1.2.3 is <i>live</i></p>' });
    expect(await receipt.settled()).toEqual({ status: 'delivered' });

    expect(server.received).toHaveLength(1);
    const [message] = server.received;
    expect(message!.messageId).toBe(`<${receipt.id}@egress.test>`);
    expect(message!.parsed.subject).toBe('Deployed');
    expect(message!.parsed.text?.trim()).toBe('v1.2.3 is live');
    expect(message!.parsed.html).toContain('<p>v1.2.3 is <i>live</i></p>');
    expect(message!.envelopeTo).toEqual(['owner@egress.test']);
  });

  test('delivers the sends of a unit of work, with their recipients and attachments', async () => {
    const egress = start();
    const scan = new Uint8Array(2048).map((_, index) => (index * 7) % 256);
    await egress.run(async ($send) => {
      $send.email({ subject: 'to the team', include_collaborators: true });
      $send.email({
        subject: 'to a customer',
        to: { name: 'Customer', address: 'customer@example.com' },
        bcc: 'sales@egress.test',
        attachments: [
          { filename: 'quote.txt', content: 'EUR 1200' },
          { filename: 'scan.png', content: scan, contentType: 'image/png' },
        ],
      });
      // The queued payload is a copy: changing the bytes after the send changes nothing.
      scan.fill(0);
    });
    await egress.flush();

    const bySubject = new Map(server.received.map((message) => [message.parsed.subject, message]));
    expect(bySubject.get('to the team')!.envelopeTo).toEqual(['owner@egress.test', 'ana@egress.test']);
    const customer = bySubject.get('to a customer')!;
    expect(customer.envelopeTo.sort()).toEqual(['customer@example.com', 'sales@egress.test']);
    expect(customer.parsed.attachments[0]!.content.toString()).toBe('EUR 1200');
    expect(customer.parsed.attachments[1]!.contentType).toBe('image/png');
    expect(new Uint8Array(customer.parsed.attachments[1]!.content)).toEqual(new Uint8Array(2048).map((_, index) => (index * 7) % 256));
  });

  test('types $send.email from its schema: a misspelt field fails to compile and throws', () => {
    const egress = start();
    // @ts-expect-error "body" is not a field of $send.email
    expect(() => egress.send.email({ subject: 'hello', body: 'world' })).toThrow('$send.email: unknown field "body": use "text" for a plain-text body or "html" for an HTML body');
  });

  test('refuses header injection at send, naming the field, and enqueues nothing', async () => {
    const egress = start();
    const attempts: [unknown, string][] = [
      [{ subject: 'hi\r\nBcc: everyone@example.com' }, 'subject'],
      [{ to: 'victim@example.com\nBcc: everyone@example.com' }, 'to'],
      [{ cc: [{ name: 'x\r\nBcc: y@example.com', address: 'x@example.com' }] }, 'cc[0].name'],
      [{ attachments: [{ filename: 'a.txt\r\nContent-Type: text/html', content: 'x' }] }, 'attachments[0].filename'],
    ];
    for (const [input, path] of attempts) {
      let caught: unknown;
      try {
        egress.send.email(input as never);
      } catch (error) {
        caught = error;
      }
      expect(EgressValidationError.isInstance(caught)).toBe(true);
      expect((caught as EgressValidationError).issues.map((issue) => issue.path)).toEqual([path]);
      expect((caught as Error).message).toMatch(/^\$send\.email: /);
    }
    const [stats] = await egress.stats();
    expect(stats!.waiting + stats!.inFlight).toBe(0);
  });

  test('retries 4xx replies and delivers once the server accepts', async () => {
    const egress = start();
    const retries: string[] = [];
    egress.on('retrying', (event) => retries.push(event.error.message));
    server.rejectNext(2, { code: 451, message: '4.7.1 Greylisted, please try again' });

    const receipt = egress.send.email({ subject: 'eventually' });
    expect(await receipt.settled()).toEqual({ status: 'delivered' });

    expect(server.rejectedCount).toBe(2);
    expect(retries).toHaveLength(2);
    expect(retries[0]).toContain('451 4.7.1 Greylisted, please try again');
    expect(server.received.map((message) => message.parsed.subject)).toEqual(['eventually']);
  });

  test('dead-letters a 5xx reply with the server reply, at the first attempt, without the credentials', async () => {
    const guarded = await startSmtpServer({ credentials: { user: 'mailer', password: 'Sup3r-s3cret' } });
    const egress = createEgress({
      destinations: [email({ smtp: guarded.url, from: 'alerts@egress.test', to: 'owner@egress.test' })],
      store: memoryStore(),
      logger: silentLogger,
      policies: { email: fastRetries },
    });
    open.push(egress);
    try {
      guarded.rejectNext(1, { code: 550, message: '5.7.1 Relaying denied' });
      const outcome = await egress.send.email({ subject: 'refused' }).settled();
      expect(outcome.status).toBe('dead');

      const [letter] = await egress.deadLetters.list();
      expect(letter!.attempts).toBe(1);
      expect(letter!.error.name).toBe('PermanentError');
      expect(letter!.error.message).toContain('550 5.7.1 Relaying denied');
      expect(JSON.stringify(letter)).not.toContain('Sup3r-s3cret');
      expect(guarded.received).toHaveLength(0);

      // Replayed from the dead-letter queue once the server accepts: it arrives.
      expect(await egress.deadLetters.retry()).toBe(1);
      await egress.flush();
      expect(guarded.received.map((message) => message.parsed.subject)).toEqual(['refused']);
    } finally {
      await egress.close({ timeout: 200 });
      await guarded.close();
    }
  });

  test('observes the rate limit: with 3 messages per hour, only 3 of 5 arrive', async () => {
    const egress = start({ rateLimit: { messages: 3, per: '1h' } });
    const receipts = Array.from({ length: 5 }, (_, index) => egress.send.email({ subject: `limited ${index}` }));
    await Promise.all(receipts.map((receipt) => receipt.committed()));

    await server.waitForMessages(3);
    const stalled = await egress.flush({ timeout: 300 }).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(EgressTimeoutError.isInstance(stalled)).toBe(true);
    expect(server.received).toHaveLength(3);
    const [stats] = await egress.stats();
    expect(stats!.waiting).toBe(2);
  });

  test('digest mode: batched events become one email per recipient set, each listing only its own events', async () => {
    const egress = start({ digest: { subject: 'Digest ({count})' } }, { ...fastRetries, batch: { maxDelay: '1h' } });
    await egress.run(async ($send) => {
      $send.email({ subject: 'owner event 1', text: 'first for the owner' });
      $send.email({ subject: 'team event', text: 'for everyone', include_collaborators: true });
      $send.email({ subject: 'owner event 2', html: '<p>second for the <b>owner</b></p>' });
    });
    await egress.flush();

    expect(server.received).toHaveLength(2);
    const owner = server.received.find((message) => message.envelopeTo.length === 1)!;
    const team = server.received.find((message) => message.envelopeTo.length === 2)!;
    expect(owner.parsed.subject).toBe('Digest (2)');
    expect(owner.parsed.text).toContain('owner event 1');
    expect(owner.parsed.text).toContain('first for the owner');
    expect(owner.parsed.text).toContain('second for the owner');
    expect(owner.parsed.html).toContain('<p>second for the <b>owner</b></p>');
    expect(owner.parsed.text).not.toContain('team event');
    expect(team.parsed.subject).toBe('Digest (1)');
    expect(team.envelopeTo).toEqual(['owner@egress.test', 'ana@egress.test']);
    expect(team.parsed.text).toContain('for everyone');
    expect(team.parsed.text).not.toContain('owner event');
  });

  test('digest mode: a digest retried after a 4xx keeps its Message-ID', async () => {
    const egress = start({ digest: true }, { ...fastRetries, batch: { maxDelay: '1h' } });
    server.rejectNext(1, { code: 421, message: 'Service not available, closing channel' });
    await egress.run(async ($send) => {
      for (let index = 0; index < 4; index++) $send.email({ subject: `item ${index}` });
    });
    await egress.flush();

    expect(server.rejectedCount).toBe(1);
    expect(uniqueByMessageId(server.received)).toHaveLength(1);
    expect(server.received[0]!.parsed.subject).toBe('4 new messages');
  });

  test('digest mode: the rate limit counts messages, not events', async () => {
    const egress = start({ digest: true, rateLimit: { messages: 1, per: '1h' } }, { ...fastRetries, batch: { maxDelay: 20 } });
    await egress.run(async ($send) => {
      for (let index = 0; index < 3; index++) $send.email({ subject: `owner ${index}` });
      $send.email({ subject: 'team', include_collaborators: true });
    });
    // Both digests are due at once; the limit lets one through and holds the other for the hour.
    await server.waitForMessages(1);
    const stalled = await egress.flush({ timeout: 300 }).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(EgressTimeoutError.isInstance(stalled)).toBe(true);
    expect(server.received).toHaveLength(1);
    const first = server.received[0]!;
    expect(first.parsed.subject).toBe(first.envelopeTo.length === 1 ? '3 new messages' : '1 new message');
  });
});
