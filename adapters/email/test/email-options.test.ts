import { EgressConfigurationError } from '@egress/core';
import { describe, expect, test } from 'vitest';
import { email, type EmailOptions } from '../src/index.js';

function configurationError(options: unknown): EgressConfigurationError {
  try {
    email(options as EmailOptions);
  } catch (error) {
    if (EgressConfigurationError.isInstance(error)) return error;
    throw error;
  }
  throw new Error('expected email() to throw');
}

describe('email() options', () => {
  test('needs smtp and from, and names the missing option', () => {
    expect(configurationError({ from: 'a@example.com' }).path).toBe('[email] option "smtp"');
    expect(configurationError({ smtp: 'smtp://localhost' }).path).toBe('[email] option "from"');
    expect(configurationError({ smtp: 'smtp://localhost' }).message).toMatch(/^\[egress\] \[email\] option "from": Missing required option/);
  });

  test('rejects URLs that are not SMTP without repeating them, since they hold credentials', () => {
    const wrongScheme = configurationError({ smtp: 'https://user:hunter2@mail.example.com', from: 'a@example.com' });
    expect(wrongScheme.path).toBe('[email] option "smtp"');
    expect(wrongScheme.message).toContain('https://');
    expect(wrongScheme.message).not.toContain('hunter2');
    const unparsable = configurationError({ smtp: 'hunter2 is not a url', from: 'a@example.com' });
    expect(unparsable.message).not.toContain('hunter2');
  });

  test('checks SMTP options objects', () => {
    expect(configurationError({ smtp: { host: 'mail', port: 70000 }, from: 'a@example.com' }).path).toBe('[email] option "smtp.port"');
    expect(configurationError({ smtp: { sendmail: true }, from: 'a@example.com' }).path).toBe('[email] option "smtp.sendmail"');
    expect(configurationError({ smtp: 25, from: 'a@example.com' }).path).toBe('[email] option "smtp"');
  });

  test('checks every address option and names the bad entry', () => {
    const base = { smtp: 'smtp://localhost' };
    expect(configurationError({ ...base, from: 'nobody' }).path).toBe('[email] option "from"');
    expect(configurationError({ ...base, from: ['a@example.com'] }).path).toBe('[email] option "from"');
    expect(configurationError({ ...base, from: 'a@example.com', to: ['ok@example.com', 'bad\n@example.com'] }).path).toBe('[email] option "to[1]"');
    expect(configurationError({ ...base, from: 'a@example.com', collaborators: [{ name: 'X', address: 'nope' }] }).path).toBe('[email] option "collaborators[0].address"');
  });

  test('checks the rate limit, the attachment size and the digest options', () => {
    const base = { smtp: 'smtp://localhost', from: 'a@example.com' };
    expect(configurationError({ ...base, rateLimit: { messages: 0 } }).path).toBe('[email] option "rateLimit.messages"');
    expect(configurationError({ ...base, rateLimit: { messages: 5, per: 'soon' } }).path).toBe('[email] option "rateLimit.per"');
    expect(configurationError({ ...base, rateLimit: { messages: 5, interval: '1m' } }).path).toBe('[email] option "rateLimit.interval"');
    expect(configurationError({ ...base, maxAttachmentSize: 'huge' }).path).toBe('[email] option "maxAttachmentSize"');
    expect(configurationError({ ...base, digest: { subject: 'a\nb' } }).path).toBe('[email] option "digest.subject"');
    expect(configurationError({ ...base, digest: { maxEvents: -1 } }).path).toBe('[email] option "digest.maxEvents"');
    expect(configurationError({ ...base, digest: 'yes' }).path).toBe('[email] option "digest"');
  });

  test('rejects unknown options', () => {
    expect(configurationError({ smtp: 'smtp://localhost', from: 'a@example.com', recipients: ['b@example.com'] }).path).toBe('[email] option "recipients"');
  });

  test('accepts a URL or options, with pooled connections', () => {
    expect(email({ smtp: 'smtps://user:pass@mail.example.com:465', from: 'a@example.com' }).name).toBe('email');
    expect(email({ smtp: { host: 'mail.example.com', port: 587, auth: { user: 'u', pass: 'p' } }, from: { name: 'A', address: 'a@example.com' } }).defaults?.concurrency).toBe(10);
    expect(email({ smtp: { host: 'mail.example.com', maxConnections: 2 }, from: 'a@example.com' }).defaults?.concurrency).toBe(4);
  });
});
