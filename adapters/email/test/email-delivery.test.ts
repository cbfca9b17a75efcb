import { PermanentError, RetryableError, silentLogger, type Logger } from '@egress/core';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import type { AddressObject } from 'mailparser';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { email, type EmailDestination, type EmailOptions } from '../src/index.js';
import { batchOf, deliveryContext } from './email-fixtures.js';
import { startSmtpServer, uniqueByMessageId, type TestSmtpServer } from './smtp-test-server.js';

let server: TestSmtpServer;
const destinations: EmailDestination[] = [];

beforeAll(async () => {
  server = await startSmtpServer();
});

afterEach(async () => {
  for (const destination of destinations.splice(0)) await destination.stop?.();
  server.reset();
});

afterAll(async () => {
  await server.close();
});

function create(options: Partial<EmailOptions> = {}): EmailDestination {
  const destination = email({ smtp: server.url, from: { name: 'Egress alerts', address: 'alerts@egress.test' }, to: 'owner@egress.test', ...options });
  destinations.push(destination);
  return destination;
}

function addresses(field: AddressObject | AddressObject[] | undefined): string[] {
  if (!field) return [];
  return (Array.isArray(field) ? field : [field]).flatMap((entry) => entry.value.map((mailbox) => mailbox.address ?? ''));
}

describe('one message per event', () => {
  test('delivers subject, text and HTML parts to the owner, from the configured sender', async () => {
    const destination = create();
    const batch = batchOf(destination, [{ subject: 'Build failed', text: 'main is red', html: '<p>main is <b>red</b></p>' }]);
    await destination.deliver(batch, deliveryContext());

    const [message] = await server.waitForMessages(1);
    expect(message!.parsed.subject).toBe('Build failed');
    expect(message!.parsed.text?.trim()).toBe('main is red');
    expect(message!.parsed.html).toContain('<p>main is <b>red</b></p>');
    expect(message!.parsed.from?.value).toEqual([{ name: 'Egress alerts', address: 'alerts@egress.test' }]);
    expect(addresses(message!.parsed.to)).toEqual(['owner@egress.test']);
    expect(message!.envelopeFrom).toBe('alerts@egress.test');
    expect(message!.envelopeTo).toEqual(['owner@egress.test']);
  });

  test('carries the delivery attempt\'s trace context in traceparent and tracestate headers, and none without tracing', async () => {
    const destination = create();
    const traceHeaders = { traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01', tracestate: 'vendor=opaque' };
    await destination.deliver(batchOf(destination, [{ subject: 'traced' }]), { ...deliveryContext(), traceHeaders });
    await destination.deliver(batchOf(destination, [{ subject: 'untraced' }]), deliveryContext());

    const messages = await server.waitForMessages(2);
    const traced = messages.find((message) => message.parsed.subject === 'traced')!;
    const untraced = messages.find((message) => message.parsed.subject === 'untraced')!;
    expect(traced.parsed.headers.get('traceparent')).toBe(traceHeaders.traceparent);
    expect(traced.parsed.headers.get('tracestate')).toBe(traceHeaders.tracestate);
    expect(untraced.parsed.headers.has('traceparent')).toBe(false);
  });

  test('sets the Message-ID from the event id, so a retried message is the same message', async () => {
    const destination = create();
    const batch = batchOf(destination, [{ subject: 'once' }]);
    await destination.deliver(batch, deliveryContext());
    await destination.deliver(batch, deliveryContext());

    const messages = await server.waitForMessages(2);
    expect(messages.map((message) => message.messageId)).toEqual([`<${batch.events[0]!.id}@egress.test>`, `<${batch.events[0]!.id}@egress.test>`]);
    expect(messages[0]!.parsed.date?.getTime()).toBe(messages[1]!.parsed.date?.getTime());
    expect(uniqueByMessageId(messages)).toHaveLength(1);
  });

  test('sends to explicit to, cc and bcc instead of the owner, with bcc in the envelope only', async () => {
    const destination = create();
    const batch = batchOf(destination, [
      {
        subject: 'Quarterly numbers',
        text: 'attached',
        to: ['finance@example.com', { name: 'Chief Executive', address: 'ceo@example.com' }],
        cc: 'audit@example.com',
        bcc: ['archive@example.com'],
        replyTo: 'finance-team@example.com',
      },
    ]);
    await destination.deliver(batch, deliveryContext());

    const [message] = await server.waitForMessages(1);
    expect(addresses(message!.parsed.to)).toEqual(['finance@example.com', 'ceo@example.com']);
    expect((message!.parsed.to as AddressObject).value[1]!.name).toBe('Chief Executive');
    expect(addresses(message!.parsed.cc)).toEqual(['audit@example.com']);
    expect(addresses(message!.parsed.replyTo)).toEqual(['finance-team@example.com']);
    expect(message!.parsed.bcc).toBeUndefined();
    expect(message!.parsed.headers.has('bcc')).toBe(false);
    expect(message!.envelopeTo.sort()).toEqual(['archive@example.com', 'audit@example.com', 'ceo@example.com', 'finance@example.com']);
  });

  test('adds the collaborators when a call sets include_collaborators', async () => {
    const destination = create({ collaborators: ['ana@egress.test', 'ben@egress.test'] });
    const withCollaborators = batchOf(destination, [{ subject: 'team news', include_collaborators: true }]);
    const ownerOnly = batchOf(destination, [{ subject: 'owner only' }]);
    await destination.deliver(withCollaborators, deliveryContext());
    await destination.deliver(ownerOnly, deliveryContext());

    const [team, owner] = await server.waitForMessages(2);
    expect(addresses(team!.parsed.to)).toEqual(['owner@egress.test', 'ana@egress.test', 'ben@egress.test']);
    expect(team!.envelopeTo).toEqual(['owner@egress.test', 'ana@egress.test', 'ben@egress.test']);
    expect(owner!.envelopeTo).toEqual(['owner@egress.test']);
  });

  test('attaches text and bytes with their content intact', async () => {
    const destination = create();
    const bytes = new Uint8Array(4096).map((_, index) => (index * 31) % 256);
    const batch = batchOf(destination, [
      {
        subject: 'files',
        text: 'see attachments',
        attachments: [
          { filename: 'report.csv', content: 'name,total\nana,3\nbjörn,4\n', contentType: 'text/csv' },
          { filename: 'blob.bin', content: bytes },
          { filename: 'Übersicht 2024.pdf', content: Buffer.from('%PDF-1.4 fake'), contentType: 'application/pdf' },
        ],
      },
    ]);
    await destination.deliver(batch, deliveryContext());

    const [message] = await server.waitForMessages(1);
    const attachments = message!.parsed.attachments;
    expect(attachments.map((attachment) => attachment.filename)).toEqual(['report.csv', 'blob.bin', 'Übersicht 2024.pdf']);
    expect(attachments[0]!.contentType).toBe('text/csv');
    expect(attachments[0]!.content.toString('utf8')).toBe('name,total\nana,3\nbjörn,4\n');
    expect(attachments[1]!.contentType).toBe('application/octet-stream');
    expect(new Uint8Array(attachments[1]!.content)).toEqual(bytes);
    expect(attachments[2]!.contentType).toBe('application/pdf');
    expect(attachments[2]!.content.toString()).toBe('%PDF-1.4 fake');
  });

  test('sends each event of a larger batch as its own message and reports only the ones refused', async () => {
    const destination = create();
    server.rejectNext(1, { code: 550, message: 'Mailbox unavailable' });
    const batch = batchOf(destination, [{ subject: 'first' }, { subject: 'second' }, { subject: 'third' }]);
    const report = await destination.deliver(batch, deliveryContext());

    const received = await server.waitForMessages(2);
    expect(report?.failures).toHaveLength(1);
    const failure = report!.failures[0]!;
    expect(PermanentError.isInstance(failure.error)).toBe(true);
    const delivered = received.map((message) => message.parsed.subject);
    const failed = batch.events.find((event) => event.id === failure.eventId)!.payload.subject;
    expect([...delivered, failed].sort()).toEqual(['first', 'second', 'third']);
  });
});

describe('outcomes', () => {
  test('a 4xx reply is retryable, and the message arrives once the server accepts again', async () => {
    const destination = create();
    server.rejectNext(2, { code: 451, message: 'Temporary local problem, try again' });
    const batch = batchOf(destination, [{ subject: 'greylisted' }]);

    for (let attempt = 1; attempt <= 2; attempt++) {
      const error = await destination.deliver(batch, deliveryContext()).then(
        () => undefined,
        (thrown: unknown) => thrown,
      );
      expect(RetryableError.isInstance(error)).toBe(true);
      expect((error as Error).message).toContain('451 Temporary local problem, try again');
    }
    await destination.deliver(batch, deliveryContext());

    const [message] = await server.waitForMessages(1);
    expect(message!.parsed.subject).toBe('greylisted');
    expect(server.rejectedCount).toBe(2);
  });

  test('a 5xx reply is permanent and carries the server reply', async () => {
    const destination = create();
    server.rejectNext(1, { code: 554, message: 'Message rejected as spam' });
    const batch = batchOf(destination, [{ subject: 'buy now' }]);

    const error = await destination.deliver(batch, deliveryContext()).then(
      () => undefined,
      (thrown: unknown) => thrown,
    );
    expect(PermanentError.isInstance(error)).toBe(true);
    expect((error as Error).message).toContain('554 Message rejected as spam');
    expect(server.received).toHaveLength(0);
  });

  test('a refused connection is retryable', async () => {
    const closed = await startSmtpServer();
    const url = closed.url;
    await closed.close();
    const destination = email({ smtp: url, from: 'alerts@egress.test', to: 'owner@egress.test' });
    destinations.push(destination);

    const error = await destination.deliver(batchOf(destination, [{ subject: 'nobody home' }]), deliveryContext()).then(
      () => undefined,
      (thrown: unknown) => thrown,
    );
    expect(RetryableError.isInstance(error)).toBe(true);
    expect((error as Error).message).toMatch(/ECONNREFUSED|ECONNECTION|ESOCKET/);
  });

  test('a connection the server drops is retryable', async () => {
    const dropping = createServer((socket) => socket.destroy());
    await new Promise<void>((resolve) => dropping.listen(0, '127.0.0.1', resolve));
    const destination = email({ smtp: { host: '127.0.0.1', port: (dropping.address() as AddressInfo).port }, from: 'alerts@egress.test', to: 'owner@egress.test' });
    destinations.push(destination);
    try {
      const error = await destination.deliver(batchOf(destination, [{ subject: 'hung up on' }]), deliveryContext()).then(
        () => undefined,
        (thrown: unknown) => thrown,
      );
      expect(RetryableError.isInstance(error)).toBe(true);
      expect((error as Error).message).toMatch(/^\[email\] could not send through the SMTP server/);
    } finally {
      await new Promise((resolve) => dropping.close(resolve));
    }
  });

  test('a server that never greets times out, and that is retryable', async () => {
    const sockets = new Set<Socket>();
    const silent = createServer((socket) => sockets.add(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const destination = email({ smtp: { host: '127.0.0.1', port: (silent.address() as AddressInfo).port, greetingTimeout: 100 }, from: 'alerts@egress.test', to: 'owner@egress.test' });
    destinations.push(destination);
    try {
      const error = await destination.deliver(batchOf(destination, [{ subject: 'hello?' }]), deliveryContext()).then(
        () => undefined,
        (thrown: unknown) => thrown,
      );
      expect(RetryableError.isInstance(error)).toBe(true);
      expect((error as Error).message).toContain('ETIMEDOUT');
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => silent.close(resolve));
    }
  });

  test('an aborted delivery is retryable', async () => {
    const destination = create();
    const controller = new AbortController();
    controller.abort(new Error('delivery timed out'));
    const error = await destination.deliver(batchOf(destination, [{ subject: 'too late' }]), { signal: controller.signal, logger: silentLogger }).then(
      () => undefined,
      (thrown: unknown) => thrown,
    );
    expect(RetryableError.isInstance(error)).toBe(true);
    expect((error as Error).message).toContain('aborted');
  });

  test('credentials never appear in errors, even when the server refuses them', async () => {
    const guarded = await startSmtpServer({ credentials: { user: 'mailer', password: 'right-password' } });
    const wrongUrl = `smtp://mailer:s3cret-Passw0rd@127.0.0.1:${guarded.port}`;
    const destination = email({ smtp: wrongUrl, from: 'alerts@egress.test', to: 'owner@egress.test' });
    destinations.push(destination);
    try {
      const error = await destination.deliver(batchOf(destination, [{ subject: 'hello' }]), deliveryContext()).then(
        () => undefined,
        (thrown: unknown) => thrown,
      );
      expect(PermanentError.isInstance(error)).toBe(true);
      expect((error as Error).message).toContain('535');
      const everything = JSON.stringify({ message: (error as Error).message, cause: String((error as Error).cause), detail: { ...((error as Error).cause as object) } });
      expect(everything).not.toContain('s3cret-Passw0rd');
      expect(everything).not.toContain(Buffer.from('\u0000mailer\u0000s3cret-Passw0rd').toString('base64'));
      const health = await destination.health!();
      expect(health.ok).toBe(false);
      expect(health.message).not.toContain('s3cret-Passw0rd');
    } finally {
      await destination.stop?.();
      await guarded.close();
    }
  });

  test('credentials missing from the options are permanent, not retried', async () => {
    const guarded = await startSmtpServer({ credentials: { user: 'mailer', password: 'right-password' } });
    const destination = email({ smtp: { host: '127.0.0.1', port: guarded.port, auth: { user: 'mailer' } }, from: 'alerts@egress.test', to: 'owner@egress.test' });
    destinations.push(destination);
    try {
      const error = await destination.deliver(batchOf(destination, [{ subject: 'who am I' }]), deliveryContext()).then(
        () => undefined,
        (thrown: unknown) => thrown,
      );
      expect(PermanentError.isInstance(error)).toBe(true);
      expect((error as Error).message).toBe('[email] the message cannot be sent as configured (EAUTH): Missing credentials for "PLAIN"');
    } finally {
      await destination.stop?.();
      await guarded.close();
    }
  });

  test('authenticates with the credentials of the URL', async () => {
    const guarded = await startSmtpServer({ credentials: { user: 'mailer', password: 'p@ss:word/with%chars' } });
    const destination = email({ smtp: guarded.url, from: 'alerts@egress.test', to: 'owner@egress.test' });
    destinations.push(destination);
    try {
      await destination.deliver(batchOf(destination, [{ subject: 'signed in' }]), deliveryContext());
      const [message] = await guarded.waitForMessages(1);
      expect(message!.parsed.subject).toBe('signed in');
      expect(await destination.health!()).toEqual({ ok: true });
    } finally {
      await destination.stop?.();
      await guarded.close();
    }
  });

  test('when every recipient is refused, retries if any refusal is temporary and names each reply', async () => {
    const destination = create({ to: ['gone@refused.test', 'busy@refused.test'] });
    server.refuseRecipient('gone@refused.test', { code: 550, message: '5.1.1 No such user' });
    server.refuseRecipient('busy@refused.test', { code: 452, message: '4.2.2 Mailbox full' });
    const temporary = await destination.deliver(batchOf(destination, [{ subject: 'anyone?' }]), deliveryContext()).then(
      () => undefined,
      (thrown: unknown) => thrown,
    );
    expect(RetryableError.isInstance(temporary)).toBe(true);
    expect((temporary as Error).message).toBe('[email] SMTP server refused every recipient: gone@refused.test: 550 5.1.1 No such user; busy@refused.test: 452 4.2.2 Mailbox full');

    server.refuseRecipient('busy@refused.test', { code: 550, message: '5.1.1 No such user' });
    const permanent = await destination.deliver(batchOf(destination, [{ subject: 'anyone?' }]), deliveryContext()).then(
      () => undefined,
      (thrown: unknown) => thrown,
    );
    expect(PermanentError.isInstance(permanent)).toBe(true);
    expect(server.received).toHaveLength(0);
  });

  test('makes Message-IDs ASCII when the sender has an international domain', async () => {
    const destination = create({ from: 'alerts@bücher.example' });
    const batch = batchOf(destination, [{ subject: 'umlauts' }]);
    await destination.deliver(batch, deliveryContext());
    const [message] = await server.waitForMessages(1);
    expect(message!.messageId).toBe(`<${batch.events[0]!.id}@xn--bcher-kva.example>`);
  });

  test('logs recipients the server refused while it accepted the message for others', async () => {
    const warnings: string[] = [];
    const logger: Logger = { ...silentLogger, warn: (fields, message) => warnings.push(`${message} ${JSON.stringify(fields)}`) };
    const picky = await startSmtpServer();
    const destination = email({ smtp: picky.url, from: 'alerts@egress.test', to: ['owner@egress.test', 'gone@refused.test'] });
    destinations.push(destination);
    try {
      picky.refuseRecipient('gone@refused.test', { code: 550, message: 'No such user' });
      await destination.deliver(batchOf(destination, [{ subject: 'partly' }]), { signal: new AbortController().signal, logger });
      const [message] = await picky.waitForMessages(1);
      expect(message!.envelopeTo).toEqual(['owner@egress.test']);
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toContain('gone@refused.test');
    } finally {
      await destination.stop?.();
      await picky.close();
    }
  });
});

describe('digest mode', () => {
  test('lists every event of a batch in one message, in the text and the HTML part', async () => {
    const destination = create({ digest: { subject: 'Egress digest: {count} events' } });
    const batch = batchOf(destination, [
      { subject: 'Signup: ana', text: 'ana@example.com joined' },
      { subject: 'Signup: <ben>', html: '<p>ben@example.com <b>joined</b></p>' },
      { subject: 'Payment failed', text: 'card declined', attachments: [{ filename: 'invoice.txt', content: 'INV-7' }] },
      { subject: 'Newsletter', html: '<!doctype html><html><head><title>x</title></head><body><p>Issue 12</p></body></html>' },
    ]);
    await destination.deliver(batch, deliveryContext());

    const [message] = await server.waitForMessages(1);
    expect(message!.parsed.subject).toBe('Egress digest: 4 events');
    expect(message!.messageId).toBe(`<${batch.id}@egress.test>`);
    const text = message!.parsed.text ?? '';
    expect(text).toContain('1. Signup: ana');
    expect(text).toContain('ana@example.com joined');
    expect(text).toContain('2. Signup: <ben>');
    expect(text).toContain('ben@example.com joined');
    expect(text).toContain('3. Payment failed');
    expect(text).toContain('card declined');
    expect(text.indexOf('Signup: ana')).toBeLessThan(text.indexOf('Payment failed'));
    const html = String(message!.parsed.html);
    expect(html).toContain('Signup: &#60;ben&#62;');
    expect(html).toContain('<p>ben@example.com <b>joined</b></p>');
    expect(html).toContain('ana@example.com joined');
    expect(html).toContain('<div><p>Issue 12</p></div>');
    expect(html.match(/<html/gi)).toHaveLength(1);
    expect(text).toContain('4. Newsletter');
    expect(text).toContain('Issue 12');
    expect(message!.parsed.attachments.map((attachment) => [attachment.filename, attachment.content.toString()])).toEqual([['invoice.txt', 'INV-7']]);
    expect(message!.envelopeTo).toEqual(['owner@egress.test']);
  });

  test('partitions by recipients, and a mixed batch still sends each group only its own events', async () => {
    const destination = create({ digest: true, collaborators: 'ana@egress.test' });
    const ownerPayload = batchOf(destination, [{ subject: 'owner' }]).events[0]!.payload;
    const teamPayload = batchOf(destination, [{ subject: 'team', include_collaborators: true }]).events[0]!.payload;
    expect(destination.partition!(ownerPayload)).not.toBe(destination.partition!(teamPayload));
    expect(destination.partition!(ownerPayload)).toBe(destination.partition!(batchOf(destination, [{ subject: 'other' }]).events[0]!.payload));

    const mixed = batchOf(destination, [{ subject: 'owner 1' }, { subject: 'team 1', include_collaborators: true }, { subject: 'owner 2' }]);
    await destination.deliver(mixed, deliveryContext());
    const messages = await server.waitForMessages(2);
    const toOwner = messages.find((message) => message.envelopeTo.length === 1)!;
    const toTeam = messages.find((message) => message.envelopeTo.length === 2)!;
    expect(toOwner.parsed.subject).toBe('2 new messages');
    expect(toOwner.parsed.text).toContain('owner 1');
    expect(toOwner.parsed.text).toContain('owner 2');
    expect(toOwner.parsed.text).not.toContain('team 1');
    expect(toTeam.parsed.subject).toBe('1 new message');
    expect(toTeam.parsed.text).toContain('team 1');
    expect(toTeam.parsed.text).not.toContain('owner');
    expect(toOwner.messageId).not.toBe(toTeam.messageId);
  });

  test('declares batch defaults and maps the rate limit onto the policy', () => {
    expect(create({ digest: true, rateLimit: { messages: 10, per: '1m' } }).defaults).toMatchObject({
      batch: { maxEvents: 100, maxDelay: '5m' },
      rateLimit: { requests: 10, per: '1m' },
    });
    expect(create({ digest: { maxEvents: 20, maxDelay: '30s' } }).defaults?.batch).toMatchObject({ maxEvents: 20, maxDelay: '30s' });
    expect(create({ rateLimit: { messages: 5 } }).defaults).toMatchObject({ batch: { maxEvents: 1 }, rateLimit: { events: 5, per: 1000 } });
  });
});
