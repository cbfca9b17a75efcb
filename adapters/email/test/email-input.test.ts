import { describe, expect, test } from 'vitest';
import { email } from '../src/index.js';
import { accept, issuesOf } from './email-fixtures.js';

// Validation happens in the schema; no message is sent here, so no server is needed.
const destination = email({ smtp: 'smtp://127.0.0.1:2525', from: 'alerts@egress.test', to: 'owner@egress.test', collaborators: ['ana@egress.test'], maxAttachmentSize: '1KiB' });
const noOwner = email({ smtp: 'smtp://127.0.0.1:2525', from: 'alerts@egress.test' });

describe('$send.email input', () => {
  test('accepts an empty call and sends it to the owner, as Pipedream does', () => {
    expect(accept(destination, {})).toEqual({ to: [{ address: 'owner@egress.test' }], cc: [], bcc: [], replyTo: [], attachments: [] });
  });

  test('validates synchronously', () => {
    expect(destination.input['~standard'].validate({ subject: 'x' })).not.toBeInstanceOf(Promise);
  });

  test('rejects unknown fields, and says what "body" should have been', () => {
    expect(issuesOf(destination, { subject: 'hi', body: 'hello' })).toEqual([': unknown field "body": use "text" for a plain-text body or "html" for an HTML body']);
    expect(issuesOf(destination, { from: 'me@example.com' })[0]).toContain('the sender is set once, on the adapter');
    expect(issuesOf(destination, { includeCollaborators: true })[0]).toContain('"include_collaborators"');
    expect(issuesOf(destination, { colour: 'red' })).toEqual([': unknown field "colour"']);
    expect(issuesOf(destination, { attachments: [{ filename: 'a', content: 'b', path: '/etc/passwd' }] })[0]).toMatch(/^attachments\.0: unknown field\(s\) "path"/);
  });

  test('rejects line breaks in the subject, the header injection vector', () => {
    expect(issuesOf(destination, { subject: 'Hello\r\nBcc: victim@example.com' })).toEqual(['subject: the subject must not contain line breaks or control characters']);
    expect(issuesOf(destination, { subject: 'Hello\nX-Spam: no' })).toHaveLength(1);
    expect(issuesOf(destination, { subject: 'x'.repeat(999) })).toEqual(['subject: the subject must be at most 998 characters']);
  });

  test('rejects line breaks and malformed addresses in every recipient field', () => {
    expect(issuesOf(destination, { to: 'a@example.com\r\nBcc: victim@example.com' })).toEqual(['to: must not contain line breaks or control characters']);
    expect(issuesOf(destination, { cc: ['ok@example.com', 'not an address'] })).toEqual(['cc.1: expected an email address like "name@example.com", got "not an address"']);
    expect(issuesOf(destination, { bcc: 'a@example.com, b@example.com' })[0]).toMatch(/^bcc: expected an email address/);
    expect(issuesOf(destination, { replyTo: { name: 'Ops\nBcc: x@example.com', address: 'ops@example.com' } })).toEqual(['replyTo.name: must not contain line breaks or control characters']);
    expect(issuesOf(destination, { to: { name: 'Ops', address: 'ops@' } })[0]).toMatch(/^to\.address: expected an email address/);
    expect(issuesOf(destination, { to: 'Name <name@example.com>' })[0]).toMatch(/^to: expected an email address/);
    expect(issuesOf(destination, { to: 42 })[0]).toMatch(/^to: expected an address string or \{ name, address \}/);
  });

  test('holds addresses to RFC 5321, with no Unicode line or paragraph separator anywhere in a header', () => {
    expect(issuesOf(destination, { to: 'ops@exa\u2028mple.com' })).toEqual(['to: must not contain line breaks or control characters']);
    expect(issuesOf(destination, { to: 'ops\u2029@example.com' })).toEqual(['to: must not contain line breaks or control characters']);
    expect(issuesOf(destination, { to: { name: 'Ops\u2028Bcc: x@example.com', address: 'ops@example.com' } })).toEqual(['to.name: must not contain line breaks or control characters']);
    expect(issuesOf(destination, { subject: 'Hello\u0085world' })).toHaveLength(1);
    expect(issuesOf(destination, { to: `${'a'.repeat(65)}@example.com` })[0]).toMatch(/^to: the part before "@" must be at most 64 characters/);
    expect(issuesOf(destination, { to: 'ops@exa\u200bmple.com' })[0]).toMatch(/^to: expected an email address/);
    expect(issuesOf(destination, { to: ['ops@bücher.example', 'ops@例え.jp'] })).toEqual([]);
  });

  test('rejects line breaks in attachment file names and bad content types', () => {
    expect(issuesOf(destination, { attachments: [{ filename: 'a.txt\r\nContent-Type: text/html', content: 'x' }] })).toEqual([
      'attachments.0.filename: a file name must not contain line breaks or control characters',
    ]);
    expect(issuesOf(destination, { attachments: [{ filename: 'a.txt', content: 'x', contentType: 'text/plain\r\nX-Evil: 1' }] })[0]).toMatch(/^attachments\.0\.contentType: expected a MIME type/);
    expect(issuesOf(destination, { attachments: [{ filename: '', content: 'x' }] })).toEqual(['attachments.0.filename: a file name must not be empty']);
    expect(issuesOf(destination, { attachments: [{ filename: 'a', content: 12 }] })).toEqual(['attachments.0.content: expected text or bytes (Uint8Array or Buffer)']);
  });

  test('bounds the total size of attachments by the adapter option', () => {
    const half = 'x'.repeat(600);
    expect(issuesOf(destination, { attachments: [{ filename: 'a', content: half }] })).toEqual([]);
    expect(issuesOf(destination, { attachments: [{ filename: 'a', content: half }, { filename: 'b', content: new Uint8Array(600) }] })).toEqual([
      'attachments: attachments add up to 1200 bytes, more than the 1024 allowed (adapter option "maxAttachmentSize")',
    ]);
  });

  test('needs at least one recipient: the owner or an explicit one', () => {
    expect(issuesOf(noOwner, { subject: 'to whom?' })[0]).toMatch(/^to: no recipient/);
    expect(accept(noOwner, { bcc: 'hidden@example.com' }).bcc).toEqual([{ address: 'hidden@example.com' }]);
    expect(issuesOf(noOwner, { include_collaborators: true })[0]).toMatch(/^include_collaborators: no collaborators are configured/);
  });

  test('an explicit to replaces the owner; collaborators are added to either, each address once', () => {
    expect(accept(destination, { to: 'x@example.com' }).to).toEqual([{ address: 'x@example.com' }]);
    expect(accept(destination, { to: ['x@example.com', 'ANA@egress.test'], include_collaborators: true }).to).toEqual([{ address: 'x@example.com' }, { address: 'ANA@egress.test' }]);
    expect(accept(destination, { include_collaborators: true }).to).toEqual([{ address: 'owner@egress.test' }, { address: 'ana@egress.test' }]);
  });

  test('accepts international domains and plus addressing', () => {
    expect(issuesOf(destination, { to: ['user+tag@example.com', 'joerg@bücher.example', "o'hara@example.co.uk"] })).toEqual([]);
  });
});
